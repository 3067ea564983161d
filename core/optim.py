"""Adam with fewer kernel launches per step.

A NeRF step on the GPU is bound by Jittor's host cost per kernel launch (about 54 us each),
not by arithmetic.  jt.optim.Adam computes the bias-corrected step size with Jittor scalar ops
once per parameter and updates each parameter tensor with its own fused element-wise kernels:
for the NeRF's 48 tensors, opt.step() alone made 374 launches (jt.profiler on the CPU).

This subclass makes the same updates with the same state (`m`, `values`, `n_step`), so
core.checkpoint's adam_state / load_adam_state and existing checkpoints work unchanged:

- fused=True (default): ONE `jt.code` op per parameter group updates every p, m, v of the group
  (on the GPU one kernel launch per 60 tensors), O(1) launches instead of O(tensors): 1 launch
  for the NeRF's step.
- fused=False: per-tensor element-wise updates with the scalars computed in Python, 82 launches
  (the reference the fused kernel is tested against).
The whole training step: bench/bench_host_overhead.py.
"""
import functools
import math

import jittor as jt
import numpy as np

# CUDA passes kernel arguments in at most 4 KB: one tensor costs 7 pointers + a count = 64 B
# of the argument struct, so a launch takes at most 60 tensors (3848 B with the scalars).
MAX_TENSORS_PER_LAUNCH = 60

# One element of one tensor, in the reference's order of operations (jt.optim.Adam.step).
_ELEMENT = """
    float g_i = g[i];
    if (wd != 0.0f) g_i = p[i] * wd + g_i;
    const float m_i = b0 * m[i] + c0 * g_i;
    const float v_i = b1 * v[i] + c1 * g_i * g_i;
    m_out[i] = m_i;
    v_out[i] = v_i;
    // sqrt of a subnormal v (a gradient under ~1e-19) is 0 to within eps's float resolution; the
    // CPU build's fast math takes sqrtf as v * rsqrt(v), which is NaN there
    const float root = v_i < 1.17549435e-38f ? 0.0f : sqrtf(v_i);
    p_out[i] = p[i] - m_i * step_size / (root + eps);
"""
# The scalars come in the kernel's first input, a float32 Var (never in the source, which
# would compile a new kernel whenever lr changes).  1-b0 and 1-b1 are rounded from double on
# the host, as the reference's Python `(1.0 - b0) * g` does.
_LOAD_SCALARS = """
    const float step_size = s[0], b0 = s[1], c0 = s[2], b1 = s[3], c1 = s[4], eps = s[5], wd = s[6];
"""

_CPU_HEADER = """
#include <cmath>
static inline void stylenerf_adam(const float* __restrict__ s, const float* __restrict__ p,
        const float* __restrict__ g, const float* __restrict__ m, const float* __restrict__ v,
        float* __restrict__ p_out, float* __restrict__ m_out, float* __restrict__ v_out,
        long long n) {""" + _LOAD_SCALARS + """
    #pragma omp parallel for if (n > 16384)
    for (long long i = 0; i < n; i++) {""" + _ELEMENT + """}
}
"""

_CUDA_HEADER = """
struct stylenerf_adam_tensors {  // passed by value: pointer arrays of up to CHUNK tensors
    const float* p[CHUNK]; const float* g[CHUNK]; const float* m[CHUNK]; const float* v[CHUNK];
    float* p_out[CHUNK]; float* m_out[CHUNK]; float* v_out[CHUNK];
    long long n[CHUNK];
};
"""

# blockIdx.y picks the tensor, x is a grid-stride loop over its elements.  Jittor's code op puts
# source text that starts with `__global__` outside the host function (see code_op.cc).
_CUDA_KERNEL = """
__global__ static void stylenerf_multi_adam(stylenerf_adam_tensors t, const float* __restrict__ s) {""" \
    + _LOAD_SCALARS + """
    const int k = blockIdx.y;
    const float* __restrict__ p = t.p[k]; const float* __restrict__ g = t.g[k];
    const float* __restrict__ m = t.m[k]; const float* __restrict__ v = t.v[k];
    float* __restrict__ p_out = t.p_out[k]; float* __restrict__ m_out = t.m_out[k];
    float* __restrict__ v_out = t.v_out[k];
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < t.n[k];
         i += (long long)blockDim.x * gridDim.x) {""" + _ELEMENT + """}
}
"""


@functools.lru_cache(maxsize=None)
def _sources(n):
    """(cpu_header, cpu_src, cuda_header, cuda_src) updating n tensors.  Inputs:
    [scalars, p_0..p_{n-1}, g_0.., m_0.., v_0..]; outputs: [p'_0.., m'_0.., v'_0..].
    The text depends on n only, so one kernel is compiled per group layout."""
    def names(i):  # pointers of tensor i: inputs p, g, m, v; outputs p', m', v'
        return ([f"in{1 + i + j * n}_p" for j in range(4)] + [f"out{i + j * n}_p" for j in range(3)],
                f"in{1 + i}->num")

    cpu = []
    for i in range(n):
        ptrs, num = names(i)
        cpu.append(f"stylenerf_adam(in0_p, {', '.join(ptrs)}, {num});")

    chunk = min(n, MAX_TENSORS_PER_LAUNCH)
    cuda = [_CUDA_KERNEL, "stylenerf_adam_tensors t;", "long long max_n, grid_x;"]
    for start in range(0, n, chunk):
        count = min(chunk, n - start)
        cuda.append("max_n = 0;")
        for k, i in enumerate(range(start, start + count)):
            ptrs, num = names(i)
            cuda.append(" ".join(f"t.{f}[{k}] = {ptr};" for f, ptr in
                                 zip(("p", "g", "m", "v", "p_out", "m_out", "v_out"), ptrs))
                        + f" t.n[{k}] = {num}; if (t.n[{k}] > max_n) max_n = t.n[{k}];")
        # 256-thread blocks enough for the largest tensor, capped (the x loop strides over the rest)
        cuda.append("grid_x = (max_n + 255) / 256; if (grid_x > 4096) grid_x = 4096;")
        cuda.append(f"if (grid_x > 0) stylenerf_multi_adam<<<dim3((unsigned)grid_x, {count}), 256>>>"
                    "(t, in0_p);")
    return (_CPU_HEADER, "\n".join(cpu), _CUDA_HEADER.replace("CHUNK", str(chunk)), "\n".join(cuda))


class Adam(jt.optim.Adam):
    """jt.optim.Adam's update; fused=True: one multi-tensor kernel per group (see above)."""

    def __init__(self, params, lr, eps=1e-8, betas=(0.9, 0.999), weight_decay=0, fused=True):
        super().__init__(params, lr, eps=eps, betas=betas, weight_decay=weight_decay)
        self.fused = fused

    def step(self, loss=None, retain_graph=False):
        self.pre_step(loss, retain_graph)  # gradients; n_step += 1
        n = float(self.n_step)
        jt.flags.node_order = 1
        for pg in self.param_groups:
            lr = pg.get("lr", self.lr)
            eps = pg.get("eps", self.eps)
            weight_decay = pg.get("weight_decay", self.weight_decay)
            b0, b1 = pg.get("betas", self.betas)
            step_size = lr * math.sqrt(1.0 - b1 ** n) / (1.0 - b0 ** n)
            live = [t for t in zip(pg["params"], pg["grads"], pg["m"], pg["values"])
                    if not t[0].is_stop_grad()]
            if not live:
                continue
            if self.fused:
                scalars = [step_size, b0, 1.0 - b0, b1, 1.0 - b1, eps, weight_decay]
                _fused_update(live, scalars)
                continue
            for p, g, m, v in live:
                if weight_decay:
                    g = p * weight_decay + g
                m.update(b0 * m + (1.0 - b0) * g)
                v.update(b1 * v + (1.0 - b1) * g * g)
                p.update(p - m * step_size / (jt.sqrt(v) + eps))
        self.post_step()


def _fused_update(live, scalars):
    """One jt.code op updating every (p, g, m, v) of `live` in place (through Var.update)."""
    for p, g, m, v in live:
        if any(x.dtype != "float32" for x in (p, g, m, v)):
            raise ValueError(f"the fused Adam handles float32 parameters only, got a {p.dtype} "
                             f"parameter of shape {tuple(p.shape)} (use Adam(..., fused=False))")
    n = len(live)
    cpu_header, cpu_src, cuda_header, cuda_src = _sources(n)
    shapes = [list(p.shape) for p, _, _, _ in live] * 3
    inputs = [jt.array(np.array(scalars, np.float32))] + [t[j] for j in range(4) for t in live]
    outs = jt.code(shapes, ["float32"] * (3 * n), inputs, cpu_header=cpu_header, cpu_src=cpu_src,
                   cuda_header=cuda_header, cuda_src=cuda_src)
    for i, (p, _, m, v) in enumerate(live):
        p.update(outs[i])
        m.update(outs[n + i])
        v.update(outs[2 * n + i])
