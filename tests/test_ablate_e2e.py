"""A tiny real ablation on the embedded model: shared stages run once, every method's cell trains."""
import json

import pandas as pd
import pytest

from iwsi.cli import main
from tests.test_judges import make_tiny_rm

pytestmark = pytest.mark.slow

TINY = ["num_questions=4", "valid_size=1", "test_size=3", "num_samples=2", "max_new_tokens=24", "epochs=1",
        "batch_size=4", "embed=false"]


@pytest.fixture(scope="module")
def ablation(tmp_path_factory):
    root = tmp_path_factory.mktemp("ablate")
    rm = make_tiny_rm(root / "rm")
    sets = [a for kv in TINY + [f"reward_model={rm}"] for a in ("--set", kv)]
    code = main(["ablate", "--out", str(root / "out"), "--methods", "lmsi,iwsi,entropy,self,rm,iwsi-w,ground-truth",
                 "--k", "50", "--seeds", "0", *sets])
    assert code == 0
    return root / "out"


def test_one_row_per_cell_and_tables(ablation):
    res = pd.read_parquet(ablation / "results.parquet")
    assert sorted(res["method"]) == sorted(["lmsi", "iwsi", "entropy", "self", "rm", "iwsi-w", "ground-truth"])
    # a method that kept nothing (ground-truth when the tiny model answers nothing right) has no
    # accuracy, and says why in its row and in results.md
    trained = res["note"].isna()
    assert res.loc[trained, "accuracy"].between(0, 1).all() and res["base_accuracy"].nunique() == 1
    assert res.loc[~trained, "accuracy"].isna().all() and (res.loc[~trained, "num_kept"] == 0).all()
    assert trained.sum() >= 6  # every method but ground-truth keeps part of a majority set that is never empty
    md = (ablation / "results.md").read_text()
    for note in res.loc[~trained, "note"]:
        assert note in md
    assert "Base model" in md and "IWSI" in md and md.index("needs outside supervision") < md.index("RM-filter")
    for name in ("results.csv", "results.tex", "summary.csv"):
        assert (ablation / name).stat().st_size > 0


def test_shared_stages_ran_once(ablation):
    shared = ablation / "shared" / "synthetic-arith-s0"
    samples = pd.read_parquet(shared / "samples.parquet")
    assert samples.loc[samples.is_majority, ["self_score", "rm_score"]].notna().all().all()
    gen_marker = json.loads((shared / "stages" / "generate.json").read_text())
    for cell in (ablation / "cells" / "synthetic-arith").iterdir():
        # the cell adopted the shared stages: generation never ran in the cell, its files are the shared ones
        marker = json.loads((cell / "stages" / "generate.json").read_text())
        assert marker["adopted_from"] == str(shared) and marker["files"] == gen_marker["files"]
        assert marker["seconds"] == gen_marker["seconds"]
        assert pd.read_parquet(cell / "candidates.parquet").equals(pd.read_parquet(shared / "candidates.parquet"))
        assert (cell / "eval_base.parquet").stat().st_ino == (shared / "eval_base.parquet").stat().st_ino


def test_selection_rules_hold_in_cells(ablation):
    cells = ablation / "cells" / "synthetic-arith"
    iw = pd.read_parquet(cells / "iwsi-k50-s0" / "samples.parquet")
    maj = iw[iw.is_majority]
    assert iw["kept"].sum() == max(1, int(len(maj) * 0.5 + 0.5))
    dropped = maj.loc[~maj.kept, "ds_weight"]
    # the tiny run's D_c can be one sample (kept whole, nothing to compare): bf16 sampling varies with the
    # thread count, and the cut itself is tested exactly on hand-made tables (tests/test_filtering.py)
    assert dropped.empty or maj.loc[maj.kept, "ds_weight"].max() <= dropped.min()
    lm = pd.read_parquet(cells / "lmsi-k100-s0" / "samples.parquet")
    assert lm["kept"].equals(lm["is_majority"])
    w = pd.read_parquet(cells / "iwsi-w-k100-s0" / "samples.parquet")
    assert (w.loc[w.is_majority, "weight"] <= 2.0).all()


def test_finished_cells_are_not_recomputed(ablation, tmp_path):
    before = {p: p.stat().st_mtime_ns for p in ablation.glob("cells/*/*/eval.parquet")}
    sets = [a for kv in TINY for a in ("--set", kv)]
    assert main(["ablate", "--out", str(ablation), "--methods", "lmsi,iwsi", "--k", "50", "--seeds", "0", *sets]) == 0
    for p, t in before.items():
        if "lmsi" in p.parent.name or "iwsi-k50" in p.parent.name:
            assert p.stat().st_mtime_ns == t
    # the tables still cover the cells of the earlier, wider sweep, not only this one's two
    assert len(pd.read_parquet(ablation / "results.parquet")) == len(before)


def test_shared_from_reuses_generations_for_a_training_sweep(ablation, tmp_path):
    """--shared-from: another sweep (here 2 epochs instead of 1) over the same generations hard-links the shared
    stages instead of regenerating, and trains its own cell on them."""
    sets = [a for kv in TINY + ["epochs=2"] for a in ("--set", kv)]
    out = tmp_path / "sweep"
    assert main(["ablate", "--out", str(out), "--shared-from", str(ablation), "--methods", "lmsi", "--k", "50",
                 "--seeds", "0", *sets]) == 0
    src, dst = ablation / "shared" / "synthetic-arith-s0", out / "shared" / "synthetic-arith-s0"
    assert (dst / "candidates.parquet").stat().st_ino == (src / "candidates.parquet").stat().st_ino
    assert (dst / "log.txt").stat().st_ino != (src / "log.txt").stat().st_ino  # appended to: copied
    assert json.loads((dst / "stages" / "generate.json").read_text()) == json.loads(
        (src / "stages" / "generate.json").read_text())  # not rerun
    cell = out / "cells" / "synthetic-arith" / "lmsi-k100-s0"
    assert json.loads((cell / "metrics.json").read_text())["accuracy"]["trained"] is not None
    assert "epochs: 2" in (cell / "config.yaml").read_text()


def test_shared_from_must_be_an_ablation(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    code = main(["ablate", "--out", str(tmp_path / "out"), "--shared-from", str(tmp_path / "notes")])
    assert code == 2 and not (tmp_path / "out").exists()
    assert "--shared-from" in capsys.readouterr().err
