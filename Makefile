# The two commands of the README: `make demo` and `make test`. Each bootstraps a local venv.
#
# torch and torchvision go in first, pinned together, so that no unpinned requirement can pull
# another build: `pip install torch==2.14.1 torchvision==0.29.1` takes the local wheels on our
# machines (a CUDA 13 build that runs on the CPU). A torch that is already importable in the venv is
# kept as it is: `make test VENV_FLAGS=--system-site-packages` lets the venv see (and keep) a torch
# installed outside it. The torchvision and nnunet extras and the test peers that need torchvision are then
# installed only where torchvision imports beside that torch (pip would otherwise replace the kept
# torch to match a new torchvision); without it, their tests skip. Set PYTHON to choose the
# interpreter, TORCH_PIN and TORCHVISION_PIN to choose the pair.

PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH_PIN ?= torch==2.14.1
TORCHVISION_PIN ?= torchvision==0.29.1
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: venv demo test bench clean

venv: $(STAMP)

# The compiled kernel is built by the editable install: a changed .pyx or setup.py rebuilds it.
$(STAMP): pyproject.toml setup.py unetweights/weightmaps/_two_nearest.pyx
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install --quiet "$(TORCH_PIN)" "$(TORCHVISION_PIN)"
	$(BIN)/python -m pip install --quiet -e ".[test,onnx,plot,dask,monai]"
	if $(BIN)/python -c "import torchvision" 2>/dev/null; then \
	  $(BIN)/python -m pip install --quiet -e ".[torchvision,nnunet,test-peers]"; \
	else echo "torchvision does not import beside this torch: the torchvision tests will skip"; fi
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/unetweights demo

# Two workers, one test file each at a time: a file's module fixtures (exported graphs, built
# programs) are made once and never torn down midway (--dist loadgroup interleaved files on a
# worker and rebuilt them); the compile runs are split over three files to share the workers.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet "edt>=3.0"   # benchmark only: seung-lab's EDT, the bar to beat
	$(BIN)/python benchmarks/bench_weightmaps.py
	$(BIN)/python benchmarks/bench_losses.py
	$(BIN)/python benchmarks/bench_eval.py
	$(BIN)/python benchmarks/bench_precompute.py
	$(BIN)/python benchmarks/bench_dask.py
	$(BIN)/python benchmarks/bench_torchvision.py
	$(BIN)/python benchmarks/bench_nnunet.py
	$(BIN)/python benchmarks/bench_surface.py
	$(BIN)/python benchmarks/bench_hot_path.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache .hypothesis build unetweights/weightmaps/_two_nearest.c unetweights/weightmaps/_two_nearest.*.so
