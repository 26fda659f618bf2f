"""engine=vllm inside Ray workers: `workers=2` (two vLLM CPU instances, one core each, eager, 1 GiB KV
cache) against `workers=1` on the embedded model, real `iwsi run` processes up to the evaluate-base stage.

Asserted, because it is reproducible: the same questions, `num_samples` candidates per question, no
stop string inside a candidate, the same test questions evaluated; the two actors served generate,
evaluate-base and score (one vLLM start-up each); every text both runs scored (the valid rationales,
and each candidate the two runs sampled identically) has the same losses within vLLM's own bf16 noise.
That noise is not 1e-3 nats: one vLLM CPU instance scoring the same 11 valid texts again moved a loss
by 0.014 nats, in reverse order by 0.015, in one batch after 24 other texts by 0.037 (2026-12-06,
docs/scale.md), so the bound is max 0.05 and mean 0.02 nats (the vLLM-vs-native bound of
tests/test_vllm_engine.py).
Measured and printed, not asserted: the share of identical candidates, majority answers and agreement
per question, mean loss (vLLM's sampling is only as batch-invariant as its kernels; docs/scale.md).

One vLLM actor of the `workers=2` run is SIGKILLed once the first generate chunk is on disk: Ray
restarts it (or a rerun redoes only the missing chunks), the run completes with every chunk, and the
killed actor's own processes (vLLM's engine core) are gone afterwards.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest

pytest.importorskip("vllm", reason="vLLM not installed: `make vllm` adds it (docs/scale.md)")
pytest.importorskip("ray", reason="Ray not installed: `make vllm` adds it")
pytestmark = [pytest.mark.slow, pytest.mark.vllm, pytest.mark.ray]

from iwsi.config import RunConfig  # noqa: E402
from iwsi.prompts import STOP  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SIZES = {"num_questions": 6, "valid_size": 3, "valid_pool": 8, "test_size": 2, "num_samples": 4,
         "max_new_tokens": 32}
SETS = {**SIZES, "engine": "vllm", "device": "cpu", "worker_threads": 1, "embed": "false",
        "vllm_enforce_eager": "true", "vllm_cpu_kv_cache_gb": 1}


def start_run(out: Path, workers: int) -> subprocess.Popen:
    sets = {k: v for k, v in {**SETS, "workers": workers}.items() if k in RunConfig.__dataclass_fields__}
    args = [a for k, v in sets.items() for a in ("--set", f"{k}={v}")]
    env = {**os.environ, "IWSI_CHUNK": "2", "PYTHONPATH": str(ROOT)}  # 3 chunks of 2 questions
    return subprocess.Popen([sys.executable, "-m", "iwsi.cli", "run", "--out", str(out), "--until", "evaluate-base",
                             *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str]:
    _, err = proc.communicate(timeout=1200)
    return proc.returncode, err


def iwsi_run(out: Path, workers: int) -> float:
    start = time.time()
    code, err = finish(start_run(out, workers))
    assert code == 0, err[-4000:]
    return time.time() - start


def kill_one_actor(run: subprocess.Popen, out: Path) -> list[int]:
    """SIGKILL one `ray::Worker` actor of this run once its first generate chunk is on disk (mid-run: the
    other chunks are still being sampled); returns the actor's pid and its descendants' (vLLM's engine
    core), which must not outlive it."""
    deadline = time.time() + 600
    while not list((out / "chunks").glob("generate-*.parquet")) and time.time() < deadline and run.poll() is None:
        time.sleep(0.2)
    if run.poll() is not None:
        _, err = run.communicate()
        raise AssertionError(f"the workers=2 run exited ({run.returncode}) before its first chunk: {err[-3000:]}")
    driver = psutil.Process(run.pid)
    actors = [p for p in psutil.process_iter(["pid", "cmdline"])
              if "ray::Worker" in " ".join(p.info["cmdline"] or []) and driver.create_time() <= p.create_time()]
    assert actors, "no Ray worker actor found"
    victim = actors[0]
    family = [victim.pid] + [c.pid for c in victim.children(recursive=True)]
    victim.kill()
    return family


def wait_gone(pids: list[int], seconds: float = 60) -> list[int]:
    deadline = time.time() + seconds
    alive = pids
    while alive and time.time() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.5)
    return alive


@pytest.fixture(autouse=True)
def no_vllm_in_this_process():
    """Three vLLM instances start in the runs below: shut down the one an earlier test left in this pytest
    process (~5 GB on the CPU build), or Ray's memory monitor kills an actor on a 24 GB machine (seen in CI)."""
    import sys

    if "iwsi.engines.vllm" in sys.modules:
        sys.modules["iwsi.engines.vllm"].release()


def test_two_vllm_workers_sample_the_same_questions_and_score_like_one(tmp_path):
    one, two = tmp_path / "w1", tmp_path / "w2"
    t1 = iwsi_run(one, 1)
    start = time.time()
    run = start_run(two, 2)
    killed = kill_one_actor(run, two)
    code, err = finish(run)
    if code != 0:  # Ray's restart did not save the chunk: a rerun redoes only the missing ones
        print(f"\nfirst workers=2 run exited {code}: {err[-600:]}")
        iwsi_run(two, 2)
    t2 = time.time() - start
    left = wait_gone(killed)
    for pid in left:  # never leave a vLLM engine running on the CI machine, then fail
        psutil.Process(pid).kill()
    assert not left, f"processes of the killed vLLM actor outlived it: {left}"
    assert len(list((two / "chunks").glob("generate-*.parquet"))) == 3
    a, b = pd.read_parquet(one / "samples.parquet"), pd.read_parquet(two / "samples.parquet")
    # reproducible: questions, samples per question, stop rules, the evaluated test questions
    assert a["question_id"].tolist() == b["question_id"].tolist()
    assert a.groupby("question_id").size().eq(SIZES["num_samples"]).all()
    assert b.groupby("question_id").size().eq(SIZES["num_samples"]).all()
    for frame in (a, b):
        assert not [r for r in frame["rationale"] if any(s in r for s in STOP)]
    ea, eb = pd.read_parquet(one / "eval_base.parquet"), pd.read_parquet(two / "eval_base.parquet")
    assert ea["question_id"].tolist() == eb["question_id"].tolist()
    # a fixed text set scored by both: the valid rationales (D_v and the valid pool, if the config has one)
    pool = "valid_pool.parquet" if (one / "valid_pool.parquet").exists() else "valid.parquet"
    va, vb = pd.read_parquet(one / pool), pd.read_parquet(two / pool)
    assert va["rationale"].tolist() == vb["rationale"].tolist()
    columns = [c for c in ("loss", "loss_answer", "loss_alone") if c in va]
    diffs = np.abs(va[columns].to_numpy() - vb[columns].to_numpy())
    valid_diff, valid_mean = float(diffs.max()), float(diffs.mean())
    assert valid_diff <= 0.05 and valid_mean <= 0.02, (valid_diff, valid_mean)
    same = (a["rationale"] == b["rationale"]).to_numpy()
    cand = np.abs(a.loc[same, columns].to_numpy() - b.loc[same, columns].to_numpy())
    cand_diff = float(cand.max()) if same.any() else float("nan")
    assert not same.any() or (cand_diff <= 0.05 and cand.mean() <= 0.02), cand_diff
    # two live actors served generate, score and evaluate-base: one vLLM start-up each (the killed actor's
    # restart included), none between stages
    log = (two / "log.txt").read_text()
    workers = {int(w) for stage in ("generate", "score", "evaluate-base")
               for w in re.findall(r"pid (\d+) ran", re.findall(rf"{stage}: .*", log)[-1])}
    assert len(workers - set(killed)) == 2, log
    # measured, not asserted
    maj = lambda f: f.groupby("question_id")["majority_answer"].first()  # noqa: E731
    agree = lambda f: f.groupby("question_id")["agreement"].first()  # noqa: E731
    print(f"\nworkers=1 run {t1:.0f} s, workers=2 run {t2:.0f} s (up to evaluate-base; one actor killed: pids "
          f"{killed}, first run exit {code})"
          f"\nidentical candidates: {same.mean():.3f} of {len(a)}; same majority answer: "
          f"{(maj(a) == maj(b)).mean():.3f} of {a['question_id'].nunique()} questions"
          f"\nmean agreement {agree(a).mean():.3f} vs {agree(b).mean():.3f}; mean loss {a['loss'].mean():.4f} vs "
          f"{b['loss'].mean():.4f} nats; greedy test answers equal: {(ea['answer'] == eb['answer']).mean():.3f}"
          f"\n|loss diff| on the {len(va)} valid texts: max {valid_diff:.2e}, mean {valid_mean:.2e}; "
          f"on the {int(same.sum())} identical candidates: max {cand_diff:.2e} nats")
