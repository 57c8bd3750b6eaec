#!/usr/bin/env bash
# The checks only a GPU machine can make: onnxruntime's CUDA provider active, torch CUDA tensors
# bound without a host copy, results equal to torch, and onnxruntime CUDA against torch CUDA on
# the whole evaluation graph at 16x4x512x512. Needs an NVIDIA GPU, torch with CUDA, and
# onnxruntime-gpu with CUDA 13 and cuDNN 9 (pip install 'onnxruntime-gpu[cuda,cudnn]').
#
#   bash benchmarks/run_gpu_checks.sh            # uses .venv/bin/python, else python3
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python3 )}
"$PY" -c "import torch, onnxruntime as ort; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), '| onnxruntime', ort.__version__, ort.get_available_providers())"
"$PY" -m pytest -q -rs -p no:cacheprovider tests/test_runtime_gpu.py
"$PY" benchmarks/bench_eval.py --skip-cpu --repeats 15
