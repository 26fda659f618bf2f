"""`iwsi bench generate|score --engines ...`: engines side by side with tok/s and tok per CPU-second."""
from __future__ import annotations

import pytest

from benchmarks.bench_engines import bench_engines, cpu_seconds, human


def test_cpu_seconds_counts_this_process():
    start = cpu_seconds()
    sum(i * i for i in range(2_000_000))
    assert cpu_seconds() > start


@pytest.mark.slow
@pytest.mark.parametrize("what", ["generate", "score"])
def test_iwsi_and_hf_side_by_side(what):
    res = bench_engines(what, ["iwsi", "hf"], threads=1, questions=2, samples=2, max_new_tokens=8)
    for name in ("iwsi", "hf"):
        assert res[name]["tokens"] > 0 and res[name]["tok_s"] > 0 and res[name]["tok_per_cpu_s"] > 0
    assert "tok/CPU-s" in human(res) and res["cpu"]


def test_an_unknown_engine_is_one_line():
    for old_name in ("fast", "native"):  # one name per engine: the config's
        with pytest.raises(SystemExit, match="unknown engine.*choose from iwsi, hf, vllm"):
            bench_engines("generate", [old_name])
