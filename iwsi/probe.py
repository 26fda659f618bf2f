"""`iwsi probe`: what each selection signal detects, on rationales whose defects are known.

    iwsi probe [--config FILE] [--set KEY=VALUE ...] [--n 100] [--kinds redundant,jumping,spurious,style]
               [--severity mild|severe] [--sweep loss_span=full,completion | valid_size=5,20] [--k 80]
               [--boot 1000] [--self-eval] [--name NAME | --out DIR]
    iwsi probe --run RUN_DIR [--k 80] [--name NAME | --out DIR]

Variants mode reads the dataset's valid-set human rationales (`load_splits`): the first `valid_size`
form D_v, the next `--n` are the clean rationales. Each gets known-defect variants
(iwsi/probe_variants.py) with the same final answer. Clean texts, variants and D_v are scored with
the base model exactly as the score stage does (`iwsi.score.loss_table`, the config's engine and
loss_span), then w', w_DS (each valid centre) and IFD against D_v (iwsi/dsweight.py), once per `--sweep`
value (a valid_size sweep scores the texts once: D_v is the first valid_size rows of the largest). Run mode
reads a run's samples.parquet and its labels (labels.parquet from the Rationales page, the
suggestions.parquet of the embed stage) and needs no model.

Writes cache/probes/<name>/ (the dashboard's Probe page reads it):
  probe.json        settings, sizes, timings, machine load and CPU, the command
  variants.parquet  pair, kind, question, task, gold, rationale, note (variants mode)
  skipped.parquet   pair, kind, reason: rationales too short for a defect (variants mode)
  valid.parquet     question_id, question, rationale: D_v (variants mode)
  scores.parquet    setting, pair, kind, loss, num_tokens, loss_answer, loss_alone, w_prime, ds_weight,
                    ds_weight_median, ds_weight_geomean, ifd, valid_mean [, self_score, rm_score]
  auroc.parquet     setting, kind, signal, auroc, ci_low, ci_high, n_defective, n_clean
  cut.parquet       setting, kind, signal, k, n, kept, dropped, base_rate, defective_in_dropped,
                    defective_in_kept, threshold
  auroc.md          the AUROC table as Markdown
"""
from __future__ import annotations

import dataclasses
import functools
import os
import re
import sys
import time
from pathlib import Path

import pandas as pd

from iwsi import engines, probe_stats
from iwsi.config import DEFAULT_K, ConfigError, RunConfig, coerce
from iwsi.contract import PROBE_MANIFEST as MANIFEST
from iwsi.contract import probes_root
from iwsi.probe_variants import KINDS, make_variants, reasoning
from iwsi.records import Question
from iwsi.rundir import RunDirError, check_out_dir, claim_dir, now_iso, read_json, write_json, write_parquet
from iwsi.taxonomy import DEFECTS

SWEEP_KEYS = ("loss_span", "engine", "model", "valid_size")  # the config keys that change a score
NAME_RE = re.compile(r"^[A-Za-z0-9._-]{1,80}$")
TABLES = ("variants", "skipped", "valid", "scores", "auroc", "cut")


# -- inputs ------------------------------------------------------------------------------------------
def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    bad = [k for k in kinds if k not in KINDS]
    if bad or not kinds:
        raise ConfigError(f"--kinds {text!r} is not valid: choose from {', '.join(KINDS)} (comma-separated)")
    return list(dict.fromkeys(kinds))


def settings(cfg: RunConfig, sweep: str | None) -> list[tuple[str, RunConfig]]:
    """(label, config) per scoring setting: the config alone, or one per `--sweep KEY=V1,V2` value."""
    if not sweep:
        return [(f"loss_span={cfg.loss_span}", cfg)]
    key, sep, values = sweep.partition("=")
    key = key.strip()
    if not sep or key not in SWEEP_KEYS or not values.strip():
        raise ConfigError(f"--sweep {sweep!r} is not valid: write KEY=V1,V2 with KEY one of {', '.join(SWEEP_KEYS)} "
                          "(the keys that change a score), e.g. --sweep loss_span=full,completion")
    out = []
    for value in dict.fromkeys(v.strip() for v in values.split(",") if v.strip()):
        out.append((f"{key}={value}", dataclasses.replace(cfg, **{key: coerce(key, value)})))
    return out


def out_dir(args, default_name: str) -> Path:
    if args.out:
        return Path(args.out)
    name = args.name or default_name
    if not NAME_RE.fullmatch(name) or name in (".", ".."):
        raise ConfigError(f"--name {name!r} is not valid: use 1-80 letters, digits, '.', '_' or '-'")
    return probes_root() / name


def probe_questions(cfg: RunConfig, n: int,
                    head: int | None = None) -> tuple[list[Question], list[Question], list[str]]:
    """(D_v rows, clean rationales, loader notes): valid-set rows with a rationale, the first `head` (default
    valid_size; a valid_size sweep takes its largest, and each setting the first valid_size of them) for D_v."""
    from iwsi.datasets import load_splits

    if n < 1:
        raise ConfigError(f"--n {n} is too small: give at least 1 rationale to probe")
    head = head or cfg.valid_size
    splits = load_splits(cfg.dataset, cfg.data_dir, 1, head + n, 0, cfg.seed, cfg.fields or None)
    return splits.valid[:head], splits.valid[head:], splits.notes


# -- variants and scores -----------------------------------------------------------------------------
def build_variants(questions: list[Question], kinds: list[str], seed: int,
                   severity: str = "mild") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Clean rows and their variants (pair = the clean row's question id), and the skipped ones."""
    donors = tuple(reasoning(q.rationale) for q in questions)
    rows, skipped = [], []
    for q in questions:
        base = {"pair": q.question_id, "question": q.question, "task": q.task, "gold": q.gold}
        rows.append({**base, "kind": probe_stats.CLEAN, "rationale": q.rationale, "note": ""})
        for v in make_variants(q.rationale, q.task, seed, q.question_id, kinds, donors, severity):
            if v.text is None:
                skipped.append({"pair": q.question_id, "kind": v.kind, "reason": v.note})
            else:
                rows.append({**base, "kind": v.kind, "rationale": v.text, "note": v.note})
    return pd.DataFrame(rows), pd.DataFrame(skipped, columns=["pair", "kind", "reason"])


def score_texts(model, tokenizer, variants: pd.DataFrame, valid: list[Question], cfg: RunConfig) -> pd.DataFrame:
    """The score stage's losses (iwsi.score.loss_table) of every text and of D_v."""
    from iwsi.score import loss_table

    texts = (variants["question"].tolist(), variants["rationale"].tolist())
    scored = loss_table(model, tokenizer, *texts, engine=cfg.engine, span=cfg.loss_span)
    dv = loss_table(model, tokenizer, [q.question for q in valid], [q.rationale for q in valid], engine=cfg.engine,
                    span=cfg.loss_span)
    return pd.concat([variants[["pair", "kind"]].reset_index(drop=True), scored], axis=1).assign(
        valid_losses=[dv["loss"].tolist()] * len(scored))


def with_signals(scored: pd.DataFrame, valid_size: int) -> pd.DataFrame:
    """w′ and w_DS against the first `valid_size` D_v losses, the paper's mean centre and the others (one
    column per centre), and IFD (iwsi.dsweight)."""
    from iwsi.dsweight import CENTERS, add_signals, valid_center, weights

    valid = scored["valid_losses"].iloc[0][:valid_size]
    df = add_signals(scored.drop(columns="valid_losses"), valid, "mean")
    for center in CENTERS[1:]:
        df[f"ds_weight_{center}"] = weights(df["loss"], valid, center)[1]
    return df.assign(valid_mean=valid_center(valid, "mean"))


def judge_scores(model, tokenizer, variants: pd.DataFrame, cfg: RunConfig, self_eval: bool) -> dict[str, list[float]]:
    """self_score (with --self-eval) and rm_score (when reward_model is set), as the judge stage has them."""
    from iwsi import filtering, judges

    wanted = (["self"] if self_eval else []) + (["rm"] if cfg.reward_model else [])
    texts = (variants["question"].tolist(), variants["rationale"].tolist())
    return {filtering.METHODS[j].score_column: judges.scores(j, model, tokenizer, *texts, cfg) for j in wanted}


def analyse(scores: pd.DataFrame, k: float, paired: bool, n_boot: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """AUROC and k % cut tables per setting."""
    aurocs, cuts = [], []
    for label, part in scores.groupby("setting", sort=False):
        aurocs.append(probe_stats.auroc_table(part, paired, n_boot, seed).assign(setting=label))
        cuts.append(probe_stats.cut_table(part, k).assign(setting=label))
    return _setting_first(pd.concat(aurocs, ignore_index=True)), _setting_first(pd.concat(cuts, ignore_index=True))


def _setting_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[["setting"] + [c for c in df.columns if c != "setting"]]


def machine() -> dict:
    from iwsi.usage import cpu_info

    load = [round(x, 2) for x in os.getloadavg()]
    return {"cpu": cpu_info()["model_name"] or "", "cpus": os.cpu_count(), "load": load}


def write_tables(out: Path, info: dict, scores: pd.DataFrame, auroc: pd.DataFrame, cut: pd.DataFrame,
                 extra: dict[str, pd.DataFrame]) -> None:
    claim_dir(out, "probe")  # the owner file, as for runs and ablations: later probes may replace its files
    write_json(out / MANIFEST, {**info, "created": now_iso(), "finished": False})
    for name in set(TABLES) - set(extra):  # an earlier probe's tables that this one does not write
        (out / f"{name}.parquet").unlink(missing_ok=True)
    for name, df in {**extra, "scores": scores, "auroc": auroc, "cut": cut}.items():
        write_parquet(out / f"{name}.parquet", df)
    (out / "auroc.md").write_text(markdown(auroc, cut, info))
    write_json(out / MANIFEST, {**info, "created": now_iso(), "finished": True})


def markdown(auroc: pd.DataFrame, cut: pd.DataFrame, info: dict) -> str:
    """auroc.md: AUROC cells per (setting, kind) and, for w_DS and loss, the share of defective samples
    among the dropped / kept ones at the k % cut. `w′ low` is left out: it ranks exactly like `loss`."""
    table = probe_stats.format_table(auroc).drop(columns=["w′ low"], errors="ignore")
    shares = cut[cut["signal"].isin(["w_DS", "loss"])].assign(
        text=lambda d: [f"{a:.2f} / {b:.2f}" for a, b in zip(d["defective_in_dropped"], d["defective_in_kept"])])
    shares = shares.pivot_table(index=["setting", "kind"], columns="signal", values="text", aggfunc="first", sort=False)
    shares.columns = [f"{c} cut: dropped / kept" for c in shares.columns]
    table = shares.reset_index().merge(table, on=["setting", "kind"], how="left").fillna("")
    table = table[[c for c in table.columns if "cut:" not in c] + [c for c in table.columns if "cut:" in c]]
    table = table.rename(columns={"loss": "loss (= w′ low)"})
    lines = ["| " + " | ".join(table.columns) + " |", "|---" * len(table.columns) + "|"]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in table.itertuples(index=False)]
    head = (f"AUROC (95 % bootstrap CI) of each signal for defective vs clean, and the share of defective samples "
            f"among dropped / kept at k = {info.get('k', DEFAULT_K):g} — {info.get('title', '')}\n\n")
    return head + "\n".join(lines) + "\n"


# -- the two modes -----------------------------------------------------------------------------------
def probe_variants(args, cfg: RunConfig) -> Path:
    from iwsi.device import resolve
    from iwsi.models import check_model, load_model, load_tokenizer

    kinds = parse_kinds(args.kinds)
    severity = getattr(args, "severity", "mild")
    plan = [(label, resolve(c)) for label, c in settings(cfg, args.sweep)]  # engine auto made concrete
    k = float(args.k if args.k is not None else cfg.k)
    suffix = "" if severity == "mild" else f"-{severity}"
    out = out_dir(args, f"{cfg.dataset}-n{args.n}-s{cfg.seed}{suffix}")
    check_out_dir(out, "probe")
    valid, clean, notes = probe_questions(cfg, args.n, max(c.valid_size for _, c in plan))
    for _, c in plan:
        check_model(c.model, c.trust_remote_code)
    started, load_before = time.time(), machine()
    variants, skipped = build_variants(clean, kinds, cfg.seed, severity)
    parts, timings, judged, scored = [], [], {}, {}
    torch_model, tokenizer = functools.cache(load_model), functools.cache(load_tokenizer)  # once per model
    for label, c in plan:
        tok = tokenizer(c.model, c.trust_remote_code)
        base = functools.partial(torch_model, c.model, trust_remote_code=c.trust_remote_code)
        model = engines.get(c.engine).load(c, base=base)
        t0 = time.time()
        key = (c.model, c.engine, c.loss_span)  # a valid_size sweep scores the texts once
        if key not in scored:
            print(f"probe: scoring {len(variants)} texts + {len(valid)} valid ({label})", file=sys.stderr, flush=True)
            scored[key] = score_texts(model, tok, variants, valid, c)
        df = with_signals(scored[key], c.valid_size)
        seconds, t1 = round(time.time() - t0, 1), time.time()
        key = (c.model, c.engine, c.reward_model)  # judges do not depend on loss_span: score them once
        if key not in judged:
            judged[key] = judge_scores(model, tok, variants, c, args.self_eval)
        for column, values in judged[key].items():
            df[column] = values
        parts.append(df.assign(setting=label))
        timings.append({"setting": label, "loss_span": c.loss_span, "engine": c.engine, "model": c.model,
                        "valid_size": c.valid_size,
                        "valid_mean": float(df["valid_mean"].iloc[0]), "seconds": seconds,
                        "judge_seconds": round(time.time() - t1, 1),
                        "texts": len(df), "tokens": int(df["num_tokens"].sum())})
    scores = pd.concat(parts, ignore_index=True)
    auroc, cut = analyse(scores, k, paired=True, n_boot=args.boot, seed=cfg.seed)
    info = {"kind": "probe", "mode": "variants",
            "title": f"{cfg.dataset}, n = {len(clean)}, D_v = {' / '.join(str(c.valid_size) for _, c in plan)}, "
                     f"{severity} defects",
            "dataset": cfg.dataset, "data_dir": cfg.data_dir, "model": cfg.model, "engine": cfg.engine,
            "seed": cfg.seed, "n": len(clean), "valid_size": len(valid), "kinds": kinds, "severity": severity,
            "k": k, "boot": args.boot,
            "self_eval": bool(args.self_eval), "reward_model": cfg.reward_model, "settings": timings,
            "skipped": skipped.groupby("kind").size().to_dict() if len(skipped) else {}, "notes": notes,
            "command": "iwsi " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["probe"] else None,
            "seconds": round(time.time() - started, 1), "machine_before": load_before, "machine_after": machine()}
    valid_df = pd.DataFrame({"question_id": [q.question_id for q in valid], "question": [q.question for q in valid],
                             "rationale": [q.rationale for q in valid]})
    write_tables(out, info, scores, auroc, cut, {"variants": variants, "skipped": skipped, "valid": valid_df})
    return out


DEFECT_LABELS = DEFECTS


def run_scores(samples: pd.DataFrame, labels: pd.DataFrame | None, suggestions: pd.DataFrame | None) -> pd.DataFrame:
    """A real run's majority samples as a probe scores table: kind "<label> (manual)" for the Rationales
    page's labels, "<label> (suggested)" for the heuristics, and "clean" for samples with neither."""
    keys = ["question_id", "sample_id"]
    maj = samples[samples["is_majority"].astype(bool)].copy()
    maj["pair"] = maj["question_id"].astype(str) + "#" + maj["sample_id"].astype(str)
    groups, flagged = [], pd.Series(False, index=maj.index)
    for source, table, column in (("manual", labels, "label"), ("suggested", suggestions, "suggested_label")):
        if table is None or column not in table:
            continue
        marked = maj[keys].merge(table[keys + [column]], on=keys, how="left")[column].to_numpy()
        for label in DEFECT_LABELS:
            hit = marked == label
            flagged |= hit
            groups.append(maj[hit].assign(kind=f"{label} ({source})"))
    groups.append(maj[~flagged.to_numpy()].assign(kind=probe_stats.CLEAN))
    judged = [c for c in ("ifd", "self_score", "rm_score") if c in maj]  # ifd: runs scored since IFD existed
    columns = ["pair", "kind", *keys, "loss", "w_prime", "ds_weight", *judged]
    return pd.concat(groups, ignore_index=True)[columns]


def probe_run(args) -> Path:
    from iwsi.runs import read_labels

    run = Path(args.run)
    path = run / "samples.parquet"
    need = ["question_id", "sample_id", "is_majority", "loss", "w_prime", "ds_weight"]
    try:
        samples = pd.read_parquet(path)
    except (OSError, ValueError):
        raise RunDirError(f"--run {run}: no readable samples.parquet: "
                          "give a run directory scored by `iwsi run`") from None
    if not set(need) <= set(samples.columns):
        raise RunDirError(f"--run {run}: samples.parquet has no DS weights yet: resume it with `iwsi run --out {run}`")
    labels = read_labels(run)
    try:
        suggestions = pd.read_parquet(run / "suggestions.parquet")
    except (OSError, ValueError):
        suggestions = None
    scores = run_scores(samples, labels if len(labels) else None, suggestions)
    if (scores["kind"] == probe_stats.CLEAN).all():
        raise RunDirError(f"--run {run}: no majority sample is labelled redundant, jumping or spurious: "
                          "label some on the Rationales page or run the embed stage (embed=true) for suggestions")
    recorded = (read_json(run / "filter.json", {}, quiet=True) or {}).get("k", DEFAULT_K)
    k = float(args.k if args.k is not None else recorded)
    out = out_dir(args, f"run-{run.resolve().name}"[:80])
    check_out_dir(out, "probe")
    started, load_before = time.time(), machine()
    scores = scores.assign(setting="run labels")
    auroc, cut = analyse(scores, k, paired=False, n_boot=args.boot, seed=0)
    info = {"kind": "probe", "mode": "run",
            "title": f"run {run.resolve().name} (labels vs unlabelled majority samples)",
            "run": str(run.resolve()), "k": k, "boot": args.boot,
            "counts": scores["kind"].value_counts().to_dict(), "seconds": round(time.time() - started, 1),
            "machine_before": load_before, "machine_after": machine(),
            "command": "iwsi " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["probe"] else None}
    write_tables(out, info, scores, auroc, cut, {})
    return out


def main(args, default_config: Path | None = None) -> int:
    """Entry point for `iwsi probe` (args from iwsi/commands/probe.py; `default_config` when no --config)."""
    from iwsi.config import load_config, parse_sets

    if args.boot < 100:
        raise ConfigError(f"--boot {args.boot} is too small: give at least 100 bootstrap resamples")
    if args.k is not None and not 0 < args.k <= 100:
        raise ConfigError(f"--k {args.k:g} is out of range: give a percentage in (0, 100]")
    if args.run:
        if args.sweep or args.set or args.config or args.self_eval:
            raise ConfigError("--run reads the run's own scores: --config, --set, --sweep and --self-eval do not "
                              "apply; drop them (or drop --run to probe known-defect variants)")
        out = probe_run(args)
    else:
        out = probe_variants(args, load_config(args.config or default_config, parse_sets(args.set)))
    print((out / "auroc.md").read_text())
    print(f"probe directory: {out}")
    return 0


# -- fixture -----------------------------------------------------------------------------------------
SHIFT = {"clean": 0.0, "redundant": -0.15, "jumping": 0.45, "spurious": 0.25, "style": 0.1}


def make_probe_dir(path: str | Path, n: int = 40, seed: int = 0) -> Path:
    """A contract-complete probe directory for tests and screenshots without a model: real
    synthetic-arith variants, synthetic losses (named fixture-* by callers, never a result)."""
    import numpy as np

    from iwsi.datasets import load_splits
    from iwsi.dsweight import ds_weight, importance_weight

    splits = load_splits("synthetic-arith", None, 1, 5 + n, 0, seed)
    valid, clean = splits.valid[:5], splits.valid[5:]
    variants, skipped = build_variants(clean, list(KINDS), seed)
    rng = np.random.default_rng(seed)
    parts = []
    for label, base in (("loss_span=full", 1.9), ("loss_span=completion", 1.2)):
        df = variants[["pair", "kind"]].copy()
        df["loss"] = base + variants["kind"].map(SHIFT).to_numpy() + rng.normal(0, 0.25, len(df))
        df["num_tokens"] = variants["rationale"].str.len() // 4
        df["valid_mean"] = base + float(rng.normal(0, 0.05))
        df["w_prime"] = importance_weight(df["loss"], df["valid_mean"].iloc[0])
        df["ds_weight"] = ds_weight(df["w_prime"])
        parts.append(df.assign(setting=label))
    scores = pd.concat(parts, ignore_index=True)
    auroc, cut = analyse(scores, DEFAULT_K, paired=True, n_boot=200, seed=seed)
    info = {"kind": "probe", "mode": "variants", "title": f"fixture: synthetic losses, n = {n}",
            "dataset": "synthetic-arith",
            "model": "fixture", "n": n, "valid_size": 5, "kinds": list(KINDS), "k": 80.0, "boot": 200, "seed": seed,
            "settings": [{"setting": s, "loss_span": s.split("=", 1)[1], "valid_size": 5, "seconds": 0.0}
                         for s in scores["setting"].unique()], "skipped": {}}
    valid_df = pd.DataFrame({"question_id": [q.question_id for q in valid], "question": [q.question for q in valid],
                             "rationale": [q.rationale for q in valid]})
    write_tables(Path(path), info, scores, auroc, cut, {"variants": variants, "skipped": skipped, "valid": valid_df})
    return Path(path)
