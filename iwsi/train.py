"""Stage `train`: LoRA fine-tuning of the base model on the kept samples, through transformers
`Trainer` + peft (no hand-written loop).

Reads the kept rows of `samples.parquet`; writes `adapter/` (peft format) and checkpoints each
epoch under `train_ckpt/` so a killed run resumes from the last one (deleted once the adapter is
saved). The loss covers the rationale tokens only; `weight` (IWSI-w) scales each sample's loss.
Each logged step's loss goes to `train_log.jsonl` (the Runs page's live curve) and, with `report_to`,
to TensorBoard (`tensorboard/` in the run), W&B or MLflow.
"""
from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import torch
from transformers import Trainer, TrainerCallback, TrainingArguments, set_seed

from iwsi.contract import RUN_FILE
from iwsi.models import default_dtype
from iwsi.prompts import format_rationale_target, question_suffix
from iwsi.rundir import append_record, atomic_write_text, now_iso, read_records, record_step

LORA_TARGETS = ["q_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]


def encode_example(tokenizer, question: str, rationale: str, weight: float = 1.0, max_len: int = 512) -> dict:
    """Prompt tokens masked with -100 so only the rationale (ending in the blank line where
    generation stops) is learned."""
    prompt = tokenizer(question_suffix(question), add_special_tokens=False)["input_ids"]
    answer = tokenizer(format_rationale_target(rationale), add_special_tokens=False)["input_ids"]
    ids = (prompt + answer)[:max_len]
    labels = ([-100] * len(prompt) + answer)[:max_len]
    return {"input_ids": ids, "labels": labels, "weight": float(weight)}


def collate(batch: list[dict], pad_id: int) -> dict:
    width = max(len(b["input_ids"]) for b in batch)
    return {"input_ids": torch.tensor(_pad([b["input_ids"] for b in batch], pad_id, width)),
            "attention_mask": torch.tensor(_pad([[1] * len(b["input_ids"]) for b in batch], 0, width)),
            "labels": torch.tensor(_pad([b["labels"] for b in batch], -100, width)),
            "weight": torch.tensor([b["weight"] for b in batch], dtype=torch.float32)}


def _pad(rows: list[list[int]], value: int, width: int) -> list[list[int]]:
    return [row + [value] * (width - len(row)) for row in rows]


class WeightedTrainer(Trainer):
    """Trainer whose loss is the per-sample mean token NLL times the sample's weight (IWSI-w);
    with all weights 1 it is the usual mean over samples."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        weight = inputs.pop("weight")
        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits[:, :-1].float()
        target = labels[:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), target, ignore_index=-100, reduction="none")
        per_sample = nll.sum(1) / (target != -100).sum(1).clamp(min=1)
        loss = (per_sample * weight.to(per_sample.device)).mean()
        return (loss, outputs) if return_outputs else loss


class StepProgress(TrainerCallback):
    """Optimizer steps into the run's progress file (the dashboard's bar and ETA); a resumed run
    starts at its checkpoint's step."""

    def __init__(self, make_bar):
        self.make_bar, self.bar, self.step = make_bar, None, 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.bar, self.step = self.make_bar(state.max_steps), state.global_step
        self.bar(self.step)

    def on_step_end(self, args, state, control, **kwargs):
        self.bar(state.global_step - self.step)
        self.step = state.global_step

    def on_train_end(self, args, state, control, **kwargs):
        self.bar.close()


class StepLog(TrainerCallback):
    """Each logged optimizer step's loss as one line of the run's train_log.jsonl, which the Runs page draws
    while the stage runs. Rank 0 alone writes (DDP). A resumed run keeps the steps up to its checkpoint and
    drops the later ones, which it trains and logs again; a run from scratch starts the file anew."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            keep_steps(self.path, state.global_step)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:  # the end-of-training summary has no "loss"
            append_record(self.path, {"step": state.global_step, "loss": logs["loss"],
                                      "learning_rate": logs.get("learning_rate"), "epoch": logs.get("epoch"),
                                      "time": now_iso()})


def keep_steps(path: Path, last: int) -> None:
    """Keep the records of `path` up to step `last` (all gone at 0); a torn or foreign line goes too."""
    if last <= 0:
        path.unlink(missing_ok=True)
        return
    if not path.exists():  # not written yet
        return
    kept = [rec for rec in read_records(path) if (step := record_step(rec)) is not None and step <= last]
    atomic_write_text(path, "".join(json.dumps(rec) + "\n" for rec in kept))


class NaNGuard(TrainerCallback):
    """Stop with a clear message instead of training on a NaN loss."""

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs and not math.isfinite(logs["loss"]):
            raise FloatingPointError(f"training loss became {logs['loss']} at step {state.global_step}: "
                                     "lower learning_rate or check the data")


def lora_model(model, cfg):
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                        target_modules=LORA_TARGETS, task_type="CAUSAL_LM")
    return get_peft_model(model, config)


def check_reporter(report_to: str) -> None:
    """report_to's package (config.REPORT_TO: each is transformers' integration of that name) is installed: one
    clear line before training, not a failure inside Trainer's set-up."""
    from transformers import integrations

    from iwsi.config import ConfigError

    if report_to != "none" and not getattr(integrations, f"is_{report_to}_available")():
        raise ConfigError(f"report_to={report_to} needs the {report_to} package: pip install {report_to}, "
                         "or set report_to=none")


def log_into_run(trainer, run: Path) -> None:
    """TensorBoard's events into RUN/tensorboard: the Trainer's default, output_dir/runs, is inside train_ckpt/,
    deleted once the adapter is saved. transformers 5 takes the folder from the callback (or the process-wide
    TENSORBOARD_LOGGING_DIR), 4.x from TrainingArguments.logging_dir."""
    from transformers.integrations import TensorBoardCallback

    for callback in trainer.callback_handler.callbacks:
        if isinstance(callback, TensorBoardCallback):
            callback.logging_dir = str(run / RUN_FILE.tensorboard)
    if hasattr(trainer.args, "logging_dir"):
        trainer.args.logging_dir = str(run / RUN_FILE.tensorboard)


def training_args(cfg, out: Path, n_examples: int) -> TrainingArguments:
    from iwsi.device import torch_device

    device = torch_device(getattr(cfg, "device", "auto"))
    bf16 = default_dtype(device) == torch.bfloat16  # autocast on CPUs with native bf16, and on GPUs
    return TrainingArguments(
        output_dir=str(out), num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate,
        lr_scheduler_type="cosine", warmup_steps=0, per_device_train_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.grad_accum, bf16=bf16, use_cpu=device.type == "cpu",
        train_sampling_strategy="group_by_length", save_strategy="epoch", save_total_limit=1, save_only_model=False,
        # every step logged: log_history (restored on resume) then holds each step's loss, see whole_run_loss
        logging_steps=1, report_to=cfg.report_to, seed=cfg.seed,
        remove_unused_columns=False, dataloader_num_workers=0, disable_tqdm=False,
        ddp_find_unused_parameters=False)  # DDP (train_processes > 1): every LoRA weight gets a gradient


def train(model, tokenizer, examples: list[dict], cfg, adapter_dir: Path, ckpt_dir: Path, progress=None) -> dict:
    """Fine-tune LoRA on `examples` (from encode_example); saves the adapter; returns train metrics.
    `progress(total_steps)` makes a step counter (rundir.Progress) for the dashboard. The step log and the
    TensorBoard events go into the run folder, `adapter_dir`'s parent (both callers pass RUN/adapter)."""
    if not examples:
        raise ValueError("no samples were kept for training: raise k or check the vote stage")
    check_reporter(cfg.report_to)
    run = adapter_dir.parent
    # LoRA's random init draws from the global torch RNG, whose state otherwise depends on what
    # this process ran before (a resumed run skips generation): seed it so the init is reproducible.
    set_seed(cfg.seed)
    peft_model = lora_model(model, cfg)
    trainer = WeightedTrainer(model=peft_model, args=training_args(cfg, ckpt_dir, len(examples)),
                              train_dataset=_LengthDataset(examples),
                              callbacks=[NaNGuard(), StepLog(run / RUN_FILE.train_log)]
                              + ([StepProgress(progress)] if progress else []),
                              data_collator=lambda b: collate(b, tokenizer.pad_token_id))
    log_into_run(trainer, run)
    result = trainer.train(resume_from_checkpoint=last_complete_checkpoint(ckpt_dir))
    if not trainer.is_world_process_zero():  # DDP (train_processes > 1): rank 0 alone writes the adapter
        return {}
    tmp = adapter_dir.with_name(adapter_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    peft_model.save_pretrained(tmp)
    shutil.rmtree(adapter_dir, ignore_errors=True)
    tmp.rename(adapter_dir)
    # The checkpoints only serve a resume of this training; once the adapter is published they are dead
    # weight of 3x its size (optimizer state): 182 MB per run at the default LoRA rank, per cell of an ablation.
    shutil.rmtree(ckpt_dir, ignore_errors=True)
    metrics = {k: v for k, v in result.metrics.items() if isinstance(v, (int, float))}
    metrics["global_step"] = result.global_step
    metrics["train_loss"] = whole_run_loss(trainer.state.log_history, metrics.get("train_loss"))
    return metrics


def whole_run_loss(log_history: list[dict], fallback: float | None) -> float | None:
    """Mean loss over every step of the run. Trainer's own `train_loss` covers only the steps of the
    last process, so after a resume it would miss the steps before the checkpoint."""
    losses = [entry["loss"] for entry in log_history if "loss" in entry]
    return sum(losses) / len(losses) if losses else fallback


# A checkpoint is complete once all of these exist; Trainer writes trainer_state.json last.
CHECKPOINT_FILES = ("adapter_model.safetensors", "optimizer.pt", "scheduler.pt", "rng_state.pth", "trainer_state.json")


def last_complete_checkpoint(ckpt_dir: Path) -> str | None:
    """The newest checkpoint a kill did not cut short (None: train from the start).

    Trainer writes checkpoint files in place, so a SIGKILL during a save leaves a partial folder;
    it is removed here rather than handed to `resume_from_checkpoint`, which would crash on it."""
    found = sorted(ckpt_dir.glob("checkpoint-*"), key=_step) if ckpt_dir.exists() else []
    complete = [c for c in found if _is_complete(c)]
    for partial in set(found) - set(complete):
        shutil.rmtree(partial, ignore_errors=True)
    return str(complete[-1]) if complete else None


def _step(path: Path) -> int:
    suffix = path.name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else -1


def _is_complete(checkpoint: Path) -> bool:
    if not all((checkpoint / name).exists() for name in CHECKPOINT_FILES):
        return False
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return True


class _LengthDataset(torch.utils.data.Dataset):
    """List dataset exposing lengths for the length-grouped sampler."""

    def __init__(self, examples: list[dict]):
        self.examples = examples
        self.lengths = [len(e["input_ids"]) for e in examples]

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]
