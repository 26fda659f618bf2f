"""Chart builders for the dashboard: pure functions DataFrame → plotly Figure (no streamlit).

Large tables are reduced with numpy first (histogram bins, smoothed densities, capped scatter
points), so a 100k-sample run sends a few hundred numbers to the browser, not 100k points.
Colours are fixed across pages: correct green, wrong red, valid blue, self-generated orange,
kept purple, removed by the vote grey, removed by the cut brown. Tested in tests/test_charts.py without Streamlit.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from iwsi.filtering import METHODS, num_to_keep

# the cut line is mid grey: seen on the light and the dark theme
COLORS = {"correct": "#2ca02c", "wrong": "#d62728", "unknown": "#9e9e9e", "valid": "#1f77b4",
          "self": "#ff7f0e", "kept": "#9467bd", "dropped": "#a0a0a0", "cut_removed": "#8c564b", "cut": "#7f7f7f"}
METHOD_COLORS = ["#9467bd", "#ff7f0e", "#1f77b4", "#2ca02c", "#d62728", "#8c564b", "#e377c2", "#17becf"]
DS_LABEL = "DS weight w_DS = max(w′, 1/w′)"
DEFAULT_EDGES = (1.0, 1.1, 1.3, 1.5, 2.0, math.inf)
DEFAULT_THRESHOLDS = (0.2, 0.4, 0.6, 1.0)  # u* of the DS-density chart (paper Fig. 5)
# u* curves: mid-tone colours that read on the light and the dark theme (contrast ≥ 3:1 on both backgrounds)
U_PALETTE = ["#1f77b4", "#0f8f8f", "#7b6fd0", "#c0661a", "#d0407a", "#6f8f1f"]
MIN_DENSITY_N = 20  # fewer values than this: no density curve (u* curves: hidden; losses: one tick per value)


def _layout(fig: go.Figure, title: str, x: str, y: str, **kw) -> go.Figure:
    # Legend below the x-axis title: it never hides the title, the data or the σ_k% label.
    fig.update_layout(title=dict(text=title, x=0, xanchor="left"), xaxis_title=x, yaxis_title=y,
                      template="plotly_white", height=kw.pop("height", 420), showlegend=True,
                      legend=dict(orientation="h", yanchor="top", y=-0.2, xanchor="left", x=0),
                      modebar=dict(orientation="v"),  # on the right edge: it never covers the title
                      margin=dict(l=60, r=45, t=50, b=40), **kw)  # r: room for the modebar
    # The margins above hold the tick labels; the template's automargin made plotly.js lay out every chart
    # twice: 44 → 26 ms per newPlot, ~37 ms of each k-slider step (docs/benchmarks.md, 2026-12-04 Zen 3).
    return fig.update_xaxes(automargin=False).update_yaxes(automargin=False)


def from_spec(spec: dict) -> go.Figure:
    """A figure from `fig.to_dict()` of a figure built here, without validating it a second time.

    The dashboard caches figures as dicts; validating one again re-checks the whole template, 12 ms per figure
    on every rerun (vs 0.8 ms), measured on the DS-weight histograms (docs/benchmarks.md, 2026-12-04)."""
    return go.Figure(spec, _validate=False)  # plotly's own switch (plotly.io.templates uses it the same way)


def _empty(title: str, message: str) -> go.Figure:
    fig = _layout(go.Figure(), title, "", "")
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper", font=dict(size=14))
    return fig.update_xaxes(visible=False).update_yaxes(visible=False)


def correctness_groups(df: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """correct / wrong where gold is known, unknown otherwise (only non-empty groups)."""
    known = df["is_correct"].notna() if "is_correct" in df else pd.Series(False, index=df.index)
    ok = df["is_correct"].fillna(False).astype(bool) if "is_correct" in df else known
    groups = {"correct": df[known & ok], "wrong": df[known & ~ok], "unknown gold": df[~known]}
    return {k: v for k, v in groups.items() if len(v)}


# -- DS weight histograms (DS weights page) ---------------------------------------------------------

def _upper(values: np.ndarray, q: float = 99.5) -> float:
    return float(np.percentile(values, q)) if len(values) else 1.0


def histogram_edges(values: np.ndarray, bins: int | None = None) -> np.ndarray:
    """Bin edges of a DS-weight histogram: min to the 99.5th percentile (the top 0.5 % is folded into
    the last bin so one outlier does not squash the plot); few samples → few, wider bins."""
    lo = float(values.min())
    hi = max(_upper(values), lo + 1e-6)
    return np.linspace(lo, hi, (bins or int(np.clip(2 * np.sqrt(len(values)), 8, 60))) + 1)


def bar_index(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bar of each value, as np.histogram counts it ([a, b) bins, the last one closed), values beyond
    either end folded into the first / last bar."""
    idx = np.searchsorted(edges, np.clip(values, edges[0], edges[-1]), side="right") - 1
    return np.clip(idx, 0, len(edges) - 2)


def histogram_base(samples: pd.DataFrame, column: str = "ds_weight", bins: int | None = None,
                   majority_only: bool = True) -> go.Figure:
    """Stacked histogram (precomputed bins) of `column` by correctness, without the k-dependent cut.

    Independent of k, so the dashboard caches it and only redraws the cut when the slider moves.
    The top 0.5 % is folded into the last bin so one outlier does not squash the plot."""
    which = "majority samples" if majority_only else "all samples"
    title = {"ds_weight": f"DS weight of {which}",
             "w_prime": f"Importance weight w′ = L̄_v / L of {which}"}.get(column, column)
    values = samples[column].to_numpy(float)
    if not len(values):
        return _empty(title, "no samples")
    edges = histogram_edges(values, bins)
    hi = edges[-1]
    fig = go.Figure()
    for name, group in correctness_groups(samples).items():
        counts = np.bincount(bar_index(group[column].to_numpy(float), edges), minlength=len(edges) - 1)
        # customdata: the bar's index, so a click on it can list its samples (bar_index)
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name=name,
                    marker_color=COLORS.get(name, COLORS["unknown"]), marker_line_width=0,
                    customdata=np.arange(len(counts)),
                    hovertemplate="%{x:.3f}: %{y} samples<extra>" + name + "</extra>")
    fig.update_layout(barmode="stack", bargap=0)
    folded = int((values > hi).sum())
    if folded:  # the last bar also holds the top 0.5 %: say so on it
        fig.add_annotation(x=1, xref="paper", y=1.0, yref="paper", text=f"last bar: ≥ {edges[-2]:.3g} ({folded:,} "
                           f"above {hi:.3g})", showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11))
    xlabel = DS_LABEL if column == "ds_weight" else "w′ = L̄_v / L (kept band: 1/σ ≤ w′ ≤ σ)"
    return _layout(fig, title, xlabel, "samples")


def add_cut(fig: go.Figure, sigma: float | None, column: str = "ds_weight", axis: str = "") -> go.Figure:
    """Dashed σ_k% line on a DS-weight histogram; on w′ the kept band is [1/σ, σ]. `axis`: the panel's axis
    suffix in a figure of several ("2" for x2/y2), "" for a single histogram."""
    if sigma is None or not math.isfinite(sigma) or not fig.data:
        return fig
    cuts = [sigma] if column == "ds_weight" else [1 / sigma, sigma]
    xref, yref = f"x{axis}", f"y{axis} domain"
    for cut in cuts:
        fig.add_shape(type="line", x0=cut, x1=cut, y0=0, y1=1, xref=xref, yref=yref,
                      line=dict(color=COLORS["cut"], dash="dash", width=2))
    fig.add_annotation(x=cuts[-1], y=0.98, xref=xref, yref=yref, text=f" σ_k% = {sigma:.3f}", showarrow=False,
                       xanchor="left", yanchor="top", font=dict(size=12), bgcolor="rgba(127,127,127,0.15)")
    return fig


PAIR = {"ds_weight": "", "w_prime": "2"}  # histogram_pair's panels: column → axis suffix, w_DS left
SYMBOLS = {"ds_weight": "w_DS", "w_prime": "w′"}


def histogram_pair(samples: pd.DataFrame, majority_only: bool = True) -> go.Figure:
    """The w_DS and w′ histograms (histogram_base) side by side in one figure, without the cut (add_pair_cut).

    One chart, not two, because the DS weights page's chart is rebuilt in the browser on every k step (its
    widget id follows the figure): one plot to lay out instead of two (docs/benchmarks.md, 2026-12-04 evening).
    Each trace's `meta` is its column, so a click maps back to its histogram; a legend entry toggles a
    correctness group in both panels."""
    if not len(samples):
        return _empty(f"w_DS and w′ of {'majority' if majority_only else 'all'} samples", "no samples")
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1)
    for col, (column, axis) in enumerate(PAIR.items(), start=1):
        single = histogram_base(samples, column, majority_only=majority_only)
        for trace in single.data:
            fig.add_trace(trace.update(meta=column, legendgroup=trace.name, showlegend=col == 1), row=1, col=col)
        domain = f"x{axis} domain"
        # each panel's title is the single histogram's title, and its note (last bar) moves with it
        fig.add_annotation(text=f"<b>{single.layout.title.text}</b>", x=0, xref=domain, y=1.06, yref="paper",
                           xanchor="left", yanchor="bottom", showarrow=False, font=dict(size=14))
        for note in single.layout.annotations:
            fig.add_annotation(note.update(xref=domain if note.xref == "paper" else f"x{axis}",
                                           yref=f"y{axis} domain" if note.yref == "paper" else f"y{axis}"))
        fig.update_xaxes(title_text=single.layout.xaxis.title.text, row=1, col=col)
        fig.update_yaxes(title_text=single.layout.yaxis.title.text, row=1, col=col)
    fig.update_layout(barmode="stack", bargap=0)
    return _layout(fig, "", fig.layout.xaxis.title.text, "samples")


def add_pair_cut(fig: go.Figure, sigma: float | None) -> go.Figure:
    """add_cut on both panels of histogram_pair."""
    for column, axis in PAIR.items():
        add_cut(fig, sigma, column, axis)
    return fig


def ds_weight_overlay(samples: pd.DataFrame, which: str = "kept samples") -> go.Figure:
    """Overlaid DS-weight histograms of several runs (Compare page): samples has `run` and `ds_weight` (the
    rows to draw, e.g. each run's kept set: `which` names them); shared bins, bar heights as a share of each
    run's rows (runs differ in size)."""
    title = f"DS weight of the {which}, runs overlaid"
    values = samples["ds_weight"].to_numpy(float) if len(samples) else np.array([])
    if not len(values):
        return _empty(title, "no samples")
    edges = histogram_edges(values)
    fig = go.Figure()
    for i, (run, part) in enumerate(samples.groupby("run", sort=False)):
        counts = np.bincount(bar_index(part["ds_weight"].to_numpy(float), edges), minlength=len(edges) - 1)
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=100 * counts / len(part), width=np.diff(edges),
                    name=f"{run} (n={len(part):,})", marker_color=METHOD_COLORS[i % len(METHOD_COLORS)],
                    opacity=0.55, marker_line_width=0,
                    hovertemplate="%{x:.3f}: %{y:.1f} %<extra>" + str(run) + "</extra>")
    fig.update_layout(barmode="overlay", bargap=0)
    if (values > edges[-1]).any():
        fig.add_annotation(x=1, xref="paper", y=1.0, yref="paper", text=f"last bar: ≥ {edges[-2]:.3g}",
                           showarrow=False, xanchor="right", yanchor="bottom", font=dict(size=11))
    return _layout(fig, title, DS_LABEL, f"share of the run's {which} (%)")


# -- percentiles and accuracy against k (Percentiles page, paper Figs. 2-3) -------------------------

def percentile_table(samples: pd.DataFrame, ks: np.ndarray | None = None) -> pd.DataFrame:
    """σ_k% (the k-th percentile of the majority DS weights) for each k → k, sigma."""
    ks = np.arange(5, 101, 5) if ks is None else np.asarray(ks)
    maj = np.sort(samples.loc[samples["is_majority"].astype(bool), "ds_weight"].to_numpy(float))
    if not len(maj):
        return pd.DataFrame({"k": ks, "sigma": np.nan})
    # the IWSI cut at each k (filtering.iwsi keeps the num_to_keep lowest), on the sorted weights at once
    idx = [num_to_keep(len(maj), k) - 1 for k in ks]
    return pd.DataFrame({"k": ks, "sigma": maj[idx]})


def percentile_curves(table: pd.DataFrame, k: float | None = None, log_y: bool = False) -> go.Figure:
    """table: label, k, sigma (one curve per label, e.g. a run or dataset) — paper Fig. 3. The k = 100
    point is the largest weight, often an outlier that flattens the rest: `log_y` spreads it out."""
    title = "DS-weight percentile σ_k% against k"
    if table.empty:
        return _empty(title, "no runs selected")
    fig = go.Figure()
    for i, (label, part) in enumerate(table.groupby("label", sort=False)):
        fig.add_scatter(x=part["k"], y=part["sigma"], mode="lines+markers", name=str(label),
                        line=dict(color=METHOD_COLORS[i % len(METHOD_COLORS)]))
    if k is not None:
        fig.add_vline(x=k, line=dict(color=COLORS["cut"], dash="dash"))
    fig = _layout(fig, title, "k (% of majority samples kept)", "σ_k% (DS weight)")
    if log_y:
        fig.update_yaxes(type="log")
    return fig


def ablation_summary(results: pd.DataFrame) -> pd.DataFrame:
    """Mean accuracy over seeds with the t-based 95 % CI of the results table (`iwsi.report.mean_ci`)
    → dataset, method, k, seeds, mean, ci_low, ci_high, kept, kept_correct (where recorded)."""
    from iwsi.report import mean_ci

    g = results.groupby(["dataset", "method", "k"], sort=True)
    out = g["accuracy"].agg(seeds="count", mean="mean").reset_index()
    half = g["accuracy"].apply(lambda s: mean_ci(s)[1]).to_numpy(float)  # NaN with one seed: no interval
    out["ci_low"], out["ci_high"] = out["mean"] - half, out["mean"] + half
    for column, name in (("num_kept", "kept"), ("kept_correct", "kept_correct")):
        if column in results:
            out[name] = g[column].mean().to_numpy()
    return out


def accuracy_vs_k(results: pd.DataFrame) -> go.Figure:
    """Accuracy (mean ± 95 % CI over seeds) against k per dataset and method — paper Fig. 2."""
    title = "Accuracy against k"
    if results.empty:
        return _empty(title, "no ablation results")
    s = ablation_summary(results)
    free = s["method"].map(k_free)
    ks = s.loc[~free, "k"]
    span = [float(ks.min()), float(ks.max())] if len(ks) else [0.0, 100.0]
    fig = go.Figure()
    for i, ((dataset, method), part) in enumerate(s.groupby(["dataset", "method"], sort=True)):
        color = METHOD_COLORS[i % len(METHOD_COLORS)]
        if k_free(method):  # run once, whatever k: a level line across the k axis, not a point at k = 100
            mean, lo, hi = part["mean"].mean(), part["ci_low"].mean(), part["ci_high"].mean()
            ci = "" if math.isnan(lo) else f" [{lo:.3f}, {hi:.3f}]"
            fig.add_scatter(x=span, y=[mean, mean], mode="lines", name=f"{dataset} · {method} (k-free)",
                            line=dict(color=color, dash="dash"),
                            hovertemplate=f"{mean:.3f}{ci}, at every k<extra>{dataset} · {method}</extra>")
            continue
        fig.add_scatter(x=part["k"], y=part["mean"], mode="lines+markers", name=f"{dataset} · {method}",
                        line=dict(color=color),
                        error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["mean"],
                                     arrayminus=part["mean"] - part["ci_low"]))
    return _layout(fig, title, "k (% of majority samples kept)", "test accuracy")


def k_free(method: str) -> bool:
    """The method ignores k (an ablation runs it once and records it at k = 100)."""
    return method in METHODS and not METHODS[method].uses_k


def ablation_bars(results: pd.DataFrame, k: float) -> go.Figure:
    """Grouped bars: mean accuracy per dataset, one bar per method at one fixed k (k-free methods: their one
    run, marked "k-free"), 95 % CI whiskers. A fixed k, not each method's best: a k chosen on the test set
    flatters."""
    from iwsi.report import at_k

    title = f"Accuracy by method at k = {k:g} (k-free methods: their one run)"
    if results.empty:
        return _empty(title, "no ablation results")
    best = ablation_summary(at_k(results, k))
    fig = go.Figure()
    for i, (method, part) in enumerate(best.groupby("method", sort=True)):
        control = method in METHODS and METHODS[method].control  # controls hatched: references, not methods
        tags = ", ".join(t for t, on in (("k-free", k_free(method)), ("control", control)) if on)
        at = "k-free" if k_free(method) else "k=%{customdata}"
        fig.add_bar(x=part["dataset"], y=part["mean"], name=str(method) + (f" ({tags})" if tags else ""),
                    marker_color=METHOD_COLORS[i % len(METHOD_COLORS)], marker_pattern_shape="/" if control else "",
                    customdata=part["k"],
                    hovertemplate="%{x} · " + at + ": %{y:.3f}<extra>" + str(method) + "</extra>",
                    error_y=dict(type="data", symmetric=False, array=part["ci_high"] - part["mean"],
                                 arrayminus=part["mean"] - part["ci_low"]))
    fig.update_layout(barmode="group")
    return _layout(fig, title, "dataset", "test accuracy")


# -- correctness vs DSE (paper Fig. 5) ---------------------------------------------------------------

def interval_labels(edges) -> list[str]:
    return [f"[{a:g}, {'∞' if math.isinf(b) else f'{b:g}'})" for a, b in zip(edges[:-1], edges[1:])]


def correctness_by_interval(samples: pd.DataFrame, edges=DEFAULT_EDGES) -> go.Figure:
    """Stacked bars: share of correct and wrong answers in each DS-weight interval (gold known only)."""
    title = "Share of correct answers per DS-weight interval"
    known = samples[samples["is_correct"].notna()] if "is_correct" in samples else samples.iloc[:0]
    if known.empty:
        return _empty(title, "no gold answers in this run: correctness is unknown")
    edges = np.asarray(edges, float)
    weights = known["ds_weight"].to_numpy(float)
    if weights.min() < edges[0]:  # custom edges above the smallest weight: those samples get their own bar
        edges = np.r_[min(1.0, weights.min()), edges]
    idx = np.digitize(weights, edges[1:-1])  # interval index 0..len-2
    ok = known["is_correct"].astype(bool).to_numpy()
    n = np.bincount(idx, minlength=len(edges) - 1)
    right = np.bincount(idx, weights=ok, minlength=len(edges) - 1)
    share = np.divide(right, n, out=np.zeros(len(n)), where=n > 0)
    labels = interval_labels(edges)
    fig = go.Figure()
    # textangle 0: plotly turns a label that does not fit its bar's width by 90°, unreadable; level, it shrinks
    fig.add_bar(x=labels, y=share * 100, name="correct", marker_color=COLORS["correct"],
                text=[f"{v:.0%}" if c else "" for v, c in zip(share, n)], textposition="inside", textangle=0)
    fig.add_bar(x=labels, y=(1 - share) * 100 * (n > 0), name="wrong", marker_color=COLORS["wrong"],
                text=[f"n={c:,}" for c in n], textposition="outside", textangle=0, cliponaxis=False)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(range=[0, 112])
    return _layout(fig, title, "DS-weight interval", "share of samples (%)")


def correctness_trend(samples: pd.DataFrame) -> dict | None:
    """What the run shows on the paper's claim (higher DS weight, more wrong answers): share correct at or below
    the median DS weight vs above it (gold known), their difference low − high and its 95 % normal interval.
    None with too few samples to split."""
    known = samples[samples["is_correct"].notna()] if "is_correct" in samples else samples.iloc[:0]
    w, ok = known["ds_weight"].to_numpy(float), known["is_correct"].astype(bool).to_numpy()
    if not len(w):
        return None
    median = float(np.median(w))
    low = w <= median
    if low.all():
        return None
    p_low, p_high = float(ok[low].mean()), float(ok[~low].mean())
    half = 1.96 * math.sqrt(p_low * (1 - p_low) / low.sum() + p_high * (1 - p_high) / (~low).sum())
    diff = p_low - p_high
    return {"median": median, "low": p_low, "high": p_high, "n_low": int(low.sum()), "n_high": int((~low).sum()),
            "diff": diff, "lo": diff - half, "hi": diff + half}


# -- densities (Correctness page bottom, Distributions page) -----------------------------------------

def density_curve(values: np.ndarray, lo: float, hi: float, points: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian KDE (Silverman bandwidth) evaluated via fine binning + convolution: O(n + points²)."""
    values = np.asarray(values, float)
    grid = np.linspace(lo, hi, points)
    if len(values) < 2 or hi <= lo:
        return grid, np.zeros(points)
    std = values.std()
    iqr = np.subtract(*np.percentile(values, [75, 25]))
    bw = 0.9 * min(std, iqr / 1.34 if iqr > 0 else std) * len(values) ** -0.2 or (hi - lo) / 50
    step = grid[1] - grid[0]
    counts, _ = np.histogram(values, bins=points, range=(lo - step / 2, hi + step / 2))
    half = int(min(points - 1, math.ceil(4 * bw / step)))
    kernel = np.exp(-0.5 * (np.arange(-half, half + 1) * step / bw) ** 2)
    dens = np.convolve(counts, kernel, mode="full")[half: half + points]
    dens = dens / (len(values) * bw * math.sqrt(2 * math.pi))
    return grid, dens


def ds_density_by_uncertainty(samples: pd.DataFrame, thresholds) -> go.Figure:
    """Density of the DS weight for samples of questions with entropy u ≤ u* — paper Fig. 5 (bottom)."""
    title = "DS-weight density by answer uncertainty u*"
    if samples.empty:
        return _empty(title, "no samples")
    w, u = samples["ds_weight"].to_numpy(float), samples["entropy"].to_numpy(float)
    hi = _upper(w, 99.0)
    fig = go.Figure()
    for i, t in enumerate(sorted(thresholds)):
        sel = w[u <= t + 1e-12]
        grid, dens = density_curve(sel, 1.0, hi)
        few = len(sel) < MIN_DENSITY_N  # a KDE of a handful of points spikes: listed, hidden until clicked
        fig.add_scatter(x=grid, y=dens, mode="lines", line=dict(color=U_PALETTE[i % len(U_PALETTE)], width=2),
                        name=f"u* = {t:g} (n={len(sel):,}{', too few: hidden' if few else ''})",
                        visible="legendonly" if few else True)
    return _layout(fig, title, DS_LABEL, "density")


def loss_densities(valid_loss: np.ndarray, self_loss: np.ndarray, kept_loss: np.ndarray,
                   k: float | None = None) -> go.Figure:
    """Loss densities of the valid set, all self-generated and the kept samples, μ and σ in the legend — Fig. 4.
    A group of fewer than MIN_DENSITY_N losses is drawn as one tick per loss on the x-axis, not a density."""
    title = "Loss distributions (mean token NLL under the base model)"
    parts = [("valid", valid_loss, COLORS["valid"]), ("self-generated (all)", self_loss, COLORS["self"]),
             ("kept (current k)" if k is None else f"kept (k = {k:g})", kept_loss, COLORS["kept"])]
    allv = np.concatenate([np.asarray(v, float) for _, v, _ in parts])
    if not len(allv):
        return _empty(title, "no losses")
    lo, hi = float(allv.min()), _upper(allv, 99.5)
    pad = 0.08 * (hi - lo)  # room for the tails of the smoothed curves
    lo, hi = max(0.0, lo - pad), hi + pad
    fig = go.Figure()
    for name, vals, color in parts:
        vals = np.asarray(vals, float)
        if not len(vals):
            continue
        mu, sd = float(vals.mean()), float(vals.std())
        label = f"{name}: μ={mu:.3f}, σ={sd:.3f}, n={len(vals):,}"
        if len(vals) < MIN_DENSITY_N:  # a KDE of a handful of losses invents a smooth shape: show each loss
            fig.add_scatter(x=vals, y=np.zeros(len(vals)), mode="markers", name=f"{label} (each loss)",
                            marker=dict(color=color, symbol="line-ns-open", size=22, line=dict(width=2, color=color)),
                            hovertemplate="loss %{x:.3f}<extra>" + name + "</extra>")
        else:
            grid, dens = density_curve(vals, lo, hi)
            fig.add_scatter(x=grid, y=dens, mode="lines", name=label, line=dict(color=color, width=2.5),
                            fill="tozeroy" if name == "valid" else None)
        fig.add_vline(x=mu, line=dict(color=color, dash="dot", width=1))
    return _layout(fig, title, "loss L (nats per token)", "density")


# -- UMAP map (Distributions page) ----------------------------------------------------------------

UMAP_POINTS = 2000  # self points drawn by default: the map's shape shows, and it stays an SVG chart (below)
SVG_MAX_POINTS = 2500  # up to here SVG markers; above, WebGL (Scattergl)


def umap_points(umap: pd.DataFrame, kept: np.ndarray, majority: np.ndarray, max_points: int | None = UMAP_POINTS,
                seed: int = 0) -> pd.DataFrame:
    """Rows to draw: every valid point plus at most `max_points` self points (uniform, fixed seed).

    `kept` and `majority` (in D_c, the vote's winners) are booleans per umap row (False for valid); max_points
    None draws every point. Keeps the original row number in `row`."""
    df = umap.assign(row=np.arange(len(umap)), kept=kept, majority=majority)
    self_idx = np.flatnonzero((df["source"] == "self").to_numpy())  # not .to_numpy() == : 8.6 vs 0.8 ms (Arrow strings)
    if max_points is not None and len(self_idx) > max_points:
        drop = np.random.default_rng(seed).choice(self_idx, len(self_idx) - max_points, replace=False)
        df = df.drop(index=df.index[drop])
    return df


VOTE_REMOVED, CUT_REMOVED = "removed by the vote", "removed by the cut"


def _removed(self_: np.ndarray, kept: np.ndarray, majority: np.ndarray) -> dict[str, np.ndarray]:
    # Two reasons a self-generated sample is not trained on: its answer lost the vote (outside D_c), or the
    # method's cut dropped it from D_c. The paper's before/after (§5) is about the cut: the two are told apart.
    return {VOTE_REMOVED: self_ & ~kept & ~majority, CUT_REMOVED: self_ & ~kept & majority}


def umap_totals(umap: pd.DataFrame, kept: np.ndarray, majority: np.ndarray) -> dict[str, int]:
    """Counts of umap_scatter's layers over every point of the run (not the drawn subsample)."""
    self_ = (umap["source"] == "self").to_numpy(bool)
    removed = {name: int(mask.sum()) for name, mask in _removed(self_, kept, majority).items()}
    return {**removed, "kept": int((self_ & kept).sum()), "self-generated": int(self_.sum()),
            "valid (human)": int((~self_).sum())}


UMAP_COLOR_BY = {"w_DS": "ds_weight", "loss": "loss", "correct": "is_correct"}  # label → samples column


def umap_colored(points: pd.DataFrame, label: str) -> go.Figure:
    """The UMAP map with each self-generated point coloured by its value (`points["value"]`: w_DS, loss, or
    correct = 1 / wrong = 0) on a continuous scale, as Phoenix and Embedding Atlas colour theirs: the 1st to 99th
    percentile spans the scale, so a few extreme weights do not flatten the rest into one colour. Points without
    a value (no gold answer) are grey; valid points as in umap_scatter. points: umap_points' rows + `value`."""
    title = f"UMAP of base-model embeddings, coloured by {label}"
    if points.empty:
        return _empty(title, "no embeddings")
    src = points["source"].to_numpy()
    own = points[src == "self"]
    values = own["value"].to_numpy(float)
    known = np.isfinite(values)
    lo, hi = np.percentile(values[known], [1, 99]) if known.any() else (0.0, 1.0)
    hi = hi if hi > lo else lo + 1.0  # one value throughout: a scale that still draws
    grow = 2.0 if len(points) < 500 else 1.0  # small runs: bigger markers
    trace = go.Scatter if len(points) <= SVG_MAX_POINTS else go.Scattergl
    fig = go.Figure()
    layers = [(own[~known], f"self-generated, no {label} ({(~known).sum():,})",
               dict(color=COLORS["unknown"], size=4 * grow, opacity=0.5)),
              (own[known], f"self-generated ({known.sum():,})",
               dict(color=values[known], colorscale="Viridis", cmin=float(lo), cmax=float(hi), size=5 * grow,
                    opacity=0.75, colorbar=dict(title=dict(text=label), thickness=12, len=0.8))),
              (points[src == "valid"], f"valid (human) ({(src == 'valid').sum():,})",
               dict(color=COLORS["valid"], size=9 * grow, opacity=0.95))]
    for part, name, marker in layers:
        if len(part):
            fig.add_trace(trace(x=part["x"], y=part["y"], mode="markers", name=name, customdata=part["row"],
                                marker=marker, hovertemplate="row %{customdata}<extra>" + name + "</extra>"))
    fig.update_layout(dragmode="lasso")
    # the colour bar sits right of the plot: room for it beside the modebar
    return _layout(fig, title, "UMAP 1", "UMAP 2", height=560).update_layout(margin=dict(r=120))


def umap_scatter(points: pd.DataFrame, view: str = "after", totals: dict[str, int] | None = None,
                 k: float | None = None) -> go.Figure:
    """Map of valid (blue) vs self-generated samples; `after` greys out those the vote removed and marks
    those the cut at k removed.

    SVG markers up to SVG_MAX_POINTS, WebGL above: where the browser draws WebGL in software (headless Chromium
    on a 2-core CPU), a WebGL chart took 0.4-0.9 s to appear against ~0.3 s for 2,000 SVG points, while SVG
    slows down past a few thousand markers (docs/benchmarks.md, 2026-12-04).
    points: output of umap_points (source, x, y, kept, majority, row); customdata carries `row` for selections.
    totals: each layer's count in the whole run (umap_totals), shown in the legend beside what is drawn."""
    at = "current k" if k is None else f"k = {k:g}"
    title = "UMAP of base-model embeddings: " + ("before filtering" if view == "before" else f"after filtering ({at})")
    if points.empty:
        return _empty(title, "no embeddings")
    src = points["source"].to_numpy()
    layers = []
    if view == "after":
        self_, kept = src == "self", points["kept"].to_numpy(bool)
        removed = _removed(self_, kept, points["majority"].to_numpy(bool))
        layers.append((VOTE_REMOVED, removed[VOTE_REMOVED], COLORS["dropped"], 4, 0.4))
        layers.append((CUT_REMOVED, removed[CUT_REMOVED], COLORS["cut_removed"], 5, 0.7))
        layers.append(("kept", self_ & kept, COLORS["self"], 5, 0.6))
    else:
        layers.append(("self-generated", src == "self", COLORS["self"], 5, 0.5))
    layers.append(("valid (human)", src == "valid", COLORS["valid"], 9, 0.95))
    fig = go.Figure()
    grow = 2.0 if len(points) < 500 else 1.0  # small runs: bigger markers
    trace = go.Scatter if len(points) <= SVG_MAX_POINTS else go.Scattergl
    for name, mask, color, size, alpha in layers:
        part, size = points[mask], size * grow
        total = (totals or {}).get(name, len(part))
        label = f"{name} ({total:,})" if total == len(part) else f"{name} ({total:,}; {len(part):,} drawn)"
        fig.add_trace(trace(x=part["x"], y=part["y"], mode="markers", name=label,
                                   customdata=part["row"], marker=dict(color=color, size=size, opacity=alpha),
                                   hovertemplate="row %{customdata}<extra>" + name + "</extra>"))
    fig.update_layout(dragmode="lasso")
    return _layout(fig, title, "UMAP 1", "UMAP 2", height=560)


# -- training loss (Runs page) ----------------------------------------------------------------------------

LOSS_SMOOTHING = 0.6  # TensorBoard's default weight of its moving average: the curve reads as it does there


def smoothed(values: np.ndarray, weight: float = LOSS_SMOOTHING) -> np.ndarray:
    """TensorBoard's smoothing: an exponential moving average, debiased so the first steps are not pulled to 0."""
    out, last = np.empty(len(values)), 0.0
    for i, value in enumerate(values):
        last = weight * last + (1 - weight) * value
        out[i] = last / (1 - weight ** (i + 1))
    return out


def training_loss(log: pd.DataFrame) -> go.Figure:
    """The train stage's loss per optimizer step (train_log.jsonl as iwsi.runs.read_train_log reads it: step, loss,
    learning_rate, epoch), its smoothed curve from 5 steps on (one step's batch is noisy), and the learning rate of
    the cosine schedule on a second axis."""
    title = "Training loss per optimizer step"
    if log.empty:
        return _empty(title, "no training step logged yet")
    steps, loss = log["step"].to_numpy(), log["loss"].to_numpy(float)
    curve = len(loss) >= 5
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_scatter(x=steps, y=loss, mode="lines+markers" if len(loss) <= 50 else "lines", name="loss",
                    line=dict(color=COLORS["kept"], width=1), opacity=0.45 if curve else 1.0,
                    customdata=log["epoch"].to_numpy(float),
                    hovertemplate="step %{x}: loss %{y:.4f}, epoch %{customdata:.2f}<extra></extra>")
    if curve:
        fig.add_scatter(x=steps, y=smoothed(loss), mode="lines", name=f"loss, smoothed (EMA {LOSS_SMOOTHING:g})",
                        line=dict(color=COLORS["kept"], width=2.5))
    if log["learning_rate"].notna().any():
        fig.add_scatter(x=steps, y=log["learning_rate"].to_numpy(float), mode="lines", name="learning rate",
                        line=dict(color=COLORS["cut"], dash="dot"), secondary_y=True)
        fig.update_yaxes(title_text="learning rate", exponentformat="e", showgrid=False, secondary_y=True)
    # the learning rate's ticks sit right of the plot: room for them beside the modebar
    return _layout(fig, title, "optimizer step", "loss").update_layout(margin=dict(r=90))
