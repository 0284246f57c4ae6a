# Every user-facing entry point. `make pipeline-run` and `make test` set themselves up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TORCH_VERSION := 2.13.0

export DO_NOT_TRACK := true
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export PYTHONUNBUFFERED := 1
export MLFLOW_TRACKING_URI ?= sqlite:///$(CURDIR)/mlflow/mlflow.db
export LANDMARKFLOW_ARTIFACTS ?= $(CURDIR)/mlflow/artifacts

.PHONY: setup test test-fast lint pipeline-run pipeline-run-isolated isolated-stop pipeline-compile image image-push pipeline-submit pipeline-schedule mlflow-ui bench data clean data-remote data-push data-pull data-status test-integration

setup: $(STAMP)

# torch goes in first, from the local CPU wheel, so no resolver ever pulls a CUDA build.
# pip byte-compiles each package on one core (~1 min for these 1.8 GB); compileall does it on all cores.
# The bytecode is written here, once, because PYTHONDONTWRITEBYTECODE (set on some machines) would otherwise
# leave every process compiling torch, MLflow, ... from source (15 s instead of 8 s for a step's imports).
# torch's internal test helpers include Python 3.12-only files; nothing imports them. Bytecode only saves time,
# so a file that does not compile is reported, not fatal (pip, too, skips such files).
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-compile torch==$(TORCH_VERSION)
	$(BIN)/python -m pip install --quiet --no-compile -e '.[dev]'
	$(BIN)/python -m compileall -q -j 0 -x 'torch/testing/_internal' $(VENV)/lib > /dev/null \
		|| echo 'some installed files did not byte-compile; they compile on import, if ever imported'
	@touch $(STAMP)

# Two workers, each test file on one of them: many tests wait on servers, retry windows and subprocesses, so two
# processes fill the two cores that one leaves half idle; a file's fixtures (servers, trained models) stay shared.
test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow and not integration"

lint: $(STAMP)
	$(BIN)/ruff check src tests components pipelines bench tools
	$(BIN)/ruff format --check src tests components pipelines bench tools

# The whole pipeline on the embedded default (synthetic faces, small configs), through kfp.local. Models already
# trained on this data are skipped; FORCE=1 retrains them.
pipeline-run: $(STAMP)
	$(BIN)/python pipelines/run_local.py $(if $(FORCE),--force) $(if $(REAL_FACES),--real-faces '$(REAL_FACES)')

# The same pipeline sharing nothing but artifacts, the environment and servers, as on a cluster: every step in a
# fresh folder, data through a DVC remote on S3 (SeaweedFS), a real MLflow server; EPOCHS=1 makes it short.
pipeline-run-isolated: $(STAMP)
	$(BIN)/python pipelines/run_isolated.py $(if $(EPOCHS),--epochs $(EPOCHS)) $(if $(FORCE),--force)

# Stop the servers pipeline-run-isolated left running (their data stays in .isolated/).
isolated-stop: $(STAMP)
	$(BIN)/python pipelines/run_isolated.py --stop

# The image every step runs in on a cluster (components/Dockerfile), tagged with the commit it is built from and
# baking it in for lineage; `-dirty` when tracked files have changes, as registry.git_commit() marks them.
# make image [ENGINE=podman]; make image-push REGISTRY=registry.example.com/team (a clean tree only).
IMAGE_NAME := landmarkflow-python
GIT_COMMIT = $(shell git rev-parse HEAD 2>/dev/null || echo unknown)$(shell git diff --quiet HEAD -- 2>/dev/null; test $$? -eq 1 && echo -dirty)
IMAGE = $(if $(REGISTRY),$(REGISTRY)/)$(IMAGE_NAME):$(GIT_COMMIT)
ENGINE ?= $(firstword $(shell command -v docker podman 2>/dev/null))

image:
	@test -n "$(ENGINE)" || { echo "make image needs docker or podman; neither is installed (or set ENGINE=...)" >&2; exit 2; }
	$(ENGINE) build -f components/Dockerfile --build-arg GIT_COMMIT=$(GIT_COMMIT) -t $(IMAGE_NAME):$(GIT_COMMIT) .

image-push:
	@test -n "$(REGISTRY)" || { echo "usage: make image-push REGISTRY=registry.example.com/team" >&2; exit 2; }
	@case "$(GIT_COMMIT)" in *-dirty|unknown) echo "commit first: a pushed image must be the commit it is tagged with ($(GIT_COMMIT))" >&2; exit 2;; esac
	$(MAKE) --no-print-directory image
	$(ENGINE) tag $(IMAGE_NAME):$(GIT_COMMIT) $(IMAGE)
	$(ENGINE) push $(IMAGE)

# The pipeline's IR YAML for a Kubeflow cluster: every step runs in $(IMAGE) (pass the REGISTRY you pushed to) and
# takes its environment from the Kubernetes Secret SECRET (default: landmarkflow).
pipeline-compile: $(STAMP)
	LANDMARKFLOW_IMAGE=$(IMAGE) $(BIN)/python pipelines/compile.py --output build/landmarkflow_pipeline.yaml \
		$(if $(SECRET),--secret "$(SECRET)")

# The MLflow UI over the local store (runs, metrics, plots, registry with aliases).
mlflow-ui: $(STAMP)
	$(BIN)/mlflow ui --backend-store-uri "$(MLFLOW_TRACKING_URI)" --host 127.0.0.1 --port 5000

# Render the synthetic default dataset (the pipeline also does this when data/ is empty).
data: $(STAMP)
	$(BIN)/landmarkflow data synth --out data/raw/synthetic

# Benchmarks print JSON lines to stdout; nothing here asserts a time.
bench: $(STAMP)
	$(BIN)/python bench/bench_synthetic.py
	$(BIN)/python bench/bench_data.py
	$(BIN)/python bench/bench_train.py
	$(BIN)/python bench/bench_ddp.py
	$(BIN)/python bench/bench_models.py
	$(BIN)/python bench/bench_predict.py
	$(BIN)/python bench/bench_materialise.py

clean:
	rm -rf local_outputs runs build .pytest_cache .ruff_cache

# On a Kubeflow cluster: KFP_HOST=http://... make pipeline-submit / pipeline-schedule CRON="0 0 3 * * 0"
pipeline-submit: pipeline-compile
	$(BIN)/python pipelines/cluster.py submit --host "$(KFP_HOST)" --params '$(or $(PARAMS),{})'

pipeline-schedule: pipeline-compile
	$(BIN)/python pipelines/cluster.py schedule --host "$(KFP_HOST)" --params '$(or $(PARAMS),{})' --cron "$(or $(CRON),0 0 3 * * 0)"

# Data: version data/ with DVC (local remote dvc-remote/ unless `make data-remote` made S3 the default).
# make data-remote S3_URL=s3://bucket/landmarks [S3_ENDPOINT=http://127.0.0.1:8333]; credentials from the environment.
data-remote: $(STAMP)
	@test -n "$(S3_URL)" || { echo "usage: make data-remote S3_URL=s3://bucket/prefix [S3_ENDPOINT=http://host:port]"; exit 2; }
	$(BIN)/landmarkflow data remote --url "$(S3_URL)" $(if $(S3_ENDPOINT),--endpoint "$(S3_ENDPOINT)")

data-push: $(STAMP)
	$(BIN)/landmarkflow data push

data-pull: $(STAMP)
	$(BIN)/landmarkflow data pull

data-status: $(STAMP)
	$(BIN)/landmarkflow data status

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q -m integration
