"""Fixtures shared by the test modules."""
import pytest


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty iwsi cache root (runs/, ablations/, probes/ go below it) for this test only."""
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    return tmp_path
