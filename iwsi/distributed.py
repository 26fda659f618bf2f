"""Scale-out: generate / evaluate-base / score / evaluate over Ray workers (`workers=N`), training over
`accelerate launch` processes (`train_processes=N`). Design and measurements: docs/scale.md.

Generate, score, evaluate: the unit of work is the generate stage's chunk (`IWSI_CHUNK` questions,
sampled with the seed `seed * 100003 + chunk index`). Each Ray actor loads the model once (a torch
model, or one vLLM instance with `vllm_tensor_parallel` GPUs) and runs whole chunks through the same
functions the one-process path uses (`sample_chunk`, `loss_table`), then *returns* the chunk's rows:
the driver alone writes the run directory (each chunk file as its result arrives), so workers on
other machines need the model at the same path, never the run directory. The candidates do not
depend on the number of workers (token-identical with the iwsi engine at the same dtype and threads
per worker), and resume works unchanged: a chunk whose file is missing is (re)done. A killed worker
is restarted by Ray and its chunk retried (`max_restarts`, `max_task_retries`); if the driver dies
too, a rerun redoes only the missing chunks. The actors of the base model live from the first
sharded stage through evaluate-base (one model load, one vLLM start-up per worker for generate,
score and evaluate-base) and are killed before training; the trained adapter's evaluation starts its
own, and on a cluster (`ray_address`) the driver ships the adapter's files to them (each node keeps one
copy under its temp dir), so no node but the driver's needs the run directory. Each stage logs which
worker (Ray node, pid) ran how many of its chunks (`log.txt`). Several machines: start a Ray cluster
(`ray start --head` / `ray start --address=HEAD:PORT`) and set `ray_address` (docs/scale.md).

Training: `python -m accelerate.commands.launch --num_processes N ... -m iwsi.distributed train RUN`
runs `iwsi.train.train` (the same Trainer) in N processes: DDP over NCCL on GPUs, gloo on the CPU;
rank 0 writes the adapter and `chunks/train-metrics.json`.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from collections import Counter, deque
from pathlib import Path
from typing import Callable

import pandas as pd

from iwsi import engines
from iwsi.config import RunConfig, load_config
from iwsi.contract import RUN_FILE
from iwsi.rundir import Progress, RunDir, read_checkpoint, read_json, write_parquet

ROOT = Path(__file__).resolve().parent.parent  # the project: workers import iwsi from here


class Worker:
    """One Ray actor: a model (or vLLM instance) loaded once, then whole chunks on demand. Its methods
    return data and write nothing: the driver writes the run directory."""

    def __init__(self, cfg: dict, rank: int, threads: int, adapter: str | None = None,
                 adapter_files: dict[str, bytes] | None = None):
        import torch

        self.cfg = RunConfig(**cfg)
        # on a cluster (ray_address) the driver ships the adapter's files: this node needs no run directory
        adapter = unpack_adapter(adapter_files) if adapter_files else adapter
        self.rank, self.threads, self.adapter = rank, threads, adapter
        torch.set_num_threads(threads)
        self._model = self._tokenizer = None

    def pid(self) -> int:
        return os.getpid()

    def where(self) -> dict:
        """The Ray node, host and process this actor runs in (logged by the driver per stage)."""
        import ray

        return {"node": ray.get_runtime_context().get_node_id(), "host": socket.gethostname(), "pid": os.getpid()}

    def call(self, method: str, *args) -> tuple[tuple[str, int], object]:
        """((this actor's node id, pid), `method(*args)`): what the driver's queue submits."""
        import ray

        return (ray.get_runtime_context().get_node_id(), os.getpid()), getattr(self, method)(*args)

    @property
    def tokenizer(self):
        from iwsi.models import load_tokenizer

        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.cfg.model, self.cfg.trust_remote_code)
        return self._tokenizer

    def model(self, trained: bool = False):
        """The base model, or with `trained` the adapter's (evaluate stage only)."""
        if self._model is None or self._model[0] != trained:
            self._model = (trained, self._load(trained))
        return self._model[1]

    def _load(self, trained: bool):
        """The engine's `load` / `load_trained` hook, pinned to this actor's cores (iwsi/engines/)."""
        engine, where = engines.get(self.cfg.engine), dict(threads=self.threads, first_core=self.rank * self.threads)
        return engine.load_trained(self.cfg, Path(self.adapter), **where) if trained else engine.load(self.cfg, **where)

    def generate(self, index: int, chunk: list) -> pd.DataFrame:
        from iwsi.generate import sample_chunk

        return sample_chunk(self.model(), self.tokenizer, chunk, index, self.cfg)

    def score(self, part: pd.DataFrame) -> pd.DataFrame:
        from iwsi.score import chunk_losses

        return chunk_losses(self.model(), self.tokenizer, part["question"].tolist(), part["rationale"].tolist(),
                            self.cfg)

    def score_valid(self, valid: list) -> pd.DataFrame:
        from iwsi.score import chunk_losses

        return chunk_losses(self.model(), self.tokenizer, [q.question for q in valid], [q.rationale for q in valid],
                            self.cfg)

    def greedy(self, questions: list, trained: bool) -> list[list[str]]:
        from iwsi.generate import complete

        cfg = self.cfg
        return complete(self.model(trained), self.tokenizer, questions, 1, engine=cfg.engine, temperature=0.0,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)


def pack_adapter(adapter: Path) -> dict[str, bytes]:
    """The adapter folder's files (relative path → bytes), for workers on nodes without the run directory."""
    return {str(f.relative_to(adapter)): f.read_bytes() for f in sorted(adapter.rglob("*")) if f.is_file()}


def adapter_copy(files: dict[str, bytes]) -> Path:
    """Where `unpack_adapter` keeps these files on a node: its temp dir, a folder named by their hash."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name])
    return Path(tempfile.gettempdir()) / "iwsi-adapters" / digest.hexdigest()[:20]


def unpack_adapter(files: dict[str, bytes]) -> str:
    """Write shipped adapter files into this node's temp dir, once per content (published by rename);
    returns its path. Node-local: never the run directory."""
    out = adapter_copy(files)
    if not out.is_dir():
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent))
        for name, data in files.items():
            (tmp / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp / name).write_bytes(data)
        try:
            tmp.rename(out)
        except OSError:  # another worker of this node published it first
            shutil.rmtree(tmp, ignore_errors=True)
    return str(out)


def init_ray(cfg: RunConfig):
    """Join `ray_address`, or start a local cluster on this machine's cores (once per process)."""
    import ray

    if not ray.is_initialized():
        from iwsi.contract import cache_root

        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               "IWSI_CACHE": str(cache_root())}
        ray.init(address=cfg.ray_address, include_dashboard=False, logging_level="warning",
                 runtime_env={"env_vars": env},
                 **({} if cfg.ray_address else {"num_cpus": len(os.sched_getaffinity(0)),
                                                "object_store_memory": 256 * 2**20}))
    return ray


# (actor config, adapter) → the live actors: the base model's pool serves generate, evaluate-base and score
_POOL: dict[str, list] = {}


def release_workers() -> None:
    """Kill the kept actors (frees their models, vLLM instances and GPUs, e.g. before training)."""
    if _POOL:
        import ray

        for actors in _POOL.values():
            for actor in actors:
                ray.kill(actor)
        _POOL.clear()


def _actors(cfg: RunConfig, n: int, adapter: str | None, adapter_files: dict[str, bytes] | None = None) -> list:
    """`n` actors for `cfg` (and `adapter`): the kept ones, started where missing; any other pool is killed."""
    ray = init_ray(cfg)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    threads = cfg.worker_threads or max(1, cpus // cfg.workers)
    gpus = engines.get(cfg.engine).gpus(cfg) if _cuda() and cfg.device != "cpu" else 0
    # Inside an actor Ray sets CUDA_VISIBLE_DEVICES to its own GPUs: address them as plain "cuda".
    actor_cfg = {**_asdict(cfg), **({"device": "cuda"} if gpus else {})}
    key = json.dumps([actor_cfg, adapter, threads, gpus], sort_keys=True, default=str)
    if key not in _POOL:
        release_workers()
        _POOL[key] = []
    pool = _POOL[key]
    actor = ray.remote(Worker).options(num_cpus=threads, num_gpus=gpus, max_restarts=2, max_task_retries=2)
    files = ray.put(adapter_files) if adapter_files and len(pool) < n else None  # one copy for all actors
    pool += [actor.remote(actor_cfg, rank, threads, adapter, files) for rank in range(len(pool), n)]
    return pool[:n]


def run_on_workers(cfg: RunConfig, tasks: list[tuple[str, tuple, int]], progress=None, adapter: str | None = None,
                   on_result: Callable[[int, object], None] | None = None, keep: bool = False,
                   log: Callable[[str], None] | None = None, label: str = "",
                   adapter_files: dict[str, bytes] | None = None) -> list:
    """Run `tasks` ([(Worker method, args, items)]) on `cfg.workers` Ray actors, each taking the next task
    when it finishes one; returns the results in task order. `on_result(i, result)` runs in the driver as
    each result arrives (the stages write the chunk file there), `progress(items)` after it. A task that
    still fails after Ray's retries raises (the stage fails; a rerun redoes the chunks without a file).
    `keep`: leave the actors alive for the next stage with the same model; else they are killed.
    `log` gets one line: how many tasks each worker (Ray node id, pid) ran. `adapter_files`
    (`pack_adapter`): the adapter shipped to the workers instead of read at `adapter`."""
    if not tasks:
        if not keep:
            release_workers()
        return []
    ray = init_ray(cfg)
    ok = False
    try:
        workers = _actors(cfg, min(cfg.workers, len(tasks)), adapter, adapter_files)
        pending, running, results, nodes = deque(enumerate(tasks)), {}, {}, Counter()

        def submit(worker) -> None:
            i, (method, args, _) = pending.popleft()
            running[worker.call.remote(method, *args)] = (worker, i)

        for worker in workers:
            if pending:
                submit(worker)
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            worker, i = running.pop(ref)
            where, results[i] = ray.get(ref)
            nodes[where] += 1
            if on_result:
                on_result(i, results[i])
            if progress:
                progress(tasks[i][2])
            if pending:
                submit(worker)
        if log:
            log(f"{label}: {len(tasks)} tasks on {len({n for n, _ in nodes})} Ray node(s): "
                + ", ".join(f"node {node} pid {pid} ran {count}" for (node, pid), count in sorted(nodes.items())))
        ok = True
    finally:
        if not (keep and ok):  # frees their models (and GPUs) before the next stage, e.g. training
            release_workers()
    return [results[i] for i in range(len(tasks))]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _asdict(cfg: RunConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


# -- the stages: workers compute, the driver writes ------------------------------------------------------
def generate_chunks(cfg: RunConfig, run: RunDir, questions: list) -> None:
    """Write every missing generate chunk file, sampled by the workers."""
    from iwsi.generate import chunk_path, chunk_size, chunks

    # a missing or damaged chunk is (re)done; read_checkpoint deletes a damaged one
    todo = [(i, c) for i, c in chunks(questions, chunk_size(run)) if read_checkpoint(chunk_path(run, i)) is None]
    bar = Progress(run, "generate", sum(len(c) for _, c in todo), unit="q")
    run_on_workers(cfg, [("generate", (i, c), len(c)) for i, c in todo], bar, keep=True, log=run.log,
                   label="generate", on_result=lambda k, frame: write_parquet(chunk_path(run, todo[k][0]), frame))
    bar.close()


def score_chunks(cfg: RunConfig, run: RunDir, valid: list, samples: pd.DataFrame) -> None:
    """Write every missing score chunk file (and the valid losses), scored by the workers. The base
    model's actors stay for evaluate-base, which comes next."""
    from iwsi.score import ID_COLUMNS, chunk_matches, is_scored, save_chunk
    from iwsi.score import score_chunks as parts

    jobs = [({c: part[c].tolist() for c in ID_COLUMNS}, path, ("score", (part,), len(part)))
            for _, part, path in parts(samples, cfg, run) if not is_scored(path, part)]
    valid_path = run / RUN_FILE.chunks / "score-valid.parquet"
    valid_ids = {"question_id": [q.question_id for q in valid]}
    if not chunk_matches(valid_path, valid_ids):
        jobs.append((valid_ids, valid_path, ("score_valid", (valid,), len(valid))))
    bar = Progress(run, "score", sum(task[2] for _, _, task in jobs), unit="seq")
    run_on_workers(cfg, [task for _, _, task in jobs], bar, keep=True, log=run.log, label="score",
                   on_result=lambda k, table: save_chunk(jobs[k][1], jobs[k][0], table))
    bar.close()


def greedy_eval(cfg: RunConfig, run: RunDir, test: list, label: str, adapter: Path | None) -> pd.DataFrame:
    """Greedy evaluation sharded by chunk over the workers (base model, or the trained adapter)."""
    from iwsi.evaluate import eval_frame
    from iwsi.generate import chunk_size, chunks

    parts = chunks(test, chunk_size(run))
    bar = Progress(run, f"evaluate-{label}", len(test), unit="q")
    # the base model on the same actors (engine instances) as generate and score, killed afterwards (training
    # comes next): under vLLM one without LoRA.
    # On a cluster (ray_address) the adapter travels to the workers: other machines need no run directory.
    files = pack_adapter(adapter) if adapter and cfg.ray_address else None
    if files:
        run.log(f"evaluate-{label}: adapter shipped to the workers ({len(files)} files, "
                f"{sum(map(len, files.values()))} bytes)")
    outs = run_on_workers(cfg, [("greedy", (c, adapter is not None), len(c)) for _, c in parts], bar,
                          adapter=str(adapter) if adapter else None, log=run.log,
                          label=f"evaluate-{label}", adapter_files=files)
    bar.close()
    return eval_frame(test, [o for chunk_outs in outs for o in chunk_outs], label)


# -- training -----------------------------------------------------------------------------------------
def train_command(cfg: RunConfig, run: RunDir) -> list[str]:
    """`accelerate launch` of this module's `train` entry: one process per GPU, or N gloo processes on the CPU."""
    from iwsi.device import torch_device

    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(cfg.train_processes),
           "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no", "--multi_gpu"]
    if torch_device(cfg.device).type == "cpu":
        cmd += ["--num_cpu_threads_per_process", str(cfg.worker_threads or max(1, len(os.sched_getaffinity(0))
                                                                               // cfg.train_processes))]
    return cmd + ["-m", "iwsi.distributed", "train", str(run.path)]


def train_launched(cfg: RunConfig, run: RunDir, examples: list[dict]) -> dict:
    """Train in `cfg.train_processes` processes; returns rank 0's train metrics."""
    metrics = run / RUN_FILE.chunks / "train-metrics.json"
    metrics.unlink(missing_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if torch_is_cpu(cfg):
        env["ACCELERATE_USE_CPU"] = "true"  # gloo; Trainer's use_cpu is set from `device` too
    done = subprocess.run(train_command(cfg, run), env=env)
    if done.returncode != 0 or not metrics.exists():
        raise RuntimeError(f"accelerate launch with {cfg.train_processes} processes failed (exit {done.returncode}): "
                           "see the log above; train_processes=1 trains in one process")
    return read_json(metrics)


def torch_is_cpu(cfg: RunConfig) -> bool:
    from iwsi.device import torch_device

    return torch_device(cfg.device).type == "cpu"


def _train_main(run_path: str) -> None:
    """One training process: the kept samples of the run, the same encode/train as stage_train."""
    import torch
    from accelerate import PartialState

    from iwsi.device import torch_device
    from iwsi.models import load_model, load_tokenizer
    from iwsi.train import encode_example, train

    run = RunDir(run_path)
    cfg = load_config(run / RUN_FILE.config)
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code)
    kept = pd.read_parquet(run / RUN_FILE.samples).query("kept")
    examples = [encode_example(tokenizer, q, r, w) for q, r, w in zip(kept["question"], kept["rationale"],
                                                                      kept["weight"])]
    device = torch_device(cfg.device)
    gpu = None if device.type == "cpu" else torch.device("cuda", PartialState().local_process_index)
    model = load_model(cfg.model, dtype=torch.float32, trust_remote_code=cfg.trust_remote_code, device=gpu)
    metrics = train(model, tokenizer, examples, cfg, run / RUN_FILE.adapter, run / RUN_FILE.train_ckpt)
    if PartialState().is_main_process:
        (run / RUN_FILE.chunks / "train-metrics.json").write_text(json.dumps(metrics))
    from iwsi.device import cuda_peak_note

    if cuda_peak_note():  # each rank's GPU memory, the evidence that it trained on its GPU
        run.log(f"train rank {PartialState().process_index} (pid {os.getpid()}) done{cuda_peak_note()}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"] and len(sys.argv) == 3:
        _train_main(sys.argv[2])
    else:
        sys.exit("usage: python -m iwsi.distributed train RUN_DIR  (started by accelerate launch)")
