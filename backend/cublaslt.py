"""Linear layers as cuBLASLt matmuls with fused epilogues, through `jt.code` (modelled on backend/cudnn.py).

Why: a NeRF training step on the H200 spends, besides 12 ms in cuBLAS GEMMs, about 3.8 ms in
bias-gradient column reductions and about 5 ms in bias-add / ReLU element-wise kernels.  cuBLASLt
can do those inside the GEMMs:

- forward   y[N,O] = act(x[N,I] W[O,I]^T + b)   one matmul, epilogue BIAS or RELU_BIAS
- weight    dW[O,I] = gp^T x                     one matmul, no epilogue
- input     dx[N,I] = gp W                       one matmul, no epilogue
  with gp = g * (y > 0) for a ReLU layer and db[O] = sum_n gp, both in one pass over g and the
  saved y (backend/reductions.relu_grad_bias_sums).  --cublaslt_bgrad epilogue computes
  db in the weight-gradient matmul instead (epilogue BGRADB, two outputs; measured slower on the
  H200, 2026-12-03).

How the ops reach cuBLASLt, and the layout of the products in cuBLAS's column-major terms:
backend/cublaslt_src.py.

Compute type: follows --matmul (Jittor's use_tensorcore flag: TF32 by default) unless set_math()
says otherwise; the self-check runs in fp32 (exact) and in the run's --matmul mode.

`available()` finds, loads and checks it once (forward with and without ReLU and both gradients
against NumPy on awkward shapes and on every layer width of the NeRF and style MLPs) and says
why not when it cannot be used; models/layers.py then keeps Jittor's matmul.
"""
import importlib.util
import os
import re

import jittor as jt
import numpy as np

from backend.cublaslt_src import COMPUTE_TYPES, header_source, op_source
from backend.jit_extern import add_include_dir, decided, failure_reason, load_global
from backend.kernels import as_rows, kernel_ok
from backend.reductions import relu_grad_bias_sums

INCLUDE_DIRS = ["/usr/local/cuda/include", "/usr/include", "/usr/include/x86_64-linux-gnu"]
LIB_DIRS = ["/usr/local/cuda/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib64", "/usr/lib"]
_state = {"checked": False, "ok": False, "why": "not checked", "header": None, "version": None,
          "fused_bgrad": True}
# How a layer's bias gradient is computed: "kernel" (backend/reductions.relu_grad_bias_sums: in
# the pass that applies ReLU's gradient; the default) or "epilogue" (cuBLASLt's BGRADB, in the
# weight-gradient GEMM).  --cublaslt_bgrad picks (set_bias_grad_mode).  On one H200 (2026-12-03, diag_nerf) a
# NeRF step took 17.0 ms with "kernel" and 19.9 ms with "epilogue": BGRADB slows the weight-
# gradient GEMM more than the sums cost in the mask pass, which reads the gradient anyway.
BIAS_GRAD_MODES = ("kernel", "epilogue")
_bias_grad = {"mode": "kernel"}


def set_bias_grad_mode(mode):
    if mode not in BIAS_GRAD_MODES:
        raise ValueError(f"--cublaslt_bgrad must be one of {', '.join(BIAS_GRAD_MODES)}, got {mode!r}")
    _bias_grad["mode"] = mode


def bias_grad_mode():
    return _bias_grad["mode"]


# ---------------------------------------------------------------- finding cuBLASLt
def _pip_dirs():
    """(include, lib) folders of the nvidia-cublas pip wheels (cu12: nvidia/cublas, cu13: nvidia/cu13)."""
    spec = importlib.util.find_spec("nvidia")
    out = []
    for root in (spec.submodule_search_locations or []) if spec else []:
        for sub in ("cublas", "cu13", "cu12"):
            d = os.path.join(root, sub)
            if os.path.isdir(d):
                out.append((os.path.join(d, "include"), os.path.join(d, "lib")))
    return out


def _toolkit_dirs():
    """(include, lib) pairs of the CUDA toolkits named by the environment or Jittor's nvcc."""
    roots = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH")]
    nvcc = getattr(jt.flags, "nvcc_path", "") or ""
    if nvcc:
        roots.append(os.path.dirname(os.path.dirname(os.path.realpath(nvcc))))
    pairs = []
    for r in filter(None, roots):
        pairs += [(os.path.join(r, "include"), os.path.join(r, "lib64")),
                  (os.path.join(r, "targets", "x86_64-linux", "include"), os.path.join(r, "targets", "x86_64-linux", "lib"))]
    return pairs


def _dir_pairs():
    env = [(os.environ.get("CUBLASLT_INCLUDE_DIR"), os.environ.get("CUBLASLT_LIB_DIR"))]
    return env + _toolkit_dirs() + list(zip(INCLUDE_DIRS, LIB_DIRS)) + _pip_dirs()


def find_header():
    """Path of the first cublasLt.h found (CUBLASLT_INCLUDE_DIR, CUDA_HOME, the CUDA toolkit,
    system folders, the pip wheel), or None."""
    for inc, _ in _dir_pairs():
        if inc and os.path.isfile(os.path.join(inc, "cublasLt.h")):
            return os.path.join(inc, "cublasLt.h")
    return None


def _header_major(header):
    p = os.path.join(os.path.dirname(header), "cublas_api.h")
    text = open(p, errors="replace").read() if os.path.isfile(p) else ""
    m = re.search(r"#define\s+CUBLAS_VER_MAJOR\s+(\d+)", text)
    return m.group(1) if m else None


def _loaded_cublaslt():
    """libcublasLt already mapped into this process (Jittor's libcublas pulls it in), or None."""
    try:
        for line in open("/proc/self/maps"):
            path = line.split()[-1]
            if "/libcublasLt.so" in path:
                return path
    except OSError:
        pass
    return None


def find():
    """(header path, library path, major version) of cuBLASLt, or None.  The library must have
    the header's major version; one already loaded into the process is preferred."""
    header = find_header()
    if header is None:
        return None
    major = _header_major(header)
    names = [f"libcublasLt.so.{major}"] if major else []
    names.append("libcublasLt.so")
    loaded = _loaded_cublaslt()
    if loaded and (not major or f".so.{major}" in loaded):
        return header, loaded, major
    folder = os.path.dirname(header)
    paired = next((lib for inc, lib in _dir_pairs() if inc and os.path.normpath(inc) == folder), None)
    for d in [paired] + [lib for _, lib in _dir_pairs()]:
        for name in names:
            if d and os.path.isfile(os.path.join(d, name)):
                return header, os.path.join(d, name), major
    return None


# ---------------------------------------------------------------- compute type
_USE_TENSORCORE_MODES = {0: "fp32", 1: "tf32", 2: "bf16"}  # Jittor's flag (backend.runtime.MATMUL_MODES), >= 3: fp16
_math = {"type": None}


def set_math(mode):
    """Compute type for the ops: fp32 (exact), tf32, bf16 or fp16; None: follow --matmul
    (Jittor's use_tensorcore flag, which backend.runtime.set_matmul sets)."""
    if mode is not None and mode not in COMPUTE_TYPES:
        raise ValueError(f"cuBLASLt math must be one of {', '.join(COMPUTE_TYPES)}, got {mode!r}")
    _math["type"] = mode


def math_mode():
    if _math["type"] is not None:
        return _math["type"]
    return _USE_TENSORCORE_MODES.get(int(jt.flags.use_tensorcore), "fp16")


def _code(variant, shapes, inputs):
    body = op_source(variant, math_mode())
    outs = jt.code(shapes, ["float32"] * len(shapes), inputs, cuda_header=header_source(_state["header"]),
                   cuda_src=body)
    return outs


# ---------------------------------------------------------------- the differentiable layer
class _LinearLt(jt.Function):
    """y = act(x W^T + b) on [N,I] rows, forward and backward each a cuBLASLt matmul with epilogue."""

    def execute(self, x, w, b, relu):
        n, o = x.shape[0], w.shape[0]
        variant = ("fwd_relu" if relu else "fwd") + ("_bias" if b is not None else "")
        y = _code(variant, [(n, o)], [x, w] + ([b] if b is not None else []))[0]
        self.x, self.w, self.y, self.has_bias, self.relu = x, w, (y if relu else None), b is not None, relu
        return y

    def grad(self, g):
        x, w = self.x, self.w
        self.x = self.w = None
        if g is None:
            return None, None, None, None
        y, self.y = self.y, None
        if self.has_bias and (bias_grad_mode() == "kernel" or not _state["fused_bgrad"]):
            gp, db = relu_grad_bias_sums(g, y if self.relu else None)  # one pass: mask and sums
            dx = _code("dgrad", [tuple(x.shape)], [gp, w])[0]
            return dx, _code("wgrad", [tuple(w.shape)], [x, gp])[0], db, None
        gp = g * (y > 0).float32() if self.relu else g  # ReLU's gradient from the saved output
        dx = _code("dgrad", [tuple(x.shape)], [gp, w])[0]
        if not self.has_bias:
            return dx, _code("wgrad", [tuple(w.shape)], [x, gp])[0], None, None
        dw, db = _code("wgrad_bgrad", [tuple(w.shape), (w.shape[0],)], [x, gp])  # BGRADB epilogue
        return dx, dw, db, None


def _check_args(x, weight, bias):
    if not isinstance(x, jt.Var) or not isinstance(weight, jt.Var) or weight.ndim != 2 or x.ndim < 1:
        raise ValueError(f"cublaslt.linear: x [..., I] and weight [O, I] Vars expected, got "
                         f"{getattr(x, 'shape', x)} and {getattr(weight, 'shape', weight)}")
    if x.shape[-1] != weight.shape[1]:
        raise ValueError(f"cublaslt.linear: x {tuple(x.shape)} does not fit weight {tuple(weight.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"cublaslt.linear: bias {tuple(bias.shape)} does not fit weight {tuple(weight.shape)}")
    for name, v in (("x", x), ("weight", weight), ("bias", bias)):
        if v is not None and v.dtype != "float32":
            raise ValueError(f"cublaslt.linear takes float32, got {name} of {v.dtype}")


def linear(x, weight, bias=None, relu=False):
    """[..., I] -> [..., O]: relu(x W^T + b) if relu else x W^T + b, through cuBLASLt
    (differentiable; needs available())."""
    _check_args(x, weight, bias)
    if not _state["ok"]:
        raise RuntimeError(f"cuBLASLt linear layers are not available: {_state['why']}")
    x2d, lead = as_rows(x)
    o = weight.shape[0]
    if x2d.shape[0] == 0:  # cuBLASLt takes no empty matrices
        return jt.zeros(lead + (o,), "float32")
    if bias is not None and (bias_grad_mode() == "kernel" or not _state["fused_bgrad"]):
        kernel_ok("relu_grad_bias_sums")  # the backward's kernel, decided now (backend/kernels.kernel_ok)
    y = _LinearLt.apply(x2d, weight, bias, bool(relu))
    return y.reshape(lead + (o,))


# ---------------------------------------------------------------- self-check
def reference(x, w, b, g, relu, y_mask=None):
    """NumPy float64 (y, dx, dW, db) of y = act(x W^T + b), loss sum(g * y).  y_mask: where the
    checked y is > 0 (the ReLU mask the op's backward uses; near-zero pre-activations may fall
    either side under TF32), default the reference's own."""
    x, w, g = (np.asarray(a, np.float64) for a in (x, w, g))
    pre = x @ w.T + (0 if b is None else np.asarray(b, np.float64))
    y = np.maximum(pre, 0) if relu else pre
    gp = g * ((y > 0) if y_mask is None else y_mask) if relu else g
    return y, gp @ w, gp.T @ x, gp.sum(0)


# (N, I, O, relu): awkward small shapes, then every layer width of the NeRF (63->256, 256->256,
# 319->256 after the skip, 256->1 sigma, 283->128 views, 128->3 rgb) and the style MLP (95, 288,
# 351 -> 256, 288 -> 3)
CHECK_SHAPES = [(37, 63, 20, True), (37, 63, 20, False), (37, 27, 20, True), (5, 3, 1, False),
                (64, 63, 256, True), (64, 256, 256, True), (64, 319, 256, True), (64, 256, 1, False),
                (64, 256, 256, False), (64, 283, 128, True), (64, 128, 3, False),
                (64, 95, 256, True), (64, 288, 256, True), (64, 351, 256, True), (64, 288, 3, False)]
TOLERANCE = {"fp32": 1e-4, "tf32": 1e-2, "bf16": 5e-2, "fp16": 5e-2}


def _relative_errors(n, i, o, relu, seed):
    """{name: max |got - want| / max |want|} of one layer's forward and gradients."""
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((n, i)), rng.standard_normal((o, i)) / np.sqrt(i), rng.standard_normal(o)
    g = rng.standard_normal((n, o))
    # the first layer of a run may come inside no_grad (rendering): there jt.grad returns zeros
    # and the check would wrongly reject cuBLASLt
    with jt.enable_grad():
        xv, wv, bv = (jt.array(a.astype(np.float32)) for a in (x, w, b))
        y = linear(xv, wv, bv, relu)
        dx, dw, db = jt.grad((y * jt.array(g.astype(np.float32))).sum(), [xv, wv, bv])
        got = [y.numpy(), dx.numpy(), dw.numpy(), db.numpy()]
    want = reference(x, w, b, g, relu, y_mask=got[0] > 0)
    return {name: float(np.abs(a - r).max() / max(np.abs(r).max(), 1e-12))
            for name, a, r in zip(("forward", "input gradient", "weight gradient", "bias gradient"), got, want)}


def _smoke_test(modes):
    """Every CHECK_SHAPES layer, forward and gradients, against NumPy in each math mode."""
    saved = _math["type"]
    try:
        for mode in modes:
            _math["type"] = mode
            for k, (n, i, o, relu) in enumerate(CHECK_SHAPES):
                for name, err in _relative_errors(n, i, o, relu, seed=k).items():
                    if not err < TOLERANCE[mode]:
                        raise RuntimeError(f"cuBLASLt {name} differs from NumPy ({mode}, N={n} I={i} O={o} "
                                           f"relu={relu}: relative error {err:.2e})")
    finally:
        _math["type"] = saved


def unavailable_reason():
    return _state["why"]


def _check(lib, major, log):
    """Run the self-check, first with the bias gradient inside the weight-gradient GEMM (BGRADB),
    then, if cuBLASLt has no such algorithm here, with the sums of backend/reductions.relu_grad_bias_sums;
    True if one passes."""
    modes = ["fp32"] + ([math_mode()] if math_mode() != "fp32" else [])
    try:
        _smoke_test(modes)
        return True
    except Exception as e:  # any failure here means: do not use it (as it is), and say why
        _state.update(detail=str(e), why=f"cuBLASLt {major} at {lib} failed its check: {failure_reason(e)}")
        if "weight-gradient" not in str(e) and "bias gradient differs" not in str(e):
            return False  # not the BGRADB epilogue's fault
    _state["fused_bgrad"] = False
    try:
        _smoke_test(modes)
    except Exception as e:
        _state["detail"] += "\n---- and with the bias sums of relu_grad_bias_sums ----\n" + str(e)
        return False
    log(f"cuBLASLt: no fused bias gradient ({_state['why']}); bias gradients in the ReLU-gradient pass")
    return True


def available(log=print):
    """True if cuBLASLt linear layers can be used here (GPU run, cublasLt.h and libcublasLt found,
    loaded and checked against NumPy); decided once per process, with one log line."""
    answer = decided(_state)
    if answer is not None:
        return answer
    found = find()
    if found is None:
        where = "cublasLt.h" if find_header() is None else "libcublasLt.so of cublasLt.h's major version"
        _state["why"] = (f"no {where} found (CUBLASLT_INCLUDE_DIR / CUBLASLT_LIB_DIR, CUDA_HOME, "
                         + ", ".join(INCLUDE_DIRS + LIB_DIRS) + ", the nvidia-cublas wheel)")
        log(f"cuBLASLt: {_state['why']}; Linear layers use Jittor's matmul")
        return False
    header, lib, major = found
    try:
        load_global(lib)
        add_include_dir(os.path.dirname(header))
    except Exception as e:
        _state["why"] = f"cuBLASLt at {lib} could not be loaded: {failure_reason(e)}"
        log(f"cuBLASLt: {_state['why']}; Linear layers use Jittor's matmul")
        return False
    _state.update(header=header, version=major, ok=True)
    if not _check(lib, major, log):
        _state["ok"] = False
        log(f"cuBLASLt: {_state['why']}; Linear layers use Jittor's matmul")
        return False
    _state["why"] = ""
    log(f"cuBLASLt {major} ({lib}): Linear layers as cuBLASLt matmuls with fused epilogues "
        f"({math_mode()} compute)")
    return True
