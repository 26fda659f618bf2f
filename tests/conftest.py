"""Fixtures shared by the test modules."""
import pytest


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    """An empty iwsi cache root (runs/, ablations/, probes/ go below it) for this test only."""
    monkeypatch.setenv("IWSI_CACHE", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session", autouse=True)
def release_vllm():
    """Shut down the vLLM instances the tests started (iwsi.engines.vllm keeps one per process): left running,
    their engine processes are non-daemon children that multiprocessing's exit handler waits on for ever."""
    yield
    import sys

    if "iwsi.engines.vllm" in sys.modules:
        sys.modules["iwsi.engines.vllm"].release()
