"""The signal lab's probe tables: every probe directory's AUROCs in one long table, kept in the repository,
and the "Which signal" Markdown tables built from it (docs/results.md).

    # collect probe directories (benchmarks/signal_lab_probe.sh) into docs/results/signal-lab-probe/auroc.csv
    python benchmarks/probe_tables.py add docs/results/signal-lab-probe cache/probes/signal-lab-*
    # one table per severity: signal × (dataset, defect kind), at one loss span and D_v size
    python benchmarks/probe_tables.py tables docs/results/signal-lab-probe [--span full] [--valid-size 5]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from iwsi import probe_variants
from iwsi.probe_stats import SIGNALS

KEY = ["dataset", "severity", "loss_span", "valid_size", "kind", "signal"]
KINDS = probe_variants.KINDS


def rows_of(probe: Path) -> pd.DataFrame:
    """One probe directory's AUROC rows with the settings they were measured in."""
    info = json.loads((probe / "probe.json").read_text())
    auroc = pd.read_parquet(probe / "auroc.parquet")
    spans = {s["setting"]: s for s in info["settings"]}
    return auroc.assign(dataset=info["dataset"], severity=info.get("severity", "mild"), n=info["n"],
                        loss_span=[spans[s]["loss_span"] for s in auroc["setting"]],
                        valid_size=[spans[s].get("valid_size", info["valid_size"]) for s in auroc["setting"]],
                        cpu=info.get("machine_before", {}).get("cpu"), probe=probe.name).drop(columns="setting")


def add(kept: Path, probes: list[Path]) -> pd.DataFrame:
    new = pd.concat([rows_of(p) for p in probes], ignore_index=True)
    path = kept / "auroc.csv"
    if path.exists():  # a probe measured again replaces its rows
        old = pd.read_csv(path)
        new = pd.concat([old[~old["probe"].isin(new["probe"])], new], ignore_index=True)
    kept.mkdir(parents=True, exist_ok=True)
    new.sort_values(KEY).to_csv(path, index=False)
    return new


def cell(row) -> str:
    """'0.73' with a star when the 95 % CI excludes 0.5 (the signal separates, in either direction)."""
    sure = row.ci_low > 0.5 or row.ci_high < 0.5
    return f"{row.auroc:.2f}{'*' if sure else ''}"


def table(rows: pd.DataFrame, severity: str, span: str, valid_size: int) -> str:
    part = rows[(rows.severity == severity) & (rows.loss_span == span) & (rows.valid_size == valid_size)]
    if part.empty:
        return f"(no probe at severity {severity}, loss_span {span}, D_v {valid_size})\n"
    datasets = sorted(set(part["dataset"]), key=lambda d: (d != "synthetic-arith", d))
    columns = [(d, k) for d in datasets for k in KINDS if ((part.dataset == d) & (part.kind == k)).any()]
    lines = ["| signal | " + " | ".join(f"{d} {k}" for d, k in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for signal in [s for s in SIGNALS if s in set(part.signal) and s != "w′ low"]:  # w′ low ranks as loss
        got = part[part.signal == signal].set_index(["dataset", "kind"])
        lines.append(f"| {signal} | " + " | ".join(cell(got.loc[c]) if c in got.index else "–" for c in columns) + " |")
    n = int(part["n_clean"].max())
    return (f"AUROC, {severity} defects, loss_span={span}, D_v = {valid_size}, up to {n} clean rationales per "
            "dataset (* = 95 % bootstrap CI excludes 0.5; w′ low ranks exactly as loss)\n\n" + "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add", help="add probe directories' AUROCs to KEPT/auroc.csv")
    a.add_argument("kept", type=Path)
    a.add_argument("probes", type=Path, nargs="+")
    t = sub.add_parser("tables", help="print the tables")
    t.add_argument("kept", type=Path)
    t.add_argument("--span", default="full")
    t.add_argument("--valid-size", type=int, default=5)
    args = p.parse_args(argv)
    if args.cmd == "add":
        missing = [str(x) for x in args.probes if not (x / "probe.json").is_file()]
        if missing:
            print(f"probe_tables: {missing[0]} is not a probe directory (no probe.json)", file=sys.stderr)
            return 2
        print(f"{args.kept / 'auroc.csv'}: {len(add(args.kept, args.probes))} rows")
    else:
        rows = pd.read_csv(args.kept / "auroc.csv")
        for severity in ("mild", "severe"):
            print(table(rows, severity, args.span, args.valid_size))
    return 0


if __name__ == "__main__":
    sys.exit(main())
