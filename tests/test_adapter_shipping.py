"""The trained adapter shipped to Ray workers on other machines (iwsi/distributed.py): packed by the
driver, written once per content into the worker node's temp dir, never into the run directory."""
from __future__ import annotations

import shutil

from iwsi.distributed import adapter_copy, pack_adapter, unpack_adapter


def test_an_adapter_unpacks_to_one_node_local_copy_per_content(tmp_path):
    adapter = tmp_path / "run" / "adapter"
    (adapter / "sub").mkdir(parents=True)
    (adapter / "adapter_config.json").write_text('{"r": 8}')
    (adapter / "sub" / "weights.bin").write_bytes(bytes(range(256)) * 4)
    files = pack_adapter(adapter)
    assert set(files) == {"adapter_config.json", "sub/weights.bin"}
    copy = adapter_copy(files)
    shutil.rmtree(copy, ignore_errors=True)
    try:
        assert unpack_adapter(files) == str(copy) == unpack_adapter(files)  # the second call reuses it
        assert pack_adapter(copy) == files
        assert not str(copy).startswith(str(tmp_path))  # node-local temp dir, not beside the run
        other = adapter_copy({**files, "adapter_config.json": b'{"r": 16}'})
        assert other != copy  # another adapter at the same path gets its own copy
    finally:
        shutil.rmtree(copy, ignore_errors=True)
