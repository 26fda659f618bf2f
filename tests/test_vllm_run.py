"""`iwsi run --set engine=vllm`: every stage through vLLM's CPU build, writing the full run contract
(generate + score on one vLLM instance, evaluate of base and adapter through vLLM's LoRA support on a
second one, see iwsi/vllm_engine.py). One `iwsi run` process. Needs `make vllm`; skipped without it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("vllm", reason="vLLM not installed: `make vllm` adds it (docs/scale.md)")
pytestmark = [pytest.mark.slow, pytest.mark.vllm]
ROOT = Path(__file__).resolve().parent.parent


def test_full_run_through_vllm_writes_the_run_contract(tmp_path):
    out = tmp_path / "run"
    sets = ["engine=vllm", "device=cpu", "num_questions=12", "valid_size=3", "test_size=6", "num_samples=2",
            "max_new_tokens=24", "epochs=1", "k=100"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "IWSI_CHUNK": "4"}
    done = subprocess.run([sys.executable, "-m", "iwsi.cli", "run", "--out", str(out),
                           *[a for s in sets for a in ("--set", s)]], env=env, capture_output=True, text=True,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("config.yaml", "candidates.parquet", "samples.parquet", "valid.parquet", "umap.parquet",
                 "eval.parquet", "metrics.json", "adapter/adapter_model.safetensors"):
        assert (out / name).exists(), name
    samples = pd.read_parquet(out / "samples.parquet")
    assert len(samples) == 24 and samples["loss"].notna().all() and samples["kept"].any()
    ev = pd.read_parquet(out / "eval.parquet")
    assert set(ev["model"]) == {"base", "trained"} and len(ev) == 12
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"base", "trained"}
    assert "engine: vllm" in (out / "config.yaml").read_text()
