#!/usr/bin/env python
"""Train and evaluate LV-Adapter models with detectron2.

    python train_net.py --config-file configs/sample/multitask_R18.yaml
    python train_net.py --config-file CFG --eval-only MODEL.WEIGHTS output/model_final.pth
    python train_net.py --config-file CFG --num-gpus 2        # also on CPU: GLOO processes
    python train_net.py --config-file CFG --eval-only --exported DIR   # tools/export_model.py's

The results of the final evaluation (after training, or of ``--eval-only``) are also written to
``OUTPUT_DIR/inference/results.json`` (``{dataset: {task key: {metric: value}}}``).
"""
import os
import weakref

from detectron2.data import build_detection_test_loader
from detectron2.engine import DefaultTrainer, default_argument_parser, default_setup
from detectron2.evaluation import verify_results
from detectron2.utils import comm
from detectron2.utils.logger import setup_logger

from lv_adapter import compat
from lv_adapter.config import build_config
from lv_adapter.data import MultiTaskDatasetMapper
from lv_adapter.data.build import build_train_loader
from lv_adapter.data.errors import set_default_policy
from lv_adapter.engine import (
    SafeCheckpointer,
    build_lr_scheduler,
    build_optimizer,
    build_stage_hooks,
    fold_frozen_norms,
    stage_ddp_options,
)
from lv_adapter.evaluation import build_multitask_evaluator
from lv_adapter.utils.io import write_json

RESULTS_FILE = os.path.join("inference", "results.json")


class Trainer(DefaultTrainer):
    """DefaultTrainer with the multi-task mapper, evaluators, optimizer and checkpointer."""

    def __init__(self, cfg):
        # The adapt stage (SOLVER.ADAPT_ITERS) leaves the ResNet out of the loss: DDP must know.
        with compat.ddp_options(**stage_ddp_options(cfg)):
            super().__init__(cfg)

    def build_hooks(self):
        # DefaultTrainer.__init__ made a plain DetectionCheckpointer just before calling this;
        # swap it before the checkpoint hook captures it.
        self.checkpointer = SafeCheckpointer(
            self.checkpointer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        return build_stage_hooks(self.cfg) + super().build_hooks()

    def train(self):
        """Train; return the results of the final evaluation (None without test datasets).

        detectron2's EvalHook keeps them in ``_last_eval_results``; DefaultTrainer.train returns
        them only when TEST.EXPECTED_RESULTS is set.
        """
        super().train()
        return getattr(self, "_last_eval_results", None)

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        # The per-task strategies continue their task sequence at the resumed iteration.
        compat.restart_train_loader(self._trainer, self.start_iter)

    @classmethod
    def build_train_loader(cls, cfg):
        return build_train_loader(cfg, MultiTaskDatasetMapper(cfg, True))

    @classmethod
    def build_test_loader(cls, cfg, dataset_name):
        mapper = MultiTaskDatasetMapper(cfg, False)
        return build_detection_test_loader(cfg, dataset_name, mapper=mapper)

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        if output_folder is None:
            output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
        return build_multitask_evaluator(cfg.MODEL.TASKS, dataset_name, output_folder)

    @classmethod
    def build_optimizer(cls, cfg, model):
        return build_optimizer(cfg, model)

    @classmethod
    def build_lr_scheduler(cls, cfg, optimizer):
        return build_lr_scheduler(cfg, optimizer)


def setup(args):
    cfg = build_config(args.config_file, args.opts)
    cfg.freeze()
    default_setup(cfg, args)
    # default_setup logs only "detectron2" and "fvcore"; lv_adapter's messages belong in log.txt
    # too. Still propagating, so that handlers on the root logger (pytest's caplog) see them.
    logger = setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="lv_adapter")
    logger.propagate = True
    set_default_policy(cfg.DATASETS.ON_BAD_SAMPLE)
    return cfg


def main(args):
    cfg = setup(args)
    if getattr(args, "exported", None):
        return save_results(cfg, evaluate_exported(cfg, args))
    if args.eval_only:
        model = Trainer.build_model(cfg)
        # strict: weights that leave any head unset must not be evaluated as if trained
        SafeCheckpointer(model, save_dir=cfg.OUTPUT_DIR, strict=True).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        fold_frozen_norms(model.eval())  # this model only predicts from here on
        results = Trainer.test(cfg, model)
        verify_results(cfg, results)
        return save_results(cfg, results)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return save_results(cfg, trainer.train())


def evaluate_exported(cfg, args):
    """``--eval-only --exported DIR``: the exported model (tools/export_model.py) run by
    onnxruntime through the same loaders and evaluators; refused when it was exported from
    another config."""
    from lv_adapter.deploy.runtime import ExportedModel, check_matches_config

    if not args.eval_only:
        raise ValueError("--exported evaluates an exported model: add --eval-only")
    model = ExportedModel(args.exported)
    check_matches_config(model.info, cfg, args.exported)
    results = Trainer.test(cfg, model)
    verify_results(cfg, results)
    return results


def save_results(cfg, results):
    """Write ``results`` to :data:`RESULTS_FILE` under ``cfg.OUTPUT_DIR`` (main process, when
    there are any), so that scripts read the metrics without parsing logs; return them."""
    if results and comm.is_main_process():
        write_json(os.path.join(cfg.OUTPUT_DIR, RESULTS_FILE), results, indent=1, sort_keys=True)
    return results


def argument_parser():
    """detectron2's arguments, plus ``--exported DIR``."""
    parser = default_argument_parser()
    parser.add_argument("--exported", metavar="DIR",
                        help="with --eval-only: evaluate the model exported to DIR "
                        "(tools/export_model.py) with onnxruntime instead of PyTorch")
    return parser


def invoke_main():
    parser = argument_parser()
    args = parser.parse_args()
    if args.num_gpus < 1:  # detectron2's launch would start no process and exit 0
        parser.error(f"--num-gpus must be >= 1 (GPUs, or GLOO processes on the CPU), got "
                     f"{args.num_gpus}")
    print("Command Line Args:", args)
    compat.launch(
        main, args.num_gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
        dist_url=args.dist_url, args=(args,),
    )


if __name__ == "__main__":
    invoke_main()
