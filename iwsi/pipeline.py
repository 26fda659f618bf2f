"""Chains the stages generate → vote → score → evaluate-base → embed → judge → filter → train → evaluate
in one run directory (the order and what each stage reads: iwsi/contract.py: STAGES, STAGE_INPUTS).

Each stage is skipped when its marker `stages/<stage>.json` exists (resume), records its wall time,
and leaves complete artefacts (see docs/run-directory.md). `metrics.json` is rebuilt from the
artefacts after every stage. Run it with `iwsi run` (iwsi/cli.py).
"""
from __future__ import annotations

import contextlib
import math
import signal
import sys
import time
import traceback
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import pandas as pd
import yaml

from iwsi import engines, filtering
from iwsi.answers import is_correct
from iwsi.config import JUDGES, STAGES, ConfigError, RunConfig, load_config
from iwsi.contract import RUN_FILE, with_dependents
from iwsi.datasets import load_splits
from iwsi.device import cuda_peak_note, reset_cuda_peak
from iwsi.dsweight import valid_center, valid_loss_mean
from iwsi.records import Splits
from iwsi.rundir import (
    RunDir,
    RunDirError,
    StageFailed,
    atomic_write_text,
    check_out_dir,
    claim_dir,
    fingerprint,
    read_json,
    runs_root,
    write_json,
    write_parquet,
)
from iwsi.usage import cpu_seconds, peak_rss_mb, reset_peak_rss

# The config keys each stage's output depends on: changing one invalidates that stage and the stages that
# read it (contract.STAGE_INPUTS).
STAGE_KEYS = {
    "generate": ("dataset", "data_dir", "fields", "num_questions", "model", "trust_remote_code", "num_samples",
                 "temperature", "top_p", "top_k", "max_new_tokens", "seed", "valid_size", "test_size", "engine"),
    "vote": ("min_agreement",),
    "score": ("loss_span", "valid_pool"),
    "evaluate-base": (),
    "embed": ("embed",),
    "judge": ("method", "judges", "reward_model"),  # the method says which judge's score it needs
    "filter": ("method", "k", "entropy_threshold", "weight_clip", "valid_center"),
    "train": ("epochs", "learning_rate", "lora_r", "lora_alpha", "lora_dropout", "batch_size", "grad_accum"),
    "evaluate": ("rounds",),
}


@dataclass
class Context:
    """What the stages share: config, run directory, data splits and the (lazily loaded) base model."""

    cfg: RunConfig
    run: RunDir
    splits: Splits
    _model: object = field(default=None, repr=False)

    @cached_property
    def tokenizer(self):
        from iwsi.models import load_tokenizer

        return load_tokenizer(self.cfg.model, self.cfg.trust_remote_code)

    @property
    def model(self):
        if self._model is None:
            from iwsi.device import torch_device
            from iwsi.models import load_model

            self._model = load_model(self.cfg.model, trust_remote_code=self.cfg.trust_remote_code,
                                     device=torch_device(self.cfg.device))
        return self._model

    def engine_model(self) -> object:
        """What the engine runs (its `load` hook): the torch model above, or an engine's own instance (vLLM)."""
        return engines.get(self.cfg.engine).load(self.cfg, base=lambda: self.model, threads=self.cfg.worker_threads)

    def samples(self) -> pd.DataFrame:
        return pd.read_parquet(self.run / RUN_FILE.samples)

    def valid_rationales(self) -> list:
        """D_v, then up to `valid_pool` further human rationales of the valid split (the score stage's)."""
        from iwsi.datasets import valid_pool

        return self.splits.valid + valid_pool(self.cfg, self.splits.valid)


# -- stages ------------------------------------------------------------------------------------------
def stage_generate(ctx: Context) -> None:
    from iwsi.generate import generate

    if ctx.cfg.workers > 1:  # Ray workers sample, the driver writes every chunk file; generate() only reads them
        from iwsi.distributed import generate_chunks

        generate_chunks(ctx.cfg, ctx.run, ctx.splits.pool)
        df = generate(None, ctx.tokenizer, ctx.splits.pool, ctx.cfg, ctx.run)
    else:
        df = generate(ctx.engine_model(), ctx.tokenizer, ctx.splits.pool, ctx.cfg, ctx.run)
    write_parquet(ctx.run / RUN_FILE.candidates, df)


def stage_vote(ctx: Context) -> None:
    from iwsi.vote import vote_table

    df = vote_table(pd.read_parquet(ctx.run / RUN_FILE.candidates), ctx.cfg.min_agreement)
    gold = {q.question_id: (q.gold, q.task) for q in ctx.splits.pool}
    df["gold"] = [gold[qid][0] for qid in df["question_id"]]
    df["is_correct"] = pd.array([is_correct(a, *gold[qid]) for a, qid in zip(df["answer"], df["question_id"])],
                                dtype="boolean")
    write_parquet(ctx.run / RUN_FILE.samples, df)


def stage_score(ctx: Context) -> None:
    from iwsi.score import score_samples, score_valid

    model, rationales = None, ctx.valid_rationales()  # D_v and the pool: loaded once for both branches
    if ctx.cfg.workers > 1:  # Ray workers score, the driver writes every chunk file; the calls below read them
        from iwsi.distributed import score_chunks

        score_chunks(ctx.cfg, ctx.run, rationales, ctx.samples())
    else:
        model = ctx.engine_model()
    scored = score_valid(model, ctx.tokenizer, rationales, ctx.cfg, ctx.run)
    in_dv = scored["question_id"].isin([q.question_id for q in ctx.splits.valid])
    write_parquet(ctx.run / RUN_FILE.valid, scored[in_dv].reset_index(drop=True))
    write_parquet(ctx.run / RUN_FILE.valid_pool, scored.assign(in_dv=in_dv))
    df = score_samples(model, ctx.tokenizer, ctx.samples(), scored.loc[in_dv, "loss"], ctx.cfg, ctx.run)
    write_parquet(ctx.run / RUN_FILE.samples, df)


def stage_embed(ctx: Context) -> None:
    """Embeddings + one UMAP fit and label suggestions, for the dashboard (skippable: embed=false)."""
    if not ctx.cfg.embed:
        return
    from iwsi.embed import embed_texts, fit_umap
    from iwsi.rundir import Progress
    from iwsi.score import pooled_embeddings
    from iwsi.taxonomy import suggest_labels

    df, valid = ctx.samples(), pd.read_parquet(ctx.run / RUN_FILE.valid)
    pooled = pooled_embeddings(ctx.run, df, valid, ctx.cfg)  # from the score stage's forward pass
    ctx.run.log(f"embed: {len(valid) + len(df)} sentence embeddings "
                f"{'pooled by the score pass' if pooled else 'in a pass of their own (none saved by score)'}")
    if pooled is None:  # no saved embeddings (vLLM, an older run): a pass of its own
        bar = Progress(ctx.run, "embed", len(valid) + len(df), unit="seq")
        pooled = (embed_texts(ctx.model, ctx.tokenizer, _qa_texts(valid), progress=bar),
                  embed_texts(ctx.model, ctx.tokenizer, _qa_texts(df), progress=bar))
        bar.close()
    v_emb, s_emb = pooled
    write_parquet(ctx.run / RUN_FILE.umap, fit_umap(v_emb, s_emb, ctx.cfg.seed, valid_ids=valid, self_ids=df))
    write_parquet(ctx.run / RUN_FILE.suggestions, suggest_labels(df, valid))


def _qa_texts(table: pd.DataFrame) -> list[str]:
    """What is embedded per row, the same for valid and self-generated samples: question and rationale, as
    the score stage reads them (its pooled embeddings are of the same text)."""
    from iwsi.prompts import question_suffix

    return [f"{question_suffix(q)} {r}" for q, r in zip(table["question"], table["rationale"])]


def stage_judge(ctx: Context) -> None:
    """Scores of the majority samples by the judges the run needs (the method's own, e.g. `self` →
    self_score, plus `judges`); other judges' columns are dropped, so the file follows the config."""
    from iwsi import judges
    from iwsi.rundir import Progress

    df = ctx.samples().drop(columns=[filtering.METHODS[j].score_column for j in JUDGES], errors="ignore")
    maj = df[df["is_majority"]]
    for judge in ctx.cfg.judge_names():
        bar = Progress(ctx.run, f"judge-{judge}", len(maj), unit="seq")
        model = ctx.engine_model() if judge == "self" else None
        scores = judges.scores(judge, model, ctx.tokenizer, maj["question"].tolist(), maj["rationale"].tolist(),
                               ctx.cfg, progress=bar)
        bar.close()
        df[filtering.METHODS[judge].score_column] = pd.Series(scores, index=maj.index, dtype=float)
    write_parquet(ctx.run / RUN_FILE.samples, df)


def stage_filter(ctx: Context) -> None:
    from iwsi.dsweight import add_signals

    cfg = ctx.cfg
    # w' and w_DS against the run's own valid_center (an ablation cell shares the score stage of another)
    df = add_signals(ctx.samples(), pd.read_parquet(ctx.run / RUN_FILE.valid)["loss"], cfg.valid_center)
    kept, threshold = filtering.select(df, cfg.method, cfg.k, cfg.entropy_threshold, cfg.seed)
    df["kept"] = kept
    weighted = filtering.METHODS[cfg.method].weighted
    df["weight"] = filtering.training_weights(df["w_prime"], cfg.weight_clip) if weighted else 1.0
    write_parquet(ctx.run / RUN_FILE.samples, df)
    write_json(ctx.run / RUN_FILE.filter, {"method": cfg.method, "k": cfg.k, "threshold": _finite(threshold),
                                         "sigma_k": _finite(sigma_k(df, cfg.k))})


def sigma_k(df: pd.DataFrame, k: float) -> float:
    """σ_k%: the DS weight at the k % cut of the majority samples (reported for every method)."""
    return filtering.iwsi(df, k)[1]


class EmptyTrainingSet(ValueError):
    """The filter kept nothing (e.g. ground-truth when no majority answer is correct)."""


def stage_train(ctx: Context) -> None:
    import torch

    from iwsi.models import load_model
    from iwsi.rundir import Progress
    from iwsi.train import encode_example, train

    kept = ctx.samples().query("kept")
    if kept.empty:
        raise EmptyTrainingSet(f"method {ctx.cfg.method!r} kept no samples, so there is nothing to train on: "
                               "raise k, sample more (num_samples) or use another method")
    examples = [encode_example(ctx.tokenizer, q, r, w) for q, r, w in zip(kept["question"], kept["rationale"],
                                                                         kept["weight"])]
    # an engine's own instance (vLLM) frees its memory, GPU memory on a GPU, for training; evaluation starts its own
    engines.get(ctx.cfg.engine).release()
    if ctx.cfg.train_processes > 1:  # DDP through `accelerate launch` (iwsi/distributed.py)
        from iwsi.distributed import train_launched

        write_json(ctx.run / RUN_FILE.train, train_launched(ctx.cfg, ctx.run, examples))
        return
    model = load_model(ctx.cfg.model, dtype=torch.float32, trust_remote_code=ctx.cfg.trust_remote_code)
    metrics = train(model, ctx.tokenizer, examples, ctx.cfg, ctx.run / RUN_FILE.adapter, ctx.run / RUN_FILE.train_ckpt,
                    progress=lambda total: Progress(ctx.run, "train", total, unit="step"))
    write_json(ctx.run / RUN_FILE.train, metrics)


def stage_evaluate_base(ctx: Context) -> None:
    """The base model's greedy test answers (on the generate stage's engine instance)."""
    if ctx.cfg.workers > 1:  # sharded by chunk over Ray workers
        from iwsi.distributed import greedy_eval as sharded

        df = sharded(ctx.cfg, ctx.run, ctx.splits.test, "base", None)
    else:
        from iwsi.evaluate import greedy_eval

        df = greedy_eval(ctx.engine_model(), ctx.tokenizer, ctx.splits.test, ctx.cfg, ctx.run, "base")
    write_parquet(ctx.run / RUN_FILE.eval_base, df)


def stage_evaluate(ctx: Context) -> None:
    """The trained adapter's greedy test answers, beside the base model's (eval_base.parquet)."""
    from iwsi.evaluate import greedy_eval

    if ctx.cfg.workers > 1:  # sharded by chunk over Ray workers
        from iwsi.distributed import greedy_eval as sharded

        trained = sharded(ctx.cfg, ctx.run, ctx.splits.test, "trained", ctx.run / RUN_FILE.adapter)
    else:
        engine = engines.get(ctx.cfg.engine)
        model = engine.load_trained(ctx.cfg, ctx.run / RUN_FILE.adapter, threads=ctx.cfg.worker_threads)
        trained = greedy_eval(model, ctx.tokenizer, ctx.splits.test, ctx.cfg, ctx.run, "trained")
    frames = [pd.read_parquet(ctx.run / RUN_FILE.eval_base), trained]
    write_parquet(ctx.run / RUN_FILE.eval, pd.concat(frames, ignore_index=True))


STAGE_FUNCS = {"generate": stage_generate, "evaluate-base": stage_evaluate_base, "vote": stage_vote,
               "score": stage_score, "embed": stage_embed, "judge": stage_judge, "filter": stage_filter,
               "train": stage_train, "evaluate": stage_evaluate}


# -- metrics -----------------------------------------------------------------------------------------
def build_metrics(run: RunDir, cfg: RunConfig) -> dict:
    """metrics.json from whatever artefacts exist (so it is right after any stage)."""
    m: dict = {"method": cfg.method, "k": cfg.k, "dataset": cfg.dataset, "model": cfg.model}
    if (run / RUN_FILE.samples).exists():
        df = pd.read_parquet(run / RUN_FILE.samples)
        m.update(num_questions=int(df["question_id"].nunique()), num_candidates=len(df),
                 num_majority=int(df["is_majority"].sum()))
        if "kept" in df:
            m["num_kept"] = int(df["kept"].sum())
            m["num_kept_questions"] = int(df.loc[df["kept"], "question_id"].nunique())
    if (run / RUN_FILE.valid).exists():
        valid_losses = pd.read_parquet(run / RUN_FILE.valid)["loss"]
        m["valid_loss_mean"] = valid_loss_mean(valid_losses)
        m["valid_loss_center"] = valid_center(valid_losses, cfg.valid_center)  # L̄_v under the run's centre
    m.update({k: v for k, v in read_json(run / RUN_FILE.filter, {}).items() if k in ("sigma_k", "threshold")})
    if (run / RUN_FILE.eval).exists():
        from iwsi.evaluate import accuracy

        ev = pd.read_parquet(run / RUN_FILE.eval)
        m["accuracy"] = {label: accuracy(g) for label, g in ev.groupby("model")}
    m["timings"] = run.timings()
    return m


def _finite(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


# -- orchestration -----------------------------------------------------------------------------------
def prepare(cfg: RunConfig, out: str | Path | None, force: bool = False) -> tuple[RunDir, Splits, list[str]]:
    """Validate everything that can be checked before touching the disk: data, model, old config.

    Returns the run dir, the splits and the stages to (re)run from (all, or those after a change)."""
    from iwsi.models import check_model
    from iwsi.train import check_reporter

    check_reporter(cfg.report_to)  # the tracker's package, before anything is written
    splits = load_splits(cfg.dataset, cfg.data_dir, cfg.num_questions, cfg.valid_size, cfg.test_size, cfg.seed,
                         cfg.fields or None)
    check_model(cfg.model, cfg.trust_remote_code)
    check_lengths(cfg, splits)
    run = RunDir(out or runs_root() / cfg.run_id())
    check_out_dir(run.path, "run")
    return run, splits, stale_stages(run, cfg, force) or scored_before_ifd(run, cfg)


def check_lengths(cfg: RunConfig, splits: Splits) -> None:
    """Refuse, before anything is written, a question whose prompt cannot fit the model's context:
    past its trained length the engines would extend RoPE and degrade silently."""
    from iwsi.datasets import DatasetError
    from iwsi.models import load_tokenizer, max_positions
    from iwsi.prompts import few_shot_prefix, question_suffix

    limit = max_positions(cfg.model, cfg.trust_remote_code)
    if not limit:
        return
    tok = load_tokenizer(cfg.model, cfg.trust_remote_code)
    if cfg.max_new_tokens >= limit:
        raise ConfigError(f"max_new_tokens={cfg.max_new_tokens} does not fit the model's {limit} positions: "
                          f"lower it")
    # few-shot prefix + question + max_new_tokens when sampling and evaluating (the engines tokenize the
    # shared prefix once and each question apart); question + rationale when scoring the valid set
    prefix_len = {task: len(tok(few_shot_prefix(task))["input_ids"])
                  for task in {q.task for q in [*splits.pool, *splits.test]}}
    items = [(q, prefix_len[q.task] + cfg.max_new_tokens, question_suffix(q.question))
             for q in [*splits.pool, *splits.test]]
    items += [(q, 0, question_suffix(q.question) + " " + (q.rationale or "")) for q in splits.valid]
    lengths = tok([text for _, _, text in items], add_special_tokens=False)["input_ids"]
    for (q, extra, _), ids in zip(items, lengths):
        if len(ids) + extra > limit:
            raise DatasetError(f"question {q.question_id} needs {len(ids) + extra} positions (prompt and "
                               f"max_new_tokens={cfg.max_new_tokens}), more than the model's {limit}: shorten or "
                               "remove it (or lower max_new_tokens)")


def stale_stages(run: RunDir, cfg: RunConfig, force: bool) -> list[str]:
    """Stages to redo because the config changed (refused without --force)."""
    changed = changed_keys(run, cfg)
    if changed is None:  # config.yaml damaged: which stages match the new config is unknown
        if not force:
            raise RunDirError(f"{run / RUN_FILE.config} was changed or damaged since iwsi wrote it: restore it, use "
                              "another --out, or --force to redo every stage")
        return list(STAGES)
    if not changed:
        return []
    if not force:
        raise RunDirError(f"run directory {run.path} was made with a different config ({', '.join(changed)} "
                          "changed): use another --out, or --force to redo the affected stages")
    hit = [s for s, keys in STAGE_KEYS.items() if set(keys) & set(changed)]
    return list(with_dependents(hit or STAGES))  # an unlisted change redoes everything


def scored_before_ifd(run: RunDir, cfg: RunConfig) -> list[str]:
    """Method ifd on a run whose score stage predates the IFD column: redo score and the stages that read it
    (the chunks are scored again; nothing else in the run changes)."""
    if cfg.method != "ifd" or not run.is_done("score"):
        return []
    import pyarrow.parquet as pq

    try:
        columns = pq.read_schema(run / RUN_FILE.samples).names
    except (OSError, ValueError):
        return []  # a damaged file: repair() redoes its stage
    return [] if "ifd" in columns else list(with_dependents(["score"]))


def changed_keys(run: RunDir, cfg: RunConfig) -> list[str] | None:
    """Config keys that differ from the run directory's config.yaml ([] for a new directory, None
    when config.yaml is not the file iwsi wrote: deleted, truncated, edited)."""
    path = run / RUN_FILE.config
    recorded = run.recorded_config()  # None in runs made before the record existed
    if recorded is not None and (not path.is_file() or fingerprint(path) != recorded):
        return None
    if not path.exists():
        return []
    old = previous_config(run)
    if old is None:
        return ["config.yaml (unreadable)"]
    changed = [k for k in STAGE_KEYS_FLAT if getattr(old, k) != getattr(cfg, k)]
    if not changed and old.hash() != cfg.hash():  # a key missing from STAGE_KEYS: play safe
        changed = [k for k in cfg.__dataclass_fields__ if getattr(old, k) != getattr(cfg, k)]
    return changed


def previous_config(run: RunDir) -> RunConfig | None:
    """The config the run directory was made with, or None (a new directory, or config.yaml unreadable)."""
    try:
        return load_config(overrides=yaml.safe_load((run / RUN_FILE.config).read_text()))
    except (OSError, ConfigError, yaml.YAMLError, TypeError, AttributeError, RecursionError):
        return None


STAGE_KEYS_FLAT = tuple(dict.fromkeys(k for keys in STAGE_KEYS.values() for k in keys))


def run_pipeline(cfg: RunConfig, out: str | Path | None = None, until: str | None = None,
                 force: bool = False) -> Path:
    """Run (or resume) every stage up to `until`; returns the run directory.

    Nothing is written before every input check has passed; a config change clears the stale
    stages' artefacts before the new config.yaml is written (a crash in between is refused on rerun,
    never resumed with the old artefacts)."""
    from iwsi.device import resolve

    cfg = resolve(cfg)  # concrete engine, device checks (ConfigError before anything is written)
    run, splits, stale = prepare(cfg, out, force)
    claim_dir(run.path, "run", mark=False)  # marked once the lock is ours: a busy directory stays untouched
    with run.lock(), torch_threads(cfg.worker_threads):
        claim_dir(run.path, "run")
        run.remove_temporaries()
        repair(run)  # real damage first, checked against every marker as it stands
        run.clear_from(tuple(stale))
        atomic_write_text(run / RUN_FILE.config, cfg.to_yaml())
        run.record_config()
        for note in splits.notes:
            run.log(f"note: {note}")
        _run_stages(Context(cfg, run, splits), STAGES[: STAGES.index(until) + 1] if until else STAGES)
    return run.path


@contextlib.contextmanager
def torch_threads(threads: int):
    """`worker_threads` for this run only (this process is the one worker: the threads each Ray worker
    would use); the caller's count comes back after it. Left set, a fuzzed `worker_threads=1000` ran
    every later test of CI's pytest process on 1000 threads over 2 cores (docs/scale.md, CI)."""
    if not threads:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def repair(run: RunDir) -> None:
    """A finished file that was damaged since its stage wrote it (truncated, deleted, replaced) is
    named, and its stage and the later ones are redone."""
    damage = run.verify()
    if damage:
        stage, name, why = damage
        message = f"{why}: redoing stage {stage} and the stages that read it"
        run.log(message)
        print(f"iwsi: {message}", file=sys.stderr)
        run.redo_from(stage, name)


def _run_stages(ctx: Context, stages: tuple[str, ...]) -> None:
    run = ctx.run
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    stage = None
    try:
        for stage in stages:
            if run.is_done(stage):
                continue
            run.redo_from(stage)  # a stage that reruns makes the ones that read it stale (e.g. a deleted marker)
            run.set_status("running", stage)
            run.log(f"stage {stage} started")
            start, cpu = time.time(), cpu_seconds()
            reset_cuda_peak()
            reset_peak_rss()
            STAGE_FUNCS[stage](ctx)
            peak = peak_rss_mb()
            run.mark_done(stage, time.time() - start, cpu_seconds=round(cpu_seconds() - cpu, 3),
                          peak_rss_mb=None if peak is None else round(peak, 1))
            run.log(f"stage {stage} done in {time.time() - start:.1f}s{cuda_peak_note()}")
            write_json(run / RUN_FILE.metrics, build_metrics(run, ctx.cfg))
        write_json(run / RUN_FILE.metrics, build_metrics(run, ctx.cfg))  # also after a kill right after a marker
        # a run stopped with --until is not done: it resumes with the same command without --until
        run.set_status("done" if all(run.is_done(s) for s in STAGES) else "stopped", stage)
    except KeyboardInterrupt:
        run.set_status("cancelled", stage, "cancelled by the user")
        run.log(f"stage {stage} cancelled")
        raise
    except Exception as err:
        run.set_status("failed", stage, f"{type(err).__name__}: {err}")
        run.log(f"stage {stage} failed:\n{traceback.format_exc()}")
        raise StageFailed(stage, run.path, err) from err
    finally:
        signal.signal(signal.SIGTERM, previous)


def _on_sigterm(signum, frame):
    # The dashboard's cancel button sends SIGTERM: unwind through the status/lock cleanup.
    raise KeyboardInterrupt
