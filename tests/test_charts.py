"""Chart builders are pure DataFrame → Figure functions: tested without Streamlit."""
from __future__ import annotations

import ast
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from iwsi import charts, report
from iwsi.filtering import iwsi as iwsi_filter


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    return make_run_dir(tmp_path_factory.mktemp("run") / "r", num_questions=60, num_samples=5, seed=1)


@pytest.fixture(scope="module")
def samples(run):
    return pd.read_parquet(run / "samples.parquet")


def test_no_streamlit_or_torch_import():
    tree = ast.parse(open(charts.__file__).read())
    imported = {n.names[0].name if isinstance(n, ast.Import) else n.module
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert not {m for m in imported if m and m.split(".")[0] in ("streamlit", "torch", "transformers")}


def ds_histogram(samples, sigma, column="ds_weight"):
    """What the DS weights page draws: the k-independent histogram plus the cut."""
    return charts.add_cut(charts.histogram_base(samples, column), sigma, column)


def test_ds_histogram_counts_all_samples_and_draws_cut(samples):
    fig = ds_histogram(samples, sigma=1.3)
    assert isinstance(fig, go.Figure)
    assert sum(sum(t.y) for t in fig.data) == len(samples)  # outliers folded, nothing lost
    assert {t.name for t in fig.data} <= {"correct", "wrong", "unknown gold"}
    assert any(s.x0 == 1.3 for s in fig.layout.shapes)
    assert fig.layout.xaxis.title.text and fig.layout.yaxis.title.text == "samples"


def test_w_prime_histogram_has_two_cuts(samples):
    fig = ds_histogram(samples, sigma=1.25, column="w_prime")
    assert sorted(round(s.x0, 3) for s in fig.layout.shapes) == [0.8, 1.25]


def test_histogram_colors_and_empty(samples):
    fig = ds_histogram(samples, 1.2)
    colors = {t.name: t.marker.color for t in fig.data}
    assert colors.get("correct") == charts.COLORS["correct"] and colors.get("wrong") == charts.COLORS["wrong"]
    assert ds_histogram(samples.iloc[:0], None).layout.annotations  # message, no exception


def test_histogram_without_gold(samples):
    fig = ds_histogram(samples.assign(is_correct=pd.NA), 1.2)
    assert [t.name for t in fig.data] == ["unknown gold"]


def test_percentile_table_matches_filter(samples):
    table = charts.percentile_table(samples, np.array([10, 50, 80, 100]))
    for k, sigma in zip(table["k"], table["sigma"]):
        assert sigma == pytest.approx(iwsi_filter(samples, k)[1])
    assert table["sigma"].is_monotonic_increasing


def test_percentile_curves_one_trace_per_label(samples):
    t = pd.concat([charts.percentile_table(samples).assign(label=x) for x in ("a", "b")])
    fig = charts.percentile_curves(t, k=80)
    assert [tr.name for tr in fig.data] == ["a", "b"]
    assert charts.percentile_curves(t.iloc[:0]).layout.annotations


def test_correctness_by_interval_shares(samples):
    edges = [1, 1.1, 1.3, 1.5, 2, math.inf]
    fig = charts.correctness_by_interval(samples, edges)
    correct, wrong = fig.data
    assert list(correct.x) == ["[1, 1.1)", "[1.1, 1.3)", "[1.3, 1.5)", "[1.5, 2)", "[2, ∞)"]
    known = samples[samples["is_correct"].notna()]
    n = np.histogram(known["ds_weight"], bins=[1, 1.1, 1.3, 1.5, 2, 1e9])[0]
    for c, w, count in zip(correct.y, wrong.y, n):
        assert c + w == pytest.approx(100 if count else 0)
    first = known[known["ds_weight"] < 1.1]["is_correct"].astype(bool).mean() * 100
    assert correct.y[0] == pytest.approx(first)


def test_correctness_without_gold(samples):
    fig = charts.correctness_by_interval(samples.assign(is_correct=pd.NA))
    assert "no gold" in fig.layout.annotations[0].text


def test_density_integrates_to_one():
    v = np.random.default_rng(0).lognormal(0, 0.3, 10_000)
    grid, dens = charts.density_curve(v, 0, 5)
    assert np.trapezoid(dens, grid) == pytest.approx(1, abs=0.02)
    assert charts.density_curve(np.array([1.0]), 0, 2)[1].sum() == 0


def test_ds_density_by_uncertainty(samples):
    fig = charts.ds_density_by_uncertainty(samples, [1.0, 0.2])
    assert [t.name.split(" (")[0] for t in fig.data] == ["u* = 0.2", "u* = 1"]
    assert f"n={len(samples):,}" in fig.data[1].name


def test_loss_densities_legend_has_mean_and_std(samples):
    v = np.array([0.7, 0.8, 0.9])
    fig = charts.loss_densities(v, samples["loss"].to_numpy(), samples["loss"].to_numpy()[:10])
    assert fig.data[0].name.startswith("valid: μ=0.800")
    assert [t.marker.color if t.mode == "markers" else t.line.color for t in fig.data] == [
        charts.COLORS["valid"], charts.COLORS["self"], charts.COLORS["kept"]]


def test_umap_points_caps_self_and_keeps_valid(run, monkeypatch):
    um = pd.read_parquet(run / "umap.parquet")
    kept, majority = np.zeros(len(um), bool), np.arange(len(um)) % 2 == 0
    pts = charts.umap_points(um, kept, majority, max_points=50)
    assert (pts["source"] == "valid").sum() == (um["source"] == "valid").sum()
    assert (pts["source"] == "self").sum() == 50
    assert len(charts.umap_points(um, kept, majority, max_points=None)) == len(um)
    fig = charts.umap_scatter(pts, "after")
    assert all(type(t) is go.Scatter for t in fig.data)  # few points: SVG
    monkeypatch.setattr(charts, "SVG_MAX_POINTS", len(pts) - 1)
    assert all(isinstance(t, go.Scattergl) for t in charts.umap_scatter(pts, "after").data)  # many: WebGL
    assert {t.name.split(" (")[0] for t in fig.data} == {"removed by the vote", "removed by the cut", "kept", "valid"}
    assert charts.umap_scatter(pts, "before").data[0].name.startswith("self-generated")


def test_ablation_summary_and_charts(tmp_path):
    res = pd.read_parquet(make_ablation_dir(tmp_path / "abl") / "results.parquet")
    s = charts.ablation_summary(res)
    assert set(s.columns) >= {"dataset", "method", "k", "seeds", "mean", "ci_low", "ci_high"}
    assert (s["seeds"] == 3).all() and (s["ci_low"] <= s["mean"]).all() and (s["mean"] <= s["ci_high"]).all()
    first = s.iloc[0]
    accs = res[(res.dataset == first.dataset) & (res.method == first.method) & (res.k == first.k)]["accuracy"]
    assert first.ci_high - first["mean"] == pytest.approx(report.mean_ci(accs)[1])  # same t-CI as results.md
    assert len(charts.accuracy_vs_k(res).data) == 4
    bars = charts.ablation_bars(res, 80)
    assert {t.name for t in bars.data} == {"iwsi", "lmsi (k-free, control)"}
    assert all(list(t.customdata) == [80.0] * len(t.customdata) for t in bars.data if t.name == "iwsi")  # fixed k
    assert all(len(t.y) == res["dataset"].nunique() and max(t.y) < 1 for t in bars.data)  # one bar per dataset


def test_one_seed_has_no_interval(tmp_path):
    res = pd.read_parquet(make_ablation_dir(tmp_path / "abl") / "results.parquet")
    s = charts.ablation_summary(res[res["seed"] == res["seed"].min()])
    assert (s["seeds"] == 1).all() and s["ci_low"].isna().all() and s["ci_high"].isna().all()
    assert charts.accuracy_vs_k(res.iloc[:0]).layout.annotations


def test_samples_below_the_first_custom_edge_get_their_own_bar():
    """With edges 1.05, 1.1, 1.2 the samples below 1.05 are not counted in [1.05, 1.1)."""
    df = pd.DataFrame({"ds_weight": [1.01] * 13 + [1.07] * 2 + [1.15] * 3 + [1.5], "is_correct": [True] * 19})
    fig = charts.correctness_by_interval(df, [1.05, 1.1, 1.2, math.inf])
    wrong = next(t for t in fig.data if t.name == "wrong")
    assert list(wrong.x) == ["[1, 1.05)", "[1.05, 1.1)", "[1.1, 1.2)", "[1.2, ∞)"]
    assert list(wrong.text) == ["n=13", "n=2", "n=3", "n=1"]


def test_density_curves_of_few_samples_are_hidden():
    df = pd.DataFrame({"ds_weight": np.linspace(1, 2, 100), "entropy": [0.0] * 4 + [0.5] * 96})
    fig = charts.ds_density_by_uncertainty(df, [0.0, 1.0])
    few, many = fig.data
    assert few.visible == "legendonly" and "too few" in few.name and "n=4" in few.name
    assert many.visible is True and "n=100" in many.name


def test_labels_say_what_is_drawn(samples):
    """Titles follow the majority toggle, the folded last bar says so, UMAP legend counts
    are the run's (not the drawn subsample's), σ_k% curves can use a log axis."""
    assert "of all samples" in charts.histogram_base(samples, majority_only=False).layout.title.text
    assert "of majority samples" in charts.histogram_base(samples[samples["is_majority"]]).layout.title.text
    spiky = samples.assign(ds_weight=np.r_[samples["ds_weight"].to_numpy()[:-1], 50.0])
    assert any("last bar: ≥" in a.text for a in charts.histogram_base(spiky).layout.annotations)
    umap = pd.DataFrame({"source": ["valid"] * 5 + ["self"] * 100, "x": np.arange(105.0), "y": np.arange(105.0),
                         "question_id": "q", "sample_id": np.arange(105)})
    kept = np.r_[[False] * 5, [True] * 60, [False] * 40]
    fig = charts.umap_scatter(charts.umap_points(umap, kept, kept, max_points=10), "after",
                              charts.umap_totals(umap, kept, kept))
    assert {t.name.split(" (")[0]: t.name for t in fig.data}["kept"].startswith("kept (60; ")
    table = charts.percentile_table(samples).assign(label="a")
    assert charts.percentile_curves(table, 80, log_y=True).layout.yaxis.type == "log"


def test_from_spec_rebuilds_the_same_figure_with_its_cut(samples):
    """The DS weights page caches the histograms as a dict and rebuilds them unvalidated on every k step."""
    base = charts.histogram_pair(samples)
    rebuilt = charts.add_pair_cut(charts.from_spec(base.to_dict()), 1.3)
    assert rebuilt.to_plotly_json() == charts.add_pair_cut(charts.histogram_pair(samples), 1.3).to_plotly_json()
    assert rebuilt.layout.template.layout.plot_bgcolor == base.layout.template.layout.plot_bgcolor


def test_layout_turns_automargin_off(samples):
    """automargin made plotly.js lay out each chart twice (docs/benchmarks.md); the fixed margins hold the ticks."""
    fig = charts.histogram_base(samples)
    assert fig.layout.xaxis.automargin is False and fig.layout.yaxis.automargin is False


def test_the_histogram_pair_holds_both_histograms_and_their_cuts(samples):
    """One figure, two panels: each panel's bars are histogram_base's, its traces name their column (a click maps
    back), the legend shows each group once, and the cut sits at σ on w_DS and at 1/σ and σ on w′."""
    pair = charts.add_pair_cut(charts.histogram_pair(samples), 1.25)
    for column, axis in charts.PAIR.items():
        single = charts.histogram_base(samples, column)
        panel = [t for t in pair.data if t.meta == column]
        assert [t.xaxis for t in panel] == [f"x{axis}"] * len(single.data)
        assert [(t.name, list(t.y)) for t in panel] == [(t.name, list(t.y)) for t in single.data]
        assert sorted(s.x0 for s in pair.layout.shapes if s.xref == f"x{axis}") == (
            [1.25] if column == "ds_weight" else [1 / 1.25, 1.25])
        assert any(single.layout.title.text in a.text for a in pair.layout.annotations)
    assert [t.name for t in pair.data if t.showlegend] == list(charts.correctness_groups(samples))
    empty = charts.add_pair_cut(charts.histogram_pair(samples.iloc[:0]), 1.25)
    assert not empty.data and any(a.text == "no samples" for a in empty.layout.annotations)


def test_training_loss_draws_the_loss_its_smoothed_curve_and_the_learning_rate():
    log = pd.DataFrame({"step": range(1, 9), "loss": [3.0, 2.0, 2.5, 1.5, 1.8, 1.2, 1.4, 1.0],
                        "learning_rate": np.linspace(3e-4, 0, 8), "epoch": np.arange(1, 9) / 4,
                        "time": ["2026-12-07T10:00:00+00:00"] * 8})
    fig = charts.training_loss(log)
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"loss", "loss, smoothed (EMA 0.6)", "learning rate"}
    assert list(traces["loss"].y) == log["loss"].tolist() and list(traces["loss"].x) == list(range(1, 9))
    smooth = np.asarray(traces["loss, smoothed (EMA 0.6)"].y)
    assert smooth[0] == pytest.approx(3.0) and np.ptp(smooth) < np.ptp(log["loss"])  # debiased: from the first loss
    assert traces["learning rate"].yaxis == "y2" and fig.layout.yaxis2.title.text == "learning rate"
    assert fig.layout.xaxis.title.text == "optimizer step" and fig.layout.yaxis.title.text == "loss"
    few = charts.training_loss(log.head(3).assign(learning_rate=np.nan))  # 3 steps, no rate: the raw loss only
    assert [t.name for t in few.data] == ["loss"]
    assert charts.training_loss(log.iloc[:0]).layout.annotations  # no step yet: a message, no exception
