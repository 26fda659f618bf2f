"""The `device` key and `engine: auto` (iwsi/device.py): fast, no GPU, no vLLM needed."""
from __future__ import annotations

import pytest
import torch

from iwsi import device
from iwsi.config import ConfigError, RunConfig
from iwsi.models import load_model


def test_auto_is_the_cpu_without_a_gpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device.torch_device("auto").type == "cpu"
    assert device.pick_engine("auto", "cpu") == "iwsi"


def test_cuda_without_a_gpu_is_refused_not_moved_to_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="no CUDA GPU is visible: set device=cpu"):
        device.torch_device("cuda")
    with pytest.raises(ConfigError, match="not valid"):
        device.torch_device("gpu0")


def test_native_engine_refuses_a_gpu_and_names_the_engine_to_use():
    with pytest.raises(ConfigError, match="engine iwsi runs on the CPU only.*set engine=vllm"):
        device.pick_engine("iwsi", "cuda")


def test_auto_on_a_gpu_picks_vllm_when_installed_else_hf(monkeypatch):
    monkeypatch.setattr(device, "vllm_installed", lambda: True)
    assert device.pick_engine("auto", "cuda") == "vllm"
    monkeypatch.setattr(device, "vllm_installed", lambda: False)
    assert device.pick_engine("auto", "cuda") == "hf"


def test_vllm_without_vllm_names_the_install(monkeypatch):
    monkeypatch.setattr(device, "vllm_installed", lambda: False)
    with pytest.raises(ConfigError, match="make vllm"):
        device.pick_engine("vllm", "cpu")


def test_vllm_build_must_match_the_device(monkeypatch):
    monkeypatch.setattr(device, "vllm_installed", lambda: True)
    monkeypatch.setattr(device, "vllm_device_type", lambda: "cpu")
    with pytest.raises(ConfigError, match="installed vLLM runs on cpu but device is cuda"):
        device.pick_engine("vllm", "cuda")


def test_resolve_makes_the_engine_concrete_and_placement_keys_leave_the_run_id():
    cfg = RunConfig(engine="auto", device="cpu")
    assert device.resolve(cfg).engine == "iwsi"
    assert RunConfig(workers=4, device="cpu", train_processes=2).run_id() == RunConfig().run_id()
    assert RunConfig(engine="hf").run_id() != RunConfig().run_id()


def test_native_engine_refuses_a_model_off_the_cpu():
    from iwsi.engines import native as engine

    model = load_model("embedded", dtype=torch.float32)
    model.to("meta")  # stands in for a GPU: any non-CPU device
    with pytest.raises(ValueError, match="engine iwsi runs on the CPU only and the model is on meta"):
        engine.score(model, None, ["Q: 1"], [" 1"])


def test_cli_refuses_cuda_without_a_gpu_and_writes_nothing(tmp_path, capsys):
    from iwsi.cli import main

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = tmp_path / "run"
    assert main(["run", "--out", str(out), "--set", "device=cuda"]) == 2
    assert "no CUDA GPU is visible" in capsys.readouterr().err
    assert not out.exists()


def test_workers_without_ray_names_the_install(monkeypatch):
    monkeypatch.setattr(device, "installed", lambda name: name != "ray")
    with pytest.raises(ConfigError, match="workers=2 needs Ray installed: run `make vllm`"):
        device.resolve(RunConfig(device="cpu", workers=2))
