"""2D layers that work on the CUDA 13 GPU, with or without cuDNN.

Jittor's own `nn.conv2d` needs cuDNN on the GPU; without it (Jittor 1.3.11 cannot load cuDNN 9)
it falls back to a fused reindex-reduce whose backward crashes on CUDA 13 (illegal address) for
VGG-sized layers.  On the GPU a convolution is therefore padding (reflection or zeros, our
kernels) followed by a stride-1 "valid" cross-correlation, done by

- cuDNN 9 called through `jt.code` (`conv2d_cudnn`, backend/cudnn.py), when it is installed and
  passes its check against NumPy - the default ("auto"); or
- a gather + one cuBLAS GEMM (`conv2d_gemm`), everywhere else:

    xp   = reflect_pad2d(x, p)                         # jt.code kernel
    cols = window_columns(xp, k) : [C*k*k, B*Ho*Wo]    # jt.code kernel, one thread per element
    out  = W[O, C*k*k] @ cols -> [O, B, Ho, Wo] -> [B, O, Ho, Wo]

  with a hand-written backward: weight gradient = one GEMM against the saved columns; input
  gradient = a convolution of the zero-padded output gradient with the flipped kernel (another
  window gather + GEMM), so no scatter-add of k*k overlapping copies.  The layout is
  channel-first so that no transpose moves the last axis (without cuTT Jittor runs those on
  the CPU).  The kernels read sizes at run time, so one compile serves every image size.
  What each step fixed, as measured on the H200, is in the docstrings of backend/blas.py and backend/conv.py.

  Memory: `cols` is B*C*k*k*Ho*Wo floats, e.g. batch 8, 64 channels, 256x256, k=3:
  8*576*65536*4 B = 1.2 GB (kept for the weight gradient; the input gradient builds one of
  the same size).

On the CPU, `Conv2d` uses `jt.nn.conv2d` (oneDNN, much faster there); `set_conv_impl("gemm")`
(or "im2col") forces a GPU algorithm anywhere (the tests do).

Also: `reflect_pad`, `upsample_nearest2x`, `max_pool2d_ceil` (AdaIN's ceil-mode pool).

This module is where model and pipeline code reach the backend: `set_products` (the --matmul,
--gemm and --conv choices), `on_gpu`, `transpose` (backend.blas: never a CPU op on the GPU) and
`mean_var_last` (backend.reductions: AdaIN's channel statistics, one GPU block per row).
"""
import math

import jittor as jt
import numpy as np

from backend import cublaslt, cudnn, runtime
from backend.blas import gemm, transpose
from backend.conv import reflect_pad2d, window_columns
from backend.kernels import as_rows, kernel_ok
from backend.reductions import mean_var_last, relu_grad_bias_sums, row_sums  # noqa: F401 (mean_var_last: models/adain.py)

# "auto": cuDNN (else gemm) on the GPU, jt.nn.conv2d on the CPU; or one of the others to force
# it (the choice is global, like the device)
CONV_IMPL = "auto"
CONV_IMPLS = ("auto", "cudnn", "gemm", "im2col", "jittor")
PADDING_MODES = ("reflect", "zeros")


def set_conv_impl(name):
    global CONV_IMPL
    if name not in CONV_IMPLS:
        raise ValueError(f"--conv must be one of {', '.join(CONV_IMPLS)}, got {name!r}")
    CONV_IMPL = name


def on_gpu():
    """True on a GPU run (backend.runtime.setup chose CUDA)."""
    return runtime.use_cuda()


def set_library_switches(cudnn_search=True, cublaslt_bgrad="kernel"):
    """--cudnn_search and --cublaslt_bgrad (both entry points)."""
    cudnn.set_algorithm_search(cudnn_search)
    cublaslt.set_bias_grad_mode(cublaslt_bgrad)


def set_products(matmul, gemm, conv):
    """--matmul, --gemm and --conv: how products run (global, like the device).  --matmul and
    --conv change nothing on the CPU; --conv cudnn where cuDNN cannot be used is a ValueError."""
    runtime.set_matmul(matmul)
    cudnn.set_math(matmul)
    set_linear_impl(gemm)
    if runtime.use_cuda():
        if conv == "cudnn" and not cudnn.available():
            raise ValueError(f"--conv cudnn: {cudnn.unavailable_reason()}")
        set_conv_impl(conv)


def conv_impl():
    """The convolution in use now: CONV_IMPL with "auto" resolved."""
    if CONV_IMPL != "auto":
        return CONV_IMPL
    if not runtime.use_cuda():
        return "jittor"
    return "cudnn" if cudnn.available() else "gemm"


def _reflect(expr, size):
    """Index expression mirroring `expr` into [0, size) without repeating the edge (like
    torch's ReflectionPad2d); valid for padding < size."""
    return f"(({expr})<0 ? -({expr}) : (({expr})>{size - 1} ? {2 * (size - 1)}-({expr}) : ({expr})))"


def _check_padding(x, padding, padding_mode):
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
    if padding_mode == "reflect" and padding >= min(x.shape[2], x.shape[3]):
        raise ValueError(f"reflection padding {padding} needs an input larger than that, "
                         f"got {x.shape[2]}x{x.shape[3]}")


def reflect_pad(x, padding):
    """[B,C,H,W] -> [B,C,H+2p,W+2p], mirrored at the borders (edge not repeated)."""
    if padding == 0:
        return x
    _check_padding(x, padding, "reflect")
    return reflect_pad2d(x, padding)  # a jt.code kernel: one compile for every image size


def im2col(x, k, padding=0, stride=1, padding_mode="reflect"):
    """[B,C,H,W] -> columns [B*Ho*Wo, C*k*k] (column order c, ky, kx like a torch weight)."""
    _check_padding(x, padding, padding_mode)
    b, c, h, w = x.shape
    ho = (h + 2 * padding - k) // stride + 1
    wo = (w + 2 * padding - k) // stride + 1
    if ho <= 0 or wo <= 0:
        raise ValueError(f"conv kernel {k} does not fit input {h}x{w} with padding {padding}")
    row = f"i1*{stride}+i4-{padding}"
    col = f"i2*{stride}+i5-{padding}"
    if padding_mode == "reflect" and padding > 0:
        row, col = _reflect(row, h), _reflect(col, w)
    # zeros padding: out-of-range indices read reindex's overflow value, 0
    cols = x.reindex([b, ho, wo, c, k, k], ["i0", "i3", row, col])
    return cols.reshape([b * ho * wo, c * k * k]), ho, wo


def conv2d_im2col(x, w, b=None, padding=0, padding_mode="reflect", stride=1):
    """Convolution as im2col + one 2-D matmul (cuBLAS GEMM on the GPU).

    x [B,C,H,W], w [O,C,k,k], b [O] or None -> [B,O,Ho,Wo]; cross-correlation like torch.
    A single [B*Ho*Wo, C*k*k] x [C*k*k, O] product: the plain GEMM path that the NeRF MLPs
    also use (Jittor's batched-matmul path crashed on the CUDA 13 machine).
    """
    o, c, k, k2 = w.shape
    if k != k2 or c != x.shape[1]:
        raise ValueError(f"weight {tuple(w.shape)} does not fit input {tuple(x.shape)}")
    cols, ho, wo = im2col(x, k, padding, stride, padding_mode)
    bsz = x.shape[0]
    out = jt.matmul(cols, transpose(w.reshape([o, c * k * k])))  # [B*Ho*Wo, O]
    if b is not None:
        out = out + b.reshape([1, o])
    return transpose(out.reshape([bsz, ho, wo, o]), 0, 3, 1, 2)


def zero_pad(x, padding):
    """[B,C,H,W] -> [B,C,H+2p,W+2p] with zeros (reindex reads 0 out of range)."""
    if padding == 0:
        return x
    b, c, h, w = x.shape
    return x.reindex([b, c, h + 2 * padding, w + 2 * padding], ["i0", "i1", f"i2-{padding}", f"i3-{padding}"])


def _channels_first(rows, b, h, w):
    """[C, B*H*W] -> [B, C, H, W]; a transpose that keeps the last axis (a fused GPU kernel)."""
    return transpose(rows.reshape([rows.shape[0], b, h, w]), 1, 0, 2, 3)


class _ValidConvGemm(jt.Function):
    """Stride-1 'valid' cross-correlation as gather + GEMM, forward and backward.

    execute(x [B,C,H,W], w [O,C,k,k]) -> [B,O,H-k+1,W-k+1].  grad: dW = g cols^T (GEMM) and
    dx = full correlation of g with the flipped kernel (gather + GEMM): no scatter-adds.
    """

    def execute(self, x, w):
        o, c, k, _ = w.shape
        b, _, h, wd = x.shape
        ho, wo = h - k + 1, wd - k + 1
        # columns [C*k*k, B*Ho*Wo], channel-major: the GEMMs give channel-first results
        self.cols, self.w, self.x_hw = window_columns(x, k, ho, wo), w, (h, wd)
        out = gemm(w.reshape([o, c * k * k]), self.cols)  # [O, B*Ho*Wo]
        return _channels_first(out, b, ho, wo)

    def grad(self, g):
        w = self.w
        o, c, k, _ = w.shape
        b, _, ho, wo = g.shape
        h, wd = self.x_hw
        g_rows = transpose(g, 1, 0, 2, 3).reshape([o, b * ho * wo])
        gw = gemm(g_rows, self.cols, trans_b=True).reshape([o, c, k, k])
        # dx[b,c,y,x] = sum_{o,i,j} g[b,o,y-i,x-j] w[o,c,i,j]; window index i' = k-1-i
        g_cols = window_columns(g, k, h, wd, offset=k - 1)  # [O*k*k, B*H*W], zeros outside
        w_flip = w.reindex([c, o, k, k], ["i1", "i0", f"{k - 1}-i2", f"{k - 1}-i3"]).reshape([c, o * k * k])
        gx = _channels_first(gemm(w_flip, g_cols), b, h, wd)
        self.cols = self.w = None
        return gx, gw


def _padded_for_valid(x, w, padding, padding_mode):
    """x padded as asked, checked to fit w [O,C,k,k] (the input of a valid correlation)."""
    o, c, k, k2 = w.shape
    if k != k2 or c != x.shape[1]:
        raise ValueError(f"weight {tuple(w.shape)} does not fit input {tuple(x.shape)}")
    _check_padding(x, padding, padding_mode)
    xp = reflect_pad(x, padding) if padding_mode == "reflect" else zero_pad(x, padding)
    if xp.shape[2] < k or xp.shape[3] < k:
        raise ValueError(f"conv kernel {k} does not fit input {x.shape[2]}x{x.shape[3]} with padding {padding}")
    return xp


class _AddChannelBias(jt.Function):
    """y [B,C,H,W] + b [C] whose bias gradient sums each (sample, channel) plane in one GPU block
    (backend/reductions.row_sums) and then the few per-sample rows, instead of Jittor's reduce over three
    axes."""

    def execute(self, y, b):
        self.shape = tuple(y.shape)
        return y + b.reshape([1, -1, 1, 1])

    def grad(self, g):
        if g is None:
            return None, None
        n, c, h, w = self.shape
        return g, row_sums(g.reshape([n * c, h * w])).reshape([n, c]).sum(0)


def _with_bias(out, b):
    if b is None:
        return out
    kernel_ok("row_sums")  # the backward's kernel, decided before any backward (backend/kernels.kernel_ok)
    return _AddChannelBias.apply(out, b)


def conv2d_gemm(x, w, b=None, padding=0, padding_mode="reflect", stride=1):
    """Convolution as pad + gather + GEMM with a hand-written gather + GEMM backward
    (stride 1; other strides use conv2d_im2col).  Same arguments and result as conv2d_im2col."""
    if stride != 1:
        return conv2d_im2col(x, w, b, padding, padding_mode, stride)
    return _with_bias(_ValidConvGemm.apply(_padded_for_valid(x, w, padding, padding_mode), w), b)


def conv2d_cudnn(x, w, b=None, padding=0, padding_mode="reflect", stride=1):
    """Convolution as pad + cuDNN's valid correlation, forward and backward (backend/cudnn.py;
    stride 1, other strides use conv2d_im2col).  Same arguments and result as conv2d_im2col."""
    if stride != 1:
        return conv2d_im2col(x, w, b, padding, padding_mode, stride)
    return _with_bias(cudnn.valid_conv(_padded_for_valid(x, w, padding, padding_mode), w), b)


def conv2d_jittor(x, w, b=None, padding=0, padding_mode="reflect", stride=1):
    """Same result through jt.nn.conv2d (CPU: oneDNN)."""
    _check_padding(x, padding, padding_mode)
    if padding_mode == "reflect":
        return jt.nn.conv2d(reflect_pad(x, padding), w, b, stride=stride)
    return jt.nn.conv2d(x, w, b, stride=stride, padding=padding)


class Conv2d(jt.Module):
    """torch-like Conv2d (parameters `weight` [O,C,k,k], `bias` [O]) with built-in padding."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, padding_mode="reflect"):
        super().__init__()
        if padding_mode not in PADDING_MODES:
            raise ValueError(f"padding_mode must be one of {PADDING_MODES}, got {padding_mode!r}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding, self.padding_mode = kernel_size, stride, padding, padding_mode
        # torch's default init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias
        bound = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = jt.array(np.random.uniform(-bound, bound, shape).astype(np.float32))
        self.bias = jt.array(np.random.uniform(-bound, bound, (out_channels,)).astype(np.float32))

    def load_weights(self, weight, bias):
        """Copy NumPy weight [O,C,k,k] and bias [O] in (shapes must match)."""
        weight, bias = np.asarray(weight, np.float32), np.asarray(bias, np.float32)
        if weight.shape != tuple(self.weight.shape) or bias.shape != tuple(self.bias.shape):
            raise ValueError(f"Conv2d{tuple(self.weight.shape)}: got weight {weight.shape}, bias {bias.shape}")
        self.weight.assign(jt.array(weight))
        self.bias.assign(jt.array(bias))

    def execute(self, x):
        conv = {"cudnn": conv2d_cudnn, "gemm": conv2d_gemm, "im2col": conv2d_im2col,
                "jittor": conv2d_jittor}[conv_impl()]
        return conv(x, self.weight, self.bias, self.padding, self.padding_mode, self.stride)


# how Linear multiplies: "cublaslt" (backend/cublaslt.py: one cuBLASLt matmul per pass with the bias
# and the ReLU fused in, the bias gradients in ReLU's mask pass; the default - a NeRF step on the
# H200 took 17.0 ms against 22.2 ms with Jittor's matmul, 2026-12-03; falls back to "jittor" where
# cuBLASLt is not usable, always on the CPU), "jittor" (jt.nn.Linear's tuned matmul) or "cublas"
# (backend.blas.gemm with a hand-written backward; on the CPU it is the same product).
LINEAR_IMPL = "cublaslt"
LINEAR_IMPLS = ("jittor", "cublas", "cublaslt")
_fallback_logged = []


def set_linear_impl(name):
    global LINEAR_IMPL
    if name not in LINEAR_IMPLS:
        raise ValueError(f"--gemm must be one of {', '.join(LINEAR_IMPLS)}, got {name!r}")
    LINEAR_IMPL = name
    if name == "cublaslt" and runtime.use_cuda():
        linear_impl()  # cuBLASLt's self-check now, not inside the first training step


def linear_impl(log=print):
    """The product in use now: LINEAR_IMPL, "cublaslt" resolved to "jittor" where cuBLASLt is
    not available (said once on a GPU; on the CPU that is the rule, not news)."""
    if LINEAR_IMPL != "cublaslt" or cublaslt.available(log=log):
        return LINEAR_IMPL
    if not _fallback_logged and runtime.use_cuda():
        _fallback_logged.append(True)
        log(f"--gemm cublaslt: {cublaslt.unavailable_reason()}; Linear layers use Jittor's matmul")
    return "jittor"


class _LinearGemm(jt.Function):
    """y = act(x [N,I] @ W[O,I]^T + b) with a hand-written backward: ReLU's mask and the bias
    gradient in one pass (backend/reductions.relu_grad_bias_sums), then dx = g W and dW = g^T x, each one
    direct GEMM.  Jittor's autograd would add a separate reduce per bias (0.16 ms each, 24 in a
    NeRF step on the H200)."""

    def execute(self, x, w, b, relu):
        y = gemm(x, w, trans_b=True)
        if b is not None:
            y = y + b.reshape([1, -1])
        y = jt.nn.relu(y) if relu else y
        self.x, self.w, self.has_bias, self.y = x, w, b is not None, (y if relu else None)
        return y

    def grad(self, g):
        x, w, y = self.x, self.w, self.y
        self.x = self.w = self.y = None
        if g is None:
            return None, None, None, None
        if self.has_bias:
            g, db = relu_grad_bias_sums(g, y)
        else:
            g, db = (g * (y > 0).float32() if y is not None else g), None
        return gemm(g, w), gemm(g, x, trans_a=True), db, None


def linear_gemm(x, weight, bias=None, relu=False):
    """[..., I] -> [..., O] like jt.nn.Linear (then ReLU if relu), through backend.blas.gemm."""
    x2d, lead = as_rows(x)
    if bias is not None:
        kernel_ok("relu_grad_bias_sums")  # the backward's kernel, decided now (backend/kernels.kernel_ok)
    y = _LinearGemm.apply(x2d, weight, bias, bool(relu))
    return y.reshape(lead + (weight.shape[0],))


class Linear(jt.nn.Linear):
    """jt.nn.Linear (same parameters, initialisation and checkpoints) whose product follows
    LINEAR_IMPL.  `layer(x, relu=True)` is relu(layer(x)): with "cublaslt" the ReLU runs in the
    matmul's epilogue, otherwise it is exactly nn.relu(layer(x))."""

    def execute(self, x, relu=False):
        impl = linear_impl()
        if impl == "cublaslt":
            return cublaslt.linear(x, self.weight, self.bias, relu=relu)
        if impl == "cublas":
            return linear_gemm(x, self.weight, self.bias, relu=relu)
        y = super().execute(x)
        return jt.nn.relu(y) if relu else y


def linear_relu(layer, x):
    """relu(layer(x)) for a Linear (the ReLU fused where the product allows), else for any module."""
    return layer(x, relu=True) if isinstance(layer, Linear) else jt.nn.relu(layer(x))


def upsample_nearest2x(x):
    """[B,C,H,W] -> [B,C,2H,2W], each pixel repeated 2x2 (torch's nearest, scale 2)."""
    b, c, h, w = x.shape
    return x.reindex([b, c, 2 * h, 2 * w], ["i0", "i1", "i2/2", "i3/2"])


def max_pool2d_ceil(x, k=2):
    """k x k max pool, stride k, ceil mode (AdaIN's VGG): [B,C,H,W] -> [B,C,ceil(H/k),ceil(W/k)].

    Windows hanging over the border only see the pixels inside (out-of-range reads give
    -3.4e38).  Gradient goes to every maximum of a window (ties: all of them).
    """
    b, c, h, w = x.shape
    ho, wo = -(-h // k), -(-w // k)
    win = x.reindex([b, c, ho, wo, k, k], ["i0", "i1", f"i2*{k}+i4", f"i3*{k}+i5"],
                    overflow_value=-3.4e38)
    return win.max(dims=[4, 5])
