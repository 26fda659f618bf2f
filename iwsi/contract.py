"""The run-directory contract: where runs live, every file a run holds, its columns and which stage
writes it (pure data, no pandas or torch).

The pipeline (iwsi/rundir.py: markers, fingerprints, clearing), the dashboard (iwsi/runs.py, views/)
and docs/run-directory.md all read this table; `python -m iwsi.contract` prints the markdown table that
docs/run-directory.md holds (tests/test_contract.py checks they agree). Code spells a run file's name as
`RUN_FILE.<name>` (tests/test_contract.py fails on a quoted run-file name anywhere else).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
OWNER_FILE = "iwsi.json"  # the first file of every folder iwsi creates (see rundir.claim_dir)
KINDS = ("run", "ablation", "probe")  # what an owner file says the folder is
PROBE_MANIFEST = "probe.json"  # a probe directory's settings, sizes and timings (iwsi/probe.py)
SCHEMA_VERSION = 1  # bump when a file below changes name or meaning


@dataclass(frozen=True)
class RunFileNames:
    """The name of each file and folder directly in a run directory, as code spells it (`run / RUN_FILE.samples`):
    FILES below says what each holds and which stage writes it (tests/test_contract.py: no module types one)."""

    owner: str = OWNER_FILE
    config: str = "config.yaml"
    status: str = "status.json"
    lock: str = "lock"
    progress: str = "progress.jsonl"
    log: str = "log.txt"
    launch: str = "launch.json"
    stages: str = "stages"
    chunks: str = "chunks"
    candidates: str = "candidates.parquet"
    eval_base: str = "eval_base.parquet"
    samples: str = "samples.parquet"
    valid: str = "valid.parquet"
    valid_pool: str = "valid_pool.parquet"
    umap: str = "umap.parquet"
    suggestions: str = "suggestions.parquet"
    filter: str = "filter.json"
    train_ckpt: str = "train_ckpt"
    train_log: str = "train_log.jsonl"
    tensorboard: str = "tensorboard"
    train: str = "train.json"
    adapter: str = "adapter"
    eval: str = "eval.parquet"
    metrics: str = "metrics.json"
    labels: str = "labels.parquet"
    annotations: str = "annotations.json"


RUN_FILE = RunFileNames()


def cache_root() -> Path:
    """`$IWSI_CACHE` (`~` expanded) or `<repo>/cache`, read at call time so tests and the dashboard can
    redirect it."""
    return Path(os.path.expanduser(os.environ.get("IWSI_CACHE") or REPO / "cache"))


def runs_root() -> Path:
    return cache_root() / "runs"


def ablations_root() -> Path:
    return cache_root() / "ablations"


def probes_root() -> Path:
    return cache_root() / "probes"


@dataclass(frozen=True)
class File:
    name: str
    written_by: tuple[str, ...]   # stages (or "pipeline", "dashboard") in the order they write it
    content: str                  # columns or keys
    finished: bool = True         # a finished artefact: fingerprinted in its stage markers
    always: bool = True           # a finished artefact its first writer writes in every run (its marker records it)

    @property
    def stage(self) -> str:
        return self.written_by[0]


FILES = (
    File(OWNER_FILE, ("pipeline",), "`kind` (run/ablation), `schema_version`, `created`, `config` (fingerprint of "
         "config.yaml)", finished=False),
    File(RUN_FILE.config, ("pipeline",), "the resolved `RunConfig` (flat keys)", finished=False),
    File(RUN_FILE.status, ("pipeline",), "`state` (running/done/failed/cancelled), `pid`, `stage`, `error`, `started`, "
         "`updated`", finished=False),
    File(RUN_FILE.lock, ("pipeline",), "empty: the command using the folder holds an OS lock on it (filelock), so "
         "one process at a time writes the run", finished=False),
    File(RUN_FILE.progress, ("pipeline",), "one object per line: `stage, done, total, elapsed, time` (appended)",
         finished=False),
    File(RUN_FILE.log, ("pipeline",), "human log: stage starts/ends, notes, tracebacks", finished=False),
    File(RUN_FILE.launch, ("dashboard",),
         "`pid, command, started` of a run started from the dashboard", finished=False),
    File(f"{RUN_FILE.stages}/<stage>.json", ("pipeline",),
         "`stage, seconds, cpu_seconds, peak_rss_mb, finished, files {name: "
         "{bytes, sha256, rows}}`: the stage is done (+ `adopted_from`: a stage taken over from another run "
         "directory, RunDir.adopt)",
         finished=False),
    File(f"{RUN_FILE.chunks}/", ("generate",),
         "resume checkpoints of generate and score; a redone generation clears it all",
         finished=False),
    File(f"{RUN_FILE.chunks}/chunking.json", ("generate",),
         "`questions_per_chunk` (fixed per run: it seeds the chunks)",
         finished=False),
    File(f"{RUN_FILE.chunks}/generate-NNNNN.parquet", ("generate",),
         "`question_id, sample_id, question, rationale, answer` "
         "of one chunk", finished=False),
    File(RUN_FILE.candidates, ("generate",), "`question_id, sample_id, question, rationale, answer`"),
    File(RUN_FILE.eval_base, ("evaluate-base",), "`model` (base), `question_id, output, answer, gold, is_correct`"),
    File(RUN_FILE.samples, ("vote", "score", "judge", "filter"), "one row per candidate: `question_id, sample_id, "
         "question, rationale, answer, gold, is_correct, majority_answer, is_majority, agreement, tied, entropy` "
         "(vote; the rule: iwsi/vote.py) + `loss, num_tokens, loss_answer, loss_alone, w_prime, ds_weight, ifd` "
         "(score; `w_prime, ds_weight` again by filter, against the run's `valid_center`) + `self_score` / "
         "`rm_score` of the majority samples, for the judges the run needs (judge) + `kept, weight` (filter)"),
    File(f"{RUN_FILE.chunks}/score-NNNNN.parquet", ("score",),
         "`question_id, sample_id, loss, num_tokens, loss_answer, "
         "loss_alone` of one generate chunk (+ `embedding`, the sentence embedding the embed stage reads, with "
         "embed=true and an engine that pools)", finished=False),
    File(f"{RUN_FILE.chunks}/score-valid.parquet", ("score",),
         "`question_id, loss, num_tokens, loss_answer, loss_alone` of D_v "
         "and the valid pool", finished=False),
    File(RUN_FILE.valid, ("score",), "D_v: `question_id, question, rationale, gold, num_tokens, loss, loss_answer, "
         "loss_alone`"),
    File(RUN_FILE.valid_pool, ("score",), "every scored valid rationale, D_v first (`in_dv`) then up to "
         "`valid_pool` more: the columns of valid.parquet + `in_dv`", always=False),  # runs scored before it existed
    File(RUN_FILE.umap, ("embed",), "`source` (valid/self), `question_id, sample_id` (-1 for valid), `x, y`",
         always=False),  # not with embed=false
    File(RUN_FILE.suggestions, ("embed",), "`question_id, sample_id, suggested_label, reason`", always=False),
    File(RUN_FILE.filter, ("filter",), "`method, k, threshold, sigma_k`"),
    File(f"{RUN_FILE.train_ckpt}/", ("train",),
         "Trainer checkpoints (one per epoch; resume); deleted once `adapter/` is saved",
         finished=False),
    File(RUN_FILE.train_log, ("train",), "one object per line: `step, loss, learning_rate, epoch, time` of each logged "
         "optimizer step (appended as it trains; a resume drops the steps after its checkpoint, a restart from "
         "scratch empties it)", finished=False),
    File(f"{RUN_FILE.tensorboard}/", ("train",),
         "TensorBoard event files of the Trainer's logs (`report_to=tensorboard`; "
         "`train/loss`, `train/learning_rate`, … per step)", finished=False),
    File(RUN_FILE.train, ("train",), "Trainer metrics; `train_loss` over every step of the run"),
    File(f"{RUN_FILE.adapter}/", ("train",),
         "the saved LoRA adapter (peft format), published by renaming `adapter.tmp/`",
         finished=False),
    File(f"{RUN_FILE.adapter}.tmp/", ("train",),
         "an adapter being saved (removed when training is redone)", finished=False),
    File(f"{RUN_FILE.adapter}/adapter_config.json", ("train",), "the LoRA adapter's peft config"),
    File(f"{RUN_FILE.adapter}/adapter_model.safetensors", ("train",), "the LoRA adapter's weights"),
    File(RUN_FILE.eval, ("evaluate",), "`model` (base/trained), `question_id, output, answer, gold, is_correct`"),
    File(RUN_FILE.metrics, ("pipeline",), "`method, k, dataset, model, num_questions, num_candidates, num_majority, "
         "num_kept, num_kept_questions, valid_loss_mean, valid_loss_center, sigma_k, threshold, accuracy {base, "
         "trained}, timings`",
         finished=False),
    File(RUN_FILE.labels, ("dashboard",), "`question_id, sample_id, label, updated`: the Rationales page's labels, "
         "kept across reruns", finished=False),
    File(RUN_FILE.annotations, ("dashboard",), "`tags` (list of text), `note`, `archived`, `updated`: the Runs page's "
         "tags, note and archive flag; no part of the run's config, hash or fingerprints", finished=False),
)
# The order the stages run in: the DS weights (score) as early as possible, then the base model's evaluation
# (the dashboard's first insight does not wait for it). Everything before filter is independent of the
# method's cut and training, which is what an ablation shares (iwsi/ablate.py).
STAGES = ("generate", "vote", "score", "evaluate-base", "embed", "judge", "filter", "train", "evaluate")
# The stages whose output each stage reads (config keys aside: pipeline.STAGE_KEYS). A stage redone makes
# the stages that read it, directly or not, stale, and no other: the base model's evaluation depends on
# the generate settings only, so no change of scoring, judges, filter or training redoes it.
STAGE_INPUTS = {"generate": (), "vote": ("generate",), "score": ("vote",), "evaluate-base": ("generate",),
                "embed": ("score",), "judge": ("score",), "filter": ("judge",), "train": ("filter",),
                "evaluate": ("train", "evaluate-base")}


def with_dependents(stages) -> tuple[str, ...]:
    """`stages` and every stage that reads one of them, directly or not, in STAGES order."""
    found = set(stages)
    for stage in STAGES:  # STAGES is a topological order of STAGE_INPUTS
        if found & set(STAGE_INPUTS[stage]):
            found.add(stage)
    return tuple(s for s in STAGES if s in found)


# The finished files each stage writes (fingerprinted in its marker; a damaged one redoes its first writer).
STAGE_OUTPUTS = {s: tuple(f.name for f in FILES if f.finished and s in f.written_by) for s in STAGES}
# The finished files a stage's marker must record (a marker without them was not written by iwsi).
STAGE_REQUIRED = {s: tuple(f.name for f in FILES if f.finished and f.always and f.stage == s) for s in STAGES}
# What a stage's redo after a config change deletes (the files it writes first), so it never mixes old
# chunks or checkpoints in.
STAGE_ARTEFACTS = {s: tuple(f.name.replace("NNNNN", "*").rstrip("/") for f in FILES if f.stage == s) for s in STAGES}
WRITTEN_BY = {f.name: " then ".join(f.written_by) for f in FILES}


def markdown_table() -> str:
    lines = ["| file | written by | content |", "|---|---|---|"]
    lines += [f"| `{f.name}` | {WRITTEN_BY[f.name]} | {f.content} |" for f in FILES]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(markdown_table(), end="")
