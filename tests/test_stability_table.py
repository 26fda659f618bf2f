"""benchmarks/stability_table.py: the run's row is the DS weights page's readout; more rationales, a steadier cut."""
import pandas as pd

from benchmarks import stability_table
from benchmarks.fixtures import make_run_dir
from iwsi.dsweight import dv_stability


def test_rows_match_the_page_readout_and_refuse_a_run_without_pool(tmp_path, capsys):
    run = make_run_dir(tmp_path / "run", num_questions=80, num_samples=4)
    rows = stability_table.rows(run, [80.0], [5, 20], 50)
    own = next(r for r in rows if r["centre"] == "median" and r["D_v"] == "run's D_v")
    samples, pool = pd.read_parquet(run / "samples.parquet"), pd.read_parquet(run / "valid_pool.parquet")
    assert own == {"k": 80.0, "centre": "median", "D_v": "run's D_v", **dv_stability(samples, pool, 80, "median")}
    assert len(rows) == 3 * 3 and "| 80 | mean | D_v = 20 |" in stability_table.markdown(rows)
    (run / "valid_pool.parquet").unlink()
    assert stability_table.main([str(run)]) == 2 and "no valid_pool.parquet" in capsys.readouterr().err
