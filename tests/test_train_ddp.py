"""train_processes=2: LoRA training through `accelerate launch` (DDP, gloo on the CPU) in a real
`iwsi run`, which writes the adapter and then evaluates it."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from iwsi.config import RunConfig
from iwsi.distributed import train_command
from iwsi.rundir import RunDir

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def test_the_launch_command_is_accelerate_with_one_process_each(tmp_path):
    cmd = train_command(RunConfig(train_processes=2, device="cpu", worker_threads=1), RunDir(tmp_path))
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
    assert cmd[-4:] == ["-m", "iwsi.distributed", "train", str(tmp_path)]


def test_two_process_training_writes_the_adapter_and_evaluation_runs(tmp_path):
    out = tmp_path / "run"
    sets = ["num_questions=16", "valid_size=3", "test_size=4", "num_samples=2", "max_new_tokens=24", "embed=false",
            "epochs=1", "batch_size=2", "device=cpu", "train_processes=2", "worker_threads=1", "k=100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IWSI_CHUNK": "8"}
    done = subprocess.run([sys.executable, "-m", "iwsi.cli", "run", "--out", str(out),
                           *[a for s in sets for a in ("--set", s)]], env=env, capture_output=True, text=True,
                          timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "adapter" / "adapter_model.safetensors").exists()
    metrics = json.loads((out / "train.json").read_text())
    assert metrics["train_runtime"] > 0
    # DDP splits the kept samples over the 2 processes: half the optimizer steps of one process.
    kept = int(pd.read_parquet(out / "samples.parquet")["kept"].sum())
    assert not (out / "train_ckpt").exists()  # deleted once the adapter is saved
    assert metrics["global_step"] == math.ceil(math.ceil(kept / 2) / 2) < math.ceil(kept / 2)
    ev = pd.read_parquet(out / "eval.parquet")
    assert set(ev["model"]) == {"base", "trained"} and len(ev) == 8
