"""Files of the data pipeline: atomic .npy writes, complete-file checks, writable folders, leftovers
of killed runs.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Optional, Union

import numpy as np

from .._files import written_in_place


PathLike = Union[str, "os.PathLike[str]"]

# Temporary files start with a dot and this prefix, so they never look like an entry or an output,
# and a later run can recognise the leftovers of a killed one.
_TMP_PREFIX = ".unetweights-tmp-"

# A cache temp file this old cannot belong to a live writer (a write takes milliseconds).
_STALE_TMP_SECONDS = 3600.0


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


def _writable_folder(folder: Path, name: str) -> None:
    """Create ``folder`` if it is missing, and make sure files can be created in it.

    Raises ValueError naming the argument ``name`` and the path, instead of the FileExistsError or
    PermissionError that the first write deep inside would give. Writability is tried, not asked:
    ``os.access`` says yes to root whatever the mode bits, and knows nothing of some read-only mounts.
    """
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{name} {str(folder)!r} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ValueError(f"{name} {str(folder)!r} cannot be created: {exc.strerror or exc}") from None
    probe = folder / f"{_TMP_PREFIX}probe-{secrets.token_hex(8)}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as exc:
        raise ValueError(f"{name} {str(folder)!r} is not writable: {exc.strerror or exc}") from None
    os.unlink(probe)


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
