"""How stable IWSI's cut is under other draws of D_v (paper §5), per valid centre and D_v size, on a scored
run directory (it needs valid_pool.parquet, written by the score stage with valid_pool > 0).

    python benchmarks/stability_table.py RUN_DIR [--k 50,80] [--sizes 5,10,20] [--draws 50]

Row "run's D_v": the run's own kept set against 50 draws of a D_v of its size (what the DS weights page shows,
iwsi.dsweight.dv_stability). Rows "D_v = n": the kept set of one draw of n rationales against 50 further draws
of n, so sizes compare among themselves. Loss and IFD do not depend on D_v: their Jaccard is 1 by construction.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from iwsi.dsweight import CENTERS, cut_stability, draw_centers, dv_stability
from iwsi.filtering import num_to_keep


def rows(run: Path, ks: list[float], sizes: list[int], draws: int) -> list[dict]:
    samples, pool = pd.read_parquet(run / "samples.parquet"), pd.read_parquet(run / "valid_pool.parquet")
    losses = samples.loc[samples["is_majority"].astype(bool), "loss"].to_numpy(float)
    out = []
    for k in ks:
        for center in CENTERS:
            out.append({"k": k, "centre": center, "D_v": "run's D_v", **dv_stability(samples, pool, k, center, draws)})
            for size in sizes:
                centers = draw_centers(pool["loss"], size, center, draws + 1, seed=size)
                if centers.size:
                    out.append({"k": k, "centre": center, "D_v": f"D_v = {size}",
                                **cut_stability(losses, centers[0], centers[1:], num_to_keep(len(losses), k))})
    return out


def markdown(table: list[dict]) -> str:
    lines = ["| k | centre | D_v | Jaccard median | Jaccard 5–95 % | σ_k% range |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['k']:g} | {r['centre']} | {r['D_v']} | {r['jaccard_median']:.3f} | "
              f"{r['jaccard_p5']:.3f} – {r['jaccard_p95']:.3f} | {r['sigma_min']:.3f} – {r['sigma_max']:.3f} |"
              for r in table]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("run", type=Path)
    p.add_argument("--k", default="50,80")
    p.add_argument("--sizes", default="5,10,20")
    p.add_argument("--draws", type=int, default=50)
    args = p.parse_args(argv)
    if not (args.run / "valid_pool.parquet").is_file():
        print(f"stability_table: {args.run} has no valid_pool.parquet: score it with valid_pool > 0", file=sys.stderr)
        return 2
    print(markdown(rows(args.run, [float(k) for k in args.k.split(",")], [int(s) for s in args.sizes.split(",")],
                        args.draws)), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
