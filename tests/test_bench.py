"""Benchmark helpers (the benchmarks themselves are run by hand: `iwsi bench ...`, see docs/benchmarks.md)."""
from __future__ import annotations

from benchmarks import bench
from iwsi.models import load_tokenizer


def test_share_same_counts_identical_rows():
    assert bench._share_same(["a", "b", "c", "d"], ["a", "x", "c", "d"]) == 0.75
    assert bench._share_same([], []) != bench._share_same([], [])  # nan: no rows, no agreement figure


def test_train_examples_mask_the_prompt():
    tokenizer = load_tokenizer("embedded")
    examples = bench.train_examples(tokenizer, 4)
    assert len(examples) == 4
    for e in examples:
        learned = [t for t, lab in zip(e["input_ids"], e["labels"]) if lab != -100]
        assert 0 < len(learned) < len(e["input_ids"])
        assert "The answer is" in tokenizer.decode(learned)


def test_plot_sweep_falls_back_to_a_table(tmp_path, monkeypatch):
    rows = [{"engine": "iwsi", "batch_size": 16, "tok_s": 100.0}, {"engine": "hf", "batch_size": 16, "tok_s": 9.5}]
    import plotly.graph_objects as go

    monkeypatch.setattr(go.Figure, "write_image", lambda self, path: (_ for _ in ()).throw(RuntimeError("no kaleido")))
    out = bench.plot_sweep(rows, str(tmp_path / "t.png"))
    assert out.endswith(".md") and "| hf | 16 | 9.5 |" in (tmp_path / "t.md").read_text()


def test_iwsi_bench_finds_the_checkouts_benchmarks_and_refuses_without_one(tmp_path):
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    from iwsi import cli
    from iwsi.commands.bench import benchmark

    main, rest = benchmark(["app", "--questions", "3"])
    assert main.__module__ == "benchmarks.bench_app" and rest == ["--questions", "3"]
    assert benchmark(["generate"])[0].__module__ == "benchmarks.bench"
    # an installed package (no benchmarks/ beside it): one line, exit 2
    shutil.copytree(Path(cli.__file__).parent, tmp_path / "site" / "iwsi",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "iwsi.cli", "bench", "generate"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "source checkout" in done.stderr


class _Event:
    """Stand-in for torch.profiler's FunctionEvent (name, µs, parent/children links)."""

    def __init__(self, name: str, us: float, parent: "_Event | None" = None):
        self.name, self.cpu_time_total, self.cpu_parent, self.cpu_children = name, us, parent, []
        if parent is not None:
            parent.cpu_children.append(self)


def test_profile_breakdown_splits_labels_ops_and_overhead():
    from benchmarks.bench_profile import OUTSIDE, PREFILL, breakdown

    step = "decode step: other ops (norms, residuals, embedding, mask)"
    events = [top := _Event(step, 10e6)]
    events += [mlp := _Event("MLP (gate/up, down)", 4e6, top), _Event("aten::linear", 3.5e6, mlp),
               _Event("aten::linear", 2e6, top), _Event("aten::index_put_", 1e6, top), _Event("aten::add", 0.5e6, top),
               pre := _Event(PREFILL, 3e6), pre_mlp := _Event("MLP (gate/up, down)", 2e6, pre),
               _Event("aten::linear", 2e6, pre_mlp)]
    labels = {step, "MLP (gate/up, down)", PREFILL}
    rows = {r["part"]: r for r in breakdown(events, labels, wall_s=14.0)}
    assert rows["MLP (gate/up, down)"]["wall_s"] == 4.0 and rows["MLP (gate/up, down)"]["overhead_s"] == 0.5
    assert rows["MLP (gate/up, down) (in prefill)"]["wall_s"] == 2.0  # nested in the prefill: reported apart
    assert rows["output projection"]["wall_s"] == 2.0 and rows["KV-cache writes"]["wall_s"] == 1.0
    assert rows[step]["wall_s"] == 10 - 4 - 2 - 1 and rows[step]["in_ops_s"] == 0.5  # the rest: 2.5 s overhead
    assert rows[PREFILL]["wall_s"] == 1.0 and rows[OUTSIDE]["wall_s"] == 1.0  # 14 s wall - 13 s labelled
    assert abs(sum(r["share"] for r in rows.values()) - 1.0) < 1e-9


def test_bench_run_targets_are_ratios_within_one_run():
    from benchmarks.bench_run import human, targets

    stages = {"generate": {"seconds": 30.0}, "vote": {"seconds": 0.0}, "score": {"seconds": 20.0},
              "evaluate-base": {"seconds": 10.0}, "embed": {"seconds": 5.0}, "train": {"seconds": 60.0},
              "evaluate": {"seconds": 10.0}}
    result = {"stages": stages, "first_insight_s": 58.0, "total_s": 150.0, "exit_code": 0, "load_before": [1.0],
              "load_after": [2.0], "cpu": {"model_name": "x", "family": "6", "model": "1", "cores": 2,
                                           "avx512_bf16": False, "amx_bf16": False}}
    t = targets(result)
    assert t["first_insight_minus_generate_score_s"] == 8.0 and t["first_insight_met"]
    assert t["embed_over_score"] == 0.25 and not t["embed_met"]
    assert t["total_over_work"] == round(150 / 130, 3) and t["total_met"]
    assert "DS weights on disk after 58.0 s" in human({**result, "targets": t})


def test_bench_run_reads_the_stage_markers(tmp_path):
    import json

    from benchmarks.bench_run import stage_table

    (tmp_path / "stages").mkdir()
    (tmp_path / "stages" / "score.json").write_text(json.dumps({"stage": "score", "seconds": 2.5, "cpu_seconds": 4.9,
                                                                "peak_rss_mb": 812.3, "files": {}}))
    (tmp_path / "stages" / "generate.json").write_text(json.dumps({"stage": "generate", "seconds": 9.0}))  # older
    assert stage_table(tmp_path) == {"generate": {"seconds": 9.0, "cpu_seconds": None, "peak_rss_mb": None},
                                     "score": {"seconds": 2.5, "cpu_seconds": 4.9, "peak_rss_mb": 812.3}}
