# rol_hashing — every target installs what it needs into .venv first.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export TF_CPP_MIN_LOG_LEVEL ?= 2
export PYTHONHASHSEED ?= 0

.PHONY: install test test-fast test-extras lint demo ablation describe clean bench

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e . \
	  || $(PY) -m pip install --quiet --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

# Two workers (pytest-xdist), one test file each at a time: the suite's TensorFlow work
# leaves a core idle between steps, so two files run in parallel on two cores (times in
# docs/performance.md). TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2
test: install
	$(PY) -m pytest tests --durations=15 $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile)

test-fast: install
	$(PY) -m pytest tests -m "not slow"

# The optional backends' tests (faiss, Milvus Lite): skipped by `make test` unless
# these extras are installed; this installs them (benchmarks/requirements.txt) and runs them.
test-extras: install browser
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	$(PY) -m pytest tests/test_retrieval_milvus.py tests/test_retrieval_index.py \
	  tests/test_serve_browser.py -rs

# The browser test's system packages: Debian's chromium and chromium-driver (as root, with
# apt); Selenium comes with requirements.txt. Nothing is downloaded by the test itself.
.PHONY: browser
browser: install
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
	  echo "chromium and chromedriver are installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
	  echo "install Debian's chromium and chromium-driver (sudo apt-get install chromium chromium-driver)" >&2; \
	  exit 1; \
	fi

lint: install
	$(VENV)/bin/ruff check rol_hashing tests benchmarks
	$(VENV)/bin/ruff format --check rol_hashing tests benchmarks

describe: install
	$(VENV)/bin/rol-hashing describe --method rol --input-size 224

# make demo [SEEDS=3]: data, pre-training, segmentation, SSDH and ROL at 12/48 bits
# (cpu profile), MAP@1000 -> results/demo/ (results.md, results.json, figures).
SEEDS ?= 1
demo: install
	$(VENV)/bin/rol-hashing demo --seeds $(SEEDS)

# make ablation [SEEDS=3]: when does the ROL help? The pre-registered grid of
# docs/ablation.md on the demo's data (runs/demo, finished runs reused) -> results/ablation/.
# Each finished run and each seed's inputs are kept in docs/ablation/groups/ (across sessions).
ABLATION_SEEDS ?= 3
ablation: install
	$(VENV)/bin/rol-hashing ablate --seeds $(if $(filter command line,$(origin SEEDS)),$(SEEDS),$(ABLATION_SEEDS)) \
	  --keep docs/ablation/groups

# make ablation-scenes: the grid of docs/ablation_scenes.md on fashion_scenes (3 seeds; runs
# in runs/fashion). Each finished (seed, bits) group is kept in docs/ablation_scenes/groups/
# and reused, so the study goes on across sessions; results in docs/ablation_scenes/.
.PHONY: ablation-scenes
ablation-scenes: install fashion-data
	$(VENV)/bin/rol-hashing ablate --dataset fashion_scenes --grid sources --seeds 3 \
	  --keep docs/ablation_scenes/groups --out docs/ablation_scenes

# make fashion [SEEDS=k] [FASHION_EXTRA="--bits 12 48"]: real images. SSDH, ROL, LSH and
# ITQ on Fashion-MNIST, clean and in photo scenes (runs/fashion, finished stages reused)
# -> results/fashion/. Each finished run, and each seed's backbone and streams, is kept in
# docs/fashion/groups/ (committed), so the benchmark goes on across sessions; the scenes
# SSDH and ROL runs that make ablation-scenes kept are taken from its folder. Needs the
# data: make fashion-data.
FASHION_EXTRA ?=
.PHONY: fashion
fashion: install fashion-data
	$(VENV)/bin/rol-hashing fashion --seeds $(SEEDS) --keep docs/fashion/groups \
	  --ablation-keep docs/ablation_scenes/groups $(FASHION_EXTRA)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache

# ---- training -------------------------------------------------------------
PROFILE ?= paper
METHOD ?= rol
DATASET ?= generated
BITS ?= 48
DATA_ROOT ?=
EXTRA ?=
CLI := $(VENV)/bin/rol-hashing
DATA_ROOT_ARG := $(if $(DATA_ROOT),--data-root $(DATA_ROOT),)

.PHONY: pretrain train-voc-seg train-seg train-hash

# make pretrain DATASET=generated PROFILE=cpu [DATA_ROOT=...] [EXTRA="--pool DIR"]
#   -> weights/pretrained_<dataset>_<profile>.h5, for --backbone-weights
pretrain: install
	$(CLI) pretrain --config experiments/$(DATASET).yaml --profile $(PROFILE) $(DATA_ROOT_ARG) $(EXTRA)

# The segmentation stream on PASCAL-VOC2012 (readings §1.2).
train-voc-seg: install
	$(CLI) train-seg --config experiments/voc2012.yaml --profile $(PROFILE) $(EXTRA)

# The segmentation stream of any experiment (e.g. DATASET=generated).
train-seg: install
	$(CLI) train-seg --config experiments/$(DATASET).yaml --profile $(PROFILE) $(EXTRA)

# make train-hash DATASET=awa2 BITS=48 [METHOD=rol|ssdh] [PROFILE=paper|cpu] [DATA_ROOT=...]
train-hash: install
	$(CLI) train-hash --config experiments/$(DATASET).yaml --profile $(PROFILE) \
	  --method $(METHOD) --bits $(BITS) $(DATA_ROOT_ARG) $(EXTRA)

# ---- evaluation and retrieval ---------------------------------------------
RUN ?=
IMAGE ?=
TOP ?= 10

.PHONY: evaluate index search table2

# make evaluate RUN=runs/awa2-rol-48b  ->  <run>/metrics.json and metrics.md
evaluate: install
	$(CLI) evaluate $(RUN) $(EXTRA)

# make index RUN=runs/awa2-rol-48b  ->  <run>/index.npz
index: install
	$(CLI) index $(RUN) $(EXTRA)

# make search RUN=runs/awa2-rol-48b IMAGE=query.jpg [TOP=10]  ->  <run>/search_<stem>.png
search: install
	$(CLI) search $(RUN) --image $(IMAGE) --top-k $(TOP) $(EXTRA)

# make table2 DATASET=awa2 [PROFILE=paper|cpu] [DATA_ROOT=...]
#   trains missing runs, evaluates {ssdh, rol} x {12, 24, 32, 48} bits and writes
#   results/table2_<dataset>[_<profile>].{md,csv,png} beside the paper's numbers.
table2: install
	$(CLI) table2 --config experiments/$(DATASET).yaml --profile $(PROFILE) $(DATA_ROOT_ARG) $(EXTRA)

# ---- notebooks ------------------------------------------------------------
.PHONY: notebooks
# Executes both notebooks against the demo's runs (make demo first); executed copies
# go to results/notebooks/ (the committed notebooks stay without outputs).
notebooks: install
	$(CLI) notebooks --out results/notebooks

# ---- benchmarks -------------------------------------------------------------
# make bench [BENCH_SIZES="59000 1000000 10000000"]  ->  appends to benchmarks/results.md
BENCH_SIZES ?= 59000 1000000 10000000
BENCH_EXTRA ?=

# The "Your own images" route (README) on a second data family, digits on textured
# backgrounds: pretrain, segmentation, SSDH, ROL, MAP against chance -> appends to
# benchmarks/own_images_results.md (about 7 minutes on two cores).
# make recipe-study: the pre-registered cpu recipe study of docs/recipe.md, resumable per
# cell (results kept in benchmarks/recipe_cells/, runs in runs/recipe) ->
# benchmarks/recipe_results.{md,json}. Needs the data: make fashion-data.
# make generic-backbone: the generic backbone the "generic" lever starts from (all 60,000
# Fashion-MNIST training items, 5 epochs, about 90 min on two cores), shipped in weights/;
# made again only when its file or sidecar is missing or stale; WITHOUT="batch_norm" (or gap,
# augment) makes the leave-one-out's backbone of R5 (OF=R6: of R6) less that lever; an interrupted making
# resumes after its last finished epoch.
WITHOUT ?=
OF ?=
RECIPE_EXTRA ?=
.PHONY: recipe-study generic-backbone
recipe-study: install fashion-data
	$(PY) -m benchmarks.recipe_study --work runs/recipe $(RECIPE_EXTRA)

generic-backbone: install fashion-data
	$(PY) -m benchmarks.recipe_study --work runs/recipe --generic-only \
	  $(if $(WITHOUT),--without $(WITHOUT)) $(if $(OF),--of $(OF))

# make serve RUN=runs/demo/seed0/runs/generated-rol-48b [COMPARE=<the SSDH run>] [PORT=8000]:
# the run's gallery from a web page (http://127.0.0.1:PORT/) and an HTTP API.
COMPARE ?=
PORT ?= 8000
.PHONY: serve
serve: install
	@if [ -z "$(RUN)" ]; then echo "give RUN=<a trained run folder>, e.g. make serve RUN=runs/demo/seed0/runs/generated-rol-48b" >&2; exit 2; fi
	$(CLI) serve $(RUN) --port $(PORT) $(if $(COMPARE),--compare $(COMPARE)) $(EXTRA)

.PHONY: own-images-check
own-images-check: install
	$(PY) -m benchmarks.own_images_check --work runs/own_images

# make generated-check: a small CNN learns the generated shapes, a colour histogram does
# not -> appends to benchmarks/generated_check.md (about 2 minutes on two cores).
.PHONY: generated-check
generated-check: install
	$(PY) -m benchmarks.generated_check --work runs/generated_check

# Fashion-MNIST's four IDX files from the package manager only (Debian's
# dataset-fashion-mnist -> /usr/share/datasets/fashion-mnist); nothing else is downloaded.
FASHION_DIR := /usr/share/datasets/fashion-mnist
.PHONY: fashion-data
fashion-data:
	@if [ -f $(FASHION_DIR)/train-images-idx3-ubyte.gz ]; then \
	  echo "Fashion-MNIST is in $(FASHION_DIR)"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  apt-get update -qq || true; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist; \
	else \
	  echo "Fashion-MNIST not found: run 'sudo apt-get install dataset-fashion-mnist', or put its four IDX files in a folder and pass it as --data-root" >&2; \
	  exit 1; \
	fi

bench: install
	$(PY) -m pip install --quiet -r benchmarks/requirements.txt
	$(PY) -m benchmarks.run_all --sizes $(BENCH_SIZES) $(BENCH_EXTRA)
