"""Write safety, in one place: no output replaces or deletes an input, outputs go only where files
can be created, and a file is written so that readers see either the old file or the whole new one.

Every writer (the CLI, the exporters, the data pipeline's cache and precompute, the chunked maps,
the demo) checks its outputs here before any work, so each refusal has one wording:

- an output that is an input, lies inside one or contains one (:func:`refuse_overlap`):
  ``{argument}: {output} {is|lies inside|contains} the {name} input {input}, which {writer} would
  {verb}; it never writes over or deletes an input, so choose another {argument}``;
- an argument naming a folder to write into (:func:`check_writable_folder`):
  ``{argument} '{folder}' is a file, not a folder`` / ``... cannot be created: {reason}`` /
  ``... is not writable: it refuses a new file ({reason})``;
- an argument naming a file to write (:func:`check_output_file`):
  ``{argument}: {path} is a folder; expected the path of the file to write`` /
  ``{argument}: the folder of {path} does not exist ({folder})`` (or ``is a file``, or ``cannot be
  created``) / ``{argument}: cannot write {path}: the folder {folder} refuses a new file (it is not
  writable: {reason})``.

What an existing output that is not an input becomes (replaced, resumed, refused) is each
writer's own rule. Imports neither torch nor numpy.
"""

import contextlib
import os
import posixpath
import secrets
from pathlib import Path, PurePath, PurePosixPath
from typing import Callable, Iterable, Iterator, Optional, Tuple
from urllib.parse import urlsplit

# Temporary files start with a dot and this prefix, so they never look like an entry or an output,
# and a later run can recognise the leftovers of a killed one.
TMP_PREFIX = ".unetweights-tmp-"


def _reason(error: OSError) -> str:
    return str(error.strerror or error)


# -- outputs that are inputs --------------------------------------------------------------------


def location(address) -> Tuple[str, PurePath]:
    """(where, path) of a file, folder or store address, for comparing two of them: a local path
    resolved (symlinks followed, whether or not it exists yet), a ``file://`` URL as that path, any
    other URL as its scheme and host with its path."""
    text = os.fspath(address)
    parts = urlsplit(text)
    if "://" not in text or parts.scheme == "file":
        local = parts.path if parts.scheme == "file" else text
        return "", PurePath(os.path.realpath(local))
    # One leading slash: POSIX keeps two ("//data"), a root apart from "/" (a bucket's own address).
    return f"{parts.scheme}://{parts.netloc}", PurePosixPath(posixpath.normpath("/" + parts.path.lstrip("/")))


def _inode(where: str, path: PurePath) -> Optional[Tuple[int, int]]:
    if where:
        return None
    try:
        found = os.stat(path)
    except OSError:  # not there (yet)
        return None
    return found.st_dev, found.st_ino


def refuse_overlap(
    inputs: Iterable[Tuple[str, object]], outputs: Iterable, argument: str, writer: str, verb: str = "write over"
) -> None:
    """ValueError, before any work, when an output is an input, lies inside one or contains one.

    ``inputs`` are (argument name, path) pairs, a path of None for an input not given; ``outputs``
    the paths (files, folders such as zarr stores, or store URLs) given by ``argument`` that
    ``writer`` would ``verb`` (the message says what would happen to the input). "Is" covers the
    same path spelled differently, a symlink and a hard link (one inode); "lies inside" and
    "contains" compare resolved paths, for folders. The first output found is named with its
    input, both as given.
    """
    outputs = list(outputs)
    if not outputs:
        return
    exact, inodes, around = {}, {}, {}
    for name, path in inputs:
        if path is None:
            continue
        where, resolved = location(path)
        exact.setdefault((where, resolved), (name, path))
        inode = _inode(where, resolved)
        if inode is not None:
            inodes.setdefault(inode, (name, path))
        for parent in resolved.parents:
            around.setdefault((where, parent), (name, path))
    for output in outputs:
        where, resolved = location(output)
        found = exact.get((where, resolved))
        if found is None and inodes:
            found = inodes.get(_inode(where, resolved))
        relation = "is"
        if found is None:
            relation = "lies inside"
            found = next(filter(None, (exact.get((where, parent)) for parent in resolved.parents)), None)
        if found is None:
            relation, found = "contains", around.get((where, resolved))
        if found is not None:
            name, path = found
            raise ValueError(
                f"{argument}: {os.fspath(output)} {relation} the {name} input {os.fspath(path)}, which {writer} would "
                f"{verb}; it never writes over or deletes an input, so choose another {argument}"
            )


def same_file(a, b) -> bool:
    """Whether two paths name one file, as :func:`refuse_overlap`'s "is": the same :func:`location`
    (symlinks resolved, whether or not it exists yet), or, for existing files, one inode (a hard link)."""
    first, second = location(a), location(b)
    if first == second:
        return True
    inode = _inode(*first)
    return inode is not None and inode == _inode(*second)


# -- folders to write into ----------------------------------------------------------------------


def _try_new_file(folder) -> None:
    """Create and remove a file in ``folder``; the OSError if it cannot be created.

    Tried, not asked: ``os.access`` says yes to root on a read-only mount, and an ACL or a quota
    can say no where the mode bits say yes.
    """
    probe = os.path.join(folder, f"{TMP_PREFIX}probe-{secrets.token_hex(8)}")
    os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(probe)


def _prepare_folder(folder, create: bool, cannot_create: Callable[[str], str], refuses: Callable[[str], str]) -> None:
    """Create ``folder`` (with its parents) when asked, then try a new file in it; a ValueError
    worded by ``cannot_create`` or ``refuses``, given the reason, where either fails."""
    try:
        if create:
            os.makedirs(folder, exist_ok=True)
    except OSError as error:
        raise ValueError(cannot_create(_reason(error))) from None
    try:
        _try_new_file(folder)
    except OSError as error:
        raise ValueError(refuses(_reason(error))) from None


def refuse_file_as_folder(folder: Path, argument: str) -> None:
    """ValueError when ``folder``, given by ``argument`` as a folder to write into, is a file."""
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{argument} {str(folder)!r} is a file, not a folder")


def check_writable_folder(folder: Path, argument: str) -> None:
    """Create ``folder`` if it is missing, and make sure files can be created in it.

    Raises ValueError naming ``argument`` and the folder, instead of the FileExistsError or
    PermissionError that the first write deep inside would give.
    """
    refuse_file_as_folder(folder, argument)
    _prepare_folder(
        folder, True, lambda reason: f"{argument} {str(folder)!r} cannot be created: {reason}",
        lambda reason: f"{argument} {str(folder)!r} is not writable: it refuses a new file ({reason})",
    )


# -- files to write -----------------------------------------------------------------------------


def _unwritable(argument: str, path: str, folder: str, reason: str) -> str:
    return f"{argument}: cannot write {path}: the folder {folder} refuses a new file (it is not writable: {reason})"


def check_output_file(
    path, argument: str, writer: str, inputs: Iterable[Tuple[str, object]] = (), create_folder: bool = False
) -> str:
    """Check, before any work, that ``path`` names a file that can be written; return it as a str.

    Refused with ValueError (TypeError for a path that is no str or os.PathLike): a folder, one of
    ``inputs`` (see :func:`refuse_overlap`), a file whose folder is a file or is missing (created
    here with ``create_folder``), or one whose folder refuses a new file. A file already at ``path``
    that is no input is not refused: the writer replaces it.
    """
    if isinstance(path, (bytes, bytearray)) or not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{argument}: expected a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(os.fspath(path))
    if not path:
        raise ValueError(f"{argument}: expected a file path, got an empty string")
    if os.path.isdir(path):
        raise ValueError(f"{argument}: {path} is a folder; expected the path of the file to write")
    refuse_overlap(inputs, [path], argument, writer)
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"{argument}: the folder of {path} is a file ({folder})")
    if not create_folder and not os.path.isdir(folder):
        raise ValueError(f"{argument}: the folder of {path} does not exist ({folder})")
    _prepare_folder(
        folder, create_folder, lambda reason: f"{argument}: the folder of {path} cannot be created ({folder}: {reason})",
        lambda reason: _unwritable(argument, path, folder, reason),
    )
    return path


@contextlib.contextmanager
def written_in_place(path, temporary: Optional[str] = None, argument: Optional[str] = None) -> Iterator[str]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``temporary`` names the temporary file (in ``path``'s folder); by default a hidden name that
    keeps ``path``'s suffix last, since onnx, matplotlib and the exporters read the format from it.
    The file is created empty before the block runs, with the permissions the user's umask gives
    any other file (``mkstemp`` would make it 0600). Creating it is also the check that the folder
    can be written (see :func:`_try_new_file`). With ``argument``, that failure is
    :func:`check_output_file`'s ValueError naming it; without, the OSError itself. On any error the
    temporary file is removed and ``path`` is left as it was. There is no fsync: what it guards
    against, a machine crash, can only leave a renamed file short, which the readers of each format
    detect.
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
        raise ValueError(_unwritable(argument, os.fspath(path), folder, _reason(error))) from error
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def write_text_in_place(path, text: str, temporary: Optional[str] = None) -> None:
    """Write ``text`` to ``path`` through :func:`written_in_place`, newlines as given."""
    with written_in_place(path, temporary) as tmp:
        with open(tmp, "w", newline="") as handle:
            handle.write(text)
