"""cuDNN convolutions through `jt.code`, for GPUs where Jittor cannot load cuDNN itself.

Jittor 1.3.11 looks for cuDNN 8's library names and `cudnn.h` under CUDA's include folder, and
its cuDNN extension also wraps RNN calls that cuDNN 9 removed, so on the CUDA 13 machine it
runs without cuDNN (backend.runtime sets conv_opt=1).  cuDNN 9 still has the legacy convolution
API, so three small `jt.code` ops call it directly: forward, backward-data and backward-filter
of a stride-1, unpadded ("valid") cross-correlation on float32 NCHW data.  Padding stays in
models/layers.py (reflection padding is not a cuDNN mode anyway).

How the ops reach cuDNN without build flags: the source includes the header by its absolute
path, the header's folder is added to Jittor's nvcc -I list (Jittor follows every #include
through that list and failed on cudnn_version.h without it, 2026-12-02), and libcudnn is loaded
into the process with RTLD_GLOBAL before the first op compiles, so the compiled op's undefined
cuDNN symbols resolve when Jittor loads it.  The host code creates the descriptors per call
(cheap), chooses the algorithm once per shape (timed by cudnnFind*, like torch's
cudnn.benchmark, falling back to the heuristics; --cudnn_search 0: heuristics only)
and takes scratch memory from Jittor's allocator.  Ops run on the default stream, like
Jittor's kernels.

Measured on one H200 (2026-12-02, heuristic choice): the decoder training step, batch 8 at
256x256, 29.6 ms (relu3_1) / 35.7 ms (relu4_1) against PyTorch+cuDNN's 17.3 / 24.1 ms, where
the gather + GEMM convolution took 63.4 / 84.6 ms.

Where the H200 machine keeps cuDNN 9 (probed 2026-12-02, bench/results/2026-12-02_h200_probe.txt):
headers in /usr/include/x86_64-linux-gnu, libcudnn*.so.9 in /usr/lib/x86_64-linux-gnu.

`available()` finds, loads and checks it once (a small convolution against NumPy, forward and
both gradients) and says why not when it cannot be used; models/layers.py then keeps its
gather + cuBLAS convolution.
"""
import functools
import glob
import importlib.util
import os
import re

import jittor as jt
import numpy as np

from backend.jit_extern import WORKSPACE_CPP, add_include_dir, decided, failure_reason, load_global

INCLUDE_DIRS = ["/usr/include/x86_64-linux-gnu", "/usr/include", "/usr/local/cuda/include"]
LIB_DIRS = ["/usr/lib/x86_64-linux-gnu", "/usr/local/cuda/lib64", "/usr/lib64", "/usr/lib"]
_state = {"checked": False, "ok": False, "why": "not checked", "header": None, "version": None}


def _pip_cudnn_dir():
    """site-packages/nvidia/cudnn of the nvidia-cudnn-cu1x wheels, if installed."""
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        d = os.path.join(root, "cudnn")
        if os.path.isdir(d):
            return d
    return None


def find():
    """(header path, library path, version string) of an installed cuDNN >= 8, or None.

    Looks in CUDNN_INCLUDE_DIR / CUDNN_LIB_DIR first, then the system folders, then the
    nvidia-cudnn pip wheel."""
    inc = [os.environ.get("CUDNN_INCLUDE_DIR")] + INCLUDE_DIRS
    lib = [os.environ.get("CUDNN_LIB_DIR")] + LIB_DIRS
    pip_dir = _pip_cudnn_dir()
    if pip_dir:
        inc.append(os.path.join(pip_dir, "include"))
        lib.append(os.path.join(pip_dir, "lib"))
    header = next((os.path.join(d, "cudnn.h") for d in inc if d and os.path.isfile(os.path.join(d, "cudnn.h"))), None)
    if header is None:
        return None
    version = _header_version(os.path.dirname(header))
    major = version.split(".")[0] if version else "0"
    if int(major) < 8:
        return None
    for d in lib:
        if not d:
            continue
        for name in (f"libcudnn.so.{major}", "libcudnn.so"):
            if os.path.isfile(os.path.join(d, name)):
                return header, os.path.join(d, name), version
    return None


def _header_version(folder):
    text = ""
    for name in ("cudnn_version.h", "cudnn.h"):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            text += open(p, errors="replace").read()
    parts = [re.search(rf"#define\s+CUDNN_{k}\s+(\d+)", text) for k in ("MAJOR", "MINOR", "PATCHLEVEL")]
    return ".".join(m.group(1) for m in parts) if all(parts) else None


def _load_library(lib_path):
    """Load libcudnn (and, for a wheel's folder, its sub-libraries) with RTLD_GLOBAL."""
    folder = os.path.dirname(lib_path)
    first = [lib_path]
    if folder not in LIB_DIRS:  # not on the loader's search path: preload what libcudnn dlopens
        first = sorted(glob.glob(os.path.join(folder, "libcudnn_*.so*"))) + first
    for p in first:
        load_global(p)


# ---------------------------------------------------------------- the ops' C++ sources
# Jittor's code-op preprocessor treats '@' specially: none in these sources.  The header
# sits at file scope of the op's translation unit; `out` is a macro there, so not used.
_HEADER = r"""
#include "CUDNN_H"
#ifndef SN_STANDALONE_CHECK
#include "executor.h"
#endif
#include <map>
#include <vector>
#include <tuple>
namespace jittor {
#define SN_CUDNN_OK(expr) do { cudnnStatus_t st_ = (expr); \
    if (st_ != CUDNN_STATUS_SUCCESS) LOGf << "cuDNN error" << cudnnGetErrorString(st_) << "in" << #expr; } while (0)

static cudnnHandle_t sn_cudnn_handle() {
    static cudnnHandle_t h = nullptr;
    if (!h) SN_CUDNN_OK(cudnnCreate(&h));
    return h;
}

SN_WORKSPACE_CPP
// descriptors of x [B,C,H,W], w [O,C,K,K], y [B,O,H-K+1,W-K+1], stride 1, no padding
struct SnConvDescs {
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    SnConvDescs(int B, int C, int H, int W, int O, int K, cudnnMathType_t math) {
        SN_CUDNN_OK(cudnnCreateTensorDescriptor(&x));
        SN_CUDNN_OK(cudnnCreateTensorDescriptor(&y));
        SN_CUDNN_OK(cudnnCreateFilterDescriptor(&w));
        SN_CUDNN_OK(cudnnCreateConvolutionDescriptor(&conv));
        SN_CUDNN_OK(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, B, C, H, W));
        SN_CUDNN_OK(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, B, O, H - K + 1, W - K + 1));
        SN_CUDNN_OK(cudnnSetFilter4dDescriptor(w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, O, C, K, K));
        SN_CUDNN_OK(cudnnSetConvolution2dDescriptor(conv, 0, 0, 1, 1, 1, 1, CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT));
        SN_CUDNN_OK(cudnnSetConvolutionMathType(conv, math));
    }
    ~SnConvDescs() {
        cudnnDestroyTensorDescriptor(x);
        cudnnDestroyTensorDescriptor(y);
        cudnnDestroyFilterDescriptor(w);
        cudnnDestroyConvolutionDescriptor(conv);
    }
};

typedef std::tuple<long long, long long, long long, long long, long long, long long, int> SnConvKey;

// an algorithm and the math type it runs with, chosen once per shape
template <class Algo> struct SnChoice { Algo algo; cudnnMathType_t math; };

// SN_SEARCH 1: cuDNN times every algorithm on this shape (cudnnFind*, like torch's
// cudnn.benchmark; memory of its own, once per shape) and the fastest that needs at most
// SN_MAX_WORKSPACE bytes wins; 0, or if that search fails: the heuristics' first that can run
#define SN_SEARCH SEARCH_ON
#define SN_MAX_WORKSPACE (size_t(1) << 30)
template <class Perf, class Algo, class Find, class Heuristic>
static SnChoice<Algo> sn_pick(std::map<SnConvKey, SnChoice<Algo>>& cache, const SnConvKey& key,
                              Find find, Heuristic heuristic, cudnnMathType_t math, const char* what) {
    auto it = cache.find(key);
    if (it != cache.end()) return it->second;
    std::vector<Perf> perf(16);
    int found = 0;
    if (SN_SEARCH && find((int)perf.size(), &found, perf.data()) == CUDNN_STATUS_SUCCESS) {
        for (int i = 0; i < found; i++)  // sorted by time
            if (perf[i].status == CUDNN_STATUS_SUCCESS && perf[i].memory <= SN_MAX_WORKSPACE)
                return cache[key] = SnChoice<Algo>{perf[i].algo, perf[i].mathType};
    }
    found = 0;
    SN_CUDNN_OK(heuristic((int)perf.size(), &found, perf.data()));
    for (int i = 0; i < found; i++)
        if (perf[i].status == CUDNN_STATUS_SUCCESS) return cache[key] = SnChoice<Algo>{perf[i].algo, math};
    LOGf << "cuDNN found no" << what << "algorithm for this convolution";
    return SnChoice<Algo>();
}
} // jittor
"""

# One template for the three ops: descriptors of this call's shapes, the algorithm (cached per
# shape), the workspace, the call.  X: the input image's shape, OK: out channels and kernel size.
_OP = r"""
SnConvDescs d(X_SHAPE, OK_SIZES, MATH_TYPE);
static std::map<SnConvKey, SnChoice<ALGO>> algos;
SnConvKey key(X_SHAPE, OK_SIZES, (int)MATH_TYPE);
cudnnHandle_t h = sn_cudnn_handle();
SnChoice<ALGO> choice = sn_pick<PERF, ALGO>(algos, key,
    [&](int n, int* found, PERF* p) { return FIND(h, DESCS, n, found, p); },
    [&](int n, int* found, PERF* p) { return QUERY_V7(h, DESCS, n, found, p); }, MATH_TYPE, "WHAT");
SN_CUDNN_OK(cudnnSetConvolutionMathType(d.conv, choice.math));  // the math the timing used
size_t ws = 0;
SN_CUDNN_OK(WORKSPACE_SIZE(h, DESCS, choice.algo, &ws));
SnWorkspace work(ws);
float one = 1.f, zero = 0.f;
SN_CUDNN_OK(RUN(h, &one, ARG_A, ARG_B, d.conv, choice.algo, work.ptr, ws, &zero, RESULT, out0_p));
"""
_X_IN0 = "in0_shape0, in0_shape1, in0_shape2, in0_shape3"
_X_OUT0 = "out0_shape0, out0_shape1, out0_shape2, out0_shape3"
# forward: in0 = x, in1 = w, out0 = y;  backward-data: in0 = dy, in1 = w, out0 = dx;
# backward-filter: in0 = x, in1 = dy, out0 = dw
_OPS = {
    "fwd": dict(X_SHAPE=_X_IN0, OK_SIZES="in1_shape0, in1_shape2", ALGO="cudnnConvolutionFwdAlgo_t",
                PERF="cudnnConvolutionFwdAlgoPerf_t", QUERY_V7="cudnnGetConvolutionForwardAlgorithm_v7",
                FIND="cudnnFindConvolutionForwardAlgorithm",
                DESCS="d.x, d.w, d.conv, d.y", WHAT="forward",
                WORKSPACE_SIZE="cudnnGetConvolutionForwardWorkspaceSize", RUN="cudnnConvolutionForward",
                ARG_A="d.x, in0_p", ARG_B="d.w, in1_p", RESULT="d.y"),
    "bwd_data": dict(X_SHAPE=_X_OUT0, OK_SIZES="in1_shape0, in1_shape2", ALGO="cudnnConvolutionBwdDataAlgo_t",
                     PERF="cudnnConvolutionBwdDataAlgoPerf_t",
                     QUERY_V7="cudnnGetConvolutionBackwardDataAlgorithm_v7",
                     FIND="cudnnFindConvolutionBackwardDataAlgorithm", DESCS="d.w, d.y, d.conv, d.x",
                     WHAT="backward-data", WORKSPACE_SIZE="cudnnGetConvolutionBackwardDataWorkspaceSize",
                     RUN="cudnnConvolutionBackwardData", ARG_A="d.w, in1_p", ARG_B="d.y, in0_p", RESULT="d.x"),
    "bwd_filter": dict(X_SHAPE=_X_IN0, OK_SIZES="out0_shape0, out0_shape2",
                       ALGO="cudnnConvolutionBwdFilterAlgo_t", PERF="cudnnConvolutionBwdFilterAlgoPerf_t",
                       QUERY_V7="cudnnGetConvolutionBackwardFilterAlgorithm_v7",
                       FIND="cudnnFindConvolutionBackwardFilterAlgorithm", DESCS="d.x, d.y, d.conv, d.w",
                       WHAT="backward-filter", WORKSPACE_SIZE="cudnnGetConvolutionBackwardFilterWorkspaceSize",
                       RUN="cudnnConvolutionBackwardFilter", ARG_A="d.x, in0_p", ARG_B="d.y, in1_p", RESULT="d.w"),
}


def _op_source(name, math_type):
    src = _OP.replace("MATH_TYPE", math_type)
    for key, value in _OPS[name].items():
        src = src.replace(key, value)
    return src


# TF32 tensor cores allowed (cuDNN's default math for float32 on Hopper), or plain FP32 FMAs
MATH_TYPES = {"tf32": "CUDNN_DEFAULT_MATH", "fp32": "CUDNN_FMA_MATH"}
_math = {"type": "tf32"}


def set_math(mode):
    """'fp32' for exact float32 convolutions, anything else (tf32/bf16/fp16 matmul modes) TF32."""
    _math["type"] = "fp32" if mode == "fp32" else "tf32"


_search = {"on": True}


def set_algorithm_search(on):
    """--cudnn_search: time every algorithm once per shape (1, the default) or take cuDNN's
    heuristic pick (0: no timing runs, possibly slower convolutions)."""
    _search["on"] = bool(on)


def algorithm_search():
    return _search["on"]


@functools.lru_cache(maxsize=None)
def sources(header_path, math="tf32", search=True):
    """(header, forward, backward-data, backward-filter) C++ sources for this cuDNN header,
    math mode ("tf32" or "fp32") and algorithm choice (search: timed, else heuristic)."""
    m = MATH_TYPES[math]
    header = (_HEADER.replace("CUDNN_H", header_path).replace("SEARCH_ON", "1" if search else "0")
              .replace("SN_WORKSPACE_CPP", WORKSPACE_CPP))
    return (header, *(_op_source(n, m) for n in ("fwd", "bwd_data", "bwd_filter")))


_OP_INDEX = {"fwd": 1, "bwd_data": 2, "bwd_filter": 3}


def _code(shape, inputs, op):
    # timing the algorithms pays off for the shapes a training loop repeats; under no_grad
    # (style statistics, targets: one pass per image size) the heuristics choose
    src = sources(_state["header"], _math["type"], algorithm_search() and not jt.flags.no_grad)
    return jt.code(shape, "float32", inputs, cuda_header=src[0], cuda_src=src[_OP_INDEX[op]])


class _ValidConvCudnn(jt.Function):
    """y = valid cross-correlation of x [B,C,H,W] with w [O,C,k,k] (stride 1), by cuDNN."""

    def execute(self, x, w):
        self.x, self.w = x, w
        b, _, h, wd = x.shape
        o, _, k, _ = w.shape
        return _code([b, o, h - k + 1, wd - k + 1], [x, w], "fwd")

    def grad(self, g):
        gx = _code(self.x.shape, [g, self.w], "bwd_data")
        gw = _code(self.w.shape, [self.x, g], "bwd_filter")
        self.x = self.w = None
        return gx, gw


def valid_conv(x, w):
    """Stride-1 valid cross-correlation through cuDNN (differentiable); needs available()."""
    if not _state["ok"]:
        raise RuntimeError(f"cuDNN convolutions are not available: {_state['why']}")
    if x.dtype != "float32" or w.dtype != "float32":
        raise ValueError(f"cuDNN convolution takes float32, got {x.dtype} and {w.dtype}")
    return _ValidConvCudnn.apply(x, w)


def _correlate(x, w):
    """NumPy valid cross-correlation [B,C,H,W] x [O,C,kh,kw] -> [B,O,H-kh+1,W-kw+1], float64."""
    o, c, kh, kw = w.shape
    b, _, h, wd = x.shape
    y = np.zeros((b, o, h - kh + 1, wd - kw + 1))
    for i in range(kh):
        for j in range(kw):
            y += np.einsum("bchw,oc->bohw", x[:, :, i:i + h - kh + 1, j:j + wd - kw + 1], w[:, :, i, j])
    return y


def reference(x, w, g):
    """NumPy (y, dL/dx, dL/dw) of y = valid correlation of x with w and L = sum(g * y):
    dx is the full correlation of g with the flipped, transposed kernel; dw[o,c,i,j] is the
    correlation of x with g over the batch."""
    x, w, g = (np.asarray(a, np.float64) for a in (x, w, g))
    k = w.shape[2]
    gp = np.pad(g, ((0, 0), (0, 0), (k - 1, k - 1), (k - 1, k - 1)))
    gx = _correlate(gp, w[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    gw = _correlate(x.transpose(1, 0, 2, 3), g.transpose(1, 0, 2, 3)).transpose(1, 0, 2, 3)
    return _correlate(x, w), gx, gw


def _smoke_test():
    """Forward and both gradients of a small convolution against NumPy (fp32 math)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 7, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((2, 4, 5, 4)).astype(np.float32)
    saved, _math["type"] = _math["type"], "fp32"
    try:
        # the first convolution of a run may come inside no_grad (stylized targets): there
        # jt.grad returns zeros and the check would wrongly reject cuDNN
        with jt.enable_grad():
            xv, wv = jt.array(x), jt.array(w)
            y = valid_conv(xv, wv)
            gx, gw = jt.grad((y * jt.array(g)).sum(), [xv, wv])
            got = [y.numpy(), gx.numpy(), gw.numpy()]
    finally:
        _math["type"] = saved
    for name, a, r in zip(("forward", "input gradient", "weight gradient"), got, reference(x, w, g)):
        err = np.abs(a - r).max() / max(np.abs(r).max(), 1e-12)
        if not err < 1e-4:
            raise RuntimeError(f"cuDNN {name} differs from NumPy (relative error {err:.2e})")


def unavailable_reason():
    return _state["why"]


def available(log=print):
    """True if cuDNN convolutions can be used here (GPU run, cuDNN >= 8 found, loaded and
    checked against NumPy); decided once per process, with one log line."""
    answer = decided(_state)
    if answer is not None:
        return answer
    found = find()
    if found is None:
        _state["why"] = ("no cuDNN >= 8 found (cudnn.h in " + ", ".join(INCLUDE_DIRS)
                         + " or CUDNN_INCLUDE_DIR; libcudnn.so in " + ", ".join(LIB_DIRS) + " or CUDNN_LIB_DIR)")
        log(f"cuDNN: {_state['why']}; convolutions as gather + cuBLAS GEMM")
        return False
    header, lib, version = found
    try:
        _load_library(lib)
        add_include_dir(os.path.dirname(header))
        _state.update(header=header, version=version, ok=True)
        _smoke_test()
    except Exception as e:  # any failure here means: do not use it, and say why
        _state.update(ok=False, detail=str(e),
                      why=f"cuDNN {version} at {lib} failed its check: {failure_reason(e)}")
        log(f"cuDNN: {_state['why']}; convolutions as gather + cuBLAS GEMM")
        return False
    _state["why"] = ""
    log(f"cuDNN {version} ({lib}): convolutions through cuDNN")
    return True
