# The two commands of the README: `make demo` and `make test`. Each bootstraps a local venv.
#
# torch goes in first, pinned, so that no unpinned requirement can pull the multi-GB CUDA build:
# `pip install torch==2.13.0` takes the local CPU wheel on our machines. A torch that is already
# importable in the venv is kept as it is: `make test VENV_FLAGS=--system-site-packages` lets the
# venv see (and keep) a torch installed outside it. Set PYTHON to choose the interpreter.

PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH_PIN ?= torch==2.13.0
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

# The compiled kernel is built by the editable install: a changed .pyx or setup.py rebuilds it.
$(STAMP): pyproject.toml setup.py unetweights/weightmaps/_two_nearest.pyx
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test,onnx,plot,dask,monai]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/unetweights demo

# Two workers. Each test file is one group (tests/conftest.py), so a file's module fixtures
# (exported graphs, built programs) are made once; the compile tests are spread test by test.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet "edt>=3.0"   # benchmark only: seung-lab's EDT, the bar to beat
	$(BIN)/python benchmarks/bench_weightmaps.py
	$(BIN)/python benchmarks/bench_losses.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_precompute.py
	$(BIN)/python benchmarks/bench_dask.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis build unetweights/weightmaps/_two_nearest.c unetweights/weightmaps/_two_nearest.*.so
