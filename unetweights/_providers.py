"""How :class:`~unetweights.runtime.OnnxEvaluator` opens its onnxruntime session: the provider choice.

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` even on a machine with no GPU or no CUDA
libraries; a session asked for it then falls back to CPU and logs errors. :func:`open_session`
decides quietly instead: "auto" tries CUDA only where an NVIDIA device is present, with
onnxruntime's logging turned down for that one attempt, and says why it fell back to CPU.

Part of the runtime room: imports torch (to ask whether it sees CUDA) and nothing of the package.
"""

import contextlib
import io
import os
from typing import Any, Optional, Sequence, Tuple, Union

import torch

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
_ORT_DEFAULT_SEVERITY = 2  # onnxruntime's own default: warnings and above


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError as error:  # pragma: no cover - depends on the environment
        raise ImportError("OnnxEvaluator needs onnxruntime: pip install 'unetweights[onnx]'") from error
    return onnxruntime


def _nvidia_device_present() -> bool:
    """Whether this machine shows an NVIDIA GPU, without loading any CUDA library of onnxruntime."""
    if torch.cuda.is_available():
        return True
    if os.path.isdir("/proc/driver/nvidia/gpus"):
        return len(os.listdir("/proc/driver/nvidia/gpus")) > 0
    # No driver directory: on Linux that means no NVIDIA driver; elsewhere only a probe can tell.
    return not os.path.isdir("/proc")


@contextlib.contextmanager
def _quiet(ort):
    """Turn onnxruntime's default logger down to fatal and swallow Python-level prints."""
    ort.set_default_logger_severity(4)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            yield
    finally:
        ort.set_default_logger_severity(_ORT_DEFAULT_SEVERITY)


def _session_with(ort, path: str, options: Any, providers: Sequence[Any]):
    try:
        return ort.InferenceSession(path, options, providers=list(providers))
    except Exception as error:  # onnxruntime raises its own exception types
        raise ValueError(f"path: onnxruntime cannot load {path}: {error}") from error


def _try_cuda(ort, path: str, options: Any, device_id: int) -> Tuple[Optional[Any], str]:
    """A session on CUDA, or None and the reason it cannot be one; never logs."""
    if CUDA not in ort.get_available_providers():
        return None, "this onnxruntime build has no CUDA provider (install onnxruntime-gpu)"
    if not _nvidia_device_present():
        return None, "no NVIDIA GPU or driver is visible on this machine"
    cuda = (CUDA, {"device_id": device_id})
    with _quiet(ort):
        if hasattr(ort, "preload_dlls"):
            try:
                ort.preload_dlls()
            except Exception:  # preload is a best effort; the session below decides
                pass
        session = _session_with(ort, path, options, [cuda, CPU])
    if session.get_providers()[0] != CUDA:
        return None, (
            "onnxruntime could not start its CUDA provider (it needs CUDA 13 and cuDNN 9, "
            "for example from pip install 'onnxruntime-gpu[cuda,cudnn]')"
        )
    return session, ""


def open_session(
    ort, path: str, options: Any, providers: Union[str, Sequence[Any]], device_id: int
) -> Tuple[Any, Optional[str]]:
    """The session for ``providers`` ("auto", "cuda", "cpu" or a list for onnxruntime as it is),
    and why "auto" fell back to CPU (None when it did not, or was not asked to choose)."""
    if isinstance(providers, str):
        if providers == "cpu":
            return _session_with(ort, path, options, [CPU]), None
        if providers not in ("auto", "cuda"):
            raise ValueError(f"providers: expected 'auto', 'cuda', 'cpu' or a list of providers, got {providers!r}")
        session, reason = _try_cuda(ort, path, options, device_id)
        if session is not None:
            return session, None
        if providers == "cuda":
            raise RuntimeError(f"providers: 'cuda' was asked for, but {reason}")
        return _session_with(ort, path, options, [CPU]), reason
    return _session_with(ort, path, options, list(providers)), None
