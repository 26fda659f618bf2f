"""What a process spends: CPU seconds and peak resident memory (Linux /proc; elsewhere None). Each stage
marker records both for its stage (pipeline._run_stages); the benchmarks measure with the same calls, and
name the CPU they ran on with `cpu_info`.

CPU seconds are this process's user + system time plus those of the child processes it has waited for
(`accelerate launch` training); Ray workers are not its children and are not counted."""
from __future__ import annotations

import os
from pathlib import Path


def reset_peak_rss() -> None:
    """Start a new peak: VmHWM back to the current RSS (Linux: 5 written to clear_refs)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def peak_rss_mb() -> float | None:
    """This process's peak resident memory since the last reset, in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def cpu_info() -> dict:
    """The CPU a figure was measured on: model name, family / model numbers, usable cores and the flags that
    decide the model's dtype (iwsi.models.default_dtype); None where /proc/cpuinfo does not say."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        lines = []
    fields: dict[str, str] = {}
    for line in lines:  # the first processor's block is enough: every core reports the same model
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get("flags", "").split())
    return {"model_name": fields.get("model name"), "family": fields.get("cpu family"), "model": fields.get("model"),
            "cores": len(os.sched_getaffinity(0)), "avx512_bf16": "avx512_bf16" in flags,
            "amx_bf16": "amx_bf16" in flags, "avx2": "avx2" in flags}


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
