"""What a process spends: CPU seconds and peak resident memory (Linux /proc; elsewhere None). Each stage
marker records both for its stage (pipeline._run_stages); the benchmarks measure with the same calls.

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


def cpu_seconds() -> float:
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system
