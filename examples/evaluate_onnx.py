"""Evaluate a saved ONNX evaluation graph with onnxruntime, on the GPU when one really works.

Torch CUDA tensors go to onnxruntime by pointer (IOBinding) and the per-image results come back
as CUDA tensors through DLPack: no copy through host memory. Without a usable GPU the evaluator
says why and runs on the CPU, with no error logs.

    unetweights export --classes 4 --out graphs        # writes graphs/eval.onnx
    python examples/evaluate_onnx.py graphs/eval.onnx --images 64 --size 512 --batch-size 16
"""

import argparse
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from unetweights.runtime import OnnxEvaluator


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("graph", help="an .onnx evaluation graph with inputs logits, target (and weight)")
    parser.add_argument("--images", type=int, default=32, help="random images to score")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--providers", default="auto", choices=["auto", "cuda", "cpu"])
    args = parser.parse_args()

    evaluator = OnnxEvaluator(args.graph, providers=args.providers)
    print(evaluator)
    if evaluator.cuda_unavailable_reason:
        print(f"running on CPU: {evaluator.cuda_unavailable_reason}")
    device = "cuda" if evaluator.provider == "CUDAExecutionProvider" else "cpu"

    classes = evaluator.inputs[0].shape[1]
    logits = torch.randn(args.images, classes, args.size, args.size, device=device)
    target = torch.randint(0, classes, (args.images, args.size, args.size), device=device)
    tensors = [logits, target]
    if len(evaluator.inputs) == 3:
        tensors.append(torch.rand(args.images, args.size, args.size, device=device))
    loader = DataLoader(TensorDataset(*tensors), batch_size=args.batch_size)

    start = time.perf_counter()
    result = evaluator.evaluate(loader)
    seconds = time.perf_counter() - start
    print(result.format_summary())
    print(f"{result.num_images} images in {seconds:.2f} s on {result.provider} ({result.num_images / seconds:.1f} images/s)")


if __name__ == "__main__":
    main()
