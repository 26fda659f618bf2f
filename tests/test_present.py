"""iwsi.present: a run's and an ablation's figures (SVG + PDF via kaleido) and tables, as one zip."""
from __future__ import annotations

import io
import shutil
import zipfile

import pandas as pd
import pytest

from benchmarks.fixtures import make_ablation_dir, make_run_dir
from iwsi import present


def test_run_figures_are_the_pages_charts_at_the_runs_kept_set(tmp_path):
    run = make_run_dir(tmp_path / "r", num_questions=30, num_samples=4, method="entropy", k=60)
    figs = present.run_figures(run, 60)
    assert set(figs) == {"ds_weights", "w_prime", "percentiles", "correctness", "ds_density_by_uncertainty",
                         "loss_densities", "umap"}
    kept = int(pd.read_parquet(run / "samples.parquet")["kept"].sum())
    legend = [t.name for t in figs["loss_densities"].data]
    assert any(name.startswith("kept") and name.endswith(f"n={kept:,}") for name in legend), legend
    table = present.run_table(run, 60).set_index("quantity")["value"]
    assert table["method"] == "Entropy-filter"
    assert "n = 200" in table["trained − base (points, 95 % CI, n)"]


def test_latex_table_escapes():
    df = pd.DataFrame({"quantity": ["σ_k% & more"], "value": ["1"]})
    assert "σ\\_k\\% \\& more & 1 \\\\" in present.table_latex(df, "c")


@pytest.mark.slow
def test_bundles_hold_svg_pdf_and_tables(tmp_path):
    pytest.importorskip("kaleido")
    if not any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("no Chromium for kaleido to render with (CI installs Debian's chromium)")
    run = make_run_dir(tmp_path / "runs" / "r1", num_questions=20, num_samples=4)
    data = present.run_bundle(run, 80)  # any failure with a Chromium present is a real one
    zf = zipfile.ZipFile(io.BytesIO(data))
    names = set(zf.namelist())
    assert {"iwsi-r1-k80-ds_weights.pdf", "iwsi-r1-k80-ds_weights.svg", "iwsi-r1-k80-umap.pdf",
            "iwsi-r1-k80-summary.md", "iwsi-r1-k80-summary.tex"} <= names
    assert zf.read("iwsi-r1-k80-ds_weights.pdf").startswith(b"%PDF")
    assert b"<svg" in zf.read("iwsi-r1-k80-ds_weights.svg")
    folder = make_ablation_dir(tmp_path / "ablations" / "a1")
    names = zipfile.ZipFile(io.BytesIO(present.ablation_bundle(folder))).namelist()
    assert {"iwsi-a1-accuracy_by_method.pdf", "iwsi-a1-accuracy_vs_k.svg", "iwsi-a1-results.md"} <= set(names)
