"""Checkpoints of the original StylizedNeRF release, read without torch and without its code.

- NeRF `<step>.tar` (its run_stylenerf.py, `'{:06d}.tar'`): written by `jt.save`, a pickle of
  {'global_step', 'model', 'model_fine', 'optimizer', 'style_optimizer'}; the state dicts hold
  Jittor Vars (pickled as `jittor.jittor_core.Var(ndarray)`) or NumPy arrays; Jittor's
  `safepickle` appends the pickle's SHA-1 and the tag b"HCAJSLHD".  Its NeRF (`Nerf` or
  `StyleNerf` around `MLP`/`MLP_style`) names the weights `net.base_layers.<i>`,
  `net.sigma_layer`, `net.base_remap_layer`, `net.rgb_layers.{0,1}`: the layout of
  models/nerf.py with view directions (pts_linears, alpha_linear, feature_linear, views_linear,
  rgb_linear).  Only arrays, dicts, lists and NumPy's own rebuilders are unpickled; any other
  class in the file becomes an inert placeholder, so reading runs no code from it.
- VAE `vae.pth` (its train_style_modules.py --task vae, `torch.save` of the state dict):
  `encoder.fc_layers.<i>`, `encoder.fc_layer_mu`, `encoder.fc_layer_log_var`,
  `decoder.fc_layers.<i>`, `decoder.output_layer`: models/vae.py's StyleVAE, renamed.
"""
import builtins
import codecs
import collections
import hashlib
import io
import os
import pickle
import re

import numpy as np

from core.checkpoint import CheckpointError

JITTOR_TAG = b"HCAJSLHD"         # Jittor's safepickle: pickle + sha1 (20 bytes) + this tag
ORIGINAL_NERF_NAME = re.compile(r"^(\d+)\.tar$")


class OriginalCheckpointError(CheckpointError):
    """An original-release file that cannot be read or used; the message names it and why."""


class _Opaque:
    """Stands in for any class a pickle names that is not an array or a container."""

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        pass


def _as_array(value, *_):
    return np.asarray(value)


def _numpy_rebuilders():
    """NumPy's unpickling helpers under every module path a NumPy 1 or 2 pickle uses."""
    reconstruct = np.array(0).__reduce__()[0]
    scalar = np.float32(0).__reduce__()[0]
    frombuffer = np.arange(2).__reduce_ex__(5)[0]
    out = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core", "numpy._core"):
        out[(core + ".multiarray", "_reconstruct")] = reconstruct
        out[(core + ".multiarray", "scalar")] = scalar
        out[(core + ".numeric", "_frombuffer")] = frombuffer
    return out


_ALLOWED = {("collections", "OrderedDict"): collections.OrderedDict,
            ("_codecs", "encode"): codecs.encode,  # bytes in protocol-2 pickles
            ("jittor", "jittor_core.Var"): _as_array, ("jittor_core", "Var"): _as_array,
            ("jittor.jittor_core", "Var"): _as_array}
_ALLOWED.update({("builtins", n): getattr(builtins, n)
                 for n in ("dict", "list", "tuple", "set", "frozenset", "int", "float", "str", "bytes",
                           "bytearray", "complex", "bool", "slice")})
_ALLOWED.update(_numpy_rebuilders())


class _Unpickler(pickle.Unpickler):
    def find_class(self, module, name):
        return _ALLOWED.get((module, name), _Opaque)


def read_jittor_pickle(path):
    """The object in a file jt.save wrote (with or without safepickle's checksum)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise OriginalCheckpointError(f"{path}: cannot read ({e.strerror})") from None
    if data[:4] == b"PK\x03\x04":
        raise OriginalCheckpointError(f"{path} is a zip archive (a PyTorch file), not a Jittor checkpoint "
                                      "as the original's jt.save writes")
    if data.endswith(JITTOR_TAG):
        body, checksum = data[:-28], data[-28:-8]
        if hashlib.sha1(body).digest() != checksum:
            raise OriginalCheckpointError(f"{path}: Jittor checkpoint whose checksum does not match "
                                          "(truncated or corrupt)")
        data = body
    try:
        return _Unpickler(io.BytesIO(data)).load()
    except Exception as e:  # garbage fails in many ways (bad opcode, EOF, odd reduce arguments)
        raise OriginalCheckpointError(f"{path} is not a readable Jittor checkpoint (a pickle as jt.save "
                                      f"writes: {type(e).__name__}: {e})") from None


# ---- NeRF ------------------------------------------------------------------------------------

_NERF_RENAMES = [(re.compile(r"^base_layers\.(\d+)\.(weight|bias)$"), r"pts_linears.\1.\2"),
                 (re.compile(r"^sigma_layer\.(weight|bias)$"), r"alpha_linear.\1"),
                 (re.compile(r"^base_remap_layer\.(weight|bias)$"), r"feature_linear.\1"),
                 (re.compile(r"^rgb_layers\.0\.(weight|bias)$"), r"views_linear.\1"),
                 (re.compile(r"^rgb_layers\.1\.(weight|bias)$"), r"rgb_linear.\1")]


def nerf_state_from_original(sd, source):
    """The original's NeRF state dict (one level) -> models/nerf.py's names, float32 arrays."""
    if not isinstance(sd, dict) or not sd:
        raise OriginalCheckpointError(f"{source}: not a state dict (a {type(sd).__name__})")
    out = {}
    for key, value in sd.items():
        short = key[4:] if str(key).startswith("net.") else str(key)
        for pattern, repl in _NERF_RENAMES:
            if pattern.match(short):
                arr = np.asarray(value)
                if arr.dtype.kind not in "fiu":
                    raise OriginalCheckpointError(f"{source}: {key!r} holds a {type(value).__name__}, not an array")
                out[pattern.sub(repl, short)] = arr.astype(np.float32)
                break
        else:
            raise OriginalCheckpointError(f"{source}: unexpected weight {key!r}; expected the original's NeRF "
                                          "(net.base_layers.<i>, net.sigma_layer, net.base_remap_layer, "
                                          "net.rgb_layers.<i>)")
    return out


def read_original_nerf(path):
    """(step, coarse state, fine state) of an original `<step>.tar`, in models/nerf.py's names."""
    ck = read_jittor_pickle(path)
    if not isinstance(ck, dict) or "model" not in ck:
        keys = ", ".join(map(str, ck)) if isinstance(ck, dict) else type(ck).__name__
        raise OriginalCheckpointError(f"{path}: not the original's NeRF checkpoint (no 'model'; has {keys})")
    if "model_fine" not in ck:
        raise OriginalCheckpointError(f"{path}: a NeRF without a fine network (the original ran with "
                                      "--N_samples_fine 0); this project's NeRF stage needs both")
    step = ck.get("global_step")
    if not isinstance(step, (int, np.integer)):
        m = ORIGINAL_NERF_NAME.match(os.path.basename(path))
        if m is None:
            raise OriginalCheckpointError(f"{path}: no global_step in the file nor in its name (<step>.tar)")
        step = int(m.group(1))
    if not any("remap" in str(k) for k in ck["model"]):
        raise OriginalCheckpointError(f"{path}: a NeRF without view directions; this project reads the "
                                      "original's NeRF made with --use_viewdir (as its configs do)")
    return (int(step), nerf_state_from_original(ck["model"], f"{path} (model)"),
            nerf_state_from_original(ck["model_fine"], f"{path} (model_fine)"))


def newest_original_nerf(folder):
    """Path of the original's newest `<step>.tar` in folder, or None."""
    try:
        names = os.listdir(folder)
    except OSError:
        return None
    found = sorted((int(m.group(1)), n) for n in names for m in [ORIGINAL_NERF_NAME.match(n)] if m)
    return os.path.join(folder, found[-1][1]) if found else None


# ---- VAE -------------------------------------------------------------------------------------

def vae_from_original(sd, source):
    """The original's VAE state dict (torch names, NumPy arrays) -> (StyleVAE config, state dict)."""
    enc = sorted(int(m.group(1)) for k in sd for m in [re.match(r"^encoder\.fc_layers\.(\d+)\.weight$", k)] if m)
    dec = sorted(int(m.group(1)) for k in sd for m in [re.match(r"^decoder\.fc_layers\.(\d+)\.weight$", k)] if m)
    needed = ["encoder.fc_layer_mu.weight", "encoder.fc_layer_log_var.weight", "decoder.output_layer.weight"]
    missing = [k for k in needed if k not in sd]
    if missing or enc != list(range(len(enc))) or dec != enc:
        raise OriginalCheckpointError(f"{source}: not the original's style VAE (expected encoder.fc_layers.<i>, "
                                      f"encoder.fc_layer_mu, encoder.fc_layer_log_var, decoder.fc_layers.<i>, "
                                      f"decoder.output_layer; file has {', '.join(list(sd)[:12])})")
    mu_w = sd["encoder.fc_layer_mu.weight"]
    in_dim = sd["encoder.fc_layers.0.weight"].shape[1] if enc else mu_w.shape[1]
    config = dict(in_dim=int(in_dim), latent=int(mu_w.shape[0]), hidden=int(mu_w.shape[1]) if enc else 512,
                  depth=len(enc) + 1)
    state = {}
    for side in ("encoder", "decoder"):
        for i in enc:  # Sequential(Linear, ReLU, ...): the i-th linear is entry 2i
            for kind in ("weight", "bias"):
                state[f"{side}.{2 * i}.{kind}"] = sd[f"{side}.fc_layers.{i}.{kind}"]
    for kind in ("weight", "bias"):
        state[f"fc_mu.{kind}"] = sd[f"encoder.fc_layer_mu.{kind}"]
        state[f"fc_logvar.{kind}"] = sd[f"encoder.fc_layer_log_var.{kind}"]
        state[f"decoder.{2 * len(enc)}.{kind}"] = sd[f"decoder.output_layer.{kind}"]
    return config, {k: np.asarray(v, np.float32) for k, v in state.items()}
