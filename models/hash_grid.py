"""Multi-resolution hash grid encoding (Instant-NGP, Mueller et al. 2022) for the style field.

A point's features are, at each of L levels, the trilinear interpolation of F trainable values
stored at the 8 corners of its grid cell; the level resolutions grow geometrically from
base_res to max_res over a fixed box [lo, hi] (points outside are clamped to it).  A level
whose (res + 1)^3 corners fit its table of T rows indexes them densely; finer ones hash the
corner (x * 1 xor y * 2654435761 xor z * 805459861, mod T), and colliding corners share a row.

Why: the style MLP learns from the encoded position alone, and an MLP's fit of pixel-sized
strokes over a whole scene is slow (docs/STYLE_STRENGTH.md: the stylized NeRF blurs its own
training targets).  A table lookup can hold such detail directly.

A grid may hold several tables stacked (n_tables, one per style with --hash_per_style): each
point then names its table, and the same kernel reads that table's rows, so points of several
styles go through one lookup instead of being sorted into one lookup a style.

The forward pass is one `jt.code` kernel (one thread per point and level); the backward pass
adds each point's weighted gradient into the table's rows (atomic adds on the GPU).  Gradients
flow to the table only: the points come from a frozen geometry.
"""
import functools

import jittor as jt
import numpy as np
from jittor import nn

from backend.kernels import CPU_PARALLEL_FOR, per_row_kernel

PRIMES = (1, 2654435761, 805459861)

# r runs over points x levels; in0 = pts [N,3], in1 = table [S*L*T,F], in2 = level resolutions [L]
# int32, in3 = box [6] (lo, hi); TABLE is the point's table index (0 with one table; with
# several, read from an int32 input [N]).  _CORNERS runs ACTION at each of the 8 corners, with its
# table row `row` and trilinear weight `w`.
_SETUP = """
    const int L = LEVELS, F = FEATS;
    const long long T = TSIZE;
    long long n = r / L; int l = (int)(r % L);
    int res = in2_p[l];
    int c[3]; float fr[3];
    for (int d = 0; d < 3; d++) {
        float lo = in3_p[d], hi = in3_p[3 + d];
        float u = (in0_p[n * 3 + d] - lo) / (hi - lo);
        u = u < 0.f ? 0.f : (u > 1.f ? 1.f : u);
        float p = u * (float)res;
        int ci = (int)floorf(p);
        if (ci > res - 1) ci = res - 1;
        c[d] = ci; fr[d] = p - (float)ci;
    }
    bool dense = (long long)(res + 1) * (res + 1) * (res + 1) <= T;
"""
_CORNERS = """
    for (int k = 0; k < 8; k++) {
        unsigned int cx = c[0] + (k & 1), cy = c[1] + ((k >> 1) & 1), cz = c[2] + ((k >> 2) & 1);
        float w = ((k & 1) ? fr[0] : 1.f - fr[0]) * ((k & 2) ? fr[1] : 1.f - fr[1])
                * ((k & 4) ? fr[2] : 1.f - fr[2]);
        long long row = dense ? (long long)cx + (long long)(res + 1) * ((long long)cy + (long long)(res + 1) * cz)
                              : (long long)((cx * 1u) ^ (cy * 2654435761u) ^ (cz * 805459861u)) & (T - 1);
        row += ((long long)(TABLE) * L + l) * T;
        ACTION
    }
"""
_FORWARD = _SETUP + """
    float acc[FEATS];
    for (int f = 0; f < F; f++) acc[f] = 0.f;
""" + _CORNERS.replace("ACTION", "for (int f = 0; f < F; f++) acc[f] += w * in1_p[row * F + f];") + """
    for (int f = 0; f < F; f++) out0_p[n * L * F + l * F + f] = acc[f];
"""
# in4 = the output's gradient [N, L*F]; out0 = the table's gradient [S*L*T, F]
_BACKWARD = _SETUP + _CORNERS.replace(
    "ACTION", "for (int f = 0; f < F; f++) ADD(out0_p + row * F + f, w * in4_p[n * L * F + l * F + f]);")


@functools.lru_cache(maxsize=None)
def _sources(levels, feats, log2_size, per_point_table):
    # the table index: input 4 of the forward pass, 5 of the backward (after the gradient)
    fwd_table, bwd_table = ("in4_p[n]", "in5_p[n]") if per_point_table else ("0", "0")

    def consts(s, table):
        return (s.replace("TABLE", table).replace("LEVELS", str(levels)).replace("FEATS", str(feats))
                .replace("TSIZE", f"{1 << log2_size}LL"))
    rows = "(long long)in0_shape0 * LEVELS"
    # (the forward's rows write apart: over the CPU's cores; the backward's add into shared rows)
    fwd_cpu, fwd_cuda = per_row_kernel(consts(_FORWARD, fwd_table), "hash_grid_fwd", consts(rows, "0"),
                                       cpu_parallel=True)
    body = consts(_BACKWARD, bwd_table)
    bwd_cpu, bwd_cuda = per_row_kernel(body.replace("ADD(", "hash_grid_add("), "hash_grid_bwd", consts(rows, "0"))
    clear = CPU_PARALLEL_FOR.format(n="out0->num") + "for (long long k = 0; k < out0->num; k++) out0_p[k] = 0;\n"
    # the table's gradient starts at zero: a clearing kernel first (kernels lead the CUDA source)
    cuda_clear = """
__global__ static void hash_grid_clear(@ARGS_DEF) {
    @PRECALC
    const long long m = (long long)out0_shape0 * out0_shape1;
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < m; k += (long long)blockDim.x * gridDim.x)
        out0_p[k] = 0;
}
"""
    launch = "hash_grid_clear<<<(int)((out0->num + 255) / 256 < 65536 ? (out0->num + 255) / 256 : 65536), 256>>>(@ARGS);\n"
    head, sep, tail = bwd_cuda.partition("long long n_blocks")
    bwd_cuda = cuda_clear + head + launch + sep + tail
    header_cpu = "#include <cmath>\ninline void hash_grid_add(float* p, float v) { *p += v; }\n"
    header_cuda = "#include <cmath>\n__device__ inline void hash_grid_add(float* p, float v) { atomicAdd(p, v); }\n"
    return (dict(cpu_src=fwd_cpu, cuda_src=fwd_cuda, cpu_header="#include <cmath>", cuda_header="#include <cmath>"),
            dict(cpu_src=clear + bwd_cpu, cuda_src=bwd_cuda, cpu_header=header_cpu, cuda_header=header_cuda))


class _Lookup(jt.Function):
    """tables: None (one table) or the points' table indices [N] int32."""

    def execute(self, pts, table, res, box, tables, levels, feats, log2_size):
        self.saved = (pts, table.shape, res, box, tables, levels, feats, log2_size)
        fwd, _ = _sources(levels, feats, log2_size, tables is not None)
        extra = [] if tables is None else [tables]
        return jt.code([pts.shape[0], levels * feats], "float32", [pts, table, res, box] + extra, **fwd)

    def grad(self, g):
        pts, table_shape, res, box, tables, levels, feats, log2_size = self.saved
        self.saved = None
        _, bwd = _sources(levels, feats, log2_size, tables is not None)
        # in1 is a placeholder (the backward does not read the table); in4 is the gradient
        extra = [] if tables is None else [tables]
        gt = jt.code(table_shape, "float32", [pts, pts, res, box, g.float32()] + extra, **bwd)
        return None, gt, None, None, None, None, None, None


def level_resolutions(base_res, max_res, n_levels):
    """Each level's cells per axis: base_res * b^l, b chosen so that the last is max_res."""
    if n_levels == 1:
        return [int(base_res)]
    b = np.exp((np.log(max_res) - np.log(base_res)) / (n_levels - 1))
    return [int(np.floor(base_res * b ** l + 1e-6)) for l in range(n_levels)]


class HashGrid(nn.Module):
    """pts [N,3] -> features [N, n_levels * n_features] (see the module's text); with n_tables
    > 1, each point's features from the table its index names.

    State: `table` [n_tables * n_levels * 2^log2_size, n_features] (trainable; table k's rows
    from k * n_levels * 2^log2_size on), `box` [6] (lo, hi: fixed).
    """

    def __init__(self, lo, hi, n_levels=16, n_features=2, log2_size=19, base_res=16, max_res=2048, seed=0,
                 n_tables=1):
        super().__init__()
        lo, hi = np.asarray(lo, np.float32).reshape(3), np.asarray(hi, np.float32).reshape(3)
        if not np.all(hi > lo):
            raise ValueError(f"HashGrid: need a box with hi > lo in every axis, got {lo} .. {hi}")
        if not (1 <= n_levels and 1 <= n_features <= 8 and 4 <= log2_size <= 26 and 1 <= base_res <= max_res
                and 1 <= n_tables):
            raise ValueError(f"HashGrid: bad sizes (levels {n_levels}, features {n_features}, "
                             f"log2 table {log2_size}, resolutions {base_res}..{max_res}, tables {n_tables})")
        self.n_levels, self.n_features, self.log2_size = int(n_levels), int(n_features), int(log2_size)
        self.n_tables = int(n_tables)
        self.resolutions = level_resolutions(base_res, max_res, n_levels)
        self.out_dim = self.n_levels * self.n_features
        rng = np.random.default_rng(seed)
        # small uniform start (Instant-NGP's): the MLP first sees nearly the same features everywhere
        rows = self.n_tables * (self.n_levels << self.log2_size)
        self.table = jt.array(rng.uniform(-1e-4, 1e-4, (rows, self.n_features)).astype(np.float32))
        self.box = jt.array(np.concatenate([lo, hi])).stop_grad()
        self._res = jt.array(np.asarray(self.resolutions, np.int32)).stop_grad()

    def execute(self, pts, tables=None):
        """tables: with n_tables > 1, each point's table index (an int for all, or an int array
        shaped like pts[..., 0], checked against n_tables); ignored with one table."""
        if pts.shape[-1] != 3:
            raise ValueError(f"HashGrid: expected points [..., 3], got {pts.shape}")
        lead = tuple(pts.shape[:-1])
        flat = pts.reshape((-1, 3)).float32().stop_grad()
        ids = None
        if self.n_tables > 1:
            ids = self._table_ids(tables, lead)
        out = _Lookup.apply(flat, self.table, self._res, self.box, ids, self.n_levels, self.n_features, self.log2_size)
        return out.reshape(lead + (self.out_dim,))

    def _table_ids(self, tables, lead):
        """The points' table indices as an int32 Var [N], checked on the host."""
        if tables is None:
            raise ValueError(f"HashGrid: {self.n_tables} tables: each point needs a table index")
        ids = np.asarray(tables)
        if ids.ndim == 0:
            ids = np.full(lead, int(ids))
        if ids.shape != lead:
            raise ValueError(f"HashGrid: {ids.shape} table indices for points {lead}")
        if ids.size and (ids.min() < 0 or ids.max() >= self.n_tables):
            raise ValueError(f"HashGrid: table index out of range 0..{self.n_tables - 1}")
        return jt.array(ids.reshape(-1).astype(np.int32)).stop_grad()


def hash_grid_numpy(pts, table, resolutions, lo, hi, log2_size):
    """NumPy reference of HashGrid's forward pass: pts [N,3] -> [N, L*F] (float64)."""
    pts = np.asarray(pts, np.float64)
    table = np.asarray(table, np.float64)
    T, F = 1 << log2_size, table.shape[1]
    u = np.clip((pts - np.asarray(lo, np.float64)) / (np.asarray(hi, np.float64) - np.asarray(lo, np.float64)), 0, 1)
    out = np.zeros((len(pts), len(resolutions) * F))
    for l, res in enumerate(resolutions):
        p = u * res
        c = np.minimum(np.floor(p), res - 1).astype(np.int64)
        fr = p - c
        for k in range(8):
            off = np.array([k & 1, (k >> 1) & 1, (k >> 2) & 1])
            cc = c + off
            w = np.prod(np.where(off == 1, fr, 1 - fr), axis=1)
            if (res + 1) ** 3 <= T:
                row = cc[:, 0] + (res + 1) * (cc[:, 1] + (res + 1) * cc[:, 2])
            else:
                h = [(cc[:, d].astype(np.uint64) * np.uint64(PRIMES[d])) & np.uint64(0xFFFFFFFF) for d in range(3)]
                row = ((h[0] ^ h[1] ^ h[2]) & np.uint64(T - 1)).astype(np.int64)
            out[:, l * F:(l + 1) * F] += w[:, None] * table[l * T + row]
    return out
