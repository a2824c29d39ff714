# `make demo` and `make test` work from a fresh clone with nothing installed:
# each creates .venv if missing and installs the project into it first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# This machine serves these two releases from local disk; pip honours the cap.
TORCH_SPEC ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

# Every extra that has tests: sam (segment-anything, sam2) runs on CPU with torch as
# pinned above. SAM2_BUILD_CUDA=0: sam2's optional CUDA kernel (mask hole filling, which
# it skips with a warning when absent) is not compiled at install time.
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH_SPEC)
	SAM2_BUILD_CUDA=0 $(BIN)/python -m pip install --quiet -e ".[dev,catalog,flow,sam,app]" $(TORCH_SPEC)
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/clusterlens demo --out outputs/demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# OMP_WAIT_POLICY=PASSIVE: on a shared 2-core machine spinning OpenMP threads distort timings
bench: $(STAMP)
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/texture.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/allocate.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/allocate.py --split train --stride 3
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/allocate_cost.py --stride 2
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/allocate_cost.py --split train --stride 6
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/window_bound.py --stride 3
	cd benchmarks && OMP_WAIT_POLICY=PASSIVE ../$(BIN)/python matcher.py --fresh
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/queries.py --stride 5
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/queries.py --split train --stride 12
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/regions.py --limit 100
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/vlm.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/segment.py --split val --num-samples 30
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/catalog.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/catalog_issues.py --weights src/clusterlens/models/detector/camvid_detector.pt --note "yolo:camvid (shipped)"
	cd benchmarks && OMP_WAIT_POLICY=PASSIVE ../$(BIN)/python catalog_duplicates.py --model yolo:camvid --note "yolo:camvid (shipped)"
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/flow.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/video.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/app.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
