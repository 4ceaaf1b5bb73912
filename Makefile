# `make run`: install everything, compile BERT-base for tpu-ring8 and print the per-chip table.
# `make test`: install everything and run the test suite.
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: install run test lint bench examples
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml scripts/setup.sh
	VENV=$(VENV) ./scripts/setup.sh
	touch $@

run: install
	$(VENV)/bin/chiplex compile examples/models/bert_base.mlir --target tpu-ring8 -o out/bert_base --force --simulate

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check src tests scripts benchmarks

examples: install
	$(PY) scripts/gen_zoo_examples.py

bench: install
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done
