"""Writing a file so that readers see either the old file or the whole new one, never a part, and
telling whether two paths name one file.

Shared by the data pipeline, the CLI and the exporters. Imports neither torch nor numpy.
"""

import contextlib
import os
import secrets
from typing import Iterator, Optional


@contextlib.contextmanager
def written_in_place(path, temporary: Optional[str] = None, argument: Optional[str] = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``temporary`` names the temporary file (in ``path``'s folder); by default a hidden name that
    keeps ``path``'s suffix last, since onnx and the exporters read the format from it. The file
    is created empty before the block runs, with the permissions the user's umask gives any
    other file (``mkstemp`` would make it 0600). Creating it is also the check that the folder can
    be written: ``os.access`` says yes to root on a read-only mount, and an ACL or a quota can say
    no where the mode bits say yes. With ``argument``, that failure is a ValueError naming it;
    without, the OSError itself. On any error the temporary file is removed and ``path`` is left
    as it was. There is no fsync: what it guards against, a machine crash, can only leave a
    renamed file short, which the readers of each format detect.
    """
    folder, name = os.path.split(os.path.abspath(os.fspath(path)))
    if temporary is None:
        stem, suffix = os.path.splitext(name)
        temporary = f".{stem}.{secrets.token_hex(6)}.tmp{suffix}"
    tmp = os.path.join(folder, temporary)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    except OSError as error:
        if argument is None:
            raise
        raise ValueError(
            f"{argument}: cannot write {os.fspath(path)}: the folder {folder} refuses a new file ({error.strerror})"
        ) from error
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def same_file(a, b) -> bool:
    """Whether two paths name one file: the same path once symlinks are resolved (whether or not
    it exists yet), or, for existing files, one inode (a hard link)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist
        return False
