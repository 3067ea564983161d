"""Positional encoding of NeRF: x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)].

The order (per frequency: sin of every input dim, then cos of every input dim) is nerf-pytorch's,
so weights laid out for it line up.  xyz with L=10 gives 63 dims, a direction with L=4 gives 27.

The encoding is one `jt.code` kernel (and one for its gradient): built from Jittor ops (scale,
sin/cos, stack, concat) it cost 5 kernel launches per call, 4 calls per NeRF step, and a GPU
NeRF step is bound by the cost per launch (README, Measured).
"""
import functools

import jittor as jt
from jittor import nn

from backend.kernels import CPU_PARALLEL_FOR, elementwise_kernel

# out[r, j]: j < D (with the input) is x[r, j]; after that, block l of 2D values holds
# sin(2^l x[r, :]) then cos(2^l x[r, :]).  2^l x is exact in float32, as in nerf-pytorch; sin and
# cos run in double: Jittor compiles CUDA with --use_fast_math, whose float sin/cos lose accuracy
# far from 0 (2^9 x reaches hundreds of radians).
_INDEX = """
    const long long OD = out0_shape1, D = in0_shape1;
    long long r = i / OD, j = i % OD - KEEP * D;
"""
_FORWARD = _INDEX + """
    if (j < 0) { out0_p[i] = in0_p[r * D + j + D]; }
    else {
        long long l = j / (2 * D), d = j % D;
        double a = (double)(in0_p[r * D + d] * (in0_type)(1LL << l));
        out0_p[i] = (out0_type)((j % (2 * D) < D) ? sin(a) : cos(a));
    }
"""
# dx[r, d] = g[r, d] (with the input) + sum_l 2^l (g_sin cos(2^l x) - g_cos sin(2^l x)); one
# thread per input element (in0 = x, in1 = g; i runs over x)
_BACKWARD = """
    const long long D = in0_shape1, OD = in1_shape1;
    long long r = i / D, d = i % D;
    const long long L = (OD - KEEP * D) / (2 * D);
    in0_type x = in0_p[i];
    double acc = KEEP ? in1_p[r * OD + d] : 0;
    for (long long l = 0; l < L; l++) {
        double f = (double)(1LL << l), a = (double)(x * (in0_type)f);
        long long base = r * OD + KEEP * D + l * 2 * D + d;
        acc += f * (in1_p[base] * cos(a) - in1_p[base + D] * sin(a));
    }
    out0_p[i] = (out0_type)acc;
"""


# The CPU kernels: one iteration per input element, sin and cos once, the higher frequencies by
# the double-angle formulas in double precision (sin 2a = 2 sin a cos a, cos 2a = (c - s)(c + s)).
# Their error after L doublings is about 2^L x 1e-16, below float32's resolution for every L a
# NeRF uses, and the CPU evaluates 2 transcendentals per input element instead of 2L (65,536
# points at L=10 on a 2-core CPU, 2026-12-07: forward 83.5 -> 7.0 ms, the same values bit for bit;
# forward and backward 119 -> 15 ms); the CUDA kernels above keep one sin or cos per output.
_CPU_SETUP = """
    const long long D = in0_shape1, OD = SHAPE1, n = in0_shape0 * D;
    const long long L = (OD - KEEP * D) / (2 * D);
""" + CPU_PARALLEL_FOR.format(n="n")
_CPU_FORWARD = _CPU_SETUP.replace("SHAPE1", "out0_shape1") + """
for (long long i = 0; i < n; i++) {
    long long r = i / D, d = i % D;
    in0_type x = in0_p[i];
    out0_type* o = out0_p + r * OD + d;
    if (KEEP) o[0] = x;
    o += KEEP * D;
    double s = sin((double)x), c = cos((double)x);
    for (long long l = 0; l < L; l++, o += 2 * D) {
        o[0] = (out0_type)s;
        o[D] = (out0_type)c;
        double s2 = 2.0 * s * c;
        c = (c - s) * (c + s);
        s = s2;
    }
}
"""
_CPU_BACKWARD = _CPU_SETUP.replace("SHAPE1", "in1_shape1") + """
for (long long i = 0; i < n; i++) {
    long long r = i / D, d = i % D;
    const in1_type* g = in1_p + r * OD + d;
    double acc = KEEP ? g[0] : 0, f = 1.0;
    g += KEEP * D;
    double s = sin((double)in0_p[i]), c = cos((double)in0_p[i]);
    for (long long l = 0; l < L; l++, g += 2 * D, f *= 2.0) {
        acc += f * (g[0] * c - g[D] * s);
        double s2 = 2.0 * s * c;
        c = (c - s) * (c + s);
        s = s2;
    }
    out0_p[i] = (out0_type)acc;
}
"""


@functools.lru_cache(maxsize=None)
def _kernel(cuda_body, cpu_src, name, keep):
    flag = "1" if keep else "0"
    _, cuda = elementwise_kernel(cuda_body.replace("KEEP", flag), name, ndim=2)
    return dict(cpu_src=cpu_src.replace("KEEP", flag), cuda_src=cuda, cpu_header="#include <cmath>",
                cuda_header="#include <cmath>")


class _Encode(jt.Function):
    def execute(self, x2d, n_freqs, keep):
        self.x, self.keep = x2d, keep
        width = x2d.shape[1] * (int(keep) + 2 * n_freqs)
        return jt.code([x2d.shape[0], width], x2d.dtype, [x2d], **_kernel(_FORWARD, _CPU_FORWARD, "encode", keep))

    def grad(self, g):
        gx = jt.code(self.x.shape, self.x.dtype, [self.x, g],
                     **_kernel(_BACKWARD, _CPU_BACKWARD, "encode_grad", self.keep))
        self.x = None
        return gx, None, None


class PositionalEncoding(nn.Module):
    """x [..., input_dims] -> [..., out_dim]; out_dim = input_dims * (include_input + 2 * n_freqs)."""

    def __init__(self, n_freqs, input_dims=3, include_input=True):
        super().__init__()
        if int(n_freqs) != n_freqs or n_freqs < 0:
            raise ValueError(f"PositionalEncoding: n_freqs must be an integer >= 0, got {n_freqs!r}")
        self.n_freqs = int(n_freqs)
        self.input_dims = int(input_dims)
        self.include_input = bool(include_input)
        self.out_dim = self.input_dims * (int(self.include_input) + 2 * self.n_freqs)
        if self.out_dim == 0:
            raise ValueError("PositionalEncoding: no output (n_freqs=0 and include_input=False)")

    def execute(self, x):
        if x.shape[-1] != self.input_dims:
            raise ValueError(f"PositionalEncoding: expected last dim {self.input_dims}, got shape {x.shape}")
        if not self.n_freqs:
            return x
        lead = tuple(x.shape[:-1])
        x2d = x.reshape((-1, self.input_dims)).float32()
        return _Encode.apply(x2d, self.n_freqs, self.include_input).reshape(lead + (self.out_dim,))
