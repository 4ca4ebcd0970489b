# Each target sets itself up: a virtual environment in .venv with tinysiam installed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow gradcheck bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[data,plot,test,search]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/tinysiam demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

gradcheck: $(STAMP)
	$(BIN)/tinysiam gradcheck

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis runs

# the benchmarks need the peers: PyTorch and DeZero (see benchmarks/README.md)
bench: $(STAMP)
	$(BIN)/python -m pip install -q -e '.[bench]'
	$(BIN)/python benchmarks/run.py --json benchmarks/results/cpu.json --markdown benchmarks/results/cpu.md
