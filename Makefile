# fruits_p8 — every target installs what it needs into .venv first.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.DEFAULT_GOAL := help
.PHONY: help setup run test test-dev test-spark35 s3a-jars lint bench emr-plan emr-run clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z0-9_-]+:.*## / {printf "  make %-12s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml constraints/base.txt constraints/spark4.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24,<27"
	$(BIN)/python -m pip install --quiet -c constraints/base.txt -c constraints/spark4.txt -e '.[test]'
	@$(BIN)/python -m pip install --quiet 'torch==2.13.0+cpu' 2>/dev/null \
	  && echo "torch CPU wheel found: the Keras-vs-PyTorch parity test will run" \
	  || echo "no local torch CPU wheel: the Keras-vs-PyTorch parity test will be skipped"
	@touch $@

setup: $(STAMP) ## create .venv with the pinned versions (PySpark 4.x)

run: $(STAMP) ## the pipeline on the embedded real photos (360, 18 labels) -> output/features (+ report/)
	$(BIN)/fruits-p8 run --overwrite --report $(ARGS)

test: $(STAMP) s3a-jars ## all tests: PySpark 4.x in .venv, then PySpark 3.5 (EMR 7 parity) through tox
	$(BIN)/python -m pytest $(ARGS)
	$(BIN)/python -m tox -e spark35 -- $(ARGS)

test-dev: $(STAMP) s3a-jars ## the tests in .venv only (PySpark 4.x): the quick loop while developing
	$(BIN)/python -m pytest $(ARGS)

test-spark35: $(STAMP) s3a-jars ## the tests on PySpark 3.5 (EMR 7.x parity) through tox
	$(BIN)/python -m tox -e spark35 -- $(ARGS)

s3a-jars: $(STAMP) ## Hadoop's S3A jars from PyPI into build/s3a-jars, for the s3a:// PipelineModel.load test
	@$(BIN)/python scripts/s3a_jars.py \
	  || echo "no S3A jars: the plain-PySpark s3a:// model load test will be skipped"

lint: $(STAMP) ## ruff over the package, tests, scripts and notebooks
	$(BIN)/ruff check fruits_p8 tests scripts notebooks

bench: $(STAMP) ## speed table (images/s) of the pipeline vs the bare CNN; ARGS="--images 2000" or "--input DIR"
	$(BIN)/python scripts/bench.py $(ARGS)

emr-plan: $(STAMP) ## print the EMR requests and cost, no AWS call; ARGS="--bucket B --input s3://.. --output s3://.."
	$(BIN)/fruits-p8 emr plan $(ARGS)

emr-run: $(STAMP) ## run on a new EMR cluster (see README); ARGS="--bucket B --input s3://.. --output s3://.."
	$(BIN)/fruits-p8 emr run $(ARGS)

clean: ## remove the venvs, caches and outputs (not data/)
	rm -rf $(VENV) .tox .pytest_cache .hypothesis output build/s3a-jars
