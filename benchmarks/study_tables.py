"""A study's tables from kept per-question results, so a long study can be finished in parts.

An ablation directory lives in the cache, which a new machine may not have; the study's per-question
correctness is kept in the repository instead (docs/results/<study>/per_question.parquet: method, k, seed,
question_id, correct; the base model as method `base`) beside the cell table (cells.csv).

    # add the finished cells of an ablation directory (replacing rows of the same method, k and seed)
    python benchmarks/study_tables.py add cache/ablations/arith-study docs/results/arith-study
    # a sweep of one method under another setting, under its own name
    python benchmarks/study_tables.py add cache/ablations/signal-lab-median docs/results/signal-lab \
        --as-method iwsi-median
    # the accuracy table and the paired comparisons, as Markdown
    python benchmarks/study_tables.py tables docs/results/arith-study
    # the same, written into a page in place of the tables under its marker line
    # `<!-- .venv/bin/python benchmarks/study_tables.py tables docs/results/signal-lab -->`
    python benchmarks/study_tables.py tables docs/results/signal-lab --into docs/results.md

The pooled comparison pairs seeds × test questions (report.paired_bootstrap, as `iwsi ablate`); the seed-level
column is the mean ± 95 % t-interval of the per-seed Δ (report.mean_ci), which also counts seed-to-seed
variation.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from iwsi import report
from iwsi.ablate import shared_path

KEY = ["method", "k", "seed"]
BASE = "base"


def cells_of(ablation: Path, as_method: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(cells, per-question rows) of every trained cell in `ablation`/results.parquet, plus the base model;
    `as_method` names its cells' method (a sweep of one method under another setting, e.g. iwsi-median)."""
    cells = pd.read_parquet(ablation / "results.parquet")
    if as_method:
        cells = cells.assign(method=as_method)
    parts = []
    for r in cells.itertuples():
        if (Path(r.run_dir) / "eval.parquet").exists():
            right = report.correctness(pd.read_parquet(Path(r.run_dir) / "eval.parquet"))
            parts.append(pd.DataFrame({"method": r.method, "k": r.k, "seed": r.seed,
                                       "question_id": right.index, "correct": right.to_numpy().astype(int)}))
    for (dataset, seed), _ in cells.groupby(["dataset", "seed"]):
        base = report.correctness(pd.read_parquet(shared_path(ablation, dataset, seed) / "eval_base.parquet"), "base")
        parts.append(pd.DataFrame({"method": BASE, "k": 100.0, "seed": seed, "question_id": base.index,
                                   "correct": base.to_numpy().astype(int)}))
    return cells.drop(columns=["run_dir"]), pd.concat(parts, ignore_index=True)


def add(ablation: Path, kept: Path, as_method: str | None = None) -> None:
    cells, rows = cells_of(ablation, as_method)
    for name, new in (("cells.csv", cells), ("per_question.parquet", rows)):
        path = kept / name
        old = (pd.read_csv(path) if name.endswith(".csv") else pd.read_parquet(path)) if path.exists() else None
        if old is not None:  # a re-run cell replaces its earlier rows
            old = old[~old.set_index(KEY).index.isin(new.set_index(KEY).index.unique())]
            new = pd.concat([old, new], ignore_index=True)
        new = new.sort_values(KEY + (["question_id"] if "question_id" in new else [])).reset_index(drop=True)
        text = new.to_csv(index=False).encode() if name.endswith(".csv") else None
        from iwsi.rundir import atomic_write_bytes, write_parquet

        atomic_write_bytes(path, text) if text is not None else write_parquet(path, new)
        print(f"{path}: {len(new)} rows")


def comparisons(rows: pd.DataFrame) -> list[tuple[tuple[str, float], tuple[str, float]]]:
    """Each method at each k against LMSI and against the random cut at the same k (k-free methods, recorded
    at k = 100, stand at every k; a pair is listed once)."""
    cells = rows[rows.method != BASE][["method", "k"]].drop_duplicates()
    out = []
    # k-free methods alone (e.g. only lmsi and ground-truth) still compare with LMSI
    for k in sorted(set(cells.loc[~cells.method.isin(report.K_FREE), "k"])) or [100.0]:
        at = [(m, kk) for m, kk in cells.itertuples(index=False) if kk == k or m in report.K_FREE]
        for control in (("lmsi", 100.0), ("random", k)):
            out += [(c, control) for c in at if control in at and c != control
                    and (c, control) not in out and (control, c) not in out]
    return out


def k_label(method: str, k: float) -> str:
    """The k column: '–' for the base model and the methods without a cut."""
    return "–" if method in report.K_FREE + (BASE,) else f"{k:g}"


def tables(kept: Path) -> str:
    rows = pd.read_parquet(kept / "per_question.parquet")
    acc = rows.groupby(KEY)["correct"].mean().unstack("seed")
    n_q = rows.groupby(KEY)["question_id"].nunique().unstack("seed")
    seeds = list(acc.columns)
    lines = [f"| method | k | accuracy % ({' / '.join(f'seed {s}' for s in seeds)}) | mean | questions |",
             "|---|---|---|---|---|"]
    for (method, k), r in acc.iterrows():
        cells = " / ".join("–" if pd.isna(v) else f"{100 * v:.1f}" for v in r)
        lines.append(f"| {method} | {k_label(method, k)} | {cells} | "
                     f"{100 * r.mean():.1f} | {int(n_q.loc[(method, k)].max())} |")
    lines += ["", "| comparison | k | Δ pooled (pts) | 95 % CI (paired bootstrap) | p | pairs | "
              "Δ per seed | seed-level mean ± 95 % t [interval] |", "|---|---|---|---|---|---|---|---|"]
    wide = rows.set_index(KEY + ["question_id"])["correct"].sort_index()
    for (a, ka), (b, kb) in comparisons(rows):
        x, y = wide.loc[(a, ka)], wide.loc[(b, kb)]
        x, y = x.align(y, join="inner")
        r = report.paired_bootstrap(x.to_numpy(), y.to_numpy())
        per_seed = (x - y).groupby(level="seed").mean()
        mean, half = report.mean_ci(per_seed)
        # the bounds to two decimals: whether the interval excludes 0 must not hide in the rounding
        seed_level = (f"{100 * mean:+.1f} ± {100 * half:.1f} [{100 * (mean - half):+.2f}, {100 * (mean + half):+.2f}]"
                      if len(per_seed) > 1 else "– (one seed)")
        lines.append(f"| {a} − {b} | {min(ka, kb):g} | "
                     f"{100 * r['delta']:+.1f} | [{100 * r['lo']:+.1f}, {100 * r['hi']:+.1f}] | {r['p']:.3f} | "
                     f"{r['n']} | {' / '.join(f'{100 * d:+.1f}' for d in per_seed)} | "
                     f"{seed_level} |")
    return "\n".join(lines + [""] + churn(rows)) + "\n"


def marker(kept: Path) -> str:
    """The comment line that heads a page's copy of `kept`'s tables (anything after the path is a note)."""
    return f"<!-- .venv/bin/python benchmarks/study_tables.py tables {kept.as_posix().rstrip('/')}"


def into_page(page: str, kept: Path, text: str) -> str:
    """`page` with the tables under `kept`'s marker line replaced by `text`: the table rows and blank lines
    that follow the marker, up to the first other line (the page's prose goes on there)."""
    lines, head = page.split("\n"), marker(kept)
    heads = [i for i, line in enumerate(lines) if line.startswith(head) and line[len(head):][:1] in (" ", "")]
    if len(heads) != 1:
        raise ValueError(f"the page has {len(heads)} marker lines {head} -->, not one: add one above "
                         "where the tables go")
    end = heads[0] + 1
    while end < len(lines) and (not lines[end].strip() or lines[end].startswith("|")):
        end += 1
    return "\n".join(lines[:heads[0] + 1] + text.rstrip("\n").split("\n") + [""] + lines[end:])


def churn(rows: pd.DataFrame) -> list[str]:
    """Per trained cell, pooled over seeds: the share of test questions whose correctness changed against the
    base model (same seed), each way. A net Δ of 0 can hide a large churn: fine-tuning re-rolls which
    questions a weak model gets right, and that churn is the noise a filter effect has to rise above."""
    if BASE not in set(rows.method):
        return []
    wide = rows.set_index(KEY + ["question_id"])["correct"]
    base = wide.xs(BASE, level="method").droplevel("k")
    lines = ["| method | k | wrong → right % | right → wrong % | net Δ (pts) | pairs |", "|---|---|---|---|---|---|"]
    for (method, k), cell in wide.drop(BASE, level="method").groupby(level=["method", "k"]):
        now, before = cell.droplevel(["method", "k"]).align(base, join="inner")
        up, down = ((before == 0) & (now == 1)).mean(), ((before == 1) & (now == 0)).mean()
        lines.append(f"| {method} | {k_label(method, k)} | {100 * up:.1f} | "
                     f"{100 * down:.1f} | {100 * (up - down):+.1f} | {len(now)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("add", help="add an ablation directory's finished cells to the kept results")
    a.add_argument("ablation", type=Path)
    a.add_argument("kept", type=Path)
    a.add_argument("--as-method", help="record the cells under this method name (one method swept with another "
                                       "setting, e.g. iwsi-median for --set valid_center=median)")
    t = sub.add_parser("tables", help="print the accuracy table and the paired comparisons")
    t.add_argument("kept", type=Path)
    t.add_argument("--into", type=Path, help="write them into this Markdown page, under its marker line "
                                              "`<!-- .venv/bin/python benchmarks/study_tables.py tables KEPT -->`")
    args = p.parse_args(argv)
    if args.cmd == "add":
        if not (args.ablation / "results.parquet").exists():
            print(f"study_tables: {args.ablation} has no results.parquet: give the --out of an `iwsi ablate`",
                  file=sys.stderr)
            return 2
        args.kept.mkdir(parents=True, exist_ok=True)
        add(args.ablation, args.kept, args.as_method)
    elif not (args.kept / "per_question.parquet").is_file():
        print(f"study_tables: {args.kept} has no per_question.parquet: `study_tables.py add` an ablation to it first",
              file=sys.stderr)
        return 2
    elif args.into:
        try:
            page = args.into.read_text()
            into_page(page, args.kept, "")  # the marker is checked before the bootstrap (~12 s) runs
        except (OSError, ValueError) as err:
            print(f"study_tables: {args.into}: {err}", file=sys.stderr)
            return 2
        page = into_page(page, args.kept, tables(args.kept))
        from iwsi.rundir import atomic_write_text

        atomic_write_text(args.into, page)
        print(f"{args.into}: the tables of {args.kept} rewritten")
    else:
        print(tables(args.kept))
    return 0


if __name__ == "__main__":
    sys.exit(main())
