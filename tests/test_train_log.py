"""The training loss as it trains (what researchers reach for in W&B): train_log.jsonl written by the
train stage's callback, read by iwsi/runs.py, drawn on the Runs page live and after; `report_to` (TensorBoard
offline) on a tiny real training of the embedded model."""
from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from benchmarks.fixtures import make_run_dir
from iwsi import runs
from iwsi.config import PLACEMENT, ConfigError, RunConfig, load_config
from iwsi.contract import RUN_FILE, STAGE_ARTEFACTS, with_dependents
from iwsi.rundir import RunDir
from tests.pages import open_page


def _line(step: int, loss, lr=1e-4, epoch=None) -> str:
    return json.dumps({"step": step, "loss": loss, "learning_rate": lr, "epoch": epoch if epoch is not None
                       else step / 10, "time": "2026-12-07T10:00:00+00:00"}) + "\n"


# -- the reader ------------------------------------------------------------------------------------------
def test_the_reader_keeps_one_row_per_step_and_skips_damage(tmp_path):
    assert runs.read_train_log(tmp_path).empty  # not trained yet
    (tmp_path / RUN_FILE.train_log).write_text(
        _line(1, 2.0) + _line(2, 1.9) + "{torn" + "\n" + "[1, 2]\n" + _line(3, float("nan"))
        + json.dumps({"step": True, "loss": 1.0}) + "\n" + json.dumps({"step": 4, "loss": "x"}) + "\n"
        + _line(2, 1.8) + json.dumps({"step": 5, "loss": 1.5}) + "\n")
    log = runs.read_train_log(tmp_path)
    assert list(log.columns) == runs.TRAIN_LOG_COLUMNS
    assert log["step"].tolist() == [1, 2, 5] and log["loss"].tolist() == [2.0, 1.8, 1.5]  # a step logged again: last
    assert math.isnan(log["learning_rate"].iloc[-1]) and pd.isna(log["time"].iloc[-1])  # missing: NaN


# -- the writer (the train stage's callback), without a model ---------------------------------------------------
def _state(step: int, rank_zero: bool = True):
    from transformers import TrainerState

    return TrainerState(global_step=step, is_world_process_zero=rank_zero)


def test_the_callback_appends_each_logged_step_and_restarts_cleanly(tmp_path):
    from iwsi.train import StepLog

    path = tmp_path / RUN_FILE.train_log
    path.write_text(_line(1, 9.0) + _line(2, 9.0))  # a previous training of this run
    log = StepLog(path)
    log.on_train_begin(None, _state(0), None)  # from scratch: the old curve goes
    assert not path.exists()
    for step, loss in ((1, 2.5), (2, 2.25)):
        log.on_log(None, _state(step), None, logs={"loss": loss, "grad_norm": 1.0, "learning_rate": 3e-4,
                                                    "epoch": step / 2})
    log.on_log(None, _state(2), None, logs={"train_loss": 2.4, "train_runtime": 1.0})  # the final summary
    log.on_log(None, _state(3, rank_zero=False), None, logs={"loss": 7.0})  # another DDP rank writes nothing
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(r["step"], r["loss"], r["learning_rate"], r["epoch"]) for r in records] == [(1, 2.5, 3e-4, 0.5),
                                                                                         (2, 2.25, 3e-4, 1.0)]
    assert all(r["time"] for r in records)


def test_a_resume_keeps_the_steps_up_to_its_checkpoint(tmp_path):
    from iwsi.train import StepLog

    path = tmp_path / RUN_FILE.train_log
    path.write_text(_line(1, 2.0) + _line(2, 1.9) + _line(3, 1.8) + "{torn\n")  # killed after step 3
    StepLog(path).on_train_begin(None, _state(2), None)  # its last checkpoint is at step 2
    assert [json.loads(line)["step"] for line in path.read_text().splitlines()] == [1, 2]


def test_a_redone_train_stage_clears_its_log_and_tensorboard_folder(tmp_path):
    run = make_run_dir(tmp_path / "r", num_questions=10, num_samples=2)
    (run / RUN_FILE.train_log).write_text(_line(1, 2.0))
    (run / RUN_FILE.tensorboard).mkdir()
    (run / RUN_FILE.tensorboard / "events.out.tfevents.1").write_bytes(b"x")
    assert {RUN_FILE.train_log, RUN_FILE.tensorboard} <= set(STAGE_ARTEFACTS["train"])  # written_by drives it
    RunDir(run).clear_from(with_dependents(["train"]))
    assert not (run / RUN_FILE.train_log).exists() and not (run / RUN_FILE.tensorboard).exists()


# -- report_to: a placement key ----------------------------------------------------------------------------------
def test_report_to_is_validated_and_stays_out_of_the_run_hash():
    assert RunConfig().report_to == "none" and "report_to" in PLACEMENT
    assert RunConfig(report_to="tensorboard").run_id() == RunConfig().run_id()
    for value in ("none", "tensorboard", "wandb", "mlflow"):
        assert load_config(overrides={"report_to": value}).report_to == value
    with pytest.raises(ConfigError, match="report_to='comet' is not valid: choose one of none, tensorboard"):
        load_config(overrides={"report_to": "comet"})
    cfg = RunConfig(report_to="tensorboard")
    import yaml

    assert load_config(overrides=yaml.safe_load(cfg.to_yaml())) == cfg  # config.yaml round trip
    assert load_config(overrides=yaml.safe_load(RunConfig().to_yaml())).report_to == "none"


def test_a_reporter_whose_package_is_missing_is_one_line(monkeypatch):
    from transformers import integrations

    from iwsi.train import check_reporter

    monkeypatch.setattr(integrations, "is_wandb_available", lambda: False)
    with pytest.raises(ValueError, match=r"^report_to=wandb needs the wandb package: pip install wandb, or set "
                                         r"report_to=none$"):
        check_reporter("wandb")
    check_reporter("none")


def test_iwsi_run_refuses_a_missing_reporter_before_writing(monkeypatch, tmp_path, capsys):
    from transformers import integrations

    from iwsi.cli import main

    monkeypatch.setattr(integrations, "is_mlflow_available", lambda: False)
    assert main(["run", "--set", "report_to=mlflow", "--out", str(tmp_path / "run")]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        "iwsi: error: report_to=mlflow needs the mlflow package: pip install mlflow, or set report_to=none"]
    assert not (tmp_path / "run").exists()


# -- the Runs page: live, then after the run ----------------------------------------------------------------------
def _loss_chart(at) -> dict | None:
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        if "Training loss" in str(spec["layout"].get("title", {}).get("text", "")):
            return spec
    return None


def _points(spec: dict, name: str) -> np.ndarray:
    from tests.test_app_live import _array

    return _array(next(t for t in spec["data"] if t["name"] == name)["y"])


def test_the_runs_page_draws_the_loss_while_training_and_after(cache):
    run = make_run_dir(cache / "runs" / "live", num_questions=10, num_samples=2)
    (run / "status.json").write_text(json.dumps({"state": "running", "pid": os.getpid(), "stage": "train",
                                                 "error": None, "started": None, "updated": None}))
    with RunDir(run).lock():  # a running run's process holds its lock
        at = open_page("views/runs.py")
        assert _loss_chart(at) is None
        assert any("loss curve appears here with the first optimizer step" in c.value for c in at.caption)
        (run / RUN_FILE.train_log).write_text("".join(_line(s, 3.0 - 0.1 * s) for s in range(1, 4)))
        at.run()  # what the page's polling fragment does every POLL_S s
        assert not at.exception
        assert np.allclose(_points(_loss_chart(at), "loss"), [2.9, 2.8, 2.7])
        with open(run / RUN_FILE.train_log, "a") as fh:
            fh.write("".join(_line(s, 3.0 - 0.1 * s) for s in range(4, 8)))
        at.run()
        spec = _loss_chart(at)
        assert len(_points(spec, "loss")) == 7 and any(t["name"].startswith("loss, smoothed") for t in spec["data"])
        assert any("7 optimizer steps logged; the last, step 7 (epoch 0.70): loss 2.3000" in c.value
                   for c in at.caption)
    (run / "status.json").write_text(json.dumps({"state": "done", "pid": None, "stage": "evaluate"}))
    at = open_page("views/runs.py")  # the run has ended: the curve stays
    assert not at.exception and len(_points(_loss_chart(at), "loss")) == 7


# -- a tiny real training with report_to=tensorboard -----------------------------------------------------------
@pytest.mark.slow
def test_tensorboard_gets_the_loss_of_every_step_and_so_does_the_runs_page(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from iwsi.models import load_model, load_tokenizer
    from iwsi.train import encode_example, train

    tokenizer = load_tokenizer("embedded")
    model = load_model("embedded", device="cpu")
    examples = [encode_example(tokenizer, f"What is {a} + {a}?", f"{a} + {a} = {2 * a}. The answer is {2 * a}.")
                for a in range(1, 7)]
    cfg = RunConfig(epochs=1, batch_size=2, lora_r=4, lora_alpha=8, device="cpu", report_to="tensorboard")
    run = tmp_path / "run"
    run.mkdir()
    metrics = train(model, tokenizer, examples, cfg, run / "adapter", run / "train_ckpt")
    assert metrics["global_step"] == 3 and not (run / "train_ckpt").exists()  # the checkpoints go, the events stay
    events = list((run / RUN_FILE.tensorboard).rglob("events.out.tfevents.*"))
    assert events, list(run.rglob("*"))
    acc = EventAccumulator(str(events[0].parent))
    acc.Reload()
    loss = acc.Scalars("train/loss")
    assert [e.step for e in loss] == [1, 2, 3] and all(math.isfinite(e.value) for e in loss)
    log = runs.read_train_log(run)
    assert log["step"].tolist() == [1, 2, 3]
    assert np.allclose(log["loss"], [e.value for e in loss], rtol=1e-5)  # the same scalars in both places
    assert metrics["train_loss"] == pytest.approx(log["loss"].mean(), rel=1e-5)
    assert Path(run / "adapter" / "adapter_config.json").exists()
