"""pipeline/target_propagation.py against analytic cases: cameras over a plane, where a sideways
camera shift moves every point by a known whole number of pixels."""
import numpy as np
import pytest

from pipeline.target_propagation import clean_mask, depth_edges, points_at, propagate, sample, seen_in, view_order

H, W, F, DEPTH = 12, 16, 10.0, 5.0


def camera(x, y=0.0):
    """Looks down -z (identity rotation), centre at (x, y, 0)."""
    c2w = np.zeros((3, 4), np.float32)
    c2w[:, :3] = np.eye(3)
    c2w[:, 3] = [x, y, 0.0]
    return c2w


def plane_points(c2w, depth=DEPTH, h=H, w=W, f=F):
    """World points [h,w,3] of a camera's pixels on the plane z = -depth (dataset/rays.py's
    pixel convention: direction [(i - w/2)/f, -(j - h/2)/f, -1])."""
    i, j = np.meshgrid(np.arange(w), np.arange(h), indexing="xy")
    d = np.stack([(i - w / 2) / f, -(j - h / 2) / f, -np.ones_like(i, float)], -1)
    return (c2w[:, 3] + depth * d).astype(np.float32)


def test_view_order_starts_at_the_central_camera_and_moves_outward():
    c2ws = np.stack([camera(x) for x in [0.0, 1.0, 2.0, 3.0, 4.5]])  # mean x 2.1
    assert view_order(c2ws) == [2, 1, 3, 0, 4]
    # ties in distance: the lower index first
    assert view_order(np.stack([camera(x) for x in [-1.0, 0.0, 1.0]])) == [1, 0, 2]


def test_points_at_takes_every_factor_th_pixel():
    pts = np.random.default_rng(0).normal(size=(2, 9, 11, 3)).astype(np.float32)
    np.testing.assert_array_equal(points_at(pts, 2, 4, 5), pts[:, 0:8:2, 0:10:2])


def test_seen_in_projects_onto_the_shifted_pixel():
    """A camera 1 unit to the right sees the plane shifted by f * 1 / depth = 2 pixels."""
    dst, src = camera(1.0), camera(0.0)
    u, v, seen = seen_in(plane_points(dst), plane_points(src), src, H, W, F, thresh=0.01)
    i, j = np.meshgrid(np.arange(W), np.arange(H), indexing="xy")
    np.testing.assert_allclose(u, i + 2, atol=1e-4)
    np.testing.assert_allclose(v, j, atol=1e-4)
    assert seen[:, :W - 2].all() and not seen[:, W - 2:].any()  # the last two columns leave the image


def test_seen_in_is_false_where_the_source_sees_something_nearer():
    dst, src = camera(1.0), camera(0.0)
    src_points = plane_points(src)
    src_points[:, 5:8] = plane_points(src, depth=3.0)[:, 5:8]  # a nearer strip hides the plane there
    _, _, seen = seen_in(plane_points(dst), src_points, src, H, W, F, thresh=0.01)
    # destination columns that project onto source columns 5..7 are occluded
    assert not seen[:, 3:6].any()
    assert seen[:, :3].all() and seen[:, 6:W - 2].all()


def test_sample_at_whole_pixels_is_exact_and_clips():
    img = np.random.default_rng(1).uniform(0, 1, (H, W, 3)).astype(np.float32)
    i, j = np.meshgrid(np.arange(W, dtype=np.float32), np.arange(H, dtype=np.float32), indexing="xy")
    np.testing.assert_allclose(sample(img, i + 1, j), np.concatenate([img[:, 1:], img[:, -1:]], 1), atol=1e-6)
    sharp = np.zeros((H, W, 3), np.float32)
    sharp[:, W // 2:] = 1.0  # bicubic overshoots at an edge: clipped to [0, 1]
    out = sample(sharp, i + 0.5, j)
    assert out.min() >= 0 and out.max() <= 1
    as8 = sample((img * 255).astype(np.uint8), i + 1, j)
    assert as8.dtype == np.uint8


def test_lanczos_keeps_more_of_a_fine_texture_than_bicubic_at_a_half_pixel():
    """Laplacian energy of a blurred noise texture read at a half-pixel offset (NumPy reference:
    the energy of the texture itself); both kernels are exact at whole pixels."""
    img = np.random.default_rng(4).uniform(0, 1, (64, 64, 3)).astype(np.float32)
    img = (img + np.roll(img, 1, 0) + np.roll(img, 1, 1)) / 3  # some correlation, like strokes
    i, j = np.meshgrid(np.arange(64, dtype=np.float32), np.arange(64, dtype=np.float32), indexing="xy")

    def energy(x):  # 4-neighbour Laplacian, away from the replicated border
        x = x[8:-8, 8:-8]
        return float(((4 * x[1:-1, 1:-1] - x[:-2, 1:-1] - x[2:, 1:-1] - x[1:-1, :-2] - x[1:-1, 2:]) ** 2).mean())
    kept = {k: energy(sample(img, i + 0.5, j + 0.5, k)) / energy(img) for k in ("cubic", "lanczos")}
    assert kept["cubic"] < kept["lanczos"] < 1.0
    for k in ("cubic", "lanczos"):
        np.testing.assert_allclose(sample(img, i + 2, j, k)[:, :-8], img[:, 2:-6], atol=1e-5)


def test_clean_mask_removes_lone_pixels_of_either_kind():
    m = np.zeros((12, 12), bool)
    m[2, 2] = True            # a lone taken pixel
    m[5:10, 5:10] = True
    m[7, 7] = False           # a lone hole
    out = clean_mask(m)
    assert not out[2, 2] and out[7, 7]
    np.testing.assert_array_equal(out[4:11, 4:11], m[4:11, 4:11] | (np.arange(7)[:, None] == 3) & (np.arange(7) == 3))


def test_propagate_copies_the_central_views_strokes_along_the_shift():
    """Three cameras at x = -1, 0, 1: the central one keeps its target; the others take its
    pixels shifted by 2 columns where they see them, and keep their own in the last / first two."""
    rng = np.random.default_rng(2)
    c2ws = np.stack([camera(-1.0), camera(0.0), camera(1.0)])
    pts = np.stack([plane_points(c) for c in c2ws])
    own = rng.integers(0, 256, (3, H, W, 3)).astype(np.uint8)
    out, taken = propagate(own, pts, c2ws, F, thresh=0.01)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out[1], own[1])
    np.testing.assert_array_equal(out[2][:, :W - 2], own[1][:, 2:])  # right camera: u = i + 2
    np.testing.assert_array_equal(out[2][:, W - 2:], own[2][:, W - 2:])
    np.testing.assert_array_equal(out[0][:, 2:], own[1][:, :W - 2])  # left camera: u = i - 2
    np.testing.assert_array_equal(out[0][:, :2], own[0][:, :2])
    np.testing.assert_allclose(taken, [(W - 2) / W, 0.0, (W - 2) / W])


def test_propagate_fills_from_a_later_source_what_the_central_view_does_not_see():
    """Cameras at x = 0, 1, 2 (order 1, 0, 2 from the centre 1): view 2's last two columns are
    outside view 1 ... and outside view 0 too; its first columns come from view 1."""
    rng = np.random.default_rng(3)
    c2ws = np.stack([camera(0.0), camera(1.0), camera(2.0)])
    pts = np.stack([plane_points(c) for c in c2ws])
    own = rng.uniform(0, 1, (3, H, W, 3)).astype(np.float32)
    out, taken = propagate(own, pts, c2ws, F, thresh=0.01)
    np.testing.assert_allclose(out[2][:, :W - 2], own[1][:, 2:], atol=1e-6)
    np.testing.assert_allclose(out[2][:, W - 2:], own[2][:, W - 2:])
    # view 0 is further than view 1 from view 2's missing part: nothing else to take there
    np.testing.assert_allclose(taken[2], (W - 2) / W)


def test_propagate_once_reads_a_pixel_taken_in_turn_from_the_stylization_that_drew_it():
    """Cameras over the plane (one unit = 2 pixels): central c (0, 0), t (0, 1), s (0.75, 1),
    v (1.5, 1), and one far off (-2.25, -3) that puts the cameras' mean at c. The top two rows of
    s, v and t lie above c's image. s takes its top rows from t (1.5 columns over: a fractional
    read); v, asking c and then its nearest earlier view s (max_sources 2), takes them from s. So
    chained, v's top rows are t's own strokes read twice at half pixels; once, v reads t's own
    target at its points' projection there, 3 whole columns over: t's pixels exactly."""
    rng = np.random.default_rng(5)
    c2ws = np.stack([camera(0.0), camera(0.0, 1.0), camera(0.75, 1.0), camera(1.5, 1.0), camera(-2.25, -3.0)])
    assert view_order(c2ws)[:4] == [0, 1, 2, 3]
    pts = np.stack([plane_points(c) for c in c2ws])
    own = rng.uniform(0, 1, (5, H, W, 3)).astype(np.float32)
    kw = dict(thresh=0.3, max_sources=2)  # half a pixel is 0.25 units on the plane
    once, _ = propagate(own, pts, c2ws, F, resample="once", **kw)
    chained, _ = propagate(own, pts, c2ws, F, **kw)
    cols = slice(1, W - 6)  # v's column i is t's i + 3; away from the images' borders
    np.testing.assert_allclose(once[3][:2, cols], own[1][:2, 4:W - 3], atol=1e-6)
    assert np.abs(chained[3][:2, cols] - own[1][:2, 4:W - 3]).mean() > 0.05  # softened twice
    # where both read c's own target (rows it sees) one read is all either makes
    np.testing.assert_allclose(once[3][4:-2, 2:W - 5], chained[3][4:-2, 2:W - 5], atol=1e-6)


def test_propagate_with_a_wrong_geometry_shape_is_a_clear_error():
    with pytest.raises(ValueError, match="expected points"):
        propagate(np.zeros((2, H, W, 3), np.uint8), np.zeros((2, H, W - 1, 3), np.float32),
                  np.stack([camera(0.0), camera(1.0)]), F, thresh=0.1)


def test_propagate_with_the_colour_test_keeps_its_own_where_the_renders_disagree():
    """Right camera over a plane: where the central view's render at the projection has another
    colour than the view's own (a wrong depth there), the view keeps its own target; elsewhere
    it takes the central view's, as without the test."""
    rng = np.random.default_rng(4)
    c2ws = np.stack([camera(-1.0), camera(0.0), camera(1.0)])
    pts = np.stack([plane_points(c) for c in c2ws])
    own = rng.uniform(0, 1, (3, H, W, 3)).astype(np.float32)
    renders = np.full((3, H, W, 3), 0.5, np.float32)
    renders[2][4:8, 3:7] = 0.9          # view 2 sees white where the others see grey
    out, taken = propagate(own, pts, c2ws, F, thresh=0.01, rgb=renders, colour_thresh=0.1)
    np.testing.assert_allclose(out[2][4:8, 3:7], own[2][4:8, 3:7])
    keep = np.ones((H, W), bool)
    keep[4:8, 3:7] = False
    keep[:, W - 2:] = False
    np.testing.assert_allclose(out[2][keep], np.concatenate([own[1][:, 2:], own[1][:, :2]], 1)[keep], atol=1e-6)
    np.testing.assert_allclose(taken[2], ((W - 2) * H - 16) / (W * H))
    # a difference under the threshold is no disagreement
    renders[2][4:8, 3:7] = 0.55
    out2, _ = propagate(own, pts, c2ws, F, thresh=0.01, rgb=renders, colour_thresh=0.1)
    np.testing.assert_allclose(out2[2][:, :W - 2], own[1][:, 2:], atol=1e-6)


def test_propagate_colour_test_without_renders_is_a_clear_error():
    with pytest.raises(ValueError, match="the colour test needs renders"):
        propagate(np.zeros((2, H, W, 3), np.uint8), np.zeros((2, H, W, 3), np.float32),
                  np.stack([camera(0.0), camera(1.0)]), F, thresh=0.1, colour_thresh=0.1)


def test_depth_edges_mark_the_pixels_beside_a_depth_step_only():
    """A plane at depth 5 with a strip at depth 3 (columns 5..7): a pixel is an edge where its
    3x3 neighbourhood holds both depths (columns 4, 5, 7, 8; not the strip's middle); a plane
    facing the camera has none, however wide the view."""
    c = camera(0.0)
    pts = plane_points(c)
    pts[:, 5:8] = plane_points(c, depth=3.0)[:, 5:8]
    edges = depth_edges(pts[None], c[None], 0.05)[0]
    want = np.zeros((H, W), bool)
    want[:, [4, 5, 7, 8]] = True
    np.testing.assert_array_equal(edges, want)
    assert not depth_edges(plane_points(c)[None], c[None], 0.05).any()


def test_propagate_with_the_edge_test_keeps_its_own_at_a_depth_step():
    """Right camera over the plane, with a nearer strip in both views' geometry where they see
    it: pixels on its edges in either view keep their own target; the plane away from it is
    still taken from the central view."""
    rng = np.random.default_rng(5)
    c2ws = np.stack([camera(-1.0), camera(0.0), camera(1.0)])
    pts = np.stack([plane_points(c) for c in c2ws])
    own = rng.uniform(0, 1, (3, H, W, 3)).astype(np.float32)
    plain, _ = propagate(own, pts, c2ws, F, thresh=0.01)
    edged = pts.copy()
    edged[2][:, 3:5] += np.float32([0.0, 0.0, 1.0])  # view 2 sees something 1 unit nearer there
    out, taken = propagate(own, edged, c2ws, F, thresh=0.01, edge_thresh=0.05)
    # view 2's columns 2..5 are on the step (its own edge test); they and the moved strip keep their own
    np.testing.assert_allclose(out[2][:, 2:6], own[2][:, 2:6])
    np.testing.assert_allclose(out[2][:, 7:W - 2], plain[2][:, 7:W - 2])
    assert taken[2] < (W - 2) / W
