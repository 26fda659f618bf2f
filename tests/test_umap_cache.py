"""UMAP's numba functions are compiled once per cache root, not once per process (iwsi/embed.py:
cached_umap): two processes fitting at once on an empty cache both succeed with the same map, and leave
numba's cache files under <cache root>/numba for the next process."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
FIT = """
import json, numpy as np
from iwsi.embed import fit_umap
x = np.random.default_rng(0).normal(size=(60, 32)).astype(np.float32)
print(json.dumps(fit_umap(x[:5], x[5:], 0)[["x", "y"]].round(4).values.tolist()))
"""


def test_two_processes_share_one_numba_cache(tmp_path):
    env = {**os.environ, "IWSI_CACHE": str(tmp_path), "PYTHONPATH": str(ROOT), "NUMBA_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", FIT], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in outs)
    assert first == second and len(first) == 60
    cached = list((tmp_path / "numba").rglob("*.nbi"))
    assert any("umap_" in str(path) for path in cached), cached
    assert list((tmp_path / "numba").rglob("*.nbc"))
