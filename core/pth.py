"""Read PyTorch `.pth` state dicts without torch.

Two on-disk layouts exist:
- legacy (torch < 1.6, `_use_new_zipfile_serialization=False`): four pickles in a
  row -- magic number, protocol version, sys_info, the object -- then a pickled list
  of storage keys, then for each key an int64 element count and the raw bytes.
  AdaIN's `vgg_normalised.pth` / `decoder.pth` and shared/assets' relu3_1 files use it.
- zip (torch >= 1.6): `<prefix>/data.pkl` holds the object and `<prefix>/data/<key>`
  the raw bytes of each storage.

In both, tensors are pickled as `torch._utils._rebuild_tensor_v2(storage, offset,
size, stride, ...)` with the storage given as a persistent id.  We unpickle with a
whitelist of globals (nothing else is ever imported), rebuild each tensor as a NumPy
array with `as_strided` and copy it, and return `OrderedDict[str, np.ndarray]`.
"""
import builtins
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np

LEGACY_MAGIC = 0x1950a86a20f9469cfc6c
LEGACY_PROTOCOL = 1001

# torch storage class name -> NumPy dtype
STORAGE_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
    "UntypedStorage": np.uint8,
}


class PthError(ValueError):
    """A file that is not a readable PyTorch state dict; the message names it."""


class _Storage:
    """A storage named by a persistent id; its bytes are attached later."""

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, np.dtype(dtype), numel
        self.array = None  # 1-D np.ndarray once read


class _StorageView:
    """A slice of a storage (old legacy files: `view_metadata = (key, offset, size)`)."""

    def __init__(self, base, offset, numel):
        self.base, self.offset, self.numel = base, offset, numel

    @property
    def dtype(self):
        return self.base.dtype


class _TensorSpec:
    """What `_rebuild_tensor_v2` was asked to build; materialised once bytes are in."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)

    def to_numpy(self, path):
        st, offset = self.storage, self.offset
        if isinstance(st, _StorageView):
            offset += st.offset
            st = st.base
        flat = st.array
        if flat is None:
            raise PthError(f"{path}: storage {st.key} has no data (truncated file?)")
        if self.size:
            last = offset + sum((n - 1) * s for n, s in zip(self.size, self.stride) if n > 0)
            if any(n == 0 for n in self.size):
                return np.zeros(self.size, flat.dtype)
            if offset < 0 or last >= flat.size:
                raise PthError(f"{path}: a tensor of shape {self.size} reaches past its storage "
                               f"{st.key} ({flat.size} elements); the file is corrupt or truncated")
        elif offset >= flat.size:
            raise PthError(f"{path}: a scalar tensor lies past its storage {st.key}")
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(flat[offset:], shape=self.size,
                                               strides=tuple(s * item for s in self.stride))
        return np.array(view, order="C", copy=True)  # own, C-contiguous copy


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _TensorSpec(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _TensorSpec(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None, state=None):
    return data  # nn.Parameter around a tensor: the tensor is what we want


class _StorageType:
    def __init__(self, name):
        self.name = name


class _Unpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals a state dict needs."""

    def __init__(self, file, path, storages, make_storage):
        super().__init__(file)
        self.path, self.storages, self.make_storage = path, storages, make_storage

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils":
            if name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if name == "_rebuild_tensor":
                return _rebuild_tensor
            if name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
                return _rebuild_parameter
        if module in ("torch", "torch.storage", "torch.cuda") and name.endswith("Storage"):
            if name not in STORAGE_DTYPES:
                raise PthError(f"{self.path}: unsupported storage type {module}.{name} "
                               f"(supported: {', '.join(sorted(STORAGE_DTYPES))})")
            return _StorageType(name)
        if module == "builtins" and name in ("set", "frozenset", "dict", "list", "tuple"):
            return getattr(builtins, name)
        raise PthError(f"{self.path}: holds {module}.{name}, which is not part of a plain state dict "
                       "(save `model.state_dict()`, not the model object)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"):
            raise PthError(f"{self.path}: unknown persistent id {pid!r:.80}")
        storage_type, key, _location, numel = pid[1], str(pid[2]), pid[3], int(pid[4])
        if isinstance(storage_type, _StorageType):
            dtype = STORAGE_DTYPES[storage_type.name]
        else:  # torch 2 may pass a dtype object instead of a storage class; not whitelisted
            raise PthError(f"{self.path}: unsupported storage descriptor {storage_type!r:.80}")
        if key not in self.storages:
            self.storages[key] = self.make_storage(key, dtype, numel)
        storage = self.storages[key]
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # (view_key, offset, view_size)
            return _StorageView(storage, int(view[1]), int(view[2]))
        return storage


def _materialise(obj, path):
    """Replace every _TensorSpec inside obj (dicts, lists, tuples) by its array."""
    if isinstance(obj, _TensorSpec):
        return obj.to_numpy(path)
    if isinstance(obj, collections.OrderedDict):
        return collections.OrderedDict((k, _materialise(v, path)) for k, v in obj.items())
    if isinstance(obj, dict):
        return {k: _materialise(v, path) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, path) for v in obj)
    return obj


class _PlainUnpickler(pickle.Unpickler):
    """For the legacy format's small pickles (header, storage keys): no globals at all."""

    def find_class(self, module, name):
        raise pickle.UnpicklingError(f"unexpected global {module}.{name}")


def _load_legacy(f, path):
    def unpickle(unpickler, what):
        try:
            return unpickler.load()
        except PthError:
            raise
        except Exception as e:  # garbage can fail in many ways (EOF, bad opcode, ...)
            raise PthError(f"{path}: cannot read the {what} ({type(e).__name__}: {e}); "
                           "truncated or corrupt") from None

    try:
        magic = _PlainUnpickler(f).load()
    except Exception:
        magic = None
    if magic != LEGACY_MAGIC:
        raise PthError(f"{path} is not a PyTorch .pth file (neither a zip archive nor the legacy "
                       "format's magic number)")
    protocol = unpickle(_PlainUnpickler(f), "protocol version")
    if protocol != LEGACY_PROTOCOL:
        raise PthError(f"{path}: unsupported legacy protocol version {protocol!r}")
    sys_info = unpickle(_PlainUnpickler(f), "system info")
    little = sys_info.get("little_endian", True) if isinstance(sys_info, dict) else True
    storages = {}
    obj = unpickle(_Unpickler(f, path, storages, _Storage), "pickled state dict")
    keys = unpickle(_PlainUnpickler(f), "list of storages")
    if not isinstance(keys, (list, tuple)):
        raise PthError(f"{path}: corrupt (no list of storages after the state dict)")
    for key in keys:
        key = str(key)
        head = f.read(8)
        if len(head) < 8:
            raise PthError(f"{path}: truncated (storage {key} missing)")
        numel = struct.unpack("<q" if little else ">q", head)[0]
        st = storages.get(key)
        if st is None:
            raise PthError(f"{path}: storage {key} is listed but never used")
        nbytes = numel * st.dtype.itemsize
        raw = f.read(nbytes)
        if len(raw) < nbytes:
            raise PthError(f"{path}: truncated (storage {key} has {len(raw)} of {nbytes} bytes)")
        st.array = np.frombuffer(raw, st.dtype.newbyteorder("<" if little else ">")).astype(st.dtype)
    return _materialise(obj, path)


def _load_zip(path):
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        raise PthError(f"{path}: a zip archive that cannot be read ({e}); truncated or corrupt") from None
    with zf:
        names = zf.namelist()
        pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
        if not pkl:
            raise PthError(f"{path}: a zip archive without data.pkl, not a PyTorch .pth file")
        prefix = pkl[0][: -len("data.pkl")]
        little = True
        if prefix + "byteorder" in names:
            little = zf.read(prefix + "byteorder").decode().strip() != "big"
        storages = {}
        try:
            obj = _Unpickler(io.BytesIO(zf.read(pkl[0])), path, storages, _Storage).load()
            for key, st in storages.items():
                name = f"{prefix}data/{key}"
                if name not in names:
                    raise PthError(f"{path}: storage file {name} missing from the archive")
                raw = zf.read(name)
                nbytes = st.numel * st.dtype.itemsize
                if len(raw) < nbytes:
                    raise PthError(f"{path}: storage {key} has {len(raw)} of {nbytes} bytes")
                st.array = np.frombuffer(raw[:nbytes], st.dtype.newbyteorder("<" if little else ">")).astype(st.dtype)
        except PthError:
            raise
        except Exception as e:  # bad CRC, bad pickle opcodes, ...
            raise PthError(f"{path}: truncated or corrupt zip archive ({type(e).__name__}: {e})") from None
    return _materialise(obj, path)


def is_pth_file(path):
    """Whether path holds a PyTorch file (zip archive or the legacy magic number), by content."""
    try:
        with open(path, "rb") as f:
            if f.read(4) == b"PK\x03\x04":
                return True
            f.seek(0)
            return _PlainUnpickler(f).load() == LEGACY_MAGIC
    except Exception:  # not a pickle at all, or one naming classes
        return False


def load_state_dict(path):
    """Read a .pth state dict -> OrderedDict[name, np.ndarray] (dtypes as stored).

    Accepts a dict holding the state dict under "state_dict" too, or under "decoder" (the
    original StylizedNeRF's fine-tuned `<expdir>/decoder.pth`: {'decoder': ..., 'step': n}).
    Raises PthError.
    """
    if not os.path.isfile(path):
        raise PthError(f"{path}: no such file")
    with open(path, "rb") as f:
        head = f.read(4)
        f.seek(0)
        if head == b"PK\x03\x04":
            obj = _load_zip(path)
        else:
            obj = _load_legacy(f, path)
    for wrapper in ("state_dict", "decoder"):
        if isinstance(obj, dict) and isinstance(obj.get(wrapper), dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict):
        raise PthError(f"{path}: holds a {type(obj).__name__}, not a state dict")
    out = collections.OrderedDict()
    for k, v in obj.items():
        if not isinstance(v, np.ndarray):
            raise PthError(f"{path}: entry {k!r} is a {type(v).__name__}, not a tensor")
        out[str(k)] = v
    return out


def check_state_dict(sd, expected, path):
    """Raise PthError unless sd has every name in `expected` (name -> shape) with that shape."""
    missing = [k for k in expected if k not in sd]
    wrong = [f"{k}: file {tuple(sd[k].shape)}, expected {tuple(expected[k])}"
             for k in expected if k in sd and tuple(sd[k].shape) != tuple(expected[k])]
    if missing or wrong:
        parts = []
        if missing:
            parts.append("missing keys " + ", ".join(missing))
        if wrong:
            parts.append("shape mismatches " + "; ".join(wrong))
        found = ", ".join(list(sd)[:20]) + (" ..." if len(sd) > 20 else "")
        raise PthError(f"{path}: not the expected weights: {'; '.join(parts)} (file has: {found})")


class MissingWeightsError(ValueError):
    """A weights file that is not there; the message says how to get it."""


GET_ASSETS_HINT = ("run `python scripts/get_assets.py --from ../shared/assets` (or `--download`) "
                   "to fill ./pretrained/")


def resolve_weights(path, alternatives, what):
    """`path` if it exists, else the first of `alternatives` (file names) in the same folder.

    Says so (once per call) when it substitutes; raises MissingWeightsError naming `what`
    and listing what was tried when nothing is there.
    """
    if os.path.isfile(path):
        return path
    folder = os.path.dirname(os.path.abspath(path))
    for name in alternatives:
        cand = os.path.join(folder, name)
        if os.path.isfile(cand) and os.path.abspath(cand) != os.path.abspath(path):
            print(f"{what}: {path} not found; using {cand} from the same folder", flush=True)
            return cand
    tried = ", ".join([path] + [os.path.join(folder, n) for n in alternatives])
    raise MissingWeightsError(f"{what} weights not found (tried {tried}); {GET_ASSETS_HINT}")
