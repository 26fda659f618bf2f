"""Crash safety on the embedded model: SIGKILL `iwsi run` during generate, score and train, rerun,
and compare with one uninterrupted reference run (shared by the whole module). Also the run lock
and config-change refusal / `--force`.

Tiny sizes and IWSI_CHUNK=1 (one question per chunk) so every stage has several checkpoints.
The score and train kills start from a copy of the reference run with those stages cleared, so
only the stages under test are recomputed.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from iwsi.config import STAGES
from iwsi.rundir import RunDir
from tests.test_bad_input import hold_lock

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SETS = ["num_questions=4", "valid_size=1", "test_size=1", "num_samples=2", "max_new_tokens=12", "epochs=2",
        "batch_size=2", "lora_r=4", "embed=false", "engine=hf", "seed=3"]
ENV = {**os.environ, "IWSI_CHUNK": "1", "PYTHONWARNINGS": "ignore", "TQDM_DISABLE": "1"}
TIMEOUT = 900


def command(out: Path, *extra: str) -> list[str]:
    args = [sys.executable, "-m", "iwsi.cli", "run", "--out", str(out), *extra]
    for pair in SETS:
        args += ["--set", pair]
    return args


def start(out: Path, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(command(out, *extra), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(command(out, *extra), cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=TIMEOUT)


def finish(out: Path) -> None:
    proc = run(out)
    assert proc.returncode == 0, proc.stderr[-3000:]


def kill_when(proc: subprocess.Popen, ready, timeout: float = TIMEOUT) -> None:
    """SIGKILL `proc` as soon as `ready()` holds (polled every 20 ms)."""
    end = time.time() + timeout
    while not ready():
        assert proc.poll() is None, f"finished before the kill point: {proc.stderr.read()[-2000:]}"
        assert time.time() < end, "kill point never reached"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def copy_cleared(reference: Path, dest: Path, first: str) -> Path:
    """A copy of the finished reference run with `first` and every later stage undone."""
    shutil.copytree(reference, dest)
    RunDir(dest).clear_from(STAGES[STAGES.index(first):])
    for name in ("metrics.json", "status.json"):
        (dest / name).unlink()
    return dest


def assert_same_results(out: Path, reference: Path) -> None:
    for name in ("samples.parquet", "valid.parquet", "eval.parquet", "candidates.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(out / name), pd.read_parquet(reference / name), obj=name)
    metrics = [json.loads((d / "metrics.json").read_text()) for d in (out, reference)]
    for m in metrics:
        assert set(m.pop("timings")) == {"generate", "evaluate-base", "vote", "score", "embed", "judge", "filter",
                                         "train", "evaluate"}
    assert metrics[0] == metrics[1]
    assert adapter_tensors(out) == adapter_tensors(reference)
    assert json.loads((out / "status.json").read_text())["state"] == "done"


def adapter_tensors(out: Path) -> dict:
    from safetensors.torch import load_file

    return {k: v.tolist() for k, v in load_file(out / "adapter" / "adapter_model.safetensors").items()}


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.split("-")[1])


def done(out: Path, stage: str) -> bool:
    return (out / "stages" / f"{stage}.json").exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference") / "run"
    finish(out)
    return out


def test_reference_run_is_complete(reference):
    assert all(done(reference, s) for s in STAGES)
    assert len(list((reference / "chunks").glob("generate-*.parquet"))) == 4
    assert len(list((reference / "chunks").glob("score-0*.parquet"))) == 4
    metrics = json.loads((reference / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"base", "trained"}
    assert not (reference / "lock").exists() and not list(reference.rglob(".*.tmp"))


def test_kill_during_generate_resumes(reference, tmp_path):
    out = tmp_path / "run"
    proc = start(out)
    first_chunk = out / "chunks" / "generate-00000.parquet"
    kill_when(proc, first_chunk.exists)
    assert not done(out, "generate") and not (out / "candidates.parquet").exists()
    assert len(list((out / "chunks").glob("generate-*.parquet"))) < 4
    stamp = first_chunk.stat().st_mtime_ns
    finish(out)
    assert first_chunk.stat().st_mtime_ns == stamp  # the finished chunk was reused, not resampled
    assert_same_results(out, reference)


def test_kill_during_score_resumes(reference, tmp_path):
    out = copy_cleared(reference, tmp_path / "run", "score")
    proc = start(out)
    kill_when(proc, (out / "chunks" / "score-00000.parquet").exists)
    assert not done(out, "score")
    finish(out)
    assert_same_results(out, reference)


def test_kill_during_train_resumes_from_checkpoint(reference, tmp_path):
    out = copy_cleared(reference, tmp_path / "run", "train")
    proc = start(out)
    from iwsi.train import _is_complete

    ckpt = out / "train_ckpt"
    kill_when(proc, lambda: any(_is_complete(c) for c in ckpt.glob("checkpoint-*")))
    assert not done(out, "train") and not (out / "adapter").exists()
    killed_at = max(_step(c) for c in ckpt.glob("checkpoint-*") if _is_complete(c))
    assert killed_at < json.loads((reference / "train.json").read_text())["global_step"]  # mid-training
    finish(out)
    assert_same_results(out, reference)
    assert not ckpt.exists()  # deleted once the adapter is saved
    # the Runs page's loss curve: each step once (the resume dropped what the killed process logged after its
    # checkpoint), the same losses as the uninterrupted run
    from iwsi.contract import RUN_FILE
    from iwsi.runs import read_train_log

    steps = [json.loads(line)["step"] for line in (out / RUN_FILE.train_log).read_text().splitlines()]
    assert steps == sorted(set(steps)) == read_train_log(reference)["step"].tolist()
    pd.testing.assert_series_equal(read_train_log(out)["loss"], read_train_log(reference)["loss"])


def test_second_process_is_refused_and_a_stale_lock_taken_over(reference, tmp_path):
    out = shutil.copytree(reference, tmp_path / "run")
    holder = hold_lock(out)
    try:
        proc = run(out)
        assert proc.returncode == 2 and f"in use by process {holder.pid}" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        holder.kill()
        holder.wait()
    # the holder is dead now (the OS dropped its lock; its lock file is left behind): the next run takes it
    finish(out)
    assert not (out / "lock").exists()
    assert_same_results(out, reference)


def test_config_change_is_refused_then_forced(reference, tmp_path):
    out = shutil.copytree(reference, tmp_path / "run")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    proc = run(out, "--set", "k=50")
    assert proc.returncode == 2 and "k changed" in proc.stderr and "--force" in proc.stderr
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    proc = run(out, "--force", "--until", "filter", "--set", "k=50")
    assert proc.returncode == 0, proc.stderr[-2000:]
    from iwsi.filtering import num_to_keep

    samples = pd.read_parquet(out / "samples.parquet")
    assert samples["kept"].sum() == num_to_keep(int(samples["is_majority"].sum()), 50)
    assert json.loads((out / "filter.json").read_text())["k"] == 50.0  # the filter really ran again
    # generation and scoring were kept; training and evaluation are gone until rerun
    for name in ("candidates.parquet", "valid.parquet", "chunks/generate-00000.parquet"):
        assert (out / name).read_bytes() == before[out / name]
    assert not (out / "adapter").exists() and not (out / "eval.parquet").exists()
    assert not done(out, "train") and "k: 50.0" in (out / "config.yaml").read_text()


def test_force_after_a_generation_change_drops_every_generated_artefact(reference, tmp_path):
    # In-process (no regeneration): what `--force` clears before a changed generate stage reruns.
    from iwsi.config import load_config
    from iwsi.pipeline import stale_stages

    out = RunDir(shutil.copytree(reference, tmp_path / "run"))
    (out / "chunks" / "generate-00009.parquet").write_bytes(b"left over from an older run")
    cfg = load_config(overrides=dict(s.split("=", 1) for s in [*SETS, "max_new_tokens=4"]))
    stale = stale_stages(out, cfg, force=True)
    assert stale == list(STAGES)
    out.clear_from(tuple(stale))
    assert not (out / "chunks").exists() and not list(out.path.glob("*.parquet"))
    assert not (out / "adapter").exists() and not (out / "train_ckpt").exists()
    assert not list((out / "stages").iterdir())
    with pytest.raises(Exception, match="max_new_tokens changed"):
        stale_stages(RunDir(reference), cfg, force=False)


def test_a_run_stopped_under_the_old_stage_order_resumes(reference, tmp_path):
    # The order was generate → evaluate-base → vote → score …: a run stopped after evaluate-base has it done
    # and nothing after generate else. It resumes with vote, keeps its base evaluation and ends as the reference.
    out = Path(shutil.copytree(reference, tmp_path / "run"))
    RunDir(out).clear_from(tuple(s for s in STAGES if s not in ("generate", "evaluate-base")))
    for name in ("metrics.json", "status.json"):
        (out / name).unlink()
    kept = (out / "stages" / "evaluate-base.json").read_text()
    finish(out)
    assert (out / "stages" / "evaluate-base.json").read_text() == kept  # not redone
    assert_same_results(out, reference)


def test_a_scoring_change_keeps_the_base_evaluation(reference, tmp_path):
    from iwsi.config import load_config
    from iwsi.pipeline import stale_stages

    out = RunDir(shutil.copytree(reference, tmp_path / "run"))
    cfg = load_config(overrides=dict(s.split("=", 1) for s in [*SETS, "loss_span=completion"]))
    assert stale_stages(out, cfg, force=True) == ["score", "embed", "judge", "filter", "train", "evaluate"]
