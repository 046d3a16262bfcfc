"""The lane-marking evaluator: the official lane benchmark (:mod:`lv_lanes.metric`) on a model's
predictions, and their export in BDD100K's byte encoding for ``tools/evaluate_lane.py`` and the
official toolkit."""
from detectron2.utils.logger import create_small_table

from lv_adapter.evaluation.base import file_stem
from lv_adapter.evaluation.segmentation import SegmentationEvaluator, encode_png
from lv_lanes.encoding import to_bytes
from lv_lanes.files import read_lane_mask
from lv_lanes.metric import LaneScores, format_table, image_scores

__all__ = ["LaneEvaluator"]


class LaneEvaluator(SegmentationEvaluator):
    """F-scores of direction, style and category at 1, 2 and 5 pixels (results key ``lane``).

    The prediction of an image is the argmax of the ``[33, H, W]`` class scores under
    ``lane_seg`` (at the original size), turned into lane bytes and scored against the
    ground-truth PNG as the official toolkit scores it; images not labeled for lanes are
    skipped. With ``output_dir`` the byte masks are written to
    ``<output_dir>/bdd100k/lane/<stem>.png`` by the main process.

    Args: those of :class:`~lv_adapter.evaluation.segmentation.SegmentationEvaluator`.
    """

    def reset(self):
        self._scores = LaneScores()
        self._encoded = []  # (file stem, PNG bytes)

    def process(self, inputs, outputs):
        for record, output in self._labeled(inputs, outputs):
            prediction = to_bytes(self._prediction(record, output))
            path = record[self._spec.label_keys[0]]
            truth = read_lane_mask(path, (record["height"], record["width"]))
            if prediction.shape != truth.shape:
                raise ValueError(
                    f"lane prediction of image {record['image_id']!r} is "
                    f"{prediction.shape[1]}x{prediction.shape[0]} (WxH) but its ground truth "
                    f"{path} is {truth.shape[1]}x{truth.shape[0]}; outputs must be at the "
                    "original image resolution")
            self._scores.add(image_scores(truth, prediction))
            if self._output_dir:
                self._encoded.append((file_stem(record["file_name"]), encode_png(prediction)))

    def evaluate(self):
        parts = self._gather((self._scores, self._encoded))
        if parts is None:
            return {}
        scores = LaneScores()
        for part, _ in parts:
            scores.merge(part)
        self._log_coverage(scores.images)
        if self._output_dir:
            self._write_pngs([item for _, encoded in parts for item in encoded])
        results = scores.results()
        if not results:
            return {}
        headline = {k: v for k, v in results.items() if "/" not in k}
        self._logger.info("lane marking F-score (%):\n" + create_small_table(headline) + "\n"
                          + format_table(results))
        return {self._spec.result_key: results}
