"""workers=N (iwsi/distributed.py): Ray workers give the same candidates and losses as one process,
and a run survives a killed worker. Real `iwsi run` processes on a local 2-CPU Ray cluster, native
engine, one thread per worker (and per process for the 1-worker run). Needs Ray (`make vllm`).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="Ray not installed: `make vllm` (or pip install -e '.[ray]') adds it")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parent.parent
SETS = ["num_questions=12", "valid_size=3", "test_size=6", "num_samples=2", "max_new_tokens=24",
        "worker_threads=1", "embed=false", "engine=iwsi", "device=cpu"]
ARTEFACTS = ("candidates.parquet", "samples.parquet", "valid.parquet")


def iwsi_run(out: Path, *sets: str) -> subprocess.Popen:
    args = [a for s in (*SETS, *sets) for a in ("--set", s)]
    env = {**os.environ, "IWSI_CHUNK": "2", "PYTHONPATH": str(ROOT)}  # 6 chunks of 2 questions
    return subprocess.Popen([sys.executable, "-m", "iwsi.cli", "run", "--out", str(out), "--until", "score", *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=900)
    if proc.returncode not in (0, 1):
        print(err[-3000:])
    return proc.returncode


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("w1") / "run"
    assert finish(iwsi_run(out, "workers=1")) == 0
    return out


def assert_same(a: Path, b: Path) -> None:
    for name in ARTEFACTS:
        pd.testing.assert_frame_equal(pd.read_parquet(a / name), pd.read_parquet(b / name), check_exact=True)


def test_two_workers_give_token_identical_candidates_and_losses(one_worker, tmp_path):
    out = tmp_path / "run"
    assert finish(iwsi_run(out, "workers=2")) == 0
    assert len(list((out / "chunks").glob("generate-*.parquet"))) == 6
    assert_same(one_worker, out)


def _worker_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "ray::Worker"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def test_a_killed_worker_is_redone_and_the_run_completes(one_worker, tmp_path):
    out = tmp_path / "run"
    proc = iwsi_run(out, "workers=2")
    deadline = time.time() + 300
    while not list((out / "chunks").glob("generate-*.parquet")) and time.time() < deadline:
        time.sleep(0.2)
    pids = _worker_pids()
    assert pids, "no Ray worker process found"
    os.kill(pids[0], signal.SIGKILL)  # mid-run: its current chunk has no file yet
    code = finish(proc)
    if code != 0:  # Ray's retries did not save it: a rerun must redo only the missing chunks
        assert finish(iwsi_run(out, "workers=2")) == 0
    print(f"\nkilled worker {pids[0]}; first run exit {code}")
    assert_same(one_worker, out)
