"""Scale-out: generate / evaluate-base / score / evaluate over Ray workers (`workers=N`), training over
`accelerate launch` processes (`train_processes=N`). Design and measurements: docs/scale.md.

Generate, score, evaluate: the unit of work is the generate stage's chunk (`IWSI_CHUNK` questions,
sampled with the seed `seed * 100003 + chunk index`). Each Ray actor loads the model once (a torch
model, or one vLLM instance with `vllm_tensor_parallel` GPUs) and runs whole chunks through the same
functions the one-process path uses (`generate_chunk`, `score_chunk`), writing the same chunk files
into the same run directory. So the candidates do not depend on the number of workers (token-
identical with the iwsi engine at the same dtype and threads per worker), and resume works
unchanged: a chunk whose file is missing is (re)done. A killed worker is restarted by Ray and its
chunk retried (`max_restarts`, `max_task_retries`); if the driver dies too, a rerun redoes only
the missing chunks. Several machines: start a Ray cluster (`ray start --head` / `ray start
--address=HEAD:6379`), put the project and the run directory on a filesystem every node sees at the
same path, and set `ray_address=auto`.

Training: `python -m accelerate.commands.launch --num_processes N ... -m iwsi.distributed train RUN`
runs `iwsi.train.train` (the same Trainer) in N processes: DDP over NCCL on GPUs, gloo on the CPU;
rank 0 writes the adapter and `chunks/train-metrics.json`.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import deque
from pathlib import Path

import pandas as pd

from iwsi.config import RunConfig, load_config
from iwsi.rundir import Progress, RunDir, read_checkpoint, read_json

ROOT = Path(__file__).resolve().parent.parent  # the project: workers import iwsi from here


class Worker:
    """One Ray actor: a model (or vLLM instance) loaded once, then whole chunks on demand."""

    def __init__(self, cfg: dict, rank: int, threads: int, adapter: str | None = None):
        import torch

        self.cfg = RunConfig(**cfg)
        self.rank, self.threads, self.adapter = rank, threads, adapter
        torch.set_num_threads(threads)
        self._model = self._tokenizer = None

    def pid(self) -> int:
        return os.getpid()

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
        from iwsi.device import torch_device

        cfg = self.cfg
        if cfg.engine == "vllm":
            from iwsi import vllm_engine

            # Evaluation needs LoRA; scoring cannot run on a LoRA instance (see iwsi/vllm_engine.py).
            llm = vllm_engine.load(cfg, self.threads, lora=self.adapter is not None,
                                   first_core=self.rank * self.threads)
            return llm.with_adapter(self.adapter) if trained else llm
        if trained:
            from iwsi.evaluate import merged_model

            return merged_model(cfg.model, Path(self.adapter), cfg.trust_remote_code, torch_device(cfg.device))
        from iwsi.models import load_model

        return load_model(cfg.model, trust_remote_code=cfg.trust_remote_code, device=torch_device(cfg.device))

    def generate(self, run: str, index: int, chunk: list) -> int:
        from iwsi.generate import generate_chunk

        generate_chunk(self.model(), self.tokenizer, chunk, index, self.cfg, RunDir(run))
        return len(chunk)

    def score(self, run: str, part: pd.DataFrame, path: str) -> int:
        from iwsi.score import score_chunk

        score_chunk(self.model(), self.tokenizer, part, Path(path), self.cfg)
        return len(part)

    def score_valid(self, run: str, valid: list) -> int:
        from iwsi.score import score_valid_chunk

        score_valid_chunk(self.model(), self.tokenizer, valid, self.cfg, RunDir(run))
        return len(valid)

    def greedy(self, questions: list, trained: bool) -> list[list[str]]:
        from iwsi.generate import complete

        cfg = self.cfg
        return complete(self.model(trained), self.tokenizer, questions, 1, engine=cfg.engine, temperature=0.0,
                        max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)


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


def run_on_workers(cfg: RunConfig, tasks: list[tuple[str, tuple]], progress=None,
                   adapter: str | None = None) -> list:
    """Run `tasks` ([(Worker method, args)]) on `cfg.workers` Ray actors, each taking the next task
    when it finishes one; returns the results in task order. A task that still fails after Ray's
    retries raises (the stage fails; a rerun redoes the chunks without a file)."""
    if not tasks:
        return []
    ray = init_ray(cfg)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    threads = cfg.worker_threads or max(1, cpus // cfg.workers)
    gpus = cfg.vllm_tensor_parallel if cfg.engine == "vllm" and cfg.device != "cpu" and _cuda() else (
        1 if _cuda() and cfg.device != "cpu" else 0)
    # Inside an actor Ray sets CUDA_VISIBLE_DEVICES to its own GPUs: address them as plain "cuda".
    actor_cfg = {**_asdict(cfg), **({"device": "cuda"} if gpus else {})}
    actor = ray.remote(Worker).options(num_cpus=threads, num_gpus=gpus, max_restarts=2, max_task_retries=2)
    workers = [actor.remote(actor_cfg, rank, threads, adapter) for rank in range(min(cfg.workers, len(tasks)))]
    pending, running, results = deque(enumerate(tasks)), {}, {}

    def submit(worker) -> None:
        i, (method, args) = pending.popleft()
        running[getattr(worker, method).remote(*args)] = (worker, i)

    try:
        for worker in workers:
            if pending:
                submit(worker)
        while running:
            (ref,), _ = ray.wait(list(running), num_returns=1)
            worker, i = running.pop(ref)
            results[i] = ray.get(ref)
            if progress and isinstance(results[i], int):
                progress(results[i])
            if pending:
                submit(worker)
    finally:
        for worker in workers:  # frees their models (and GPUs) before the next stage, e.g. training
            ray.kill(worker)
    return [results[i] for i in range(len(tasks))]


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _asdict(cfg: RunConfig) -> dict:
    from dataclasses import asdict

    return asdict(cfg)


# -- the stages ---------------------------------------------------------------------------------------
def generate_chunks(cfg: RunConfig, run: RunDir, questions: list) -> None:
    """Write every missing generate chunk file through the workers."""
    from iwsi.generate import chunk_path, chunk_size, chunks

    # a missing or damaged chunk is (re)done; read_checkpoint deletes a damaged one
    todo = [(i, c) for i, c in chunks(questions, chunk_size(run)) if read_checkpoint(chunk_path(run, i)) is None]
    bar = Progress(run, "generate", sum(len(c) for _, c in todo), unit="q")
    run_on_workers(cfg, [("generate", (str(run.path), i, c)) for i, c in todo], bar)
    bar.close()


def score_chunks(cfg: RunConfig, run: RunDir, valid: list, samples: pd.DataFrame) -> None:
    """Write every missing score chunk file (and the valid losses) through the workers."""
    from iwsi.score import _matches, is_scored
    from iwsi.score import score_chunks as parts

    tasks = [("score", (str(run.path), part, str(path))) for _, part, path in parts(samples, cfg, run)
             if not is_scored(path, part)]
    if not _matches(run / "chunks" / "score-valid.parquet", {"question_id": [q.question_id for q in valid]}):
        tasks.append(("score_valid", (str(run.path), valid)))
    bar = Progress(run, "score", len(samples) + (len(valid) if tasks[-1:] and tasks[-1][0] == "score_valid" else 0),
                   unit="seq")
    run_on_workers(cfg, tasks, bar)
    bar.close()


def greedy_eval(cfg: RunConfig, run: RunDir, test: list, label: str, adapter: Path | None) -> pd.DataFrame:
    """Greedy evaluation sharded by chunk over the workers (base model, or the trained adapter)."""
    from iwsi.evaluate import eval_frame
    from iwsi.generate import chunk_size, chunks

    parts = chunks(test, chunk_size(run))
    bar = Progress(run, f"evaluate-{label}", len(test), unit="q")
    # the base model on the same kind of engine instance as generate (under vLLM one without LoRA)
    outs = run_on_workers(cfg, [("greedy", (c, adapter is not None)) for _, c in parts],
                          adapter=str(adapter) if adapter else None)
    bar(len(test))
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
    metrics = run / "chunks" / "train-metrics.json"
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
    cfg = load_config(run / "config.yaml")
    tokenizer = load_tokenizer(cfg.model, cfg.trust_remote_code)
    kept = pd.read_parquet(run / "samples.parquet").query("kept")
    examples = [encode_example(tokenizer, q, r, w) for q, r, w in zip(kept["question"], kept["rationale"],
                                                                      kept["weight"])]
    device = torch_device(cfg.device)
    gpu = None if device.type == "cpu" else torch.device("cuda", PartialState().local_process_index)
    model = load_model(cfg.model, dtype=torch.float32, trust_remote_code=cfg.trust_remote_code, device=gpu)
    metrics = train(model, tokenizer, examples, cfg, run / "adapter", run / "train_ckpt")
    if PartialState().is_main_process:
        (run / "chunks" / "train-metrics.json").write_text(json.dumps(metrics))


if __name__ == "__main__":
    if sys.argv[1:2] == ["train"] and len(sys.argv) == 3:
        _train_main(sys.argv[2])
    else:
        sys.exit("usage: python -m iwsi.distributed train RUN_DIR  (started by accelerate launch)")
