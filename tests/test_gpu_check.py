"""benchmarks/gpu_check.py, the one-call check of the CUDA path, kept working on the CPU: `--device cpu`
runs the same tiny-model `iwsi run` (engine hf, train_processes=1) through every stage group, one
process each, and must print PASS for what a CPU can check and SKIP for the CUDA-only branches."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent


def test_gpu_check_passes_on_the_cpu_and_skips_the_cuda_branches(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=600)
    lines = [line for line in done.stdout.splitlines() if line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP")]
    print("\n".join(lines))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not [line for line in lines if line.startswith("FAIL")]
    for group in ("generate", "evaluate-base", "vote+score", "judge+filter+train", "evaluate"):
        assert any(line.startswith(f"PASS {group} on cpu") for line in lines), group
        assert any(line.startswith(f"SKIP {group} process used the GPU") for line in lines), group
    assert "PASS device=cuda refused without a GPU" in done.stdout
    # every stage group's process wrote its own line, and none of them touched CUDA
    log = (tmp_path / "run" / "log.txt").read_text()
    assert log.count("gpu_check: process") == 5 and log.count("cuda not used") == 5
    assert (tmp_path / "run" / "stages" / "evaluate.json").exists()
