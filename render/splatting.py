"""Point splatting into pinhole cameras with a z-buffer (replaces pytorch3d's point rasteriser).

Camera convention (docs/ARCHITECTURE.md, nerf-pytorch): c2w [3,4] camera-to-world, the camera
looks down -z (x right, y up). Pixel (column i, row j) has the camera-space direction
[(i - W/2)/f, -(j - H/2)/f, -1], so a camera-space point (x, y, z) with depth d = -z > 0 projects to

    u = W/2 + f x / d,   v = H/2 - f y / d,

and pixel CENTRES sit at integer (u, v) = (i, j): pixel (i, j) is the square [i-0.5, i+0.5) x
[j-0.5, j+0.5).

Splatting rule (pytorch3d with points_per_pixel=1): a point covers every pixel whose centre lies
within `radius_px` of its projection (distance <= radius, inclusive), or with radius_px=None only
the pixel whose centre is nearest (forward warping with rounding: floor(u + 0.5)). Each pixel keeps
the covering point of smallest camera depth; exact depth ties go to the lower point index. Points
with depth <= `near` (behind the camera) or non-finite projections do nothing; only in-image pixels
are written, so a point whose footprint lies outside the image is skipped.

The z-buffer is a `jt.code` kernel (cpu_src and cuda_src run the same algorithm): every point
atomically min-reduces the 64-bit key (float bits of its depth << 32 | point index) into each
covered pixel; positive float32 bit patterns order like the floats, so the minimum key is the
nearest point. The output colour is then an ordinary Jittor gather `colors[index_map]`, so
gradients flow to `colors` (not to point positions, which the decoder fine-tune does not need).
"""
import jittor as jt
import numpy as np

__all__ = ["project_points", "splat", "warp_view", "consistency_loss"]

_EMPTY_KEY = "0x7fffffffffffffffLL"  # larger than any key: depth bits < 0x7f800000 (inf)

_CPU_HEADER = r"""
#include <cstring>
#include <math.h>
inline unsigned int splat_float_bits(float x) { unsigned int b; std::memcpy(&b, &x, 4); return b; }
inline float splat_bits_float(unsigned int b) { float x; std::memcpy(&x, &b, 4); return x; }
inline float splat_inf() { return INFINITY; }
template <class T> inline void splat_min_key(T* slot, T key) { if (key < *slot) *slot = key; }
"""

_CUDA_HEADER = r"""
__device__ inline unsigned int splat_float_bits(float x) { return __float_as_uint(x); }
__device__ inline float splat_bits_float(unsigned int b) { return __uint_as_float(b); }
__device__ inline float splat_inf() { return __int_as_float(0x7f800000); }
// keys are non-negative, so the unsigned 64-bit minimum is the signed minimum
template <class T> __device__ inline void splat_min_key(T* slot, T key) {
    atomicMin((unsigned long long*)slot, (unsigned long long)key);
}
"""

# in0: uvz [N,3] float32; out0: index [H,W] int32; out1: depth [H,W] float32; out2: key [H,W] int64.
# Loop bodies shared by the CPU and CUDA sources; `n` is the point, `p` the flat pixel index.
_SPLAT_POINT = r"""
        const int H = out0_shape0, W = out0_shape1;
        float u = @in0(n, 0), v = @in0(n, 1), z = @in0(n, 2);
        // comparisons are false for NaN, so NaN and huge values are skipped too
        if (!(z > SPLAT_NEAR) || !(z < 1e30f) || !(fabsf(u) < 1e30f) || !(fabsf(v) < 1e30f)) continue;
        float i_lo, i_hi, j_lo, j_hi;
        if (SPLAT_RADIUS < 0.f) {
            i_lo = i_hi = floorf(u + 0.5f);
            j_lo = j_hi = floorf(v + 0.5f);
        } else {
            i_lo = ceilf(u - SPLAT_RADIUS); i_hi = floorf(u + SPLAT_RADIUS);
            j_lo = ceilf(v - SPLAT_RADIUS); j_hi = floorf(v + SPLAT_RADIUS);
        }
        i_lo = fmaxf(i_lo, 0.f); j_lo = fmaxf(j_lo, 0.f);
        i_hi = fminf(i_hi, W - 1.f); j_hi = fminf(j_hi, H - 1.f);
        out2_type key = ((out2_type)splat_float_bits(z) << 32) | (out2_type)n;
        for (int j = (int)j_lo; j <= (int)j_hi; j++)
            for (int i = (int)i_lo; i <= (int)i_hi; i++) {
                float di = i - u, dj = j - v;
                if (SPLAT_RADIUS >= 0.f && di * di + dj * dj > SPLAT_RADIUS * SPLAT_RADIUS) continue;
                splat_min_key(out2_p + (long long)j * W + i, key);
            }
"""

_DECODE_PIXEL = r"""
        out2_type key = out2_p[p];
        if (key == (out2_type)SPLAT_EMPTY) {
            out0_p[p] = -1;
            out1_p[p] = splat_inf();
        } else {
            out0_p[p] = (int)(key & 0xffffffffLL);
            out1_p[p] = splat_bits_float((unsigned int)(key >> 32));
        }
"""

_CPU_SRC = r"""
    const long long n_pix = (long long)out0_shape0 * out0_shape1;
    for (long long p = 0; p < n_pix; p++) out2_p[p] = (out2_type)SPLAT_EMPTY;
    for (int n = 0; n < in0_shape0; n++) {
""" + _SPLAT_POINT + r"""
    }
    for (long long p = 0; p < n_pix; p++) {
""" + _DECODE_PIXEL + r"""
    }
"""

# Kernels first: Jittor moves leading `__global__` blocks out of the function body.
_CUDA_SRC = r"""
__global__ static void splat_clear_kernel(@ARGS_DEF) {
    @PRECALC
    const long long n_pix = (long long)out0_shape0 * out0_shape1;
    for (long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x; p < n_pix;
         p += (long long)blockDim.x * gridDim.x)
        out2_p[p] = (out2_type)SPLAT_EMPTY;
}
__global__ static void splat_points_kernel(@ARGS_DEF) {
    @PRECALC
    for (int n = blockIdx.x * blockDim.x + threadIdx.x; n < in0_shape0; n += blockDim.x * gridDim.x) {
""" + _SPLAT_POINT + r"""
    }
}
__global__ static void splat_decode_kernel(@ARGS_DEF) {
    @PRECALC
    const long long n_pix = (long long)out0_shape0 * out0_shape1;
    for (long long p = blockIdx.x * (long long)blockDim.x + threadIdx.x; p < n_pix;
         p += (long long)blockDim.x * gridDim.x) {
""" + _DECODE_PIXEL + r"""
    }
}
    const long long n_pix_host = (long long)out0_shape0 * out0_shape1;
    const int pix_blocks = (int)((n_pix_host + 255) / 256 < 65536 ? (n_pix_host + 255) / 256 : 65536);
    const int pt_blocks = (int)((in0_shape0 + 255) / 256 < 65536 ? (in0_shape0 + 255) / 256 : 65536);
    splat_clear_kernel<<<pix_blocks, 256>>>(@ARGS);
    splat_points_kernel<<<pt_blocks, 256>>>(@ARGS);
    splat_decode_kernel<<<pix_blocks, 256>>>(@ARGS);
"""


def _c_float(x):
    return repr(float(x)) + "f"


def _with_constants(src, radius_px, near):
    """Bake the radius and near plane into the source (one compiled kernel per setting)."""
    radius = -1.0 if radius_px is None else float(radius_px)
    return (src.replace("SPLAT_RADIUS", _c_float(radius)).replace("SPLAT_NEAR", _c_float(near))
            .replace("SPLAT_EMPTY", _EMPTY_KEY))


def _camera(c2w):
    """c2w ([3,4], [3,5] or [4,4]; numpy or Var) -> (world-to-camera rotation [3,3], centre [3]) float64."""
    m = c2w.numpy() if isinstance(c2w, jt.Var) else np.asarray(c2w)
    if m.ndim != 2 or m.shape[0] < 3 or m.shape[1] < 4:
        raise ValueError(f"camera pose must be a [3,4] camera-to-world matrix, got shape {m.shape}")
    m = m[:3, :4].astype(np.float64)
    return np.linalg.inv(m[:, :3]), m[:, 3]


def project_points(points, c2w, H, W, focal):
    """Project world points into a camera.

    points [N,3] world (numpy array or jt.Var; the result has the same kind), c2w [3,4].
    Returns (u [N], v [N], z_cam [N]) float32: pixel column, pixel row (centres at integers) and
    the positive depth in front of the camera (-z in camera space; <= 0 behind it).
    """
    R_inv, centre = _camera(c2w)
    if isinstance(points, jt.Var):
        # element-wise rather than matmul: TF32 matmul on the GPU would cost ~1e-3 relative
        # precision, a sizeable fraction of a pixel at realistic focal lengths
        d = [points[:, k] - float(centre[k]) for k in range(3)]
        x, y, z = [sum(float(R_inv[r, k]) * d[k] for k in range(3)) for r in range(3)]
        depth = -z
        u = float(W) * 0.5 + float(focal) * x / depth
        v = float(H) * 0.5 - float(focal) * y / depth
        return u.float32(), v.float32(), depth.float32()
    p_cam = (np.asarray(points, np.float64) - centre) @ R_inv.T
    depth = -p_cam[:, 2]
    with np.errstate(all="ignore"):  # points at depth 0 give inf/nan, which splat() skips
        u = W * 0.5 + focal * p_cam[:, 0] / depth
        v = H * 0.5 - focal * p_cam[:, 1] / depth
        return u.astype(np.float32), v.astype(np.float32), depth.astype(np.float32)


def zbuffer(uvz, H, W, radius_px=1.5, near=1e-4):
    """The splatting kernel on projected points.

    uvz [N,3] (u, v, depth) jt.Var or numpy. Returns (index_map [H,W] int32, -1 where empty;
    depth_buf [H,W] float32, inf where empty) as jt.Vars. No gradients.
    """
    if radius_px is not None and not radius_px >= 0:
        raise ValueError(f"splat radius_px must be >= 0 or None (nearest pixel), got {radius_px}")
    uvz = (uvz if isinstance(uvz, jt.Var) else jt.array(np.asarray(uvz, np.float32))).float32().stop_grad()
    H, W = int(H), int(W)
    if uvz.shape[0] == 0:
        return jt.full((H, W), -1, dtype="int32"), jt.full((H, W), float("inf"), dtype="float32")
    index_map, depth_buf, _keys = jt.code(
        [(H, W), (H, W), (H, W)], ["int32", "float32", "int64"], [uvz],
        cpu_header=_CPU_HEADER, cpu_src=_with_constants(_CPU_SRC, radius_px, near),
        cuda_header=_CUDA_HEADER, cuda_src=_with_constants(_CUDA_SRC, radius_px, near))
    return index_map, depth_buf


def gather_points(values, index_map):
    """values [N,C] Var, index_map [H,W] int32 -> [H,W,C], zeros where the index is -1.

    A reindex, so its backward scatters gradients into `values` (added up per point)."""
    H, W = index_map.shape
    C = values.shape[1]
    return values.reindex([H, W, C], ["@e0(i0,i1)", "i2"], overflow_value=0, extras=[index_map])


def splat(points, colors, c2w, H, W, focal, radius_px=1.5, near=1e-4):
    """Render a coloured point cloud into a camera with a z-buffer.

    points [N,3] world (numpy or Var; no gradient), colors [N,C] (Var or numpy), c2w [3,4].
    radius_px: footprint radius in pixels (the original: 1.5); None = nearest pixel only.
    Returns jt.Vars (image [H,W,C] (0 where empty), mask [H,W] bool, depth_buf [H,W] float32
    (camera depth of the winning point, inf where empty), index_map [H,W] int32 (-1 where empty)).
    Gradients flow from image to colors.
    """
    colors = colors if isinstance(colors, jt.Var) else jt.array(np.asarray(colors, np.float32))
    if colors.ndim != 2 or colors.shape[0] != points.shape[0]:
        raise ValueError(f"splat: colors must be [N,C] with N = {points.shape[0]} points, got {colors.shape}")
    pts = points.stop_grad() if isinstance(points, jt.Var) else np.asarray(points, np.float32)
    u, v, z = project_points(pts, c2w, H, W, focal)
    uvz = jt.stack([u, v, z], -1) if isinstance(u, jt.Var) else np.stack([u, v, z], -1)
    index_map, depth_buf = zbuffer(uvz, H, W, radius_px, near)
    image = gather_points(colors, index_map)
    return image, index_map >= 0, depth_buf, index_map


def warp_view(src_colors, src_points, dst_c2w, H, W, focal, radius_px=1.5, near=1e-4):
    """Splat every pixel of a source view (colour + world point) into a destination camera.

    src_colors [H,W,C] (Var for gradients, or numpy), src_points [H,W,3] world.
    Returns jt.Vars (warped [H,W,C], mask [H,W] bool, warped_points [H,W,3]: the world point that
    won each destination pixel, zeros where empty).
    """
    pts = src_points if isinstance(src_points, jt.Var) else jt.array(np.asarray(src_points, np.float32))
    pts = pts.reshape(-1, 3).stop_grad()
    colors = src_colors if isinstance(src_colors, jt.Var) else jt.array(np.asarray(src_colors, np.float32))
    colors = colors.reshape(pts.shape[0], -1)
    warped, mask, _depth, index_map = splat(pts, colors, dst_c2w, H, W, focal, radius_px, near)
    return warped, mask, gather_points(pts, index_map)


def consistency_loss(stylized, points, c2ws, H, W, focal, geo_thresh=0.05, radius_px=1.5,
                     include_source=False):
    """The decoder fine-tune's consistency term (the caller multiplies it by 50).

    stylized [B,H,W,3] Var, points [B,H,W,3] world (numpy or Var), c2ws [B,3,4].
    View 0 is splatted into views 1..B-1 (and into itself too if include_source, as the original
    code's rasteriser did); returns mean(vis * geo * (I_k - warp_0->k)^2) over all those
    [views,H,W,3] elements, where vis = the pixel received a point and geo = the received world
    point lies within geo_thresh (Euclidean) of view k's own point. Differentiable wrt stylized.
    """
    B = stylized.shape[0]
    if B < 2 and not include_source:
        raise ValueError(f"consistency_loss needs at least 2 views, got {B}")
    pts = points if isinstance(points, jt.Var) else jt.array(np.asarray(points, np.float32))
    pts = pts.stop_grad()
    terms = []
    for k in range(0 if include_source else 1, B):
        warped, vis, warped_pts = warp_view(stylized[0], pts[0], c2ws[k], H, W, focal, radius_px)
        geo = ((warped_pts - pts[k]).sqr().sum(-1) < geo_thresh ** 2)
        weight = (vis & geo).float32().unsqueeze(-1)
        terms.append(weight * (stylized[k] - warped).sqr())
    return jt.stack(terms).mean()
