"""render/renderer.py: an analytic slab, chunked vs whole rendering, gradients into a NeRF."""
import dataclasses

import jittor as jt
import numpy as np
import pytest

from models.embedder import PositionalEncoding
from models.nerf import NeRF
from render.options import RenderOptions
from render.renderer import NeRFField, expected_points, render_image, render_rays, row_argmax

SLAB_RGB = np.array([0.2, 0.5, 0.8], np.float32)


def slab_field(pts, viewdirs=None):
    """Opaque (sigma 1e3) slab 0.5 <= z <= 1.0 with |x| < 0.5, constant colour; empty elsewhere."""
    x, z = pts[..., 0], pts[..., 2]
    inside = (z >= 0.5) & (z <= 1.0) & (jt.abs(x) < 0.5)
    sigma = jt.ternary(inside, jt.full(z.shape, 1e3, dtype="float32"), jt.full(z.shape, -1.0, dtype="float32"))
    rgb = jt.array(SLAB_RGB).reshape((1, 1, 3)).broadcast(tuple(pts.shape))
    return rgb, sigma


def slab_rays():
    # rays from z=2 straight down -z: the slab front (z=1) is at t=1; the last two rays miss it
    xs = np.array([-0.3, 0.0, 0.2, 0.4, 0.8, -0.9], np.float32)
    rays_o = np.stack([xs, np.zeros_like(xs), np.full_like(xs, 2.0)], -1)
    rays_d = np.tile(np.array([[0, 0, -1.0]], np.float32), (6, 1))
    return rays_o, rays_d


def test_analytic_slab():
    rays_o, rays_d = slab_rays()
    opts = RenderOptions(near=0.0, far=4.0, n_samples=64, n_fine=64, perturb=False, noise_std=0.0, white_bkgd=True)
    out = render_rays(rays_o, rays_d, None, slab_field, slab_field, opts=opts)
    hit, miss = slice(0, 4), slice(4, 6)
    for level, depth_tol in (("coarse", 4.0 / 63), ("fine", 0.005)):
        o = {k: v.numpy() for k, v in out[level].items()}
        np.testing.assert_allclose(o["rgb"][hit], np.tile(SLAB_RGB, (4, 1)), atol=1e-4)
        np.testing.assert_allclose(o["acc"][hit], 1.0, atol=1e-4)
        assert (np.abs(o["depth"][hit] - 1.0) < depth_tol).all(), (level, o["depth"][hit])
        np.testing.assert_allclose(o["acc"][miss], 0.0, atol=1e-6)
        np.testing.assert_allclose(o["rgb"][miss], 1.0, atol=1e-6)  # white background
    # the fine level sees all 128 depths, sorted, and puts its importance samples near the front
    z_fine = out["fine"]["z_vals"].numpy()
    assert z_fine.shape == (6, 128) and (np.diff(z_fine, axis=-1) >= 0).all()
    assert (np.abs(z_fine[0] - 1.0) < 0.07).sum() >= 64
    pts = expected_points(rays_o, rays_d, out["fine"]["depth"].numpy())
    np.testing.assert_allclose(pts[hit, 2], 1.0, atol=0.005)
    np.testing.assert_allclose(pts[hit, 0], rays_o[hit, 0])


def tiny_fields(use_viewdirs=True, D=2, W=16):
    ex, ed = PositionalEncoding(3), PositionalEncoding(2)
    nets = [NeRF(D=D, W=W, input_ch=ex.out_dim, input_ch_views=ed.out_dim, skips=(1,), use_viewdirs=use_viewdirs)
            for _ in range(2)]
    return nets, [NeRFField(n, ex, ed if use_viewdirs else None) for n in nets]


def random_rays(n):
    rays_o = np.random.uniform(-0.5, 0.5, size=(n, 3)).astype(np.float32)
    rays_d = np.random.randn(n, 3).astype(np.float32)
    viewdirs = rays_d / np.linalg.norm(rays_d, axis=-1, keepdims=True)
    return rays_o, rays_d, viewdirs


def test_nerf_field_matches_direct_network_call():
    (net, _), (field, _) = tiny_fields()
    pts = np.random.randn(3, 4, 3).astype(np.float32)
    vd = np.random.randn(3, 3).astype(np.float32)
    rgb, sigma = field(jt.array(pts), jt.array(vd))
    rgb_ref, sigma_ref = net(field.embed_xyz(jt.array(pts)), field.embed_dir(jt.array(np.repeat(vd[:, None], 4, 1))))
    assert rgb.shape == (3, 4, 3) and sigma.shape == (3, 4)
    np.testing.assert_allclose(rgb.numpy(), rgb_ref.numpy(), atol=1e-6)
    np.testing.assert_allclose(sigma.numpy(), sigma_ref.numpy(), atol=1e-5)


def test_chunked_image_equals_one_pass():
    _, (coarse, fine) = tiny_fields()
    H, W = 4, 5
    rays_o, rays_d, viewdirs = random_rays(H * W)
    opts = RenderOptions(near=0.5, far=2.0, n_samples=8, n_fine=6, perturb=False, noise_std=0.0)
    whole = render_rays(rays_o, rays_d, viewdirs, coarse, fine, opts=opts)
    img = render_image(rays_o.reshape(H, W, 3), rays_d.reshape(H, W, 3), viewdirs.reshape(H, W, 3), H, W, 7,
                       keys=("rgb", "depth", "acc", "weights"), opts=opts, coarse_field=coarse, fine_field=fine)
    assert img["fine"]["rgb"].shape == (H, W, 3) and img["fine"]["depth"].shape == (H, W)
    assert img["fine"]["weights"].shape == (H, W, 14) and img["coarse"]["weights"].shape == (H, W, 8)
    for level in ("coarse", "fine"):
        for key in ("rgb", "depth", "acc", "weights"):
            ref = whole[level][key].numpy()
            np.testing.assert_allclose(img[level][key].reshape(ref.shape), ref, rtol=1e-5, atol=1e-6)
    # per-ray near/far arrays are split with the chunks
    near = np.linspace(0.4, 0.6, H * W).astype(np.float32)
    per_ray = dataclasses.replace(opts, near=near)
    img2 = render_image(rays_o, rays_d, viewdirs, H, W, 6, opts=per_ray, coarse_field=coarse, fine_field=fine)
    ref2 = render_rays(rays_o, rays_d, viewdirs, coarse, fine, opts=per_ray)
    np.testing.assert_allclose(img2["coarse"]["depth"].reshape(-1), ref2["coarse"]["depth"].numpy(), rtol=1e-5)
    with pytest.raises(ValueError, match="H\\*W"):
        render_image(rays_o, rays_d, viewdirs, H + 1, W, 7, opts=opts, coarse_field=coarse)
    with pytest.raises(TypeError, match="RenderOptions"):
        render_rays(rays_o, rays_d, viewdirs, coarse, fine, opts=dataclasses.asdict(opts))


def test_one_adam_step_reduces_mse_and_reaches_both_nets():
    (net_c, net_f), (coarse, fine) = tiny_fields(D=3, W=32)
    rays_o, rays_d, viewdirs = random_rays(64)
    target = jt.array(np.random.rand(64, 3).astype(np.float32))
    opts = RenderOptions(near=0.5, far=2.0, n_samples=16, n_fine=16, perturb=False, noise_std=0.0)

    def loss_fn():
        out = render_rays(rays_o, rays_d, viewdirs, coarse, fine, opts=opts)
        return ((out["coarse"]["rgb"] - target) ** 2).mean() + ((out["fine"]["rgb"] - target) ** 2).mean()

    params = net_c.parameters() + net_f.parameters()
    before = [p.numpy().copy() for p in params]
    opt = jt.optim.Adam(params, lr=1e-3)
    loss0 = loss_fn()
    opt.step(loss0)
    loss1 = loss_fn()
    assert float(loss1.item()) < float(loss0.item())
    changed = [not np.array_equal(b, p.numpy()) for b, p in zip(before, params)]
    assert all(changed), [p.name() for p, c in zip(params, changed) if not c]


def test_perturb_and_noise_are_random_and_without_viewdirs():
    _, (coarse, fine) = tiny_fields(use_viewdirs=False)
    rays_o, rays_d, _ = random_rays(8)
    opts = RenderOptions(near=0.5, far=2.0, n_samples=8, n_fine=4, perturb=True, noise_std=1.0)
    a = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts)["fine"]["rgb"].numpy()
    b = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts)["fine"]["rgb"].numpy()
    assert a.shape == (8, 3) and not np.allclose(a, b)
    only_coarse = render_rays(rays_o, rays_d, None, coarse, None,
                              opts=RenderOptions(near=0.5, far=2.0, n_samples=8, n_fine=0))
    assert set(only_coarse) == {"coarse"}


def test_coarse_level_without_colour_keeps_the_fine_image():
    """coarse_rgb=False: no colour head at the coarse level (no "rgb" there), the same weights,
    depth and fine image as the full render; render_image skips the missing key."""
    from models.embedder import PositionalEncoding
    from models.nerf import NeRF
    from render.renderer import NeRFField, render_image
    embed_x, embed_d = PositionalEncoding(3), PositionalEncoding(2)
    rng = np.random.default_rng(5)
    fields = [NeRFField(NeRF(D=3, W=16, input_ch=embed_x.out_dim, input_ch_views=embed_d.out_dim), embed_x, embed_d)
              for _ in range(2)]
    ro = rng.uniform(-0.1, 0.1, (12, 3)).astype(np.float32)
    rd = (np.array([0, 0, -1.0]) + rng.uniform(-0.2, 0.2, (12, 3))).astype(np.float32)
    vd = rd / np.linalg.norm(rd, axis=-1, keepdims=True)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6)
    full = render_rays(jt.array(ro), jt.array(rd), jt.array(vd), *fields, opts=opts)
    lean = render_rays(jt.array(ro), jt.array(rd), jt.array(vd), *fields, opts=opts, coarse_rgb=False)
    assert "rgb" not in lean["coarse"]
    for key in ("weights", "depth", "acc"):
        np.testing.assert_allclose(lean["coarse"][key].numpy(), full["coarse"][key].numpy(), rtol=1e-5, atol=1e-6)
    for key in ("rgb", "depth", "z_vals"):
        np.testing.assert_allclose(lean["fine"][key].numpy(), full["fine"][key].numpy(), rtol=1e-5, atol=1e-6)
    img = render_image(ro.reshape(3, 4, 3), rd.reshape(3, 4, 3), vd.reshape(3, 4, 3), 3, 4, 5,
                       opts=opts, coarse_field=fields[0], fine_field=fields[1], coarse_rgb=False)
    assert set(img["coarse"]) == {"depth", "acc"} and img["fine"]["rgb"].shape == (3, 4, 3)
    np.testing.assert_allclose(img["fine"]["rgb"].reshape(12, 3), full["fine"]["rgb"].numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("top_k", [0, 2])
def test_several_colours_over_one_geometry_equal_separate_shared_colour_renders(top_k):
    """render_image_colors (the stylized videos: densities once, one colour pass per style) gives
    each colour exactly what render_image(share_color=True) gives with that colour alone, also
    when coloured from each ray's top_k heaviest samples."""
    from render.renderer import render_image_colors
    embed_x = PositionalEncoding(3)
    rng = np.random.default_rng(9)
    nets = [NeRF(D=3, W=16, input_ch=embed_x.out_dim, use_viewdirs=False) for _ in range(2)]
    tints = [jt.array(rng.uniform(0.2, 1.0, 3).astype(np.float32)) for _ in range(3)]

    class Field:  # density from a NeRF; colour k: the NeRF's colour head times tint k
        def __init__(self, net, k=None):
            self.net, self.k = net, k

        def density(self, pts):
            sigma, _ = self.net.density(embed_x(pts.reshape(-1, 3)))
            return sigma.reshape(pts.shape[:2]) * 5 + 3  # mostly positive: partly opaque rays

        def color(self, pts, k):
            _, feature = self.net.density(embed_x(pts.reshape(-1, 3)))
            return (self.net.color(feature, None) * tints[k].reshape(1, 3)).reshape(tuple(pts.shape[:2]) + (3,))

        def colors(self, pts):
            return self.color(pts, self.k)

        def __call__(self, pts, viewdirs=None):
            return self.color(pts, self.k), self.density(pts)

    ro = rng.uniform(-0.1, 0.1, (3, 5, 3)).astype(np.float32)
    rd = (np.array([0, 0, -1.0]) + rng.uniform(-0.2, 0.2, (3, 5, 3))).astype(np.float32)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6, top_k=top_k)
    together = render_image_colors(ro, rd, 3, 5, 4, Field(nets[0]), Field(nets[1]), 3, opts=opts,
                                   keys=("rgb", "depth", "acc"))
    assert len(together) == 3
    assert together[0]["fine"]["rgb"].min() > 0.01 and together[0]["fine"]["depth"].std() > 1e-3  # not empty
    for k in range(3):
        alone = render_image(ro, rd, None, 3, 5, 4, opts=opts, coarse_field=Field(nets[0], k),
                             fine_field=Field(nets[1], k), share_color=True, keys=("rgb", "depth", "acc"))
        for level in ("coarse", "fine"):
            for key in ("rgb", "depth", "acc"):
                np.testing.assert_allclose(together[k][level][key], alone[level][key], rtol=1e-5, atol=1e-6)
    assert not np.allclose(together[0]["fine"]["rgb"], together[1]["fine"]["rgb"])  # the colours differ
    with pytest.raises(ValueError, match="n_fine"):
        render_image_colors(ro, rd, 3, 5, 4, Field(nets[0]), Field(nets[1]), 1,
                            opts=RenderOptions(near=0.0, far=1.0, n_fine=0))


# ---------------------------------------------------------------- row argmax
def test_row_argmax_matches_numpy_first_of_equals():
    """Ties (quantised values, whole rows of zeros) keep the first index, as np.argmax does."""
    rng = np.random.default_rng(5)
    x = np.round(rng.random((300, 17)) * 4).astype(np.float32)
    x[:5] = 0
    x[5:9] = -np.round(rng.random((4, 17)) * 4)  # rows without a positive value
    index, value = row_argmax(jt.array(x))
    assert index.dtype == jt.int32
    np.testing.assert_array_equal(index.numpy(), np.argmax(x, axis=1))
    np.testing.assert_array_equal(value.numpy(), x.max(axis=1))


def test_row_argmax_one_column_and_bad_shapes():
    index, value = row_argmax(jt.array(np.array([[2.0], [-1.0]], np.float32)))
    np.testing.assert_array_equal(index.numpy(), [0, 0])
    np.testing.assert_array_equal(value.numpy(), [2.0, -1.0])
    for bad in (np.zeros(4, np.float32), np.zeros((3, 0), np.float32)):
        with pytest.raises(ValueError, match="row_argmax"):
            row_argmax(jt.array(bad))
