"""The embedded model's safetensors copy is made once, even when two processes ask for it together."""
import threading
import time

from filelock import FileLock

from iwsi import models


def test_a_second_caller_waits_for_the_conversion_and_reuses_its_copy(cache, monkeypatch):
    out = cache / "models" / "smollm2-135m-instruct"
    out.parent.mkdir(parents=True)
    conversions = []
    monkeypatch.setattr(models, "_convert_gguf", lambda gguf, dest: conversions.append(dest))
    monkeypatch.setattr(models, "embedded_gguf", lambda: cache / "unused.gguf")
    got = []
    with FileLock(out.with_name(out.name + ".lock")):  # another process is converting
        caller = threading.Thread(target=lambda: got.append(models.embedded_dir()))
        caller.start()
        time.sleep(0.3)
        assert caller.is_alive() and not got  # it waits for the lock instead of writing the same .tmp folder
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"done")  # the other process's finished copy
    caller.join(10)
    assert got == [out] and conversions == []


def test_a_fresh_cache_converts_once(cache, monkeypatch):
    conversions = []

    def convert(gguf, dest):
        conversions.append(dest)
        dest.mkdir()
        (dest / "model.safetensors").write_bytes(b"x")

    monkeypatch.setattr(models, "_convert_gguf", convert)
    monkeypatch.setattr(models, "embedded_gguf", lambda: cache / "unused.gguf")
    first, second = models.embedded_dir(), models.embedded_dir()
    assert first == second == cache / "models" / "smollm2-135m-instruct"
    assert conversions == [first]
