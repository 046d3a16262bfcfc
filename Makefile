# Two entry points (README): `make demo` and `make test`. Both set up the environment first.
VENV ?= .venv
PY := $(VENV)/bin/python
SAMPLE_ROOT ?= datasets/sample
DEMO_OUT ?= demo_output
# What `make demo` trains (tools/demo.py's default) and `make toolkit-parity` evaluates.
DEMO_CONFIG ?= configs/sample/lv_adapter_R18.yaml
PYTEST_ARGS ?=
# Test processes (pytest-xdist; one per core of the CI machine). A module stays in one process.
TEST_WORKERS ?= 2
# --no-loadscope-reorder: modules in collection order (tests/conftest.py puts the long ones
# first); xdist's default orders them by test count, which ran the one-test pipeline module last.
PYTEST := $(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

.PHONY: setup setup-d2main demo pipeline test test-d2main test-seeds test-reversed test-fast lint benchmark-data benchmark-speed benchmark-learning toolkit-env toolkit-parity clean

setup:
	bash tools/setup_env.sh $(VENV)

demo: setup
	DETECTRON2_DATASETS=$(SAMPLE_ROOT) $(PY) tools/demo.py --root $(SAMPLE_ROOT) --out $(DEMO_OUT) \
		--config-file $(DEMO_CONFIG)

# The paper's recipe on the sample scenes (tools/pipeline.py): teachers -> pseudo labels ->
# students -> table. Rerun to continue an interrupted pipeline (finished stages are skipped).
PIPELINE_OUT ?= output/pipeline
SAMPLE_MANIFEST := $(SAMPLE_ROOT)/bdd100k/sample_manifest.json

pipeline: setup
	test -f $(SAMPLE_MANIFEST) || $(PY) tools/make_sample_bdd100k.py --out $(SAMPLE_ROOT) \
		--num-images 1200 --width 256 --height 144
	DETECTRON2_DATASETS=$(SAMPLE_ROOT) $(PY) tools/pipeline.py --root $(SAMPLE_ROOT) \
		--out $(PIPELINE_OUT)

test: setup
	$(PYTEST) $(PYTEST_ARGS)

# detectron2's main branch (what GPU users install from git), built without C++ ops from the
# vendored tarball beside the clone into the folder D2MAIN_DIR alone (a few MB, where a second
# venv would take ~6 GB); the same suite runs with that folder first on PYTHONPATH, but for the
# tests marked `measurement` (setup.cfg): learning, speed and the whole pipeline, measured once,
# with detectron2 calls that the faster tests make on both versions; and `same_calls`: another
# model or tool through calls that other tests make on both versions.
D2MAIN_DIR ?= .d2main
D2MAIN_SOURCE ?= ../shared/vendor/detectron2-main-02b5c4e.tar.gz

setup-d2main:
	D2_SOURCE=$(D2MAIN_SOURCE) D2_TARGET=$(D2MAIN_DIR) bash tools/setup_env.sh $(VENV)

D2MAIN_PATH = PYTHONPATH=$(abspath $(D2MAIN_DIR))$${PYTHONPATH:+:$$PYTHONPATH}

test-d2main: setup-d2main
	$(D2MAIN_PATH) $(PYTEST) -m "not measurement and not same_calls" $(PYTEST_ARGS)

# Determinism probes (tests/conftest.py): the suite under other seeds, and in reversed order, on
# both detectron2 versions. Each run is a whole suite (~8 min on 2 cores).
SEEDS ?= 1 2 3 4 5
test-seeds: setup setup-d2main
	for seed in $(SEEDS); do \
		$(PYTEST) -q --seed $$seed $(PYTEST_ARGS) || exit 1; \
		$(D2MAIN_PATH) $(PYTEST) -q --seed $$seed $(PYTEST_ARGS) || exit 1; \
	done

test-reversed: setup setup-d2main
	$(PYTEST) -q --reverse $(PYTEST_ARGS)
	$(D2MAIN_PATH) $(PYTEST) -q --reverse $(PYTEST_ARGS)

test-fast: setup
	$(PYTEST) -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(PY) -m flake8 lv_adapter tools tests train_net.py projects

benchmark-data: setup
	$(PY) tools/benchmark_data.py --num-images 60 --rounds 7

benchmark-speed: setup
	$(PY) tools/benchmark_speed.py --rounds 3
	$(PY) tools/benchmark_speed.py --train --steps 3

benchmark-learning: setup
	$(PY) tools/benchmark_learning.py --cpu-minutes 60 --evals 6

# The official BDD100K toolkit pins old libraries: it gets its own environment.
TOOLKIT_PY := .venv-toolkit/bin/python
$(TOOLKIT_PY):
	python3 -m venv .venv-toolkit
	.venv-toolkit/bin/pip install -q "scalabel==0.3.0" "bdd100k==1.0.1" "pydantic<2" "numpy<2" pytest

toolkit-env: $(TOOLKIT_PY)

# Our evaluators against the official toolkit on the demo's model and held-out scenes, and the
# lane F-score (projects/LaneMarking) on random lane masks at 1280x720. A lane model's whole
# evaluator path: tools/check_toolkit_parity.py --project projects/LaneMarking (its README).
toolkit-parity: setup toolkit-env
	DETECTRON2_DATASETS=$(SAMPLE_ROOT) $(PY) tools/check_toolkit_parity.py \
		--config-file $(DEMO_CONFIG) --weights $(DEMO_OUT)/model/model_final.pth
	$(PY) projects/LaneMarking/tools/check_lane_parity.py --images 20 --height 720 --width 1280

clean:
	rm -rf $(DEMO_OUT) build *.egg-info
