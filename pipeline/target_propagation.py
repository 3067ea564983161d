"""Consistent stylized targets: each view takes the strokes of the views made before it.

Per-view AdaIN puts its strokes wherever each view's features put them, so the targets of
neighbouring views disagree by a pixel or more on the same surface point. The style MLP, fitting
all of them, learns their average: a blur that costs more style than the whole allowance
(docs/STYLE_STRENGTH.md: the mean of 4 frames shifted by up to 1 px has 1.2-2.0x per-frame
AdaIN's style loss).

With --target_propagation the targets of a style are made in an order that starts at the most
central camera and moves outward (`view_order`). Each pixel of a view whose surface point a
view made before it also sees (that view's own point at the projection lies within
--propagation_thresh) takes that view's colour at the projection (bicubic: bilinear sampling
blurs the strokes, nearest pixel scrambles them where the geometry is noisy); the central view is
asked first, then up to three others made before, nearest camera first. With photoreal renders
of the views (`rgb`) and --propagation_colour_thresh, a pixel is also taken only where the earlier
view's render at the projection has the pixel's own colour (largest channel difference under the
threshold): where the expected depth is wrong (a frond edge over the planter) the points still
pass the distance test, but the colours do not, and copying there tears white planter strokes
into the fronds. With --propagation_edge_thresh e, no pixel is taken that lies on a depth edge
(its depth varies by more than e times itself over its 3x3 neighbourhood) in either view: there
the expected depth mixes the two sides, and on a sharp NeRF a frond's gaps speckle its propagated
target with the wall behind. The mask of taken pixels is closed and opened (3x3) so that no
single pixels of one kind sit among the other. Only pixels no earlier view sees keep the view's
own stylization. All views of a style then show one set of strokes fixed to the surface, as a
video-consistent style transfer does, at the cost of seams where a view's own strokes meet the
propagated ones.

Each resampling softens the strokes a little (bicubic at a half-pixel offset keeps about 80% of
a fine texture's Laplacian energy), and a pixel taken from a view that had itself taken it is
resampled twice or more. With resample="once" (--propagation_resample once) every taken pixel
remembers the view whose own stylization drew it and is read from that stylization directly, at
the projection of its surface point there: one resampling, whatever the chain. interp="lanczos"
(--propagation_interp) reads with Lanczos' 8x8 kernel (about 92% kept at a half-pixel offset).

Geometry at the targets' size: target pixel (i, j) is the ray of geometry pixel (F i, F j)
(dataset/rays.py: pixel centres at integer coordinates about W/2, H/2, focal / F), so its
surface point is points[F j, F i] exactly.
"""
import cv2
import numpy as np

from render.splatting import project_points

MAX_SOURCES = 4  # earlier views asked per view (the central one first); beyond that, little is left
MASK_CLEAN = np.ones((3, 3), np.uint8)


def points_at(points, factor, h, w):
    """[V,H,W,3] geometry point maps -> [V,h,w,3] at the targets' size (every factor-th pixel)."""
    return np.ascontiguousarray(np.asarray(points)[:, ::factor, ::factor][:, :h, :w], np.float32)


def view_order(c2ws):
    """Indices of the views, the camera nearest the cameras' mean centre first, then by distance
    of their centres to it (ties: lower index first)."""
    centres = np.asarray(c2ws, np.float64)[:, :3, 3]
    ref = int(np.argmin(np.linalg.norm(centres - centres.mean(0), axis=1)))
    dist = np.linalg.norm(centres - centres[ref], axis=1)
    return [int(v) for v in np.lexsort((np.arange(len(dist)), dist))]


def nearest_pixel(u, v, h, w):
    """(row, col) int64 of the pixel nearest each projection (u, v), clipped into the image
    (NaN: 0); where a projection falls outside, the caller's own mask decides."""
    with np.errstate(invalid="ignore"):
        col = np.clip(np.nan_to_num(np.floor(u + 0.5)), 0, w - 1).astype(np.int64)
        row = np.clip(np.nan_to_num(np.floor(v + 0.5)), 0, h - 1).astype(np.int64)
    return row, col


def seen_in(points_dst, points_src, c2w_src, h, w, focal, thresh):
    """Where the source view sees the destination view's surface points.

    points_dst [h,w,3], points_src [h,w,3] world; returns (u [h,w], v [h,w] float32: each point's
    projection in source pixels, seen [h,w] bool: in the image, in front, and the source pixel
    nearest the projection holds a point within thresh of it, i.e. not occluded)."""
    u, v, z = project_points(points_dst.reshape(-1, 3), c2w_src, h, w, focal)
    with np.errstate(invalid="ignore"):
        cu, cv = np.floor(u + 0.5), np.floor(v + 0.5)
        inside = (z > 0) & (cu >= 0) & (cu < w) & (cv >= 0) & (cv < h)
    row, col = nearest_pixel(u, v, h, w)
    near = np.linalg.norm(points_src[row, col] - points_dst.reshape(-1, 3), axis=-1) < thresh
    return u.reshape(h, w), v.reshape(h, w), (inside & near).reshape(h, w)


def depth_edges(points, c2ws, thresh):
    """[V,h,w] bool: pixels whose depth along their camera's axis varies over the 3x3
    neighbourhood by more than thresh times itself (points [V,h,w,3] world, c2ws [V,3,4]; the
    camera looks down its -z axis, so a plane facing it has no edge however wide the view)."""
    out = np.zeros(np.shape(points)[:3], bool)
    for v in range(len(out)):
        c2w = np.asarray(c2ws[v], np.float64)
        depth = (-(np.asarray(points[v], np.float64) - c2w[:3, 3]) @ c2w[:3, 2]).astype(np.float32)
        spread = cv2.dilate(depth, MASK_CLEAN) - cv2.erode(depth, MASK_CLEAN)
        out[v] = spread > thresh * np.abs(depth)
    return out


def clean_mask(mask):
    """Close then open a bool mask (3x3): lone holes filled, then lone pixels removed (opening
    first would widen a lone hole into a 3x3 one)."""
    m = cv2.morphologyEx(mask.astype(np.uint8), cv2.MORPH_CLOSE, MASK_CLEAN)
    return cv2.morphologyEx(m, cv2.MORPH_OPEN, MASK_CLEAN).astype(bool)


INTERPOLATIONS = {"cubic": cv2.INTER_CUBIC, "lanczos": cv2.INTER_LANCZOS4}
RESAMPLINGS = ("chained", "once")


def sample(image, u, v, interp="cubic"):
    """image [h,w,3] (uint8 or float) read at pixel coordinates (u, v) [h,w] (interp: a key of
    INTERPOLATIONS), edges replicated; uint8 saturates, floats are clipped to [0, 1]."""
    dtype = image.dtype
    src = np.ascontiguousarray(image if dtype == np.uint8 else image.astype(np.float32))
    out = cv2.remap(src, np.nan_to_num(u).astype(np.float32), np.nan_to_num(v).astype(np.float32),
                    INTERPOLATIONS[interp], borderMode=cv2.BORDER_REPLICATE)
    return out if dtype == np.uint8 else np.clip(out, 0, 1).astype(dtype)


def propagate(own, points, c2ws, focal, thresh, max_sources=MAX_SOURCES, rgb=None, colour_thresh=0.0,
              edge_thresh=0.0, interp="cubic", resample="chained"):
    """own [V,h,w,3] per-view targets (uint8 or float in [0,1]), points [V,h,w,3] world,
    c2ws [V,3,4]; rgb [V,h,w,3] float photoreal renders and colour_thresh > 0: the colour test
    (module doc) too; edge_thresh > 0: no pixel on a depth edge (depth_edges) of either view;
    interp: a key of INTERPOLATIONS; resample "chained" reads a taken pixel from the earlier
    view's target as made, "once" from the own stylization of the view that drew it.

    Returns (targets [V,h,w,3] of own's dtype, taken [V] float: the fraction of each view's
    pixels taken from earlier views)."""
    own = np.asarray(own)
    V, h, w = own.shape[:3]
    if points.shape != (V, h, w, 3) or len(c2ws) != V:
        raise ValueError(f"propagate: expected points [{V},{h},{w},3] and {V} cameras, "
                         f"got {points.shape} and {len(c2ws)}")
    if interp not in INTERPOLATIONS or resample not in RESAMPLINGS:
        raise ValueError(f"propagate: interp must be one of {sorted(INTERPOLATIONS)} and resample one of "
                         f"{list(RESAMPLINGS)}, got {interp!r} and {resample!r}")
    check_colour = colour_thresh > 0
    if check_colour and (rgb is None or np.shape(rgb) != (V, h, w, 3)):
        raise ValueError(f"propagate: the colour test needs renders [{V},{h},{w},3], got "
                         f"{None if rgb is None else np.shape(rgb)}")
    edges = depth_edges(points, c2ws, edge_thresh) if edge_thresh > 0 else None
    order = view_order(c2ws)
    centres = np.asarray(c2ws, np.float64)[:, :3, 3]
    out = np.array(own, copy=True)
    drawn_by = np.broadcast_to(np.arange(V)[:, None, None], (V, h, w)).copy()  # whose stylization
    taken = np.zeros(V)
    for n, v in enumerate(order):
        done = order[:n]
        if not done:
            continue
        others = sorted(done[1:], key=lambda s: (np.linalg.norm(centres[s] - centres[v]), s))
        filled = np.zeros((h, w), bool)
        for s in [done[0]] + others[:max_sources - 1]:
            # where view v's points fall in view s (column, row) and which of them s sees
            col_s, row_s, seen = seen_in(points[v], points[s], c2ws[s], h, w, focal, thresh)
            if check_colour:
                seen &= np.abs(sample(rgb[s], col_s, row_s, interp) - rgb[v]).max(-1) < colour_thresh
            if edges is not None:
                seen &= ~edges[v] & ~edges[s][nearest_pixel(col_s, row_s, h, w)]
            use = clean_mask(seen) & ~filled
            if resample == "once":
                drawn_by[v][use] = drawn_by[s][nearest_pixel(col_s, row_s, h, w)][use]
            else:
                out[v][use] = sample(out[s], col_s, row_s, interp)[use]
            filled |= use
        if resample == "once":
            for o in np.unique(drawn_by[v][filled]):
                # the surface points read straight from the stylization that drew them
                col_o, row_o, _ = seen_in(points[v], points[o], c2ws[o], h, w, focal, thresh)
                here = filled & (drawn_by[v] == o)
                out[v][here] = sample(own[o], col_o, row_o, interp)[here]
        taken[v] = filled.mean()
    return out, taken
