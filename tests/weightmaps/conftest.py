import pytest

STRATEGIES = (None, "windows", "colouring")


@pytest.fixture(params=STRATEGIES, ids=lambda s: f"strategy={s}")
def strategy(request, monkeypatch):
    """Force one of the exact internal strategies (None = automatic choice)."""
    from unetweights.weightmaps import distance

    monkeypatch.setattr(distance, "_FORCED_STRATEGY", request.param)
    return request.param
