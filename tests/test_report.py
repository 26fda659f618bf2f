"""Ablation tables on hand-made results: CIs, layout, significance, σ_k vs k."""
import math

import numpy as np
import pandas as pd
import pytest

from iwsi import report
from iwsi.ablate import plan_cells
from iwsi.config import ConfigError
from iwsi.report import table_k


def results():
    rows = []
    for seed, (lm, iw, rm) in enumerate([(0.30, 0.40, 0.50), (0.32, 0.44, 0.52), (0.34, 0.42, 0.54)]):
        base = 0.2 + 0.01 * seed
        rows += [dict(dataset="d1", method="lmsi", k=100.0, seed=seed, accuracy=lm, base_accuracy=base),
                 dict(dataset="d1", method="iwsi", k=80.0, seed=seed, accuracy=iw, base_accuracy=base),
                 dict(dataset="d1", method="iwsi", k=60.0, seed=seed, accuracy=iw - 0.1, base_accuracy=base),
                 dict(dataset="d1", method="rm", k=80.0, seed=seed, accuracy=rm, base_accuracy=base)]
    return pd.DataFrame(rows)


def test_mean_ci_matches_t_interval():
    mean, half = report.mean_ci([0.30, 0.32, 0.34])
    assert mean == pytest.approx(0.32)
    assert half == pytest.approx(4.302653 * 0.02 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) · s / √n
    assert math.isnan(report.mean_ci([0.5])[1])


def test_summary_table_order_and_values():
    table = report.summary_table(results(), 80)
    assert list(table.index) == ["Base model", "LMSI", "IWSI", "RM-filter"]
    assert table.loc["IWSI", "d1"].startswith("42.0 ± ")
    assert table.loc["Base model", "d1"].startswith("21.0 ± ")
    md = report.to_markdown(table, 80, 3)
    assert md.index("needs outside supervision") < md.index("RM-filter") and "k = 80" in md
    tex = report.to_latex(table, 80)
    assert tex.count("\\midrule") == 2 and "$\\pm$" in tex


def test_paired_bootstrap_detects_a_clear_gain_and_not_a_null():
    a = np.array([1] * 60 + [0] * 40)
    b = np.array([1] * 40 + [0] * 60)
    out = report.paired_bootstrap(a, b)
    assert out["delta"] == pytest.approx(0.2) and out["lo"] > 0 and out["p"] < 0.01
    same = report.paired_bootstrap(a, a.copy())
    assert same["delta"] == 0 and same["p"] == 1.0


def test_plan_cells_runs_k_free_methods_once():
    assert plan_cells(["lmsi", "iwsi"], [60, 80]) == [("lmsi", 100.0), ("iwsi", 60.0), ("iwsi", 80.0)]
    with pytest.raises(ConfigError, match="unknown method 'magic'"):
        plan_cells(["magic"], [80])
    assert table_k([50, 80, 100]) == 80 and table_k([50, 70, 100]) == 70


def test_kept_correct_table_has_no_base_row_and_skips_without_gold():
    res = results().assign(kept_correct=lambda d: np.where(d["method"] == "iwsi", 0.30, 0.25))
    table = report.summary_table(res, 80, "kept_correct")
    assert "Base model" not in table.index and table.loc["IWSI", "d1"].startswith("30.0")
    assert "Training-set precision" in report.kept_correct_markdown(res, 80, 3)
    assert report.kept_correct_markdown(res.assign(kept_correct=np.nan), 80, 3) == ""


def test_each_method_is_compared_with_lmsi_and_with_the_random_control(tmp_path):
    """Δ vs LMSI and vs random, paired over seeds × test questions, on hand-made cells."""
    right = {"lmsi": 20, "random": 22, "iwsi": 30}
    rows = []
    for method, n_right in right.items():
        for seed in (0, 1):
            cell = tmp_path / f"{method}-s{seed}"
            cell.mkdir()
            pd.DataFrame({"model": "trained", "question_id": [f"q{i}" for i in range(50)],
                          "is_correct": [i < n_right for i in range(50)]}).to_parquet(cell / "eval.parquet")
            rows.append({"dataset": "d", "method": method, "k": 100.0 if method == "lmsi" else 80.0, "seed": seed,
                         "accuracy": n_right / 50, "run_dir": str(cell)})
    table = report.controls_table(pd.DataFrame(rows), 80)
    got = {(r.method, r.vs): (round(100 * r.delta, 6), r.n) for r in table.itertuples()}
    assert got == {("random", "lmsi"): (4.0, 100), ("iwsi", "lmsi"): (20.0, 100),
                   ("lmsi", "random"): (-4.0, 100), ("iwsi", "random"): (16.0, 100)}
    iwsi_vs_random = table[(table.method == "iwsi") & (table.vs == "random")].iloc[0]
    assert iwsi_vs_random.lo > 0 and iwsi_vs_random.p < 0.01


def test_results_md_has_a_paired_table_for_each_swept_k(tmp_path):
    """k = 50 and 80 swept: the main table is at 80, and k = 50 gets its own Δ-vs-control table."""
    right = {("lmsi", 100.0): 20, ("random", 80.0): 22, ("iwsi", 80.0): 30, ("random", 50.0): 25, ("iwsi", 50.0): 24}
    rows = []
    for (method, k), n_right in right.items():
        for seed in (0, 1):
            cell = tmp_path / f"{method}-k{k:g}-s{seed}"
            cell.mkdir()
            pd.DataFrame({"model": "trained", "question_id": [f"q{i}" for i in range(50)],
                          "is_correct": [i < n_right for i in range(50)]}).to_parquet(cell / "eval.parquet")
            rows.append({"dataset": "d", "method": method, "k": k, "seed": seed, "accuracy": n_right / 50,
                         "base_accuracy": 0.2, "run_dir": str(cell)})
    out = tmp_path / "out"
    out.mkdir()
    report.write_all(pd.DataFrame(rows), out, table_k=80.0)
    md = (out / "results.md").read_text()
    assert "### Paired bootstrap (per" in md and "### Paired bootstrap at k = 50 (per" in md
    assert "| d | iwsi | random | -2.0 |" in md.split("at k = 50")[1]  # 24 vs 25 of 50 right
    sig = pd.read_csv(out / "significance.csv")
    at50 = sig[(sig.k == 50) & (sig.method == "iwsi") & (sig.vs == "random")].iloc[0]
    assert round(100 * at50.delta, 6) == -2.0 and set(sig.k) == {50.0, 80.0}
