"""The pipeline on the real datasets in ../shared/data at tiny sizes (generate → vote → score)."""
from pathlib import Path

import pandas as pd
import pytest

from iwsi.config import load_config
from iwsi.pipeline import run_pipeline

pytestmark = pytest.mark.slow
DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.mark.parametrize("dataset", ["gsm8k", "svamp", "strategyqa"])
def test_real_dataset_until_score(tmp_path, dataset):
    if not (DATA / dataset).exists():
        pytest.skip(f"{DATA / dataset} not present")
    cfg = load_config(overrides=dict(dataset=dataset, data_dir=str(DATA / dataset), num_questions=3, valid_size=1,
                                     test_size=2, num_samples=2, max_new_tokens=48))
    out = run_pipeline(cfg, tmp_path / "run", until="score")
    df = pd.read_parquet(out / "samples.parquet")
    assert len(df) == 6 and df["gold"].notna().all()
    assert df.loc[df.is_majority, "ds_weight"].ge(1).all()
    valid = pd.read_parquet(out / "valid.parquet")
    assert len(valid) == 1 and valid["loss"].gt(0).all()
    assert not (out / "stages" / "filter.json").exists()
