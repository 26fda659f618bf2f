"""A run's or an ablation's figures and tables for a paper's appendix, as one zip (the dashboard's
"Figures & tables" downloads). No streamlit, no torch: it reads run directories and calls the same
chart builders (`iwsi.charts`) with the same defaults as the pages.

Figures are written as SVG and PDF by kaleido (>= 1, it drives the system Chromium), all in one
batch: `iwsi-<name>-<figure>.svg/.pdf`, plus `iwsi-<name>-<table>.md/.tex`. A run's figures and its table are
made at one k, named in every file (`iwsi-<run>-k<k>-…`) and in the table's caption.
"""
from __future__ import annotations

import io
import math
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from iwsi import charts, filtering
from iwsi.contract import RUN_FILE
from iwsi.export import run_method
from iwsi.report import paired_bootstrap, summary_table, table_k, to_latex, to_markdown
from iwsi.runs import base_accuracy, read_config, read_json

FORMATS = ("svg", "pdf")
WIDTH = 900  # px of the exported figures (their height is the layout's)


def kept_mask(samples: pd.DataFrame, k: float, method: str, threshold: float | None, seed: int,
              run_k: float | None) -> tuple[np.ndarray, float]:
    """Mask of what `method` keeps at k, and σ_k% (IWSI's cut, a reference for every method). At the run's
    own k (`run_k`) the run's `kept` column: exactly the set it trained on."""
    iwsi_kept, sigma = filtering.iwsi(samples, k)
    if "kept" in samples and run_k is not None and math.isclose(k, run_k):
        return samples["kept"].fillna(False).to_numpy(bool), sigma
    kept = iwsi_kept if method == "iwsi" else filtering.select(samples, method, k, threshold, seed)[0]
    return kept.to_numpy(bool), sigma


OUTCOMES = ("win", "loss", "tie: both right", "tie: both wrong")  # for the first model of side_by_side


def side_by_side(ev_a: pd.DataFrame, model_a: str, ev_b: pd.DataFrame, model_b: str,
                 labels: tuple[str, str]) -> pd.DataFrame:
    """Two models' answers to each test question both answered, side by side (LLM Comparator's view): question_id,
    gold, outcome (for the first: win = it is right and the other wrong, loss = the reverse, tie = both right or
    both wrong), then answer and output of each, their columns named by `labels`. Right is what the accuracy
    counts (report.correctness: an unparsed answer is wrong), so wins − losses = n × the paired Δ accuracy."""
    def answers(ev: pd.DataFrame, model: str) -> pd.DataFrame:
        rows = ev[ev["model"] == model].drop_duplicates("question_id")
        return rows.reindex(columns=["question_id", "gold", "answer", "output"]).assign(
            right=rows["is_correct"].fillna(False).astype(bool).to_numpy())

    la, lb = labels
    both = answers(ev_a, model_a).merge(answers(ev_b, model_b).drop(columns="gold"), on="question_id",
                                        suffixes=(f" {la}", f" {lb}"))
    ra, rb = both[f"right {la}"].to_numpy(bool), both[f"right {lb}"].to_numpy(bool)
    both["outcome"] = np.select([ra & ~rb, ~ra & rb, ra & rb], OUTCOMES[:3], OUTCOMES[3])
    return both[["question_id", "gold", "outcome", f"answer {la}", f"answer {lb}", f"output {la}", f"output {lb}"]]


def umap_sample_rows(umap: pd.DataFrame, samples: pd.DataFrame) -> np.ndarray:
    """Row of `samples` for each umap row (-1 for valid points or unmatched ids)."""
    keys = samples[["question_id", "sample_id"]].assign(pos=np.arange(len(samples)))
    joined = umap[["question_id", "sample_id"]].merge(keys, on=["question_id", "sample_id"], how="left")
    pos = joined["pos"].fillna(-1).to_numpy(int)
    return np.where((umap["source"] == "self").to_numpy(bool), pos, -1)


def _read(path: Path) -> pd.DataFrame | None:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError):
        return None


def _kept_at(samples: pd.DataFrame, config: dict, k: float) -> tuple[np.ndarray, float]:
    """The run's own method's kept set at k, and σ_k%."""
    method, threshold, seed = run_method(config)
    run_k = config.get("k") if isinstance(config.get("k"), (int, float)) else None
    return kept_mask(samples, k, method, threshold, seed, run_k)


def run_figures(run: Path, k: float) -> dict[str, go.Figure]:
    """The figures the run's pages draw at their defaults, with the run's own method's kept set at k."""
    samples = pd.read_parquet(run / RUN_FILE.samples)
    config = read_config(run)
    mask, sigma = _kept_at(samples, config, k)
    majority = samples[samples["is_majority"].astype(bool)]
    figures = {name: charts.add_cut(charts.histogram_base(majority, column), sigma, column)
               for name, column in (("ds_weights", "ds_weight"), ("w_prime", "w_prime"))}
    label = f"{config.get('dataset', '?')} · {run.name}"
    figures["percentiles"] = charts.percentile_curves(charts.percentile_table(samples).assign(label=label), k)
    figures["correctness"] = charts.correctness_by_interval(samples)
    figures["ds_density_by_uncertainty"] = charts.ds_density_by_uncertainty(samples, charts.DEFAULT_THRESHOLDS)
    valid = _read(run / RUN_FILE.valid)
    loss = samples["loss"].to_numpy(float)
    figures["loss_densities"] = charts.loss_densities(
        valid["loss"].to_numpy(float) if valid is not None else np.array([]), loss, loss[mask], k=k)
    umap = _read(run / RUN_FILE.umap)
    if umap is not None:
        rows = umap_sample_rows(umap, samples)
        at = np.clip(rows, 0, None)
        kept = np.where(rows >= 0, mask[at], False)
        majority = np.where(rows >= 0, samples["is_majority"].to_numpy(bool)[at], False)
        figures["umap"] = charts.umap_scatter(charts.umap_points(umap, kept, majority), "after",
                                              charts.umap_totals(umap, kept, majority), k=k)
    return figures


def _tex_escape(text: str) -> str:
    return text.replace("\\", "\\textbackslash{}").replace("_", "\\_").replace("%", "\\%").replace("&", "\\&")


def run_table(run: Path, k: float) -> pd.DataFrame:
    """quantity, value: the run's setting, its data at each stage (the kept set at k, the figures' k) and its
    test accuracy (the model trained at the run's own k, with the paired 95 % bootstrap interval of trained − base)."""
    config, metrics = read_config(run), read_json(run / RUN_FILE.metrics) or {}
    acc = metrics.get("accuracy") or {}
    method = filtering.METHODS[run_method(config)[0]]
    samples = pd.read_parquet(run / RUN_FILE.samples)
    mask, sigma = _kept_at(samples, config, k)
    trained_k = config.get("k") if method.uses_k else "– (the method uses no k)"
    rows = [("dataset", config.get("dataset")), ("model", config.get("model")), ("method", method.label),
            ("k the run trained with", trained_k), ("samples per question m", config.get("num_samples")),
            ("candidates", len(samples)), ("majority D_c", int(samples["is_majority"].sum())),
            (f"kept at k = {k:g}" if method.uses_k else "kept (no k)", int(mask.sum())),
            (f"σ_k% at k = {k:g} (IWSI's cut)", float(sigma)),
            ("accuracy base", base_accuracy(run, metrics)),  # from eval_base.parquet before the run has ended
            ("accuracy trained (at the run's own k)", acc.get("trained"))]
    ev = _read(run / RUN_FILE.eval)
    if ev is not None and {"base", "trained"} <= set(ev["model"]):
        wide = ev.pivot_table(index="question_id", columns="model", values="is_correct", aggfunc="first").dropna()
        r = paired_bootstrap(wide["trained"].astype(float).to_numpy(), wide["base"].astype(float).to_numpy())
        rows.append(("trained − base (points, 95 % CI, n)",
                     f"{100 * r['delta']:+.1f} [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}], n = {r['n']}"))
    fmt = lambda v: "–" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)  # noqa: E731
    return pd.DataFrame([(q, fmt(v)) for q, v in rows], columns=["quantity", "value"])


def table_markdown(table: pd.DataFrame, caption: str) -> str:
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + f"\n\n{caption}\n"


def table_latex(table: pd.DataFrame, caption: str) -> str:
    lines = ["\\begin{tabular}{l" + "r" * (len(table.columns) - 1) + "}", "\\toprule",
             " & ".join(map(_tex_escape, table.columns)) + " \\\\", "\\midrule"]
    lines += [" & ".join(_tex_escape(str(v)) for v in row) + " \\\\" for row in table.itertuples(index=False)]
    return "\n".join(lines + ["\\bottomrule", "\\end{tabular}", f"% {_tex_escape(caption)}"]) + "\n"


def run_tables(run: Path, k: float) -> dict[str, str]:
    table = run_table(run, k)
    caption = (f"Run {run.name} at k = {k:g} (the figures' k): setting, data after each stage and test accuracy "
               "of the model the run trained.")
    return {"summary.md": table_markdown(table, caption), "summary.tex": table_latex(table, caption)}


def ablation_figures(results: pd.DataFrame) -> dict[str, go.Figure]:
    """The Ablations page's figures: bars per method at the table's k, accuracy against k."""
    k = table_k(sorted(results["k"].unique().tolist()))
    return {"accuracy_by_method": charts.ablation_bars(results, k), "accuracy_vs_k": charts.accuracy_vs_k(results)}


def ablation_tables(folder: Path, results: pd.DataFrame) -> dict[str, str]:
    """results.md / results.tex as `iwsi ablate` wrote them; one that is absent is rebuilt from results.parquet
    (left out when that table lacks the columns, e.g. an ablation older than the base-model row)."""
    out = {name: (folder / name).read_text() for name in ("results.md", "results.tex") if (folder / name).exists()}
    if len(out) < 2 and {"base_accuracy", "seed"} <= set(results.columns):
        k = table_k(sorted(results["k"].unique().tolist()))
        table = summary_table(results, k)
        out.setdefault("results.md", to_markdown(table, k, results["seed"].nunique()))
        out.setdefault("results.tex", to_latex(table, k))
    return out


def bundle(name: str, figures: dict[str, go.Figure], tables: dict[str, str]) -> bytes:
    """One zip: each figure as iwsi-<name>-<figure>.svg and .pdf (one kaleido batch), each table as
    iwsi-<name>-<table>."""
    import plotly.io as pio

    buf = io.BytesIO()
    with tempfile.TemporaryDirectory() as tmp, zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        paths = {f"iwsi-{name}-{fig}.{ext}": Path(tmp) / f"{fig}.{ext}" for fig in figures for ext in FORMATS}
        if figures:
            pio.write_images([figures[p.stem] for p in paths.values()], list(paths.values()), width=WIDTH)
        for arcname, path in paths.items():
            zf.write(path, arcname)
        for table, text in tables.items():
            zf.writestr(f"iwsi-{name}-{table}", text)
    return buf.getvalue()


def run_bundle(run: Path, k: float) -> bytes:
    """Figures and table at one k, named in each file: iwsi-<run>-k<k>-<figure>.pdf, …"""
    return bundle(f"{run.name}-k{k:g}", run_figures(run, k), run_tables(run, k))


def ablation_bundle(folder: Path) -> bytes:
    results = pd.read_parquet(folder / "results.parquet")
    return bundle(folder.name, ablation_figures(results), ablation_tables(folder, results))
