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

    main, rest = cli._benchmark(["app", "--questions", "3"])
    assert main.__module__ == "benchmarks.bench_app" and rest == ["--questions", "3"]
    assert cli._benchmark(["generate"])[0].__module__ == "benchmarks.bench"
    # an installed package (no benchmarks/ beside it): one line, exit 2
    shutil.copytree(Path(cli.__file__).parent, tmp_path / "site" / "iwsi",
                    ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "iwsi.cli", "bench", "generate"], cwd=tmp_path, capture_output=True,
                          text=True, env={"PYTHONPATH": str(tmp_path / "site"), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "source checkout" in done.stderr
