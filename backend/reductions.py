"""Array ops that Jittor 1.3.11 lacks on the CUDA 13 GPU (its cub-based ones do not compile).

jt.cumsum / jt.cumprod / jt.sort / jt.argsort need cub, which CUDA 13 builds only as C++17;
these replacements are small `jt.code` kernels with a CPU and a CUDA source that run the same
algorithm, so the CPU tests validate the GPU logic.  All work along the last axis of row-wise
data with a short last axis (the samples of a ray: <= a few hundred).

- cumsum_last(x)            inclusive cumsum, differentiable (exact float32, no TF32 matmul)
- searchsorted(cdf, u)      torch.searchsorted(right=True): count of cdf entries <= u
- gemm(a, b, ta, tb)        2-D matrix product straight through cuBLAS on the GPU, not differentiable
- window_columns(x, k, ho, wo, off)  the k x k windows of an image batch as GEMM columns (conv)
- reflect_pad2d(x, p)       torch's ReflectionPad2d, differentiable, one compiled kernel for all sizes
- mean_var_last(x)          mean and unbiased variance along the last axis, differentiable: one
                            CUDA block per row (AdaIN's channel statistics over H*W)
- row_sums(x2d)             per-row sums, one CUDA block per row (a convolution's bias gradient)
- relu_grad_bias_sums(g, y) a Linear layer's backward helper: g masked by y > 0 (ReLU's gradient)
                            and that result's column sums (the bias gradient) in one pass
- transpose_on_device(x, *dims)  jt.transpose that never falls back to the CPU (installed by
                            backend.runtime on the GPU in place of jt.transpose / Var.permute)
"""
from collections.abc import Sequence

import jittor as jt
import numpy as np


# ---------------------------------------------------------------- transpose
def transpose_on_device(x, *dims):
    """jt.transpose / Var.permute with the same arguments, as Jittor's fused transpose op.

    Without the cuTT library (not available offline, and not built here) Jittor 1.3.11 runs any
    transpose that moves the last axis as a CPU-only op: on the H200 a decoder fine-tune
    iteration spent 1.08 of 1.16 s copying activations to the host and back for such transposes.
    `fuse_transpose` is the op Jittor itself uses for the other transposes: a plain index kernel
    that runs on the GPU and fuses with its neighbours; its gradient is the inverse transpose.
    """
    if len(dims) == 1 and isinstance(dims[0], (Sequence, jt.NanoVector)):
        dims = list(dims[0])
    elif len(dims) == 2:  # swap two axes, like jt.transpose
        axes = list(range(x.ndim))
        axes[dims[0]], axes[dims[1]] = axes[dims[1]], axes[dims[0]]
        dims = axes
    elif not dims:  # reverse all axes
        dims = list(range(x.ndim))[::-1]
    dims = [d % x.ndim for d in dims]
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"transpose: {dims} is not a permutation of the {x.ndim} axes of {tuple(x.shape)}")
    return jt.fuse_transpose(x, dims)


# ---------------------------------------------------------------- gemm
def gemm(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D a, b (op = transpose where asked), for hand-written backward passes.

    On the GPU this calls cuBLAS directly, with transposes as flags (no transposed copies).
    jt.matmul instead builds broadcast-multiply-sum and relies on a pass to recognise it as a
    GEMM.  (A first H200 run of the convolution on jt.matmul did 44 GFLOP of VGG forward in
    0.27 s; a profile later showed that time was mostly transposes running on the CPU, see
    transpose_on_device, not the GEMMs.)
    Not differentiable: use it inside a jt.Function.
    """
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"gemm takes 2-D arrays, got {tuple(a.shape)} and {tuple(b.shape)}")
    inner_a = a.shape[0] if trans_a else a.shape[1]
    inner_b = b.shape[1] if trans_b else b.shape[0]
    if inner_a != inner_b:
        raise ValueError(f"gemm: inner sizes differ: {tuple(a.shape)}{'^T' if trans_a else ''} "
                         f"x {tuple(b.shape)}{'^T' if trans_b else ''}")
    cublas = getattr(jt.compile_extern, "cublas_ops", None) if jt.flags.use_cuda else None
    if cublas is not None:
        return cublas.cublas_matmul(a, b, trans_a, trans_b)
    return jt.matmul(a.transpose() if trans_a else a, b.transpose() if trans_b else b)


def as_rows(x):
    """x [..., N] -> ([R, N] view, leading shape)."""
    lead = tuple(x.shape[:-1])
    n_rows = 1
    for d in lead:
        n_rows *= d
    return x.reshape((n_rows, x.shape[-1])), lead


# ---------------------------------------------------------------- element-wise jt.code kernels
def elementwise_kernel(body, name, ndim=4):
    """(cpu_src, cuda_src) of a kernel running `body` for each index i of an ndim-D output
    (one CUDA thread per element, grid-stride)."""
    size = " * ".join(["(long long)out0_shape0"] + [f"out0_shape{d}" for d in range(1, ndim)])
    count = f"const long long n = {size};"
    cpu = count + "\nfor (long long i = 0; i < n; i++) {" + body + "}"
    cuda = f"""
__global__ static void {name}(@ARGS_DEF) {{
    @PRECALC
    {count}
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {{{body}}}
}}
long long n_blocks = (out0->num + 255) / 256;
if (n_blocks > 65536) n_blocks = 65536;
if (n_blocks > 0) {name}<<<n_blocks, 256>>>(@ARGS);
"""
    return cpu, cuda


def per_row_kernel(body, name, n_rows):
    """(cpu_src, cuda_src) of a kernel running `body` once for each row index r < n_rows (a C
    expression such as "in0_shape0"): one CUDA thread per row (a ray's samples, say), grid-stride."""
    cpu = f"for (long long r = 0; r < {n_rows}; r++) {{{body}}}"
    cuda = f"""
__global__ static void {name}(@ARGS_DEF) {{
    @PRECALC
    for (long long r = blockIdx.x * (long long)blockDim.x + threadIdx.x; r < {n_rows};
         r += (long long)blockDim.x * gridDim.x) {{{body}}}
}}
long long n_blocks = ({n_rows} + 127) / 128;
if (n_blocks > 65536) n_blocks = 65536;
if (n_blocks > 0) {name}<<<n_blocks, 128>>>(@ARGS);
"""
    return cpu, cuda


# ---------------------------------------------------------------- window columns
# One thread per output element, sizes read at run time from the shapes: one compiled kernel
# per (k, offset) for every layer size.  Measured on the H200: a 6-D reindex [C,k,k,B,Ho,Wo]
# got only its outer loops spread over threads (171 ms for 1.2 GB of columns); a 2-D reindex
# was fast (0.9 ms) but baked each layer's sizes into its index expressions, so every layer
# shape compiled its own kernels (minutes of nvcc before the first fine-tune iteration).
_WINDOWS_BODY = """
    const int K = KSIZE, OFF = OFFSET;
    const long long B = out0_shape1, HO = out0_shape2, WO = out0_shape3;
    const long long C = in0_shape1, H = in0_shape2, W = in0_shape3;
    long long xo = i % WO, t = i / WO;
    long long yo = t % HO; t /= HO;
    long long b = t % B, r = t / B;
    long long c = r / (K * K), y = yo + (r / K) % K - OFF, x = xo + r % K - OFF;
    out0_p[i] = (y >= 0 && y < H && x >= 0 && x < W) ? in0_p[((b * C + c) * H + y) * W + x] : 0;
"""
_WINDOWS_SRC = elementwise_kernel(_WINDOWS_BODY, "window_columns")


def window_columns(x, k, ho, wo, offset=0):
    """x [B,C,H,W] -> columns [C*k*k, B*Ho*Wo]: column (b, y, x), row (c, i, j) holds
    x[b, c, y+i-offset, x+j-offset], 0 outside the image.  Not differentiable."""
    if x.ndim != 4:
        raise ValueError(f"window_columns takes [B,C,H,W], got {tuple(x.shape)}")
    b, c = x.shape[:2]
    cpu, cuda = ((src.replace("KSIZE", str(int(k))).replace("OFFSET", str(int(offset))))
                 for src in _WINDOWS_SRC)
    out = jt.code([c * k * k, b, ho, wo], x.dtype, [x], cpu_src=cpu, cuda_src=cuda)
    return out.reshape([c * k * k, b * ho * wo])


# ---------------------------------------------------------------- reflection padding
# Sizes and the padding come from the shapes at run time (p = (padded - input) / 2), so one
# kernel serves every image size: a reindex bakes them into its index expressions, and on the
# GPU each new style-image size then cost seconds of nvcc (measured: 20 style images of
# different sizes took 236 s of VGG statistics, almost all compile).
_REFLECT_HELPERS = """
#define reflect_index(i, n) ((i) < 0 ? -(i) : ((i) > (n) - 1 ? 2 * ((n) - 1) - (i) : (i)))
"""
_PAD_BODY = """
    const long long H = in0_shape2, W = in0_shape3, HP = out0_shape2, WP = out0_shape3;
    const long long p = (HP - H) / 2;
    long long X = i % WP, t = i / WP;
    long long Y = t % HP, bc = t / HP;
    out0_p[i] = in0_p[(bc * H + reflect_index(Y - p, H)) * W + reflect_index(X - p, W)];
"""
# gradient: each input pixel sums the padded pixels that copied it (itself, and its mirror
# images above/below and left/right when it lies within p of an edge)
_UNPAD_BODY = """
    const long long H = out0_shape2, W = out0_shape3, HP = in0_shape2, WP = in0_shape3;
    const long long p = (HP - H) / 2;
    long long x = i % W, t = i / W;
    long long y = t % H, bc = t / H;
    long long ys[3] = {y + p, p - y, 2 * (H - 1) - y + p};
    bool yok[3] = {true, y >= 1 && y <= p, y < H - 1 && y >= H - 1 - p};
    long long xs[3] = {x + p, p - x, 2 * (W - 1) - x + p};
    bool xok[3] = {true, x >= 1 && x <= p, x < W - 1 && x >= W - 1 - p};
    out0_type acc = 0;
    for (int a = 0; a < 3; a++) if (yok[a])
        for (int b = 0; b < 3; b++) if (xok[b])
            acc += in0_p[(bc * HP + ys[a]) * WP + xs[b]];
    out0_p[i] = acc;
"""
_PAD_SRC = elementwise_kernel(_PAD_BODY, "reflect_pad")
_UNPAD_SRC = elementwise_kernel(_UNPAD_BODY, "reflect_pad_grad")


class _ReflectPad2d(jt.Function):
    def execute(self, x, p):
        b, c, h, w = x.shape
        self.in_shape = x.shape
        cpu, cuda = _PAD_SRC
        return jt.code([b, c, h + 2 * p, w + 2 * p], x.dtype, [x], cpu_header=_REFLECT_HELPERS,
                       cuda_header=_REFLECT_HELPERS, cpu_src=cpu, cuda_src=cuda)

    def grad(self, g):
        cpu, cuda = _UNPAD_SRC
        return jt.code(self.in_shape, g.dtype, [g], cpu_src=cpu, cuda_src=cuda), None


def reflect_pad2d(x, p):
    """[B,C,H,W] -> [B,C,H+2p,W+2p], mirrored at the borders without repeating the edge
    (torch's ReflectionPad2d; needs p < H and p < W)."""
    if x.ndim != 4:
        raise ValueError(f"reflect_pad2d takes [B,C,H,W], got {tuple(x.shape)}")
    if p == 0:
        return x
    if not 0 < p < min(x.shape[2], x.shape[3]):
        raise ValueError(f"reflection padding {p} needs an input larger than that, got "
                         f"{x.shape[2]}x{x.shape[3]}")
    return _ReflectPad2d.apply(x, int(p))


# ---------------------------------------------------------------- cumsum
# One thread per row, a sequential running sum: exact float32 like np.cumsum (a triangular
# matmul would be rounded by TF32 tensor cores on the GPU).  REVERSE gives the suffix sum,
# which is the gradient of the prefix sum.
_CUMSUM_CPU = """
for (int r = 0; r < in0_shape0; r++) {
    out0_type acc = 0;
    for (int k = 0; k < in0_shape1; k++) {
        int j = REVERSE ? in0_shape1 - 1 - k : k;
        acc += @in0(r, j);
        @out0(r, j) = acc;
    }
}
"""

_CUMSUM_CUDA = """
__global__ static void cumsum_rows(@ARGS_DEF) {
    @PRECALC
    int r = blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= in0_shape0) return;
    out0_type acc = 0;
    for (int k = 0; k < in0_shape1; k++) {
        int j = REVERSE ? in0_shape1 - 1 - k : k;
        acc += @in0(r, j);
        @out0(r, j) = acc;
    }
}
int n_blocks = (in0_shape0 + 255) / 256;
if (n_blocks > 0) cumsum_rows<<<n_blocks, 256>>>(@ARGS);
"""


def _cumsum_rows(x2d, reverse):
    flag = "1" if reverse else "0"
    cpu, cuda = _CUMSUM_CPU.replace("REVERSE", flag), _CUMSUM_CUDA.replace("REVERSE", flag)
    return jt.code(x2d.shape, x2d.dtype, [x2d], cpu_src=cpu, cuda_src=cuda)


class _CumsumRows(jt.Function):
    def execute(self, x2d):
        return _cumsum_rows(x2d, reverse=False)

    def grad(self, grad_out):
        if grad_out is None:
            return None
        return _cumsum_rows(grad_out, reverse=True)


def cumsum_last(x):
    """Inclusive cumulative sum along the last axis: x [..., N] -> [..., N] (same dtype).

    Differentiable (its gradient is the reverse cumulative sum)."""
    x2d, lead = as_rows(x)
    return _CumsumRows.apply(x2d).reshape(lead + (x.shape[-1],))


# ---------------------------------------------------------------- searchsorted
# One thread per query: count the row's cdf entries <= u (a linear scan; M is short and all
# threads of a row read the same entries).  For a sorted row this is torch's right=True index.
_SEARCH_CPU = """
for (int r = 0; r < in1_shape0; r++)
for (int s = 0; s < in1_shape1; s++) {
    in1_type u = @in1(r, s);
    int count = 0;
    for (int m = 0; m < in0_shape1; m++)
        count += (@in0(r, m) <= u) ? 1 : 0;
    @out0(r, s) = count;
}
"""

_SEARCH_CUDA = """
__global__ static void search_rows(@ARGS_DEF) {
    @PRECALC
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    if (t >= in1_shape0 * in1_shape1) return;
    int r = t / in1_shape1, s = t % in1_shape1;
    in1_type u = @in1(r, s);
    int count = 0;
    for (int m = 0; m < in0_shape1; m++)
        count += (@in0(r, m) <= u) ? 1 : 0;
    @out0(r, s) = count;
}
int n_blocks = (in1_shape0 * in1_shape1 + 255) / 256;
if (n_blocks > 0) search_rows<<<n_blocks, 256>>>(@ARGS);
"""


def searchsorted(cdf, u):
    """Right-sided search per row: cdf [R, M] sorted ascending, u [R, S] -> int32 [R, S].

    out[r, s] = number of cdf[r, :] entries <= u[r, s] (torch.searchsorted(right=True),
    np.searchsorted(side="right")).  No gradient."""
    if cdf.ndim != 2 or u.ndim != 2 or cdf.shape[0] != u.shape[0]:
        raise ValueError(f"searchsorted: expected cdf [R,M] and u [R,S], got {cdf.shape} and {u.shape}")
    cdf, u = cdf.detach(), u.detach().astype(cdf.dtype)
    return jt.code(u.shape, "int32", [cdf, u], cpu_src=_SEARCH_CPU, cuda_src=_SEARCH_CUDA).stop_grad()


# ---------------------------------------------------------------- row mean and variance
# AdaIN's channel statistics reduce rows of H*W (up to 65,536 at relu1_1 of a 256x256 batch) for
# a few hundred (sample, channel) rows.  Written with Jittor ops (mean, then (x - mean)^2 summed)
# the fused broadcast-subtract-square-reduce took 0.7 ms a call on the H200 (the decoder step's
# profile, session 6: 5.5 ms of 37 in 8 such calls, roughly 17x the time to read the data).  Here one
# CUDA block per row does both passes (its second pass mostly from L2), the way PyTorch's
# reduction does; the CPU runs the same two passes in double.
_ROW_STATS_THREADS = 256
_ROW_STATS_CPU = """
const long long n = in0_shape1;
for (long long r = 0; r < in0_shape0; r++) {
    const in0_type* row = in0_p + r * n;
    double sum = 0, dev = 0;
    for (long long j = 0; j < n; j++) sum += row[j];
    const double mean = sum / n;
    for (long long j = 0; j < n; j++) { double d = row[j] - mean; dev += d * d; }
    out0_p[r] = mean;
    out1_p[r] = dev / (n > 1 ? n - 1 : 1);
}
"""
# Device helpers of the one-block-per-row kernels: the sum of one value per thread of a block
# (blockDim.x a power of 2, buf of that size), and the sum of a row of n values.
_ROW_SUM_CUDA = """
__device__ static float block_sum(float v, float* buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
        __syncthreads();
    }
    float total = buf[0];
    __syncthreads();  // buf is reused by the next call
    return total;
}
__device__ static float row_sum(const float* row, long long n, float* buf) {
    float acc = 0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) acc += row[j];
    return block_sum(acc, buf);
}
"""
_ROW_STATS_CUDA = _ROW_SUM_CUDA + """
__global__ static void row_stats(@ARGS_DEF) {
    @PRECALC
    __shared__ float buf[THREADS];
    const long long n = in0_shape1;
    const float* row = in0_p + blockIdx.x * n;
    const float mean = row_sum(row, n, buf) / n;
    float acc = 0;
    for (long long j = threadIdx.x; j < n; j += blockDim.x) { float d = row[j] - mean; acc += d * d; }
    const float dev = block_sum(acc, buf);
    if (threadIdx.x == 0) {
        out0_p[blockIdx.x] = mean;
        out1_p[blockIdx.x] = dev / (n > 1 ? n - 1 : 1);
    }
}
if (in0_shape0 > 0) row_stats<<<in0_shape0, THREADS>>>(@ARGS);
"""


def _row_mean_var_kernel(x2d):
    cuda = _ROW_STATS_CUDA.replace("THREADS", str(_ROW_STATS_THREADS))
    mean, var = jt.code([(x2d.shape[0],), (x2d.shape[0],)], [x2d.dtype, x2d.dtype], [x2d],
                        cpu_src=_ROW_STATS_CPU, cuda_src=cuda)
    return mean, var


_ROW_SUMS_CPU = """
for (long long r = 0; r < in0_shape0; r++) {
    double sum = 0;
    for (long long j = 0; j < in0_shape1; j++) sum += in0_p[r * in0_shape1 + j];
    out0_p[r] = sum;
}
"""
_ROW_SUMS_CUDA = _ROW_SUM_CUDA + """
__global__ static void row_sums(@ARGS_DEF) {
    @PRECALC
    __shared__ float buf[THREADS];
    const float total = row_sum(in0_p + blockIdx.x * in0_shape1, in0_shape1, buf);
    if (threadIdx.x == 0) out0_p[blockIdx.x] = total;
}
if (in0_shape0 > 0) row_sums<<<in0_shape0, THREADS>>>(@ARGS);
"""


def _row_sums_kernel(x2d):
    cuda = _ROW_SUMS_CUDA.replace("THREADS", str(_ROW_STATS_THREADS))
    return jt.code((x2d.shape[0],), x2d.dtype, [x2d], cpu_src=_ROW_SUMS_CPU, cuda_src=cuda)


def _row_mean_var_formula(x2d):
    mean = x2d.mean(dim=1)
    var = (x2d - mean.reshape([-1, 1])).sqr().sum(dim=1) / max(x2d.shape[1] - 1, 1)
    return mean, var


def row_mean_var(x2d):
    """x2d [R, N] float32 -> (mean [R], unbiased variance [R]) (a 1-long row has variance 0).
    Not differentiable: see mean_var_last."""
    ok = kernel_ok("row_mean_var")
    return _row_mean_var_kernel(x2d) if ok else _row_mean_var_formula(x2d)


def row_sums(x2d):
    """x2d [R, N] float32 -> [R], each row's sum, one CUDA block per row (a convolution's bias
    gradient over H*W: Jittor's reduce over batch and both image axes took 0.37 ms a call in the
    H200 decoder profile).  Not differentiable; a backward-pass helper: the kernel is used only
    where kernel_ok("row_sums") was decided before the backward (see kernel_ok)."""
    if x2d.ndim != 2 or x2d.dtype != jt.float32:
        raise ValueError(f"row_sums: float32 [R, N] expected, got {tuple(x2d.shape)} {x2d.dtype}")
    return _row_sums_kernel(x2d) if kernel_ok("row_sums", check=False) else x2d.sum(dim=1)


class _RowMeanVar(jt.Function):
    def execute(self, x2d):
        self.x2d = x2d
        self.mean, var = row_mean_var(x2d)
        return self.mean, var

    def grad(self, g_mean, g_var):
        # d mean / dx = 1/n; d var / dx = 2 (x - mean) / (n - 1)
        n = self.x2d.shape[1]
        rows = self.x2d.shape[0]
        dx = None
        if g_mean is not None:
            dx = (g_mean / n).reshape([rows, 1]).broadcast(self.x2d.shape)
        if g_var is not None:
            d = (self.x2d - self.mean.reshape([rows, 1])) * (g_var * (2.0 / max(n - 1, 1))).reshape([rows, 1])
            dx = d if dx is None else dx + d
        return dx


def mean_var_last(x):
    """x [..., N] float32 -> (mean [...], unbiased variance [...]) along the last axis, like
    torch's x.mean(-1), x.var(-1) (a 1-long axis has variance 0).  Differentiable."""
    if x.dtype != jt.float32:
        raise TypeError(f"mean_var_last takes float32, got {x.dtype}")
    x2d, lead = as_rows(x)
    kernel_ok("row_mean_var")  # decided here, outside the Function (see kernel_ok)
    mean, var = _RowMeanVar.apply(x2d)
    if not lead:  # a 1-D input: shape [1], Jittor's scalar
        return mean, var
    return mean.reshape(lead), var.reshape(lead)


# ---------------------------------------------------------------- ReLU gradient + bias sums
# A ReLU layer's backward first masks the incoming gradient g [N,O] by y > 0; the bias gradient
# is the column sum of the result.  One pass does both: blocks of 32 columns x 8 row-threads
# walk a chunk of rows each (coalesced along the columns) and write one partial sum per chunk;
# the few partials [G,O] are then summed in a second, tiny reduce (no atomics: deterministic).
# On the H200 cuBLASLt's BGRADB epilogue made the weight-gradient GEMM 57% slower (0.353 ->
# 0.556 ms at 262144x256x256) for a sum that reads the same data the mask pass already reads.
_SUMS_ROWS_PER_CHUNK = 1024
_SUMS_MAX_CHUNKS = 512


def _sums_sources(masked):
    """(cpu_src, cuda_src); in0 = g, in1 = y (masked only); outputs: [gp (masked only),] partials."""
    parts = "out1" if masked else "out0"
    load = ("float v = in0_p[k]; if (!(in1_p[k] > 0)) v = 0; out0_p[k] = v;" if masked
            else "float v = in0_p[k];")
    cpu = f"""
const long long N = in0_shape0, O = in0_shape1, G = {parts}_shape0, chunk = (N + G - 1) / G;
for (long long i = 0; i < G * O; i++) {parts}_p[i] = 0;
for (long long r = 0; r < N; r++)
    for (long long c = 0; c < O; c++) {{
        const long long k = r * O + c;
        {load}
        {parts}_p[(r / chunk) * O + c] += v;
    }}
"""
    cuda = f"""
__global__ static void relu_grad_bias_sums(@ARGS_DEF) {{
    @PRECALC
    __shared__ float part[8][33];
    const long long N = in0_shape0, O = in0_shape1, G = {parts}_shape0, chunk = (N + G - 1) / G;
    const long long c = blockIdx.x * 32 + threadIdx.x;
    const long long r0 = blockIdx.y * chunk, r1 = r0 + chunk < N ? r0 + chunk : N;
    float acc = 0;
    if (c < O)
        for (long long r = r0 + threadIdx.y; r < r1; r += 8) {{
            const long long k = r * O + c;
            {load}
            acc += v;
        }}
    part[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < O) {{
        float sum = 0;
        for (int t = 0; t < 8; t++) sum += part[t][threadIdx.x];
        {parts}_p[blockIdx.y * O + c] = sum;
    }}
}}
if (in0_shape0 > 0 && in0_shape1 > 0)
    relu_grad_bias_sums<<<dim3((in0_shape1 + 31) / 32, {parts}_shape0), dim3(32, 8)>>>(@ARGS);
"""
    return cpu, cuda


def _relu_grad_bias_sums_kernel(g, y):
    n, o = g.shape
    chunks = max(1, min(_SUMS_MAX_CHUNKS, -(-n // _SUMS_ROWS_PER_CHUNK)))
    cpu, cuda = _sums_sources(masked=y is not None)
    if y is None:
        partials = jt.code((chunks, o), "float32", [g], cpu_src=cpu, cuda_src=cuda)
        return g, partials.sum(0)
    gp, partials = jt.code([(n, o), (chunks, o)], ["float32", "float32"], [g, y], cpu_src=cpu, cuda_src=cuda)
    return gp, partials.sum(0)


def _relu_grad_bias_sums_formula(g, y):
    gp = g if y is None else g * (y > 0).float32()
    return gp, gp.sum(0)


def relu_grad_bias_sums(g, y=None):
    """g [N,O] float32 (the gradient arriving at a Linear layer's output), y [N,O] its ReLU output
    or None (no ReLU) -> (gp, db): gp = g * (y > 0) (g itself without y) and db = gp.sum(0) [O].
    Not differentiable; a backward-pass helper: the kernel is used only where
    kernel_ok("relu_grad_bias_sums") was decided before the backward (see kernel_ok)."""
    if g.ndim != 2 or g.dtype != jt.float32 or (y is not None and tuple(y.shape) != tuple(g.shape)):
        raise ValueError(f"relu_grad_bias_sums: float32 g [N,O] and y of its shape expected, got "
                         f"{tuple(g.shape)} {g.dtype} and {None if y is None else tuple(y.shape)}")
    ok = kernel_ok("relu_grad_bias_sums", check=False)
    return (_relu_grad_bias_sums_kernel if ok else _relu_grad_bias_sums_formula)(g, y)


# ---------------------------------------------------------------- GPU self-check of the kernels
# The CPU tests run these kernels' CPU sources; their CUDA sources only run on a GPU.  There each
# is compared once per process with its plain-Jittor formula on a small input (several blocks
# and chunks, offset data) before first use; one that fails to compile or differs is replaced by
# the formula, with one log line - slower, never wrong.
def _check_inputs(shape, seed, offset=0.0):
    return jt.array((np.random.default_rng(seed).standard_normal(shape) + offset).astype(np.float32))


_KERNEL_CHECKS = {
    "row_mean_var": (_row_mean_var_kernel, _row_mean_var_formula, lambda: [_check_inputs((37, 3000), 0, 3.0)]),
    "row_sums": (_row_sums_kernel, lambda x: x.sum(dim=1), lambda: [_check_inputs((37, 3000), 1, 2.0)]),
    "relu_grad_bias_sums": (_relu_grad_bias_sums_kernel, _relu_grad_bias_sums_formula,
                            lambda: [_check_inputs((2500, 37), 2), _check_inputs((2500, 37), 3)]),
}
_kernel_state = {}


def _on_gpu():
    return bool(jt.flags.use_cuda)


def _max_relative_error(got, want):
    got = got if isinstance(got, (list, tuple)) else [got]
    want = want if isinstance(want, (list, tuple)) else [want]
    return max(float(np.abs(a.numpy() - b.numpy()).max() / max(np.abs(b.numpy()).max(), 1e-12))
               for a, b in zip(got, want))


def kernel_ok(name, log=print, check=True):
    """True where the named kernel may be used: always on the CPU; on the GPU once it has
    matched its formula (decided at the first call with check=True, said once if not).

    The check fetches data, so make that first call in a forward wrapper, outside any
    jt.Function and never while jt.grad builds a backward: a fetch there also executes other
    pending variables (Jittor's weak sync), and on the H200 the --gemm cublas layer, whose
    backward made this first call, ended in a segfault inside jt.grad (session 7; reproduced on
    the CPU with the checks enabled there, tests/test_layers.py).  Backward helpers pass
    check=False: a kernel not yet decided is not used."""
    if not _on_gpu():
        return True
    if name not in _kernel_state:
        if not check:
            return False
        kernel, formula, make_inputs = _KERNEL_CHECKS[name]
        try:
            with jt.no_grad():
                args = make_inputs()
                err = _max_relative_error(kernel(*args), formula(*args))
            why = "" if err < 1e-4 else f"differs from its Jittor formula (relative error {err:.1e})"
        except Exception as e:  # a compile or launch failure: do not use it, and say why
            from backend.jit_extern import failure_reason
            why = f"failed: {failure_reason(e)}"
        _kernel_state[name] = not why
        if why:
            log(f"backend/reductions {name}: the CUDA kernel {why}; using Jittor's ops instead")
    return _kernel_state[name]
