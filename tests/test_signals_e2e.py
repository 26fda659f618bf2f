"""The signal lab's methods end to end on the embedded model at tiny sizes: `ifd` with a median-centred
DS weight, then a method change (`--force --set method=loss`) that redoes only judge (a no-op here),
filter, train and evaluate, never the scoring."""
import json

import numpy as np
import pandas as pd
import pytest

from iwsi import cli, filtering
from iwsi.dsweight import valid_center

pytestmark = pytest.mark.slow

SETS = dict(num_questions=6, valid_size=2, valid_pool=3, test_size=4, num_samples=3, max_new_tokens=32, epochs=1,
            batch_size=4, k=70, embed="false", seed=2)


def iwsi_run(out, force: bool = False, **changes) -> None:
    args = ["run", "--out", str(out)] + (["--force"] if force else [])
    for key, value in {**SETS, **changes}.items():
        args += ["--set", f"{key}={value}"]
    assert cli.main(args) == 0


def started(run) -> list[str]:
    lines = [line.split() for line in (run / "log.txt").read_text().splitlines()]
    return [words[2] for words in lines if words[1:2] == ["stage"] and words[3:4] == ["started"]]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "run"
    iwsi_run(out, method="ifd", valid_center="median")
    return out


def test_score_writes_ifd_and_the_valid_pool(run_dir):
    df = pd.read_parquet(run_dir / "samples.parquet")
    np.testing.assert_allclose(df["ifd"], df["loss_answer"] / df["loss_alone"])
    assert (df["loss_alone"] > 0).all() and not np.allclose(df["loss_alone"], df["loss_answer"])
    pool = pd.read_parquet(run_dir / "valid_pool.parquet")
    assert len(pool) == 5 and pool["in_dv"].tolist() == [True, True, False, False, False]
    valid = pd.read_parquet(run_dir / "valid.parquet")
    assert valid["question_id"].tolist() == pool["question_id"].head(2).tolist()


def test_ifd_run_keeps_the_rule_and_centres_on_the_median(run_dir):
    df = pd.read_parquet(run_dir / "samples.parquet")
    valid = pd.read_parquet(run_dir / "valid.parquet")
    center = float(np.median(valid["loss"]))
    np.testing.assert_allclose(df["w_prime"], center / df["loss"])
    expected, _ = filtering.select(df, "ifd", 70)
    assert df["kept"].tolist() == expected.tolist()
    assert (df.loc[df["kept"], "ifd"] < 1).all()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["valid_loss_center"] == pytest.approx(valid_center(valid["loss"], "median"))
    assert json.loads((run_dir / "status.json").read_text())["state"] == "done"


def test_a_method_change_redoes_no_scoring(run_dir):
    before = len(started(run_dir))
    chunks = {p.name: p.stat().st_mtime_ns for p in (run_dir / "chunks").glob("*.parquet")}
    iwsi_run(run_dir, method="loss", valid_center="median", force=True)
    # judge's key is the method (it names the judge a method needs; neither ifd nor loss needs one)
    assert started(run_dir)[before:] == ["judge", "filter", "train", "evaluate"]
    assert {p.name: p.stat().st_mtime_ns for p in (run_dir / "chunks").glob("*.parquet")} == chunks
    df = pd.read_parquet(run_dir / "samples.parquet")
    maj = df[df["is_majority"]]
    expected = maj.sort_values("loss", kind="stable").index[: filtering.num_to_keep(len(maj), 70)]
    assert sorted(df.index[df["kept"]]) == sorted(expected)
