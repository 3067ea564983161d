"""The fast renderer's kernels (render/fast.py), each one `jt.code` op with a CPU and a CUDA
source running the same algorithm (so the CPU tests check the GPU logic):

- occupancy(grid, box, pts)               uint8 [N]: the point's grid cell is occupied (outside: 1)
- transmittance(sigma, z, rays_d)         T [R,S+1]: before each sample, then behind the last
- select(mask, cursor, limit, z, T, ...)  one round of compaction: which samples of each ray
                                          are evaluated now, as a dense list of their indices
- colour_mask(need_f, need_c, coarse_at)  the fine samples whose colour either level reads

Compaction stays on the device: per round the host fetches only the ray counts [R] (one
transfer: their sum sizes the batch) and returns their offsets; the indices never leave it.
"""
import jittor as jt
import numpy as np

from backend.kernels import elementwise_kernel, per_row_kernel

_MATH = dict(cpu_header="#include <cmath>", cuda_header="#include <cmath>")

_OCCUPANCY = elementwise_kernel("""
    const double x = in0_p[3 * i], y = in0_p[3 * i + 1], z = in0_p[3 * i + 2];
    const double fx = (x - in2_p[0]) / ((double)in2_p[3] - in2_p[0]) * in1_shape0;
    const double fy = (y - in2_p[1]) / ((double)in2_p[4] - in2_p[1]) * in1_shape1;
    const double fz = (z - in2_p[2]) / ((double)in2_p[5] - in2_p[2]) * in1_shape2;
    unsigned char occ = 1;  // outside the box (or NaN): occupied
    if (fx >= 0 && fx < in1_shape0 && fy >= 0 && fy < in1_shape1 && fz >= 0 && fz < in1_shape2)
        occ = in1_p[((long long)fx * in1_shape1 + (long long)fy) * in1_shape2 + (long long)fz] ? 1 : 0;
    out0_p[i] = occ;
""", "occupancy_lookup", ndim=1)

_TRANSMITTANCE = per_row_kernel("""
    const long long S = in0_shape1;
    const in0_type* sig = in0_p + r * S;
    const in1_type* z = in1_p + r * S;
    const in2_type* d = in2_p + 3 * r;
    out0_type* T = out0_p + r * (S + 1);
    const double len = sqrt((double)d[0] * d[0] + (double)d[1] * d[1] + (double)d[2] * d[2]);
    double t = 1.0;
    T[0] = 1.f;
    for (long long i = 0; i < S; i++) {
        const double delta = (i < S - 1 ? (double)z[i + 1] - z[i] : 1e10) * len;
        t *= exp(-(sig[i] > 0 ? sig[i] * delta : 0.0));
        T[i + 1] = (float)t;
    }
""", "transmittance", "in0_shape0")

# One ray's walk for a round: from its cursor, the samples in the mask (and, with FORCE_LAST,
# its last sample), at most QUOTA of them, none at a depth >= its limit; a ray whose
# transmittance is <= STOP takes none.  TAKE(j) is what the kernel does with each.
_WALK = """
    const long long S = in0_shape1;
    const unsigned char* mask = in0_p + r * S;
    const in3_type* z = in3_p + r * S;
    const double quota = in5_p[0], stop = in5_p[1];
    const bool force_last = in5_p[2] != 0;
    long long j = in1_p[r], taken = 0;
    if (in4_p[r] > stop) {
        for (; j < S && taken < quota; j++) {
            if (z[j] >= in2_p[r]) break;
            if (mask[j] || (force_last && j == S - 1)) { TAKE taken++; }
        }
    }
"""
_COUNT = per_row_kernel(_WALK.replace("TAKE", "") + """
    out0_p[r] = (out0_type)taken;
    out1_p[r] = (out1_type)j;
""", "select_count", "in0_shape0")
# in6: each ray's offset in the list; in7: the list's length; the rest (padding to the batch
# size) points at row R*S / ray R, which the caller pads with a dummy
_WRITE = per_row_kernel(_WALK.replace("TAKE", "out0_p[in6_p[r] + taken] = (out0_type)(r * S + j); "
                                              "out1_p[in6_p[r] + taken] = (out1_type)r;") + """
    const long long R = in0_shape0;
    for (long long t = in7_p[0] + r; t < out0_shape0; t += R) {
        out0_p[t] = (out0_type)(R * S);
        out1_p[t] = (out1_type)R;
    }
""", "select_write", "in0_shape0")

_COLOUR_MASK = per_row_kernel("""
    const long long SF = in0_shape1, SC = in1_shape1;
    for (long long j = 0; j < SF; j++) out0_p[r * SF + j] = in0_p[r * SF + j];
    for (long long j = 0; j < SC; j++)
        if (in1_p[r * SC + j]) out0_p[r * SF + in2_p[r * SC + j]] = 1;
""", "colour_mask", "in0_shape0")


def occupancy(grid, box, pts):
    """grid uint8 [X,Y,Z], box float32 [6] (lo, hi), pts [N,3] -> uint8 [N] (outside the box: 1)."""
    cpu, cuda = _OCCUPANCY
    return jt.code([pts.shape[0]], "uint8", [pts.float32(), grid, box], cpu_src=cpu, cuda_src=cuda)


def transmittance(sigma, z, rays_d):
    """sigma_raw [R,S], z [R,S], rays_d [R,3] -> T [R,S+1]: before each sample, then behind all."""
    cpu, cuda = _TRANSMITTANCE
    n, s = sigma.shape
    return jt.code([n, s + 1], "float32", [sigma.float32(), z.float32(), rays_d.float32()],
                   cpu_src=cpu, cuda_src=cuda, **_MATH)


def padded_size(n):
    """n rounded up to a multiple of 1/16 of its power of two (at least 16): few distinct shapes."""
    g = max(16, 1 << max(int(n).bit_length() - 5, 0))
    return -(-int(n) // g) * g


def select(mask, cursor, limit, z, visible, quota, stop, force_last):
    """One round of compaction.  mask uint8 [R,S]; cursor int32 [R] (where each ray's walk
    resumes); limit [R] (depths at or beyond it wait for a later round; inf: none); z [R,S];
    visible [R] (transmittance so far; rays at or below stop take nothing).
    Returns (index int32 [m] = ray * S + sample, then R*S as padding; ray int32 [m], padding R;
    the number n of real entries; the new cursor [R]), m = padded_size(n), or n = 0 and None."""
    params = jt.array(np.array([quota, stop, 1.0 if force_last else 0.0], np.float32))
    inputs = [mask, cursor, limit.float32(), z.float32(), visible.float32(), params]
    cpu, cuda = _COUNT
    n_rays = mask.shape[0]
    counts, new_cursor = jt.code([[n_rays], [n_rays]], ["int32", "int32"], inputs, cpu_src=cpu, cuda_src=cuda)
    counts = counts.numpy().astype(np.int64)  # the round's one transfer to the host
    n = int(counts.sum())
    if n == 0:
        return None, None, 0, new_cursor
    offsets = jt.array((np.cumsum(counts) - counts).astype(np.int32))
    cpu, cuda = _WRITE
    m = padded_size(n)
    index, ray = jt.code([[m], [m]], ["int32", "int32"], inputs + [offsets, jt.array(np.array([n], np.int32))],
                         cpu_src=cpu, cuda_src=cuda)
    return index, ray, n, new_cursor


def colour_mask(need_f, need_c, coarse_at):
    """need_f uint8 [R,SF] | need_c uint8 [R,SC] moved to the fine positions coarse_at int32 [R,SC]."""
    cpu, cuda = _COLOUR_MASK
    return jt.code(need_f.shape, "uint8", [need_f, need_c, coarse_at.int32()], cpu_src=cpu, cuda_src=cuda)
