"""Results tables of an ablation (pure pandas/scipy, no torch).

Reads the `results.parquet` rows of `iwsi ablate` and the shared samples; writes
`results.md / .csv / .tex` (methods × datasets, accuracy mean ± 95 % CI over seeds, base model on
top, methods needing outside supervision at the bottom, as in the paper's Table 1), `summary.csv`
and a paired-bootstrap significance note (`significance.csv`). Accuracy and σ_k% against k are drawn by
the pages from results.parquet and the runs' samples (iwsi/charts.py), so no table of them is written.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from iwsi import filtering
from iwsi.config import DEFAULT_K
from iwsi.contract import RUN_FILE

# The paper's Table 1 layout: self-supervised methods (ours, IWSI, last), then those with outside supervision.
SELF_SUPERVISED = tuple(sorted((m for m, r in filtering.METHODS.items() if not r.outside_supervision),
                               key=lambda m: m == "iwsi"))
OUTSIDE = tuple(m for m, r in filtering.METHODS.items() if r.outside_supervision)
LABELS = {m: r.label for m, r in filtering.METHODS.items()}
K_FREE = tuple(m for m, r in filtering.METHODS.items() if not r.uses_k)


def mean_ci(values) -> tuple[float, float]:
    """Mean and half-width of the 95 % t-interval (nan half-width for a single seed)."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return float(x.mean()) if len(x) else math.nan, math.nan
    return float(x.mean()), float(stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / math.sqrt(len(x)))


def fmt(mean: float, half: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{100 * mean:.1f}" if math.isnan(half) else f"{100 * mean:.1f} ± {100 * half:.1f}"


def table_k(ks: list[float]) -> float:
    """The k shown in the main table: the paper's (DEFAULT_K) when swept, else the largest below 100."""
    if DEFAULT_K in ks:
        return DEFAULT_K
    below = [k for k in ks if k < 100]
    return float(max(below) if below else ks[0])


def at_k(results: pd.DataFrame, k: float) -> pd.DataFrame:
    """Rows for the table: k-free methods (recorded at 100) plus the others at `k`."""
    free = results["method"].isin(K_FREE)
    return results[free | (results["k"] == k)]


def summary_table(results: pd.DataFrame, k: float, column: str = "accuracy") -> pd.DataFrame:
    """Rows: Base (for accuracy), self-supervised methods, then outside-supervised; columns: datasets;
    cells: mean ± 95 % CI over seeds of `column`."""
    rows = at_k(results, k)
    datasets = list(dict.fromkeys(results["dataset"]))
    base = results.drop_duplicates(["dataset", "seed"])
    table = {}
    if column == "accuracy":
        table["Base model"] = {d: fmt(*mean_ci(base.loc[base.dataset == d, "base_accuracy"])) for d in datasets}
    for method in [m for m in SELF_SUPERVISED + OUTSIDE if m in set(rows["method"])]:
        sel = rows[rows.method == method]
        table[LABELS[method]] = {d: fmt(*mean_ci(sel.loc[sel.dataset == d, column])) for d in datasets}
    return pd.DataFrame(table).T.rename_axis("method")


def first_outside(table: pd.DataFrame) -> str | None:
    """The first row needing outside supervision: a rule is drawn above it."""
    outside = {LABELS[m] for m in OUTSIDE}
    return next((name for name in table.index if name in outside), None)


def to_markdown(table: pd.DataFrame, k: float, n_seeds: int, what: str = "Accuracy (%)") -> str:
    lines = ["| method | " + " | ".join(table.columns) + " |", "|---|" + "---|" * len(table.columns)]
    for name, row in table.iterrows():
        if name == first_outside(table):
            lines.append("| *needs outside supervision:* |" + " |" * len(table.columns))
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    return "\n".join(lines) + f"\n\n{what} at k = {k:g}, mean ± 95 % CI (t) over {n_seeds} seed(s).\n"


def to_latex(table: pd.DataFrame, k: float) -> str:
    lines = ["\\begin{tabular}{l" + "c" * len(table.columns) + "}", "\\toprule",
             "Method & " + " & ".join(table.columns) + " \\\\", "\\midrule"]
    for name, row in table.iterrows():
        if name == first_outside(table):
            lines.append("\\midrule")
        lines.append(f"{name} & " + " & ".join(c.replace("±", "$\\pm$") for c in row) + " \\\\")
    lines += ["\\bottomrule", "\\end{tabular}", f"% accuracy (%) at k = {k:g}, mean $\\pm$ 95% CI over seeds"]
    return "\n".join(lines) + "\n"


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 10_000, seed: int = 0) -> dict:
    """Paired comparison of mean(a) − mean(b) over items (per-question correctness, 0/1): the 95 %
    percentile bootstrap interval (`scipy.stats.bootstrap`, paired) and a two-sided sign-flip
    permutation p-value (`scipy.stats.permutation_test`)."""
    from scipy import stats

    d = np.asarray(a, float) - np.asarray(b, float)
    delta = float(d.mean()) if len(d) else math.nan
    if len(d) < 2:
        return {"delta": delta, "lo": math.nan, "hi": math.nan, "p": math.nan, "n": int(len(d))}
    rng = np.random.default_rng(seed)
    if np.all(d == d[0]):  # no spread: the interval is the point (scipy warns on a degenerate sample)
        lo = hi = delta
    else:
        ci = stats.bootstrap((d,), np.mean, n_resamples=n_boot, method="percentile", rng=rng).confidence_interval
        lo, hi = float(ci.low), float(ci.high)
    # vectorized: scipy does not detect that np.mean takes `axis` (1,000 random ±1 items under load: 2.4 s -> 0.85 s;
    # a warm Compare-page call 0.92 -> 0.80 s; a cold one is dominated by scipy.stats' lazy imports)
    test = stats.permutation_test((d,), np.mean, permutation_type="samples", n_resamples=n_boot, rng=rng,
                                  vectorized=True)
    return {"delta": delta, "lo": lo, "hi": hi, "p": float(test.pvalue), "n": int(len(d))}


def correctness(ev: pd.DataFrame | None, model: str = "trained") -> pd.Series:
    """eval.parquet → correctness (0/1, unparsed = wrong) per test question_id of one model (empty when absent)."""
    if ev is None or not {"model", "question_id", "is_correct"} <= set(ev.columns):
        return pd.Series(dtype=float)
    rows = ev[ev["model"] == model].drop_duplicates("question_id")
    return pd.Series(rows["is_correct"].fillna(False).astype(float).to_numpy(), index=rows["question_id"])


def per_question(results: pd.DataFrame, method: str, k: float, dataset: str) -> pd.Series:
    """Correctness of the trained model per (seed, question) for one method/k/dataset."""
    rows = at_k(results, k)
    rows = rows[(rows.method == method) & (rows.dataset == dataset)]
    parts = []
    for r in rows.itertuples():
        if not (Path(r.run_dir) / RUN_FILE.eval).exists():  # a cell that kept nothing was not trained
            continue
        right = correctness(pd.read_parquet(Path(r.run_dir) / RUN_FILE.eval))
        parts.append(pd.Series(right.to_numpy(), index=pd.MultiIndex.from_product([[r.seed], right.index])))
    return pd.concat(parts) if parts else pd.Series(dtype=float)


def significance(results: pd.DataFrame, k: float, reference: str = "lmsi") -> pd.DataFrame:
    """Each method against `reference` (paired over seeds × test questions)."""
    rows = []
    for dataset in dict.fromkeys(results["dataset"]):
        ref = per_question(results, reference, k, dataset)
        for method in dict.fromkeys(results["method"]):
            other = per_question(results, method, k, dataset)
            if method == reference or ref.empty or other.empty:
                continue
            a, b = other.align(ref, join="inner")
            rows.append({"dataset": dataset, "method": method, "vs": reference, **paired_bootstrap(a, b)})
    return pd.DataFrame(rows)


CONTROLS = ("lmsi", "random")  # every method is compared with keeping all of D_c and with a random cut


def controls_table(results: pd.DataFrame, k: float) -> pd.DataFrame:
    """Δ accuracy of each method against each control present (paired over seeds × test questions)."""
    parts = [significance(results, k, ref) for ref in CONTROLS if ref in set(results["method"])]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def significance_markdown(sig: pd.DataFrame, k: float | None = None) -> str:
    """The paired-bootstrap table; `k` names the cut in the title when it is not the main table's."""
    if sig.empty:
        return ""
    lines = ["| dataset | method | vs | Δ accuracy (pts) | 95 % CI | p (two-sided) | paired items |",
             "|---|---|---|---|---|---|---|"]
    for r in sig.itertuples():
        lines.append(f"| {r.dataset} | {r.method} | {r.vs} | {100 * r.delta:+.1f} | "
                     f"[{100 * r.lo:+.1f}, {100 * r.hi:+.1f}] | {r.p:.3f} | {r.n} |")
    at = f" at k = {k:g}" if k is not None else ""
    return (f"\n### Paired bootstrap{at} (per-question correctness, seeds × test questions)\n\n"
            + "\n".join(lines) + "\n")


def kept_correct_markdown(results: pd.DataFrame, k: float, n_seeds: int) -> str:
    """Second table (where gold answers are known): the share of each method's training samples
    whose answer is correct, which tells a filter that picks better data from one that does not."""
    if "kept_correct" not in results or results["kept_correct"].isna().all():
        return ""
    table = summary_table(results, k, "kept_correct")
    what = "Share of training samples (kept set) with a correct answer (%)"
    return "\n### Training-set precision\n\n" + to_markdown(table, k, n_seeds, what)


def notes_markdown(results: pd.DataFrame) -> str:
    """Cells with no accuracy (a method that kept nothing) are shown as "–" in the tables; this says why."""
    if "note" not in results:
        return ""
    noted = results[results["note"].notna()]
    if noted.empty:
        return ""
    lines = [f"- {r.dataset}, {LABELS.get(r.method, r.method)}, k = {r.k:g}, seed {r.seed}: {r.note}"
             for r in noted.itertuples()]
    return "\n### Cells with no accuracy\n\n" + "\n".join(lines) + "\n"


def write_all(results: pd.DataFrame, out: Path, table_k: float) -> None:
    from iwsi.rundir import atomic_write_bytes, write_parquet

    write_parquet(out / "results.parquet", results)
    table = summary_table(results, table_k)
    n_seeds = results["seed"].nunique()
    sig = controls_table(results, table_k)
    text = to_markdown(table, table_k, n_seeds) + kept_correct_markdown(results, table_k, n_seeds)
    text += notes_markdown(results) + significance_markdown(sig)
    # every other swept k gets its own paired table (the main table shows one k)
    parts = [sig.assign(k=table_k)]
    for k in sorted(set(results.loc[~results["method"].isin(K_FREE), "k"]) - {table_k}):
        other = controls_table(results, k)
        text += significance_markdown(other, k)
        parts.append(other.assign(k=k))
    sig = pd.concat(parts, ignore_index=True)
    atomic_write_bytes(out / "results.md", text.encode())
    atomic_write_bytes(out / "results.tex", to_latex(table, table_k).encode())
    atomic_write_bytes(out / "results.csv", results.to_csv(index=False).encode())
    atomic_write_bytes(out / "summary.csv", table.to_csv().encode())
    if not sig.empty:
        atomic_write_bytes(out / "significance.csv", sig.to_csv(index=False).encode())
