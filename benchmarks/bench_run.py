"""`iwsi bench run`: the embedded demo (configs/demo.yaml) end to end, as a newcomer launches it.

    iwsi bench run [--config configs/demo.yaml] [--out DIR] [--set KEY=VALUE ...] [--repo CHECKOUT] [--json]

Runs `iwsi run` as a subprocess into a fresh run directory (a temporary one unless --out) and reports, per
stage, the wall time, CPU seconds and peak RSS the stage's own marker records (stages/<stage>.json, written
by the pipeline: iwsi/usage.py) and the tokens it handled (counted from the artefacts with the model's
tokenizer); the time from launch until the DS weights page has data (the score stage's marker on disk,
polled every 0.1 s) and until the run exits; the CPU model, its bf16/AMX flags and the load average before
and after; and the demo's speed targets as ratios within this one run. `--repo` runs another checkout's iwsi
(e.g. a worktree of an older commit, for a before/after pair on the same machine); markers written before
the CPU and memory fields existed give null there.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parent.parent
TOKEN_STAGES = ("generate", "score", "evaluate-base", "train", "evaluate")


def launch(out: Path, config: str, sets: list[str], repo: Path) -> tuple[subprocess.Popen, float]:
    args = [sys.executable, "-m", "iwsi.cli", "run", "--config", config, "--out", str(out)]
    args += [a for s in sets for a in ("--set", s)]
    env = {**os.environ, "PYTHONPATH": str(repo)}
    log = open(out.parent / f"{out.name}.stderr.txt", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(args, cwd=repo, env=env, stdout=subprocess.DEVNULL, stderr=log), time.time()


def watch(proc: subprocess.Popen, out: Path, started: float) -> dict:
    """Seconds from launch until the score marker (the DS weights) exists and until the run exits."""
    first = None
    while proc.poll() is None:
        if first is None and (out / "stages" / "score.json").exists():
            first = round(time.time() - started, 2)
        time.sleep(0.1)
    return {"exit_code": proc.returncode, "first_insight_s": first, "total_s": round(time.time() - started, 2)}


def stage_table(out: Path) -> dict[str, dict]:
    from iwsi.contract import STAGES
    from iwsi.rundir import RunDir

    run = RunDir(out)
    markers = {stage: run.read_marker(stage) for stage in STAGES if run.is_done(stage)}
    fields = ("seconds", "cpu_seconds", "peak_rss_mb")
    return {stage: {k: m.get(k) for k in fields} for stage, m in markers.items() if m}


def stage_tokens(out: Path, config: str, sets: list[str]) -> dict[str, int]:
    """Tokens each stage handled: sampled completions, scored texts (both spans' forward and L(r)'s),
    greedy answers, and trained sequences × epochs (padding not counted)."""
    from iwsi.config import load_config, parse_sets
    from iwsi.models import load_tokenizer
    from iwsi.prompts import question_suffix
    from iwsi.train import encode_example

    cfg = load_config(config, parse_sets(sets))
    tok = load_tokenizer(cfg.model, cfg.trust_remote_code)
    count = lambda texts: sum(map(len, tok(list(texts), add_special_tokens=False)["input_ids"])) if len(texts) else 0  # noqa: E731
    tokens = {}
    samples = out / "samples.parquet"
    if (out / "candidates.parquet").exists():
        tokens["generate"] = count(pd.read_parquet(out / "candidates.parquet")["rationale"])
    if samples.exists():
        df = pd.read_parquet(samples)
        pool = pd.read_parquet(out / "valid_pool.parquet") if (out / "valid_pool.parquet").exists() else df[:0]
        texts = [f"{question_suffix(q)} {r}" for q, r in zip([*df["question"], *pool["question"]],
                                                              [*df["rationale"], *pool["rationale"]])]
        tokens["score"] = count(texts) + count([*df["rationale"], *pool["rationale"]])
        if "kept" in df:
            kept = df[df["kept"]]
            tokens["train"] = int(cfg.epochs * sum(len(encode_example(tok, q, r)["input_ids"])
                                                   for q, r in zip(kept["question"], kept["rationale"])))
    for stage, name, label in (("evaluate-base", "eval_base.parquet", "base"), ("evaluate", "eval.parquet", "trained")):
        if (out / name).exists():
            ev = pd.read_parquet(out / name)
            tokens[stage] = count(ev.loc[ev["model"] == label, "output"].fillna(""))
    return tokens


def targets(result: dict) -> dict:
    """The demo's speed targets as ratios within this run (None where a stage is missing)."""
    secs = {s: (v or {}).get("seconds") for s, v in result["stages"].items()}
    get = lambda *names: sum(secs.get(n) or 0.0 for n in names)  # noqa: E731
    work = get("generate", "score", "train", "evaluate-base", "evaluate")
    first = result["first_insight_s"]
    return {
        "first_insight_minus_generate_score_s": None if first is None else round(first - get("generate", "vote",
                                                                                              "score"), 2),
        "first_insight_met": None if first is None else first <= get("generate", "vote", "score") + 10,
        "embed_over_score": round(get("embed") / get("score"), 3) if get("score") else None,
        "embed_met": get("embed") <= 0.2 * get("score") if get("score") else None,
        "total_over_work": round(result["total_s"] / work, 3) if work else None,
        "total_met": result["total_s"] <= 1.3 * work if work else None,
    }


def bench_run(config: str, out: Path | None, sets: list[str], repo: Path = REPO) -> dict:
    base = Path(tempfile.mkdtemp(prefix="iwsi-bench-run-")) if out is None else out.parent
    out = out or base / "run"
    out.parent.mkdir(parents=True, exist_ok=True)
    before = os.getloadavg()
    proc, started = launch(out, config, sets, repo)
    from iwsi.usage import cpu_info

    result = {"config": config, "sets": sets, "repo": str(repo), "out": str(out), "cpu": cpu_info(),
              "load_before": [round(x, 2) for x in before],
              "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started))}
    result.update(watch(proc, out, started))
    result["load_after"] = [round(x, 2) for x in os.getloadavg()]
    result["stages"] = stage_table(out)
    for stage, n in stage_tokens(out, config, sets).items():
        result["stages"].setdefault(stage, {})["tokens"] = n
    result["targets"] = targets(result)
    return result


def human(res: dict) -> str:
    cpu = res["cpu"]
    lines = [f"{cpu['model_name']} (family {cpu['family']} model {cpu['model']}, {cpu['cores']} cores, avx512_bf16 "
             f"{cpu['avx512_bf16']}, amx {cpu['amx_bf16']}); load {res['load_before']} → {res['load_after']}",
             f"exit {res['exit_code']}; DS weights on disk after {res['first_insight_s']} s; "
             f"whole run {res['total_s']} s",
             f"{'stage':<14}{'wall s':>9}{'cpu s':>9}{'peak MiB':>10}{'tokens':>9}{'tok/s':>8}"]
    for stage, v in res["stages"].items():
        rate = v.get("tokens") / v["seconds"] if v.get("tokens") and v.get("seconds") else None
        cell = lambda x, fmt: format(x, fmt) if x is not None else "—".rjust(int(fmt.split(".")[0]))  # noqa: E731
        lines.append(f"{stage:<14}{cell(v.get('seconds'), '9.1f')}{cell(v.get('cpu_seconds'), '9.1f')}"
                     f"{cell(v.get('peak_rss_mb'), '10.0f')}{cell(v.get('tokens'), '9.0f')}{cell(rate, '8.0f')}")
    lines.append("targets: " + json.dumps(res["targets"]))
    return "\n".join(lines)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", default=str(REPO / "configs" / "demo.yaml"), help="the run's config (the demo's)")
    p.add_argument("--out", type=Path, help="run directory (default: a new temporary one)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key")
    p.add_argument("--repo", type=Path, default=REPO, help="the checkout whose iwsi runs (default: this one)")


def main(args: argparse.Namespace) -> int:
    if args.out is not None and args.out.exists():
        print(f"iwsi bench run: error: --out {args.out} exists: give a new folder (the run must start from "
              "nothing)", file=sys.stderr)
        return 2
    res = bench_run(args.config, args.out, args.set, args.repo.resolve())
    print(json.dumps(res) if args.json else human(res))
    return 0 if res["exit_code"] == 0 else 1
