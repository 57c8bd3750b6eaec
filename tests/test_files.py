"""The one home of write safety (unetweights._files): each check against explicit expectations."""

import os
import sys
from pathlib import Path, PurePath, PurePosixPath

import pytest

from unetweights._files import (
    check_output_file,
    check_writable_folder,
    location,
    refuse_file_as_folder,
    refuse_overlap,
    same_file,
    write_text_in_place,
    written_in_place,
)

RULE = "it never writes over or deletes an input, so choose another out"


def overlap(output, relation, name, given, verb="write over"):
    """The one wording of the overlap refusal, for argument ``out`` and writer ``w``."""
    return f"out: {output} {relation} the {name} input {given}, which w would {verb}; {RULE}"


def refused(inputs, output, verb="write over"):
    with pytest.raises(ValueError) as info:
        refuse_overlap(inputs, [output], "out", "w", verb)
    return str(info.value)


def _refuses_a_new_file(folder) -> bool:
    try:
        os.close(os.open(os.path.join(folder, "unetweights-probe"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError:
        return True
    os.unlink(os.path.join(folder, "unetweights-probe"))
    return False


@pytest.fixture
def unwritable(tmp_path):
    """A folder that refuses this process a new file: a 0o500 one, or /sys for root; else a skip."""
    folder = tmp_path / "read-only"
    folder.mkdir(mode=0o500)
    candidates = [folder] + (["/sys"] if sys.platform.startswith("linux") else [])
    found = next((Path(c) for c in candidates if os.path.isdir(c) and _refuses_a_new_file(c)), None)
    try:
        if found is None:
            pytest.skip("no folder here refuses this process a new file")
        yield found
    finally:
        folder.chmod(0o700)


def listing(folder):
    return sorted(os.listdir(folder))


# -- refuse_overlap -------------------------------------------------------------------------------


def test_same_path_spelled_differently(tmp_path):
    given = tmp_path / "masks" / "a.npy"
    given.parent.mkdir()
    given.write_bytes(b"mask")
    spelled = f"{tmp_path}/masks/./sub/../a.npy"
    assert refused([("labels", given)], spelled) == overlap(spelled, "is", "labels", given)
    relative = os.path.relpath(given)
    assert refused([("labels", relative)], given) == overlap(given, "is", "labels", relative)


def test_a_symlink_to_an_input_and_a_path_through_a_symlinked_folder(tmp_path):
    given = tmp_path / "masks" / "a.npy"
    given.parent.mkdir()
    given.write_bytes(b"mask")
    (tmp_path / "link.npy").symlink_to(given)
    (tmp_path / "linked").symlink_to(given.parent, target_is_directory=True)
    for output in (tmp_path / "link.npy", tmp_path / "linked" / "a.npy"):
        assert refused([("labels", given)], output) == overlap(output, "is", "labels", given)


def test_a_hard_link_to_an_input(tmp_path):
    given = tmp_path / "a.npy"
    given.write_bytes(b"mask")
    (tmp_path / "out").mkdir()
    output = tmp_path / "out" / "b.npy"
    os.link(given, output)
    assert refused([("mask_paths[0]", given)], output, "delete") == overlap(output, "is", "mask_paths[0]", given, "delete")


def test_zarr_stores_are_folders_inside_or_around_each_other(tmp_path):
    store = tmp_path / "labels.zarr"
    store.mkdir()
    (store / ".zarray").write_text("{}")
    cases = {
        f"{store}/": "is",
        str(store / "weights"): "lies inside",
        str(store / "0" / "deeper"): "lies inside",
        str(tmp_path): "contains",
        str(tmp_path.parent): "contains",
    }
    for output, relation in cases.items():
        assert refused([("source", store)], output, "destroy") == overlap(output, relation, "source", store, "destroy")


def test_outputs_that_touch_no_input_pass(tmp_path):
    store = tmp_path / "labels.zarr"
    store.mkdir()
    given = tmp_path / "a.npy"
    given.write_bytes(b"mask")
    inputs = [("source", store), ("labels", given), ("weight", None)]
    outputs = [
        tmp_path / "labels.zarr2",  # a sibling that shares the name's start
        tmp_path / "a.npy.bak",
        tmp_path / "missing" / "deeper" / "out.npy",  # nonexistent, in a nonexistent folder
        tmp_path / "weights.zarr",
    ]
    refuse_overlap(inputs, outputs, "out", "w")
    refuse_overlap(inputs, [], "out", "w")
    refuse_overlap([], outputs, "out", "w")


def test_a_nonexistent_output_is_compared_by_path(tmp_path):
    given = tmp_path / "later.npy"  # an input not there yet (the writer reads it after the check)
    assert refused([("labels", given)], tmp_path / "." / "later.npy") == overlap(
        tmp_path / "." / "later.npy", "is", "labels", given
    )


def test_the_first_output_found_is_named_with_its_input(tmp_path):
    inputs = [("mask_paths[0]", tmp_path / "a.npy"), ("mask_paths[1]", tmp_path / "b.npy")]
    with pytest.raises(ValueError) as info:
        refuse_overlap(inputs, [tmp_path / "c.npy", tmp_path / "b.npy", tmp_path / "a.npy"], "out", "w")
    assert str(info.value) == overlap(tmp_path / "b.npy", "is", "mask_paths[1]", tmp_path / "b.npy")


def test_store_urls(tmp_path):
    source = "s3://bucket/data/labels.zarr"
    assert refused([("source", source)], "s3://bucket/data/labels.zarr/w") == overlap(
        "s3://bucket/data/labels.zarr/w", "lies inside", "source", source
    )
    for around in ("s3://bucket/data", "s3://bucket", "s3://bucket/"):
        assert refused([("source", source)], around) == overlap(around, "contains", "source", source)
    refuse_overlap([("source", source)], ["s3://other/data/labels.zarr", "gs://bucket/data/labels.zarr"], "out", "w")
    local = tmp_path / "labels.zarr"
    assert refused([("source", local)], f"file://{local}") == overlap(f"file://{local}", "is", "source", local)
    assert location(f"file://{local}") == location(local) == ("", PurePath(os.path.realpath(local)))
    assert location("s3://bucket/a/../b.zarr") == ("s3://bucket", PurePosixPath("/b.zarr"))


# -- check_output_file ----------------------------------------------------------------------------


def test_output_file_types_and_empty_path(tmp_path):
    for value, kind in ((3, "int"), (None, "NoneType"), (b"x.onnx", "bytes"), (bytearray(b"x"), "bytearray")):
        with pytest.raises(TypeError) as info:
            check_output_file(value, "path", "w")
        assert str(info.value) == f"path: expected a str or os.PathLike, got {kind}"
    with pytest.raises(ValueError) as info:
        check_output_file("", "path", "w")
    assert str(info.value) == "path: expected a file path, got an empty string"
    assert check_output_file(tmp_path / "x.onnx", "path", "w") == str(tmp_path / "x.onnx")


def test_output_file_that_is_a_folder_or_has_no_folder(tmp_path):
    with pytest.raises(ValueError) as info:
        check_output_file(tmp_path, "--csv", "w")
    assert str(info.value) == f"--csv: {tmp_path} is a folder; expected the path of the file to write"
    path = tmp_path / "missing" / "scores.csv"
    with pytest.raises(ValueError) as info:
        check_output_file(path, "--csv", "w")
    assert str(info.value) == f"--csv: the folder of {path} does not exist ({tmp_path / 'missing'})"
    (tmp_path / "file").write_text("x")
    below = tmp_path / "file" / "scores.csv"
    for create_folder in (False, True):
        with pytest.raises(ValueError) as info:
            check_output_file(below, "--csv", "w", create_folder=create_folder)
        assert str(info.value) == f"--csv: the folder of {below} is a file ({tmp_path / 'file'})"
    deeper = tmp_path / "file" / "sub" / "figure.png"
    with pytest.raises(ValueError) as info:
        check_output_file(deeper, "--out", "w", create_folder=True)
    assert str(info.value).startswith(f"--out: the folder of {deeper} cannot be created ({tmp_path / 'file' / 'sub'}: ")
    assert listing(tmp_path) == ["file"]


def test_output_file_creates_its_folder_when_asked_and_leaves_no_probe(tmp_path):
    path = tmp_path / "figures" / "deeper" / "figure.png"
    assert check_output_file(path, "--out", "w", create_folder=True) == str(path)
    assert listing(tmp_path / "figures") == ["deeper"] and listing(tmp_path / "figures" / "deeper") == []


def test_output_file_that_is_an_input_and_one_that_is_not(tmp_path):
    given = tmp_path / "logits.npy"
    given.write_bytes(b"logits")
    inputs = [("--logits", given), ("--weight", None)]
    (tmp_path / "scores.csv").write_text("old")  # an existing file that is no input: the writer replaces it
    assert check_output_file(tmp_path / "scores.csv", "--csv", "evaluate", inputs) == str(tmp_path / "scores.csv")
    with pytest.raises(ValueError) as info:
        check_output_file(tmp_path / "logits.npy", "--csv", "evaluate", inputs)
    assert str(info.value) == (
        f"--csv: {given} is the --logits input {given}, which evaluate would write over; it never writes over or "
        "deletes an input, so choose another --csv"
    )
    assert listing(tmp_path) == ["logits.npy", "scores.csv"] and given.read_bytes() == b"logits"


def test_output_file_in_a_folder_that_refuses_a_new_file(unwritable):
    path = unwritable / "scores.csv"
    with pytest.raises(ValueError) as info:
        check_output_file(path, "--csv", "w")
    message = str(info.value)
    head = f"--csv: cannot write {path}: the folder {unwritable} refuses a new file (it is not writable: "
    assert message.startswith(head) and message.endswith(")") and len(message) > len(head) + 1


# -- folders to write into ------------------------------------------------------------------------


def test_writable_folder_is_created_and_probed_without_a_trace(tmp_path):
    folder = tmp_path / "a" / "b"
    check_writable_folder(folder, "out_dir")
    assert folder.is_dir() and listing(folder) == []
    check_writable_folder(folder, "out_dir")  # an existing folder is fine


def test_writable_folder_that_is_a_file_or_below_one(tmp_path):
    file = tmp_path / "out.npy"
    file.write_bytes(b"a file")
    for check in (check_writable_folder, refuse_file_as_folder):
        with pytest.raises(ValueError) as info:
            check(file, "cache_dir")
        assert str(info.value) == f"cache_dir {str(file)!r} is a file, not a folder"
    with pytest.raises(ValueError) as info:
        check_writable_folder(file / "sub", "cache_dir")
    assert str(info.value).startswith(f"cache_dir {str(file / 'sub')!r} cannot be created: ")
    refuse_file_as_folder(tmp_path / "missing", "cache_dir")  # only a file is refused, and nothing created
    assert listing(tmp_path) == ["out.npy"] and file.read_bytes() == b"a file"


def test_writable_folder_that_refuses_a_new_file(unwritable):
    with pytest.raises(ValueError) as info:
        check_writable_folder(unwritable, "out")
    message = str(info.value)
    assert message.startswith(f"out {str(unwritable)!r} is not writable: it refuses a new file (") and message.endswith(")")


# -- atomic writes --------------------------------------------------------------------------------


def test_written_in_place_replaces_only_on_success(tmp_path):
    path = tmp_path / "graph.onnx"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError):
        with written_in_place(path) as tmp:
            assert os.path.dirname(tmp) == str(tmp_path) and tmp.endswith(".onnx")
            Path(tmp).write_bytes(b"half")
            raise RuntimeError("failed")
    assert listing(tmp_path) == ["graph.onnx"] and path.read_bytes() == b"old"
    with written_in_place(path, ".named.tmp") as tmp:
        assert tmp == str(tmp_path / ".named.tmp")
        Path(tmp).write_bytes(b"new")
    assert listing(tmp_path) == ["graph.onnx"] and path.read_bytes() == b"new"


def test_written_in_place_names_the_argument_with_the_output_file_wording(unwritable):
    path = unwritable / "eval.onnx"
    with pytest.raises(ValueError) as info:
        with written_in_place(path, argument="path"):
            pytest.fail("the block must not run")
    assert str(info.value).startswith(f"path: cannot write {path}: the folder {unwritable} refuses a new file (it is not writable: ")
    with pytest.raises(OSError):
        with written_in_place(path):
            pytest.fail("the block must not run")


def test_write_text_in_place_keeps_newlines_as_given(tmp_path):
    path = tmp_path / "scores.csv"
    write_text_in_place(path, "a,b\r\n1,2\n")
    assert path.read_bytes() == b"a,b\r\n1,2\n" and listing(tmp_path) == ["scores.csv"]


def test_same_file(tmp_path):
    a = tmp_path / "a.npy"
    a.write_bytes(b"x")
    (tmp_path / "link").symlink_to(a)
    os.link(a, tmp_path / "hard")
    assert same_file(a, tmp_path / "link") and same_file(a, tmp_path / "hard") and same_file(a, tmp_path / "." / "a.npy")
    assert same_file(tmp_path / "new", tmp_path / "sub" / ".." / "new")  # neither exists: compared by path
    assert not same_file(a, tmp_path / "b.npy")
