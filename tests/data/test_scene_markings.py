"""The scenes' lane-marking map (Scene.markings): kinds, placement on the ground, determinism, and
that painting the markings changes no other label."""
import numpy as np
import pytest

import lv_adapter.data.scenes.ground as ground
import lv_adapter.data.scenes.scene as scene_module
from lv_adapter.data.scenes import MARKINGS, draw_scene
from lv_adapter.data.scenes.canvas import SEM
from lv_adapter.data.scenes.road import LANE_M

HEIGHT, WIDTH = 180, 320
SEEDS = range(40)
KIND = {kind: index + 1 for index, kind in enumerate(MARKINGS)}
CURB = KIND["road curb", "solid", "parallel"]
DASHED = KIND["single white", "dashed", "parallel"]
DOUBLES = (KIND["double yellow", "solid", "parallel"], KIND["double white", "solid", "parallel"])
ZEBRA = KIND["crosswalk", "solid", "vertical"]
STOP = KIND["single white", "solid", "vertical"]
NEW_KINDS = DOUBLES + (STOP,)  # added after the scenes' image was fixed


def _draw(monkeypatch, seed, **kwargs):
    """(scene, road) for ``seed`` at HEIGHTxWIDTH; the road is caught on its way to the ground."""
    roads = []

    def spy(canvas, road, rng, sides):
        roads.append(road)
        return ground.paint_ground(canvas, road, rng, sides)

    monkeypatch.setattr(scene_module, "paint_ground", spy)
    scene = draw_scene(np.random.default_rng([0, seed]), HEIGHT, WIDTH, **kwargs)
    return scene, roads[0]


@pytest.fixture(scope="module")
def scenes():
    """[(scene, road)] for SEEDS."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        return [_draw(monkeypatch, seed) for seed in SEEDS]


def _ground_coords(road, ys, xs):
    """(u metres right of the road's left edge, metres per pixel) of pixels (ys, xs) below the
    horizon: road.x inverted."""
    s = road.s_of_row(ys)
    bend = road.bend * np.maximum(1 - s, 0) ** 2
    u = ((xs - road.vx - bend) / s - road.left0 + road.vx) / road.ppm
    return u, 1 / (road.ppm * s)


def _on_seam(road, ys, xs, boundaries):
    """Whether pixels (ys, xs) lie on the seam of one of the ground lines u = ``boundaries``.

    The ground's regions are filled as polygons with one vertex per row (clipped to columns
    -2 .. WIDTH + 1), straight edges between, and edge pixels included: a later region takes
    the pixels its edge crosses between the rows above and below. A seam is a pixel wider,
    each side, than the edge's columns over rows y - 1/2 .. y + 1/2.
    """
    seam = np.zeros(len(ys), bool)
    for u in boundaries:
        above, at, below = (np.clip(road.x(u, road.s_of_row(ys + dy)), -2, WIDTH + 1)
                            for dy in (-1, 0, 1))
        a, b = (above + at) / 2, (at + below) / 2
        seam |= (xs >= np.minimum(a, b) - 1) & (xs <= np.maximum(a, b) + 1)
    return seam


def _pixels(scene, road, kinds):
    """(rows, u, metres per pixel) of the pixels showing a marking of one of ``kinds``."""
    ys, xs = np.nonzero(np.isin(scene.markings, kinds))
    return (ys, *_ground_coords(road, ys, xs))


def test_markings_describe_bdd100k_lanes():
    categories = {"crosswalk", "double white", "double yellow", "road curb", "single white",
                  "single yellow"}
    assert len(set(MARKINGS)) == len(MARKINGS)
    for category, style, direction in MARKINGS:
        assert category in categories and style in ("solid", "dashed")
        assert direction in ("parallel", "vertical")
    # Only lines between lanes are dashed; crossings and stop lines run across the road.
    assert [kind for kind in MARKINGS if kind[1] == "dashed"] == [MARKINGS[DASHED - 1]]
    assert {kind for kind in MARKINGS if kind[2] == "vertical"} == {MARKINGS[ZEBRA - 1],
                                                                    MARKINGS[STOP - 1]}


def test_every_kind_appears_and_values_are_kinds(scenes):
    seen = set()
    for scene, _ in scenes:
        assert scene.markings.shape == (HEIGHT, WIDTH) and scene.markings.dtype == np.uint8
        assert scene.markings.max() <= len(MARKINGS)
        seen.update(np.unique(scene.markings).tolist())
    assert seen == set(range(len(MARKINGS) + 1))


def test_markings_lie_on_the_ground_and_never_on_things(scenes):
    road_or_walk = (SEM["road"], SEM["sidewalk"])
    for scene, road in scenes:
        marked = scene.markings > 0
        assert not marked[scene.owner >= 0].any()
        # Curbs lie on the sidewalk's inner edge; a pixel next to the horizon, where the
        # sidewalk is under a pixel wide, may be filled as the terrain beyond it.
        curb = scene.markings == CURB
        assert np.isin(scene.sem[curb], road_or_walk + (SEM["terrain"],)).all()
        lines = marked & ~curb
        assert np.isin(scene.sem[lines], road_or_walk).all()
        # The other markings lie on the road; the sidewalks' fills take its edges' seams.
        ys, xs = np.nonzero(lines & (scene.sem == SEM["sidewalk"]))
        assert _on_seam(road, ys, xs, (0.0, road.right_u)).all()


def test_markings_lie_where_their_kind_belongs(scenes):
    for scene, road in scenes:
        _, u, pixel = _pixels(scene, road, [CURB])
        # Pixel centres inside the curbs' bands (1e-6: float rounding of road.x).
        left, right = (u >= -0.2 - 1e-6) & (u <= 1e-6), (u >= road.right_u - 1e-6)
        assert (left | (right & (u <= road.right_u + 0.2 + 1e-6))).all()
        others = [kind for kind in range(1, len(MARKINGS) + 1) if kind != CURB]
        _, u, pixel = _pixels(scene, road, others)
        assert ((u > -pixel) & (u < road.right_u + pixel)).all()
        # Lines between lanes lie on a lane boundary (at most 0.25 m and a line's width away).
        _, u, pixel = _pixels(scene, road, (DASHED,) + DOUBLES)
        offset = np.abs(u - LANE_M * np.clip(np.rint(u / LANE_M), 1, road.lanes - 1))
        assert (offset <= 0.25 + 1.2 * pixel).all()


def test_double_lines_are_two_lines_near_the_camera(scenes):
    checked = 0
    for scene, road in scenes:
        middle = LANE_M * (road.lanes // 2)
        for row in range(HEIGHT - 10, HEIGHT):  # 0.1 m apart is several pixels there
            s = road.s_of_row(row)
            lo, hi = int(road.x(middle - 0.4, s)), int(road.x(middle + 0.4, s)) + 1
            marks = scene.markings[row, lo:hi + 1]
            # Both lines in the image, neither hidden by a thing nor crossed by a stop line.
            if (lo < 0 or hi >= WIDTH or not np.isin(marks, DOUBLES).any()
                    or (scene.owner[row, lo:hi + 1] >= 0).any() or (marks == STOP).any()):
                continue
            cols = np.flatnonzero(np.isin(marks, DOUBLES))
            assert (np.diff(cols) > 1).sum() == 1, (row, cols)
            checked += 1
    assert checked > 0


def test_crossings_and_stop_lines_run_across_the_road(scenes):
    crossings = 0
    for scene, road in scenes:
        zebra_rows = np.flatnonzero((scene.markings == ZEBRA).any(1))
        stop_rows = np.flatnonzero((scene.markings == STOP).any(1))
        if not len(zebra_rows):
            assert not len(stop_rows)  # a stop line only comes with a crossing
            continue
        crossings += 1
        depth = road.z_at(road.s_of_row(zebra_rows))
        assert np.ptp(depth) < 3.5  # rows 3.5 m deep at most, across the road
        assert np.ptp(_pixels(scene, road, [ZEBRA])[1]) > 1.0  # stripes side by side
        if len(stop_rows):
            # 1-2 m before the crossing, 0.4 m deep: below it in the image, with a gap of
            # 1 to 2.4 m, plus the depth of the row before the crossing.
            assert stop_rows.min() > zebra_rows.max()
            gap = depth.min() - road.z_at(road.s_of_row(stop_rows.min()))
            row_depth = road.z_at(road.s_of_row(zebra_rows.max() + 1)) - depth.min()
            assert 1.0 < gap < 2.4 - row_depth
            assert np.ptp(road.z_at(road.s_of_row(stop_rows))) < 0.4
    assert crossings >= 3


def test_dashed_lines_have_gaps(monkeypatch):
    """On an empty road without a crossing (nothing paints over the lines), a dashed boundary
    seen over more than a dash period (<= 12 m: 40 % paint, 60 % gap) has paint and gaps."""
    checked = 0
    for seed in range(12):
        scene, road = _draw(monkeypatch, seed, empty=True)
        if (scene.markings == ZEBRA).any():
            continue
        rows = np.arange(int(road.hy) + 1, HEIGHT)
        s = road.s_of_row(rows)
        for i in range(1, road.lanes):
            x = road.x(LANE_M * i, s)
            # Rows at most ~1 m deep (a dash is >= 3.2 m), the boundary inside the image.
            seen = (s > 0.2) & (x > 1) & (x < WIDTH - 2)
            on = scene.markings[rows, np.clip(np.rint(x).astype(int), 0, WIDTH - 1)] == DASHED
            if on.any() and seen.any() and np.ptp(road.z_at(s[seen])) > 12:
                assert on[seen].any() and not on[seen].all()
                checked += 1
    assert checked > 0


def test_same_seed_same_markings(scenes, monkeypatch):
    for seed in (0, 8, 13):
        again, _ = _draw(monkeypatch, seed)
        np.testing.assert_array_equal(again.markings, scenes[seed][0].markings)
        np.testing.assert_array_equal(again.image, scenes[seed][0].image)


def test_markings_leave_the_label_maps_alone(scenes):
    """Where a marking lies on the road, the drivable class is its lane's (direct for the ego
    lane), away from the pixel-wide seams between lanes."""
    checked = total = 0
    for scene, road in scenes:
        ys, xs = np.nonzero((scene.markings > 0) & (scene.sem == SEM["road"]))
        u, _ = _ground_coords(road, ys, xs)
        seam = _on_seam(road, ys, xs, LANE_M * np.arange(road.lanes + 1))
        lane = np.floor(u[~seam] / LANE_M).astype(int)
        expected = np.where(lane == road.ego, ground.DIRECT, ground.ALTERNATIVE)
        np.testing.assert_array_equal(scene.drivable[ys[~seam], xs[~seam]], expected)
        checked, total = checked + len(lane), total + len(ys)
    assert checked > 0.5 * total  # most marking pixels lie off the seams


def test_new_markings_change_only_their_pixels(scenes, monkeypatch):
    """Double lines and stop lines draw from their own generator: without them the scene is the
    same but for their pixels and those of the dashed line a double line replaces."""
    monkeypatch.setattr(ground, "_middle_line", lambda own: DASHED)
    monkeypatch.setattr(ground, "_paint_stop_line", lambda *args: None)
    changed = 0
    for seed in (0, 5, 9, 13):
        plain, _ = _draw(monkeypatch, seed)
        scene = scenes[seed][0]
        for name in ("sem", "drivable", "owner"):
            np.testing.assert_array_equal(getattr(plain, name), getattr(scene, name))
        assert plain.labels == scene.labels and plain.attributes == scene.attributes
        assert not np.isin(plain.markings, NEW_KINDS).any()
        differs = (plain.image != scene.image).any(-1)
        allowed = np.isin(scene.markings, NEW_KINDS) | (plain.markings == DASHED)
        assert not (differs & ~allowed).any()
        changed += int(differs.sum())
    assert changed > 0
