"""Row reductions as one-block-per-row (or column-chunk) `jt.code` kernels, each with its
plain-Jittor formula as the fallback where its GPU self-check fails (backend/kernels.kernel_ok).

- mean_var_last(x)          mean and unbiased variance along the last axis, differentiable: one
                            CUDA block per row (AdaIN's channel statistics over H*W)
- row_sums(x2d)             per-row sums, one CUDA block per row (a convolution's bias gradient)
- relu_grad_bias_sums(g, y) a Linear layer's backward helper: g masked by y > 0 (ReLU's gradient)
                            and that result's column sums (the bias gradient) in one pass
"""
import jittor as jt

from backend.kernels import as_rows, check_inputs, kernel_ok, register_check


# ---------------------------------------------------------------- row mean and variance
# AdaIN's channel statistics reduce rows of H*W (up to 65,536 at relu1_1 of a 256x256 batch) for
# a few hundred (sample, channel) rows.  Written with Jittor ops (mean, then (x - mean)^2 summed)
# the fused broadcast-subtract-square-reduce took 0.7 ms a call on the H200 (the decoder step's
# profile, 2026-12-02: 5.5 ms of 37 in 8 such calls, roughly 17x the time to read the data).  Here one
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


register_check("row_mean_var", _row_mean_var_kernel, _row_mean_var_formula,
               lambda: [check_inputs((37, 3000), 0, 3.0)])
register_check("row_sums", _row_sums_kernel, lambda x: x.sum(dim=1), lambda: [check_inputs((37, 3000), 1, 2.0)])
register_check("relu_grad_bias_sums", _relu_grad_bias_sums_kernel, _relu_grad_bias_sums_formula,
               lambda: [check_inputs((2500, 37), 2), check_inputs((2500, 37), 3)])
