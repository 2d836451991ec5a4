"""The legacy torch pickle reader, on files written here without torch."""

import pickle
import sys
import types
from collections import OrderedDict

import numpy as np
import pytest

from fruits_p8.features.backbones import lite0_package_file
from fruits_p8.features.torch_pickle import LEGACY_MAGIC, TorchFormatError, load_state_dict


class _Tensor:
    def __init__(self, key, storage, offset, shape, stride):
        self.key, self.storage, self.offset, self.shape, self.stride = (
            key, storage, offset, shape, stride)


def write_legacy(path, tensors: dict, monkeypatch):
    """Write `tensors` ({name: _Tensor}) the way torch.save(..., legacy format) does."""
    fake_torch = types.ModuleType("torch")
    fake_utils = types.ModuleType("torch._utils")

    class FloatStorage:
        pass

    FloatStorage.__module__, FloatStorage.__qualname__ = "torch", "FloatStorage"

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    fake_torch.FloatStorage, fake_utils._rebuild_tensor_v2 = FloatStorage, _rebuild_tensor_v2
    fake_torch._utils = fake_utils
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setitem(sys.modules, "torch._utils", fake_utils)

    storages = {}

    class Writer(pickle.Pickler):
        def persistent_id(self, obj):
            if isinstance(obj, np.ndarray):
                key = str(id(obj))
                storages[key] = obj
                return ("storage", FloatStorage, key, "cpu", obj.size)
            return None

        def reducer_override(self, obj):
            if isinstance(obj, _Tensor):
                return _rebuild_tensor_v2, (obj.storage, obj.offset, obj.shape, obj.stride,
                                            False, OrderedDict())
            return NotImplemented

    with open(path, "wb") as out:
        pickle.dump(LEGACY_MAGIC, out, protocol=2)
        pickle.dump(1001, out, protocol=2)
        pickle.dump({"little_endian": True}, out, protocol=2)
        Writer(out, protocol=2).dump(OrderedDict(tensors))
        pickle.dump(list(storages), out, protocol=2)
        for array in storages.values():
            out.write(np.int64(array.size).tobytes())
            out.write(array.astype("<f4").tobytes())


def test_reads_contiguous_and_strided_tensors(tmp_path, monkeypatch):
    storage = np.arange(24, dtype=np.float32)
    tensors = {
        "plain": _Tensor("a", storage, 0, (2, 3, 4), (12, 4, 1)),
        # The transpose of a (4, 6) matrix stored row-major: strides (1, 6).
        "transposed": _Tensor("b", storage, 0, (6, 4), (1, 6)),
        "offset_view": _Tensor("c", storage, 5, (3,), (2,)),
    }
    path = tmp_path / "w.pth"
    write_legacy(path, tensors, monkeypatch)
    state = load_state_dict(path)
    assert list(state) == ["plain", "transposed", "offset_view"]
    assert np.array_equal(state["plain"], storage.reshape(2, 3, 4))
    assert np.array_equal(state["transposed"], storage.reshape(4, 6).T)
    assert np.array_equal(state["offset_view"], [5, 7, 9])
    assert all(a.flags.c_contiguous for a in state.values())


def test_refuses_other_formats(tmp_path):
    (tmp_path / "zip.pth").write_bytes(b"PK\x03\x04 zip-format checkpoint")
    with pytest.raises(TorchFormatError):
        load_state_dict(tmp_path / "zip.pth")
    bad = tmp_path / "magic.pth"
    bad.write_bytes(pickle.dumps(12345, protocol=2))
    with pytest.raises(TorchFormatError, match="legacy"):
        load_state_dict(bad)


def test_refuses_arbitrary_globals(tmp_path):
    path = tmp_path / "evil.pth"
    with open(path, "wb") as out:
        for obj in (LEGACY_MAGIC, 1001, {}):
            pickle.dump(obj, out, protocol=2)
        pickle.dump(OrderedDict(x=print), out, protocol=2)
    with pytest.raises(TorchFormatError, match="refusing"):
        load_state_dict(path)


def test_the_shipped_lite0_checkpoint():
    state = load_state_dict(lite0_package_file())
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073  # as ../shared/README.md says
    weights = {k: v for k, v in state.items() if not k.endswith("num_batches_tracked")}
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in weights.values())
    # Variances are never negative (some dead channels are exactly 0).
    assert all((state[k] >= 0).all() for k in state if k.endswith("running_var"))
