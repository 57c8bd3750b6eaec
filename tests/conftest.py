"""How the suite shares two workers (``make test`` runs ``pytest -n 2 --dist loadgroup``).

Every test file is one xdist group, so that a file's module fixtures (exported graphs, built C++
programs) are made once, on one worker, as ``--dist loadfile`` would; the files in ``SPREAD``, whose
tests are many and independent (each builds its own compiled module), are spread over both
workers test by test instead, so that the longest file no longer sets the suite's wall time.
"""

import pytest

SPREAD = {"test_modes.py"}


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    # tryfirst: before pytest-xdist's own hook, which reads the groups into the node ids.
    for item in items:
        if item.path.name not in SPREAD:
            item.add_marker(pytest.mark.xdist_group(item.path.relative_to(config.rootpath).as_posix()))
