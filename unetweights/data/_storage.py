"""Files of the data pipeline: atomic .npy writes, complete-file checks, leftovers of killed runs.

Folder checks and atomic writes themselves live in :mod:`unetweights._files`.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .._files import TMP_PREFIX as _TMP_PREFIX, written_in_place


PathLike = Union[str, "os.PathLike[str]"]

# A cache temp file this old cannot belong to a live writer (a write takes milliseconds).
_STALE_TMP_SECONDS = 3600.0


def _library_version() -> str:
    """The installed version, recorded in cache keys and manifests.

    Read from the installed metadata rather than ``unetweights.__version__``: importing the
    package's __init__ from here would be circular if __init__ ever imports this module eagerly.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("unetweights")
    except PackageNotFoundError:
        return "unknown"


def _write_npy_atomic(path: Path, array: np.ndarray) -> None:
    """Write ``array`` to ``path`` so that other processes see either no file or the whole file.

    The data goes to a uniquely named temporary file in the same folder (so the rename stays on one
    file system) and is renamed over ``path``: concurrent writers of the same entry each rename a
    complete file, and the last rename wins. There is no fsync: it cost 10 % of precompute's
    throughput with two workers (their fsyncs queue on the file system's journal), and what it
    guards against, a machine crash, can only leave an output short, which readers detect.
    """
    # Named with the prefix that a later run's clean-up recognises as left behind.
    with written_in_place(path, f"{_TMP_PREFIX}{path.stem}-{secrets.token_hex(8)}.npy") as tmp:
        with open(tmp, "wb") as f:
            np.save(f, array, allow_pickle=False)


def _is_complete_npy(path: Path, dtype, ranks: tuple) -> bool:
    """Whether ``path`` is a whole .npy map of ``dtype`` and one of ``ranks``: its size is what its
    header announces.

    Reads only the header, so a resumed run can check every existing output cheaply. After a machine
    crash, an output renamed into place before its data reached the disk is empty or short.
    """
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, _, found = np.lib.format.read_array_header_1_0(f)
            elif version == (2, 0):
                shape, _, found = np.lib.format.read_array_header_2_0(f)
            else:
                return False
            expected = f.tell() + int(np.prod(shape)) * found.itemsize
            return found == dtype and len(shape) in ranks and os.fstat(f.fileno()).st_size == expected
    except (OSError, ValueError, EOFError):
        return False


def _remove_temp_files(folder: Path, older_than: Optional[float] = None) -> None:
    now = time.time()
    for tmp in folder.glob(f"{_TMP_PREFIX}*"):
        try:
            if older_than is not None and now - tmp.stat().st_mtime < older_than:
                continue
            tmp.unlink()
        except FileNotFoundError:
            pass


def _as_path(path, name: str) -> Path:
    if isinstance(path, (str, os.PathLike)):
        return Path(path)
    raise TypeError(f"{name} must be a str or os.PathLike, got {type(path).__name__}")
