"""core/pth.py: the real legacy files, hand-written legacy and zip files, and errors."""
import collections
import io
import pickle
import struct
import sys
import types
import zipfile

import numpy as np
import pytest

from core.pth import PthError, check_state_dict, load_state_dict

VGG_RELU3 = {"0.weight": (3, 3, 1, 1), "0.bias": (3,), "2.weight": (64, 3, 3, 3), "2.bias": (64,),
             "5.weight": (64, 64, 3, 3), "5.bias": (64,), "9.weight": (128, 64, 3, 3), "9.bias": (128,),
             "12.weight": (128, 128, 3, 3), "12.bias": (128,), "16.weight": (256, 128, 3, 3), "16.bias": (256,)}
INVERTOR = {"1.weight": (128, 256, 3, 3), "1.bias": (128,), "5.weight": (128, 128, 3, 3), "5.bias": (128,),
            "8.weight": (64, 128, 3, 3), "8.bias": (64,), "12.weight": (64, 64, 3, 3), "12.bias": (64,),
            "15.weight": (3, 64, 3, 3), "15.bias": (3,)}


def test_real_files_keys_shapes_and_values(vgg_relu3_path, decoder_relu3_path):
    vgg = load_state_dict(vgg_relu3_path)
    assert list(vgg) == list(VGG_RELU3)
    check_state_dict(vgg, VGG_RELU3, vgg_relu3_path)
    assert all(v.dtype == np.float32 for v in vgg.values())
    # AdaIN's first 1x1 conv: RGB->BGR times 255, bias = -ImageNet mean in BGR
    np.testing.assert_allclose(vgg["0.weight"][:, :, 0, 0], np.fliplr(np.eye(3)) * 255, atol=1e-3)
    np.testing.assert_allclose(vgg["0.bias"], [-103.939, -116.779, -123.68], atol=1e-2)
    dec = load_state_dict(decoder_relu3_path)
    assert list(dec) == list(INVERTOR)
    check_state_dict(dec, INVERTOR, decoder_relu3_path)
    assert all(np.isfinite(v).all() for v in dec.values())


# ---- a tiny writer of both formats, using fake `torch` globals -------------------------------

DTYPE_STORAGE = {np.float32: "FloatStorage", np.float64: "DoubleStorage", np.float16: "HalfStorage",
                 np.int64: "LongStorage"}


@pytest.fixture
def fake_torch(monkeypatch):
    """Modules `torch` and `torch._utils` so pickle can write GLOBAL opcodes naming them."""
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called while writing")
    _rebuild_tensor_v2.__module__, _rebuild_tensor_v2.__qualname__ = "torch._utils", "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    for name in list(DTYPE_STORAGE.values()) + ["BFloat16Storage"]:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    torch._utils = utils
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "torch._utils", utils)
    return torch


class FakeTensor:
    """A view (offset, shape, strides in elements) into a named 1-D storage."""

    def __init__(self, key, offset, shape, stride):
        self.key, self.offset, self.shape, self.stride = key, offset, shape, stride

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (StorageRef(self.key), self.offset, self.shape, self.stride, False, collections.OrderedDict())


class StorageRef:
    def __init__(self, key):
        self.key = key


def _pickle_object(obj, storages, torch, protocol=2):
    buf = io.BytesIO()
    p = pickle.Pickler(buf, protocol=protocol)

    def persistent_id(o):
        if isinstance(o, StorageRef):
            arr = storages[o.key]
            cls = getattr(torch, DTYPE_STORAGE.get(arr.dtype.type, "BFloat16Storage"))
            return ("storage", cls, o.key, "cpu", arr.size, None)
        return None
    p.persistent_id = persistent_id
    p.dump(obj)
    return buf.getvalue()


def write_legacy(path, obj, storages, torch):
    with open(path, "wb") as f:
        for header in (0x1950a86a20f9469cfc6c, 1001,
                       {"protocol_version": 1001, "little_endian": True,
                        "type_sizes": {"short": 2, "int": 4, "long": 4}}):
            pickle.dump(header, f, protocol=2)
        f.write(_pickle_object(obj, storages, torch))
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for k in keys:
            f.write(struct.pack("<q", storages[k].size))
            f.write(storages[k].tobytes())


def write_zip(path, obj, storages, torch):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("archive/data.pkl", _pickle_object(obj, storages, torch, protocol=2))
        z.writestr("archive/byteorder", "little")
        for k, arr in storages.items():
            z.writestr(f"archive/data/{k}", arr.tobytes())
        z.writestr("archive/version", "3\n")


def _example():
    """Storages and tensors with offsets, a transposed (non-contiguous) view and shared storage."""
    rng = np.random.default_rng(1)
    storages = {"10": rng.standard_normal(30).astype(np.float32),
                "11": rng.standard_normal(7),  # float64
                "12": rng.standard_normal(4).astype(np.float16),
                "13": np.arange(5, dtype=np.int64) - 2}
    obj = collections.OrderedDict([
        ("conv.weight", FakeTensor("10", 0, (2, 3, 2, 2), (12, 4, 2, 1))),
        ("conv.bias", FakeTensor("10", 24, (2,), (1,))),           # same storage, offset
        ("lin.weight_t", FakeTensor("10", 0, (4, 3), (1, 4))),      # transposed view
        ("d", FakeTensor("11", 2, (5,), (1,))),
        ("h", FakeTensor("12", 0, (2, 2), (2, 1))),
        ("steps", FakeTensor("13", 1, (2, 2), (1, 2))),
    ])
    s10 = storages["10"]
    expected = {"conv.weight": s10[:24].reshape(2, 3, 2, 2), "conv.bias": s10[24:26],
                "lin.weight_t": s10[:12].reshape(3, 4).T, "d": storages["11"][2:],
                "h": storages["12"].reshape(2, 2), "steps": (storages["13"][1:5]).reshape(2, 2).T}
    return obj, storages, expected


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_written_files_round_trip(tmp_path, fake_torch, writer):
    obj, storages, expected = _example()
    path = str(tmp_path / "w.pth")
    writer(path, obj, storages, fake_torch)
    sd = load_state_dict(path)
    assert list(sd) == list(expected)
    for k, want in expected.items():
        assert sd[k].dtype == want.dtype, k
        assert sd[k].flags["C_CONTIGUOUS"] and sd[k].flags["OWNDATA"], k
        np.testing.assert_array_equal(sd[k], want, err_msg=k)


@pytest.mark.parametrize("writer", [write_legacy, write_zip])
def test_truncated_file_names_it(tmp_path, fake_torch, writer):
    obj, storages, _ = _example()
    path = tmp_path / "cut.pth"
    writer(str(path), obj, storages, fake_torch)
    data = path.read_bytes()
    for keep in (len(data) - 9, len(data) // 2, 40):
        path.write_bytes(data[:keep])
        with pytest.raises(PthError, match="cut.pth"):
            load_state_dict(str(path))


def test_unsupported_storage_and_non_pth(tmp_path, fake_torch):
    path = str(tmp_path / "bf16.pth")
    storages = {"0": np.zeros(4, np.uint16)}  # written as BFloat16Storage
    write_legacy(path, {"w": FakeTensor("0", 0, (4,), (1,))}, storages, fake_torch)
    with pytest.raises(PthError, match=r"bf16.pth.*unsupported storage type torch.BFloat16Storage"):
        load_state_dict(path)
    txt = tmp_path / "notes.pth"
    txt.write_text("hello, not weights\n")
    with pytest.raises(PthError, match="notes.pth.*not a PyTorch .pth file"):
        load_state_dict(str(txt))
    with pytest.raises(PthError, match="nothere.pth: no such file"):
        load_state_dict(str(tmp_path / "nothere.pth"))


def test_foreign_globals_are_refused(tmp_path):
    # a pickle that would call os.system if globals were resolved freely
    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for header in (0x1950a86a20f9469cfc6c, 1001, {"little_endian": True}):
            pickle.dump(header, f, protocol=2)
        f.write(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(PthError, match="evil.pth: holds os.system"):
        load_state_dict(str(path))
    # the same in place of the header: refused before anything is resolved
    path.write_bytes(b"\x80\x02cos\nsystem\nq\x00X\x04\x00\x00\x00trueq\x01\x85q\x02Rq\x03.")
    with pytest.raises(PthError, match="evil.pth is not a PyTorch .pth file"):
        load_state_dict(str(path))


def test_check_state_dict_lists_missing_and_mismatched():
    sd = {"a": np.zeros((2, 3)), "b": np.zeros(4)}
    check_state_dict(sd, {"a": (2, 3)}, "x.pth")
    with pytest.raises(PthError) as e:
        check_state_dict(sd, {"a": (3, 2), "b": (4,), "c": (1,)}, "x.pth")
    msg = str(e.value)
    assert "x.pth" in msg and "missing keys c" in msg and "a: file (2, 3), expected (3, 2)" in msg
    assert "b:" not in msg.split("shape mismatches")[1]
