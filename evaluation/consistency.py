"""Multi-view consistency: warp one rendered view onto another with known geometry, masked RMSE.

The literature's protocol (short range: adjacent frames, long range: frames k apart): warp frame
t onto frame t+k and measure the colour difference over the pixels both views see; lower is more
consistent. The original release never published its metric code; this is the RMSE variant.

Geometry comes as WORLD points per pixel ([T,H,W,3], the NeRF's expected-depth point map in
world coordinates, see pipeline/geometry.py) rather than depth, which avoids any ambiguity
between z-depth, ray distance and NDC depth.

Warping is a forward splat (render/splatting.py) of every source pixel, at its world point, into
the destination camera: each point lands on the destination pixel whose centre is nearest
(radius None), the nearest point wins where several land on one pixel. A destination pixel
counts when it received a source point AND (with the destination's own points) the received
point's camera depth agrees with the destination's own depth within `occlusion_tol` (relative):
this removes parts the destination sees but the source does not (occluded in the source,
outside its view, or disoccluded), which a z-buffer over the source points alone cannot know.
Pixels the splat leaves empty (holes where the destination is magnified) are not counted.

warp="backward" is the flow-warping protocol of the video-consistency literature instead: every
destination pixel's own world point is projected into the source camera and the source frame is
read there bilinearly.  It counts where the source pixels read around that spot see the same
surface (their camera depth agrees with the point's within `occlusion_tol`).  The forward splat
moves every colour to the nearest pixel centre, up to half a pixel off, so its error grows with
the image's own fine detail even for a perfectly consistent sequence: it charges sharpness as if
it were flicker.  The bilinear read leaves a far smaller error on consistent detail (tests), so
the two warps measured side by side show how much of an error is that resampling floor.

carried_sequence builds the reference that floor calls for with a stylization's own texture: one
stylized frame projected onto every frame's surface points, flicker-free by construction.
"""
import jittor as jt
import numpy as np

from evaluation.metrics import rmse
from render.splatting import project_points, warp_view


class ConsistencyInputError(ValueError):
    """Frames, point maps or cameras that do not fit together."""


def warp_frame(src_img, src_points, dst_c2w, H, W, focal, dst_points=None, occlusion_tol=0.03,
               radius_px=None):
    """Forward-warp a source frame into a destination camera.

    src_img [H,W,3] in [0,1], src_points [H,W,3] world, dst_c2w [3,4]; dst_points [H,W,3] world
    (the destination's own surface points) enables the occlusion test.
    Returns numpy (warped [H,W,3] float32, 0 where empty; mask [H,W] bool of valid pixels).
    """
    src_img = np.asarray(src_img, np.float32)
    src_points = np.asarray(src_points, np.float32)
    for name, a in (("src_img", src_img), ("src_points", src_points)):
        if a.ndim != 3 or a.shape[:2] != (H, W):
            raise ConsistencyInputError(f"warp_frame: {name} must be [H,W,C] = [{H},{W},C], got {a.shape}")
    warped, received, warped_points = warp_view(jt.array(src_img), jt.array(src_points), dst_c2w,
                                                H, W, focal, radius_px=radius_px)
    mask = received.numpy()
    if dst_points is not None:
        dst_points = np.asarray(dst_points, np.float32)
        if dst_points.shape != (H, W, 3):
            raise ConsistencyInputError(f"warp_frame: dst_points must be [{H},{W},3], got {dst_points.shape}")
        _, _, own_depth = project_points(dst_points.reshape(-1, 3), dst_c2w, H, W, focal)
        _, _, got_depth = project_points(warped_points.numpy().reshape(-1, 3), dst_c2w, H, W, focal)
        own_depth, got_depth = own_depth.reshape(H, W), got_depth.reshape(H, W)
        agree = (own_depth > 0) & (np.abs(got_depth - own_depth) <= occlusion_tol * own_depth)
        mask &= agree
    return warped.numpy(), mask


def backward_warp(src_img, src_points, src_c2w, dst_points, dst_c2w, H, W, focal, occlusion_tol=0.03):
    """Read the source frame where each destination pixel's own surface point lies in it.

    src_img [H,W,3], src_points and dst_points [H,W,3] world, src_c2w and dst_c2w [3,4] (the
    destination camera only tells which points are in front of it).
    Returns numpy (warped [H,W,3] float32, 0 where not valid; mask [H,W] bool): valid where the
    point is in front of both cameras, projects inside the source image, and those of the
    source's four pixels around it that it reads (weight > 0) all have a camera depth within
    occlusion_tol (relative) of the point's.
    """
    src_img = np.asarray(src_img, np.float32)
    for name, a in (("src_img", src_img), ("src_points", src_points), ("dst_points", dst_points)):
        if np.ndim(a) != 3 or np.shape(a)[:2] != (H, W):
            raise ConsistencyInputError(f"backward_warp: {name} must be [H,W,C] = [{H},{W},C], got {np.shape(a)}")
    _, _, own = project_points(np.asarray(dst_points, np.float32).reshape(-1, 3), dst_c2w, H, W, focal)
    u, v, z = project_points(np.asarray(dst_points, np.float32).reshape(-1, 3), src_c2w, H, W, focal)
    _, _, src_depth = project_points(np.asarray(src_points, np.float32).reshape(-1, 3), src_c2w, H, W, focal)
    src_depth = src_depth.reshape(H, W)
    with np.errstate(invalid="ignore"):
        valid = (own > 0) & (z > 0) & (u >= 0) & (u <= W - 1) & (v >= 0) & (v <= H - 1)
    u, v = np.where(valid, u, 0.0), np.where(valid, v, 0.0)
    c0 = np.clip(np.floor(u).astype(np.int64), 0, W - 2)
    r0 = np.clip(np.floor(v).astype(np.int64), 0, H - 2)
    fc, fr = (u - c0)[:, None], (v - r0)[:, None]
    out = np.zeros((H * W, 3), np.float32)
    for dr, dc, wgt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        d = src_depth[r0 + dr, c0 + dc]
        # a neighbour without weight (the point on a pixel's row or column) need not agree
        valid &= (wgt[:, 0] < 1e-3) | ((d > 0) & (np.abs(z - d) <= occlusion_tol * d))
        out += wgt * src_img[r0 + dr, c0 + dc]
    out[~valid] = 0.0
    return out.reshape(H, W, 3), valid.reshape(H, W)


WARPS = ("forward", "backward")


def warp_onto(src_img, src_points, src_c2w, dst_points, dst_c2w, H, W, focal, warp="forward",
              occlusion_tol=0.03, radius_px=None):
    """A source frame warped into the destination camera by either warp: (warped, mask)."""
    if warp == "forward":
        return warp_frame(src_img, src_points, dst_c2w, H, W, focal, dst_points=dst_points,
                          occlusion_tol=occlusion_tol, radius_px=radius_px)
    return backward_warp(src_img, src_points, src_c2w, dst_points, dst_c2w, H, W, focal, occlusion_tol=occlusion_tol)


def carried_sequence(frames, points, c2ws, H, W, focal, ref=None, occlusion_tol=np.inf):
    """A sequence consistent by construction: frame `ref` (default the middle one) projected onto
    every frame's surface points (projective texturing: each pixel reads `ref` bilinearly where
    its own point lies in `ref`'s camera, whether or not `ref` sees that surface), so every
    colour is a function of the 3D point alone.  Pixels whose point falls outside `ref`'s image
    keep their own colour.  Per-frame AdaIN carried so has AdaIN's texture and no flicker: its
    warping error is what the measure charges a 3D-consistent stylization with AdaIN's texture on
    this geometry and path (resampling, depth that disagrees between views).  Where the NeRF's
    depth is rough (frond edges) the reads jump and add fine detail of their own, so the
    carried frames can be sharper than AdaIN's and their error is, if anything, above that
    floor.  (No occlusion test: on a rough NeRF depth it would reject most pixels, and a surface
    `ref` does not see still gets one colour from every view.)  A finite occlusion_tol (relative
    camera depth, as backward_warp's) carries only pixels whose point `ref` itself sees; the rest
    keep their own colour (a diagnostic of what the unoccluded reads cost).
    Returns (frames [T,H,W,3] float32, coverage [T]: the share of each frame's pixels read from ref)."""
    frames = np.asarray(frames, np.float32)
    points = np.asarray(points, np.float32)
    T = frames.shape[0]
    if frames.shape != (T, H, W, 3) or points.shape != (T, H, W, 3) or len(c2ws) != T:
        raise ConsistencyInputError(
            f"carried_sequence: expected frames and points [T,{H},{W},3] and c2ws [T,3,4] with the "
            f"same T, got {frames.shape}, {points.shape}, {len(c2ws)} cameras")
    ref = T // 2 if ref is None else int(ref)
    if not 0 <= ref < T:
        raise ConsistencyInputError(f"carried_sequence: ref must be in 0..{T - 1}, got {ref}")
    out, coverage = frames.copy(), np.ones(T, np.float32)
    for t in range(T):
        if t == ref:
            continue
        warped, mask = backward_warp(frames[ref], points[ref], c2ws[ref], points[t], c2ws[t], H, W, focal,
                                     occlusion_tol=occlusion_tol)
        out[t][mask] = warped[mask]
        coverage[t] = float(mask.mean())
    return out, coverage


def consistency_error(frames, points, c2ws, H, W, focal, k=1, occlusion_tol=0.03, radius_px=None,
                      warp="forward"):
    """Masked RMSE between frame t+k and frame t warped onto it, for every t.

    frames [T,H,W,3] in [0,1], points [T,H,W,3] world, c2ws [T,3,4]; k = 1 for short range,
    larger (e.g. 7) for long range.
    warp: "forward" (depth-tested splat, warp_frame) or "backward" (bilinear read, backward_warp).
    Returns {"mean", "std"} over the pairs with any valid pixel (nan if none) and "per_pair":
    a list of {"src", "dst", "rmse", "coverage"} (coverage = fraction of valid destination pixels;
    rmse is nan where it is 0).
    """
    frames = np.asarray(frames, np.float32)
    points = np.asarray(points, np.float32)
    c2ws = np.asarray(c2ws, np.float32)
    T = frames.shape[0]
    if frames.shape != (T, H, W, 3) or points.shape != (T, H, W, 3) or c2ws.shape[0] != T:
        raise ConsistencyInputError(
            f"consistency_error: expected frames and points [T,{H},{W},3] and c2ws [T,3,4] with the "
            f"same T, got {frames.shape}, {points.shape}, {c2ws.shape}")
    if warp not in WARPS:
        raise ConsistencyInputError(f"consistency_error: warp must be one of {', '.join(WARPS)}, got {warp!r}")
    if not 1 <= k < T:
        raise ConsistencyInputError(f"consistency_error: frame gap k must be in 1..{T - 1} for {T} frames, got {k}")
    per_pair = []
    for t in range(T - k):
        warped, mask = warp_onto(frames[t], points[t], c2ws[t], points[t + k], c2ws[t + k], H, W, focal, warp,
                                 occlusion_tol=occlusion_tol, radius_px=radius_px)
        per_pair.append({"src": t, "dst": t + k, "rmse": rmse(frames[t + k], warped, mask),
                         "coverage": float(mask.mean())})
    errors = np.array([p["rmse"] for p in per_pair])
    errors = errors[np.isfinite(errors)]
    if errors.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "per_pair": per_pair}
    return {"mean": float(errors.mean()), "std": float(errors.std()), "per_pair": per_pair}
