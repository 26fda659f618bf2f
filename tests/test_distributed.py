"""workers=N (iwsi/distributed.py): Ray workers give the same candidates and losses as one process,
a run survives a killed worker, and a real two-node cluster (`ray start --head` + `ray start
--address`, both on this machine, one CPU each) runs one worker per node. Real `iwsi run` processes,
native engine, one thread per worker (and per process for the 1-worker run). Needs Ray (`make vllm`).
"""
from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("ray", reason="Ray not installed: `make vllm` (or pip install -e '.[ray]') adds it")
pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parent.parent
SETS = ["num_questions=12", "valid_size=3", "test_size=6", "num_samples=2", "max_new_tokens=24",
        "worker_threads=1", "embed=false", "engine=iwsi", "device=cpu"]
ARTEFACTS = ("candidates.parquet", "samples.parquet", "valid.parquet")


def iwsi_run(out: Path, *sets: str, env: dict | None = None, until: str | None = "score") -> subprocess.Popen:
    args = [a for s in (*SETS, *sets) for a in ("--set", s)] + (["--until", until] if until else [])
    env = {**(env or os.environ), "IWSI_CHUNK": "2", "PYTHONPATH": str(ROOT)}  # 6 chunks of 2 questions
    return subprocess.Popen([sys.executable, "-m", "iwsi.cli", "run", "--out", str(out), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> int:
    _, err = proc.communicate(timeout=900)
    if proc.returncode not in (0, 1):
        print(err[-3000:])
    return proc.returncode


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("w1") / "run"
    assert finish(iwsi_run(out, "workers=1")) == 0
    return out


def assert_same(a: Path, b: Path) -> None:
    """b's artefacts equal a's to the last bit, in a's columns (b may have run further: filter adds some)."""
    for name in ARTEFACTS:
        left = pd.read_parquet(a / name)
        pd.testing.assert_frame_equal(left, pd.read_parquet(b / name)[left.columns], check_exact=True)


def _worker_pids() -> list[int]:
    found = subprocess.run(["pgrep", "-f", "ray::Worker"], capture_output=True, text=True).stdout.split()
    return [int(p) for p in found]


def test_a_killed_worker_is_redone_and_two_workers_give_the_one_worker_artefacts(one_worker, tmp_path):
    """Two workers on one node, one of them SIGKILLed mid-run: every chunk is there at the end and the
    candidates and losses are token-identical to one worker's (a run without the kill proves no more: the
    two-node test below runs two workers to the end unharmed)."""
    out = tmp_path / "run"
    proc = iwsi_run(out, "workers=2")
    deadline = time.time() + 300
    while not list((out / "chunks").glob("generate-*.parquet")) and time.time() < deadline:
        time.sleep(0.2)
    pids = _worker_pids()
    assert pids, "no Ray worker process found"
    os.kill(pids[0], signal.SIGKILL)  # mid-run: its current chunk has no file yet
    code = finish(proc)
    if code != 0:  # Ray's retries did not save it: a rerun must redo only the missing chunks
        assert finish(iwsi_run(out, "workers=2")) == 0
    print(f"\nkilled worker {pids[0]}; first run exit {code}")
    assert len(list((out / "chunks").glob("generate-*.parquet"))) == 6
    assert_same(one_worker, out)


# -- a real two-node Ray cluster on this machine (docs/scale.md, "Two nodes on one machine") ----------
RAY = Path(sys.executable).parent / "ray"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _session_pids(sids: set[int]) -> list[int]:
    """Live processes in these sessions: everything a `ray start` run with its own session started
    (GCS, raylet, agents, monitors, and the raylet's workers), found by PID, never by name."""
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) in sids and fields[0] != "Z":  # field 6 of stat: the session id; Z: a zombie
            pids.append(int(stat.parent.name))
    return pids


@contextmanager
def two_node_cluster(tmp_path: Path):
    """A head and a second node, one CPU each, own temp dirs (short: Ray's socket paths must stay
    under 108 bytes); yields (address, {node temp dir: node id}, env for the driver). Token
    authentication on, with the test's own token (Ray >= 2.5x turns it on for a head that finds
    ~/.ray/auth_token, which a local `ray.init` writes, and a joining node without the token is then
    refused). Each `ray start` runs in its own session, so teardown finds and stops exactly the
    processes it started (`ray stop` would stop every Ray process of this user on the machine) and
    checks that none is left."""
    (token := tmp_path / "ray_token").write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    port, sids, dirs = _free_port(), set(), []
    common = ["--num-cpus", "1", "--object-store-memory", str(200 * 2**20), "--disable-usage-stats",
              "--node-ip-address", "127.0.0.1", "--dashboard-agent-listen-port"]
    try:
        for head in (True, False):
            dirs.append(tempfile.mkdtemp(prefix="iwsi-ray-", dir="/tmp"))
            args = (["--head", "--port", str(port), "--include-dashboard=false",
                     "--ray-client-server-port", str(_free_port())] if head else ["--address", f"127.0.0.1:{port}"])
            proc = subprocess.Popen([str(RAY), "start", *args, "--temp-dir", dirs[-1], *common, str(_free_port())],
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                                    start_new_session=True)
            sids.add(proc.pid)
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 0, out[-3000:]
        probe = ("import json, ray; ray.init(address=%r, logging_level='warning'); "
                 "print(json.dumps({n['NodeID']: n['RayletSocketName'] for n in ray.nodes() if n['Alive']}))")
        listed = subprocess.run([sys.executable, "-c", probe % f"127.0.0.1:{port}"], capture_output=True, text=True,
                                timeout=120, env=env)
        nodes = json.loads(listed.stdout.strip().splitlines()[-1])
        yield (f"127.0.0.1:{port}", {d: next(n for n, sock in nodes.items() if sock.startswith(d + "/")) for d in dirs},
               env)
    finally:
        pids = _session_pids(sids)
        for pid in pids:
            os.kill(pid, signal.SIGTERM)
        deadline = time.time() + 5
        while _session_pids(sids) and time.time() < deadline:
            time.sleep(0.5)
        for pid in _session_pids(sids):  # the GCS server can ignore SIGTERM for a while
            os.kill(pid, signal.SIGKILL)
        time.sleep(1)
        for d in dirs:
            shutil.rmtree(d, ignore_errors=True)
        left = _session_pids(sids)
        print(f"\nstopped {len(pids)} Ray processes of the two nodes (PIDs {sorted(pids)}); left: {left}")
        assert not left, f"Ray processes of the test's nodes still running: {left}"


def test_two_nodes_run_one_worker_each_and_give_the_one_worker_candidates(one_worker, tmp_path):
    out = tmp_path / "run"
    with two_node_cluster(tmp_path) as (address, nodes, env):
        assert len(set(nodes.values())) == 2
        # every stage: training (1 epoch) and the trained adapter's evaluation too
        assert finish(iwsi_run(out, "workers=2", f"ray_address={address}", "epochs=1", env=env, until=None)) == 0
    log = (out / "log.txt").read_text()
    workers = set()
    for stage in ("generate", "evaluate-base", "score", "evaluate-trained"):
        line = re.search(rf"{stage}: \d+ tasks on \d+ Ray node\(s\): (.*)", log).group(1)
        ran = re.findall(r"node ([0-9a-f]+) pid (\d+) ran \d+", line)
        print(f"{stage}: {line}")
        assert {node for node, _ in ran} == set(nodes.values()), (stage, line, nodes)  # both nodes, only these
        workers |= set(ran) if stage != "evaluate-trained" else set()
    assert len(workers) == 2  # the same two actors served the three base-model stages (one model load each)
    # the adapter travelled to the workers (no node but the driver's needs the run directory)
    assert "evaluate-trained: adapter shipped to the workers" in log
    from iwsi.distributed import adapter_copy, pack_adapter

    copy = adapter_copy(pack_adapter(out / "adapter"))  # the workers' node-local copy, named by content hash
    assert sorted(p.name for p in copy.iterdir()) == sorted(p.name for p in (out / "adapter").iterdir())
    shutil.rmtree(copy)
    assert set(pd.read_parquet(out / "eval.parquet")["model"]) == {"base", "trained"}
    assert_same(one_worker, out)
