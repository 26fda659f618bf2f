"""Run one command alone on a small shared machine: every other python / chromium / streamlit / vLLM / Ray
process is stopped (SIGSTOP) while it runs, also ones started meanwhile, and resumed (SIGCONT) after it.
The command's own subprocesses (engine workers, compilers) are left running. `uptime` before and after go
into OUTFILE with the command's stdout; stderr goes to OUTFILE.err.

    python benchmarks/alone.py OUTFILE -- .venv/bin/iwsi bench generate --engines iwsi,vllm --json

Stopping other people's jobs is rude on a shared server: use it on your own machine (docs/benchmarks.md).
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil

WORDS = ("python", "chrom", "streamlit", "pytest", "VLLM", "ray::")


def stop_others(keep: set[int], child: psutil.Process | None, stopped: set[int]) -> None:
    for proc in psutil.process_iter(["name", "cmdline"]):
        try:
            if proc.pid in keep or proc.pid in stopped:
                continue
            if child is not None and child.pid in {p.pid for p in proc.parents()}:
                continue  # checked at stop time: a subprocess born after `keep` was computed
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["name"] or "")
            if any(w in text for w in WORDS):
                proc.send_signal(signal.SIGSTOP)
                stopped.add(proc.pid)
        except psutil.Error:
            pass


def main() -> int:
    out, cmd = sys.argv[1], sys.argv[sys.argv.index("--") + 1:]
    me = psutil.Process()
    keep = {me.pid, *(p.pid for p in me.parents())}
    stopped: set[int] = set()
    try:
        stop_others(keep, None, stopped)
        time.sleep(20)  # let the others' threads leave the cores
        with open(out, "w") as f, open(out + ".err", "w") as err:
            f.write(subprocess.run(["uptime"], capture_output=True, text=True).stdout)
            f.flush()
            child = subprocess.Popen(cmd, stdout=f, stderr=err)
            while child.poll() is None:
                stop_others(keep | {child.pid}, psutil.Process(child.pid), stopped)
                time.sleep(1)
            f.write(subprocess.run(["uptime"], capture_output=True, text=True).stdout)
        return child.returncode
    finally:
        for pid in stopped:
            try:
                os.kill(pid, signal.SIGCONT)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
