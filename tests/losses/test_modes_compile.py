"""Every loss under ``torch.compile`` in the "compile" mode equals eager (see test_modes.py for
what the mode covers; the runs live in three files so that the suite's workers share them)."""

import pytest

from .modes import RUNS, check_mode


@pytest.mark.parametrize("case,mode,dims,backend", [r for r in RUNS if r.values[1] == "compile"])
def test_mode_matches_eager(case, mode, dims, backend, tmp_path):
    check_mode(case, mode, dims, backend, tmp_path)
