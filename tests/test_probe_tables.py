"""benchmarks/probe_tables.py: probe directories → one kept AUROC table → the "Which signal" tables."""
import pandas as pd

from benchmarks import probe_tables
from iwsi.probe import make_probe_dir


def test_add_keeps_every_setting_and_replaces_a_probe_measured_again(tmp_path):
    probe = make_probe_dir(tmp_path / "fixture-probe", n=12)
    kept = tmp_path / "kept"
    assert probe_tables.main(["add", str(kept), str(probe)]) == 0
    rows = pd.read_csv(kept / "auroc.csv")
    assert set(rows["loss_span"]) == {"full", "completion"} and set(rows["valid_size"]) == {5}
    assert probe_tables.main(["add", str(kept), str(probe)]) == 0
    assert len(pd.read_csv(kept / "auroc.csv")) == len(rows)  # replaced, not appended
    text = probe_tables.table(rows, "mild", "full", 5)
    auroc = pd.read_parquet(probe / "auroc.parquet")
    w_ds = auroc[(auroc.setting == "loss_span=full") & (auroc.kind == "jumping") & (auroc.signal == "w_DS")].iloc[0]
    line = next(x for x in text.splitlines() if x.startswith("| w_DS |"))
    assert f"{w_ds.auroc:.2f}" in line
    assert "no probe at severity severe" in probe_tables.table(rows, "severe", "full", 5)


def test_add_refuses_a_folder_that_is_not_a_probe(tmp_path, capsys):
    assert probe_tables.main(["add", str(tmp_path / "kept"), str(tmp_path)]) == 2
    assert "not a probe directory" in capsys.readouterr().err and not (tmp_path / "kept").exists()
