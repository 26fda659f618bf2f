"""benchmarks/study_tables.py: the study's tables from kept per-question results (hand-made inputs)."""
from pathlib import Path

import pandas as pd
import pytest

from benchmarks import study_tables


def rows(cells: dict[tuple[str, float, int], list[int]]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"method": m, "k": k, "seed": s, "question_id": [f"q{i}" for i in range(len(c))],
                                    "correct": c}) for (m, k, s), c in cells.items()], ignore_index=True)


def test_comparisons_pair_each_method_with_lmsi_and_the_random_cut_at_its_k_once():
    df = rows({(m, k, 0): [0, 1] for m, k in [("base", 100.0), ("lmsi", 100.0), ("ground-truth", 100.0),
                                               ("random", 80.0), ("iwsi", 80.0), ("random", 50.0), ("iwsi", 50.0)]})
    pairs = study_tables.comparisons(df)
    assert len(pairs) == len(set(pairs))
    assert (("iwsi", 80.0), ("random", 80.0)) in pairs and (("iwsi", 50.0), ("random", 50.0)) in pairs
    assert (("ground-truth", 100.0), ("lmsi", 100.0)) in pairs
    assert not any(a == ("iwsi", 80.0) and b == ("random", 50.0) for a, b in pairs)
    assert not any("base" in (a[0], b[0]) for a, b in pairs)


def test_tables_pool_seeds_and_questions_and_give_per_seed_deltas(tmp_path):
    df = rows({("lmsi", 100.0, 0): [0, 0, 0, 0], ("random", 80.0, 0): [1, 0, 0, 0],
               ("lmsi", 100.0, 1): [0, 0, 0, 0], ("random", 80.0, 1): [1, 1, 0, 0]})
    df.to_parquet(tmp_path / "per_question.parquet")
    text = study_tables.tables(tmp_path)
    line = next(r for r in text.splitlines() if r.startswith("| random − lmsi"))
    assert "| +37.5 |" in line and "| 8 |" in line and "+25.0 / +50.0" in line
    # two seeds: t(0.975, 1) = 12.706 × sd 17.68 / √2 = 158.8 points either side of the mean
    assert line.endswith("| +37.5 ± 158.8 [-121.33, +196.33] |")


def test_churn_counts_each_way_against_the_base_model_of_the_same_seed(tmp_path):
    df = rows({("base", 100.0, 0): [1, 1, 0, 0], ("lmsi", 100.0, 0): [0, 1, 1, 1],
               ("base", 100.0, 1): [0, 0, 0, 0], ("lmsi", 100.0, 1): [0, 0, 0, 0]})
    line = next(r for r in study_tables.churn(df) if r.startswith("| lmsi"))
    assert line == "| lmsi | – | 25.0 | 12.5 | +12.5 | 8 |"  # seed 0: 2 up, 1 down of 4; seed 1: none of 4


def test_k_free_methods_alone_still_compare_with_lmsi():
    df = rows({(m, 100.0, 0): [0, 1] for m in ("base", "lmsi", "ground-truth")})
    assert study_tables.comparisons(df) == [(("ground-truth", 100.0), ("lmsi", 100.0))]


def test_into_page_replaces_only_the_tables_under_the_kept_directorys_marker(tmp_path):
    page = ("# Results\n\n<!-- .venv/bin/python benchmarks/study_tables.py tables docs/results/ab (seed 0) -->\n"
            "| old | table |\n|---|---|\n\n| second | old |\n\nProse that stays.\n\n"
            "<!-- .venv/bin/python benchmarks/study_tables.py tables docs/results/abc -->\n| other | study |\n")
    out = study_tables.into_page(page, Path("docs/results/ab"), "| new |\n|---|\n\n| churn |\n")
    assert out == ("# Results\n\n<!-- .venv/bin/python benchmarks/study_tables.py tables docs/results/ab (seed 0) -->\n"
                   "| new |\n|---|\n\n| churn |\n\nProse that stays.\n\n"
                   "<!-- .venv/bin/python benchmarks/study_tables.py tables docs/results/abc -->\n| other | study |\n")
    with pytest.raises(ValueError, match="0 marker lines"):
        study_tables.into_page(page, Path("docs/results/missing"), "| new |\n")


def test_tables_into_a_page_without_its_marker_is_one_line_and_exit_2(tmp_path, capsys):
    rows({("lmsi", 100.0, 0): [0, 1], ("random", 80.0, 0): [1, 1]}).to_parquet(tmp_path / "per_question.parquet")
    page = tmp_path / "page.md"
    page.write_text("# Results\n")
    assert study_tables.main(["tables", str(tmp_path), "--into", str(page)]) == 2
    assert "marker" in capsys.readouterr().err and page.read_text() == "# Results\n"
    page.write_text(f"{study_tables.marker(tmp_path)} -->\n| stale |\n\nProse.\n")
    assert study_tables.main(["tables", str(tmp_path), "--into", str(page)]) == 0
    text = page.read_text()
    assert "| stale |" not in text and "| random − lmsi |" in text and text.endswith("\n\nProse.\n")


def test_tables_of_a_folder_without_kept_results_is_one_line_and_exit_2(tmp_path, capsys):
    page = tmp_path / "page.md"
    page.write_text(f"{study_tables.marker(tmp_path)} -->\n| kept |\n")
    for extra in ([], ["--into", str(page)]):
        assert study_tables.main(["tables", str(tmp_path), *extra]) == 2
        assert "no per_question.parquet" in capsys.readouterr().err
    assert page.read_text() == f"{study_tables.marker(tmp_path)} -->\n| kept |\n"
