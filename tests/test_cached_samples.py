"""render/cached_samples.py and render.renderer.shared_weights: rendering a frozen density from
each ray's K heaviest samples, against a NumPy selection and the exact share_color renderer."""
import jittor as jt
import numpy as np
import pytest

from models.embedder import PositionalEncoding
from models.nerf import NeRF
from models.style_mlp import StyleMLP
from pipeline.style_stage import StyleField
from render.cached_samples import cached_points, composite_cached, jittered, kept_weight, top_samples
from render.options import RenderOptions
from render.renderer import render_rays, shared_weights


def test_top_samples_keeps_the_heaviest_in_depth_order_with_each_levels_opacity():
    rng = np.random.default_rng(0)
    z = np.sort(rng.uniform(0, 1, (50, 12)), 1)
    wc, wf = rng.uniform(0, 0.2, (50, 12)), rng.uniform(0, 0.2, (50, 12))
    wc[:, 5] = 0.0  # a sample without coarse weight
    for k in (1, 4, 12):
        t, kc, kf, spread = top_samples(z, wc, wf, k)
        assert t.shape == kc.shape == kf.shape == spread.shape == (50, k) and t.dtype == np.float32
        for r in range(50):
            ref = np.sort(np.argsort(-(wc[r] + wf[r]), kind="stable")[:k])  # NumPy's own ranking
            np.testing.assert_allclose(t[r], z[r, ref], rtol=1e-6)
            for j, i in enumerate(ref):  # half the gap to the nearer neighbour (ends: their one gap)
                gaps = [z[r, i] - z[r, i - 1]] if i > 0 else []
                gaps += [z[r, i + 1] - z[r, i]] if i < 11 else []
                assert spread[r, j] == pytest.approx(0.5 * min(gaps), rel=1e-5)
            np.testing.assert_allclose(kc[r], wc[r, ref] * wc[r].sum() / wc[r, ref].sum(), rtol=1e-5)
            np.testing.assert_allclose(kf[r], wf[r, ref] * wf[r].sum() / wf[r, ref].sum(), rtol=1e-5)
    with pytest.raises(ValueError, match="k must be in 1..12"):
        top_samples(z, wc, wf, 13)


def test_a_level_whose_weight_the_kept_samples_miss_keeps_its_opacity_there():
    """The heaviest sample carries coarse weight only (a coarse depth the fine level passes through
    with no weight): K = 1 gives the fine level its whole opacity at that depth, not 0 (a black
    ray); with K = 2 each level keeps its own sample's weight."""
    z = np.linspace(0, 1, 5)[None]
    wc, wf = np.array([[0, 0.9, 0, 0, 0]]), np.array([[0, 0, 0.3, 0.5, 0]])
    t, kc, kf, _ = top_samples(z, wc, wf, 1)
    np.testing.assert_allclose(t, [[0.25]])
    np.testing.assert_allclose(kc, [[0.9]], rtol=1e-6)
    np.testing.assert_allclose(kf, [[0.8]], rtol=1e-6)
    t, kc, kf, _ = top_samples(z, wc, wf, 2)
    np.testing.assert_allclose(t, [[0.25, 0.75]])
    np.testing.assert_allclose(kc, [[0.9, 0]], atol=1e-7)
    np.testing.assert_allclose(kf, [[0, 0.8]], rtol=1e-6, atol=1e-7)


def test_surface_keeps_one_point_a_ray_at_its_expected_depth():
    """surface: the one kept depth is sum(w_fine z) / sum(w_fine) (NumPy), its weights each level's
    opacity as for k = 1; a ray without fine weight keeps its heaviest sample; only k = 1."""
    rng = np.random.default_rng(2)
    z = np.sort(rng.uniform(0, 1, (40, 10)), 1)
    wc, wf = rng.uniform(0, 0.1, (40, 10)), rng.uniform(0, 0.1, (40, 10))
    wf[3] = 0.0
    t, kc, kf, spread = top_samples(z, wc, wf, 1, surface=True)
    heaviest = top_samples(z, wc, wf, 1)
    expected = (wf * z).sum(1) / np.where(wf.sum(1) > 0, wf.sum(1), 1)
    np.testing.assert_allclose(np.delete(t[:, 0], 3), np.delete(expected, 3), rtol=1e-5)
    assert t[3, 0] == heaviest[0][3, 0]
    for a, b in zip((kc, kf, spread), heaviest[1:]):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(kf[:, 0], wf.sum(1), rtol=1e-5)
    with pytest.raises(ValueError, match="surface keeps one depth a ray"):
        top_samples(z, wc, wf, 2, surface=True)


def test_surface_jitter_spreads_the_point_over_the_rays_depth_spread():
    """surface_jitter s: the spread is max(the sample's half gap, s * the depth std under the fine
    weights): two equal fine weights at 0.2 and 0.6 give expected depth 0.4, std 0.2 (analytic);
    a ray whose weight sits on one sample keeps its half gap (std 0); the depth is unchanged."""
    z = np.tile(np.linspace(0, 1, 11), (3, 1))
    wc = np.zeros((3, 11))
    wf = np.zeros((3, 11))
    wf[0, [2, 6]] = 0.5
    wf[1, 5] = 1.0
    wf[2, [2, 6]] = 0.05  # a faint ray: the same std (the weights are normalised)
    t0, _, _, spread0 = top_samples(z, wc, wf, 1, surface=True)
    t, _, _, spread = top_samples(z, wc, wf, 1, surface=True, surface_jitter=1.5)
    np.testing.assert_array_equal(t, t0)
    np.testing.assert_allclose(t[:, 0], [0.4, 0.5, 0.4], rtol=1e-6)
    np.testing.assert_allclose(spread0[:, 0], 0.05, rtol=1e-5)  # half the 0.1 gap
    np.testing.assert_allclose(spread[:, 0], [0.3, 0.05, 0.3], rtol=1e-5)
    _, _, _, small = top_samples(z, wc, wf, 1, surface=True, surface_jitter=0.1)  # 0.02 < the half gap
    np.testing.assert_allclose(small[:, 0], 0.05, rtol=1e-5)


def test_a_ray_without_weight_keeps_its_first_sample():
    """k = 1 on a ray whose samples all weigh the same (none: empty space) keeps its first sample,
    with its one gap's half as spread; surface keeps it too (no expected depth without weight)."""
    z = np.tile(np.linspace(0, 1, 5), (2, 1))
    wc, wf = np.zeros((2, 5)), np.zeros((2, 5))
    wc[1, 3] = 0.4
    for surface in (False, True):
        t, kc, kf, spread = top_samples(z, wc, wf, 1, surface)
        np.testing.assert_array_equal(t[:, 0], [0.0, 0.75])
        np.testing.assert_array_equal(spread[:, 0], [0.125, 0.125])
        np.testing.assert_allclose(kc[:, 0], [0.0, 0.4], rtol=1e-6)
        np.testing.assert_array_equal(kf, 0)


def test_a_level_without_weight_stays_without_weight():
    z = np.linspace(0, 1, 6)[None]
    wc, wf = np.zeros((1, 6)), np.array([[0, 0, 0.5, 0.2, 0, 0]])
    _, kc, kf, _ = top_samples(z, wc, wf, 2)
    np.testing.assert_array_equal(kc, 0)
    np.testing.assert_allclose(kf, [[0.5, 0.2]], rtol=1e-6)


def fields(bias=None):
    """Two tiny random NeRFs (coarse, fine density) with one style MLP and per-ray codes; bias:
    the density's output bias (20: opaque from the first samples on)."""
    jt.set_global_seed(1)
    embed = PositionalEncoding(2)
    nerfs = [NeRF(D=5, W=16, input_ch=embed.out_dim, input_ch_views=0, use_viewdirs=False) for _ in range(2)]
    if bias is not None:
        for net in nerfs:
            net.alpha_linear.bias.assign(jt.full(net.alpha_linear.bias.shape, bias))
    mlp = StyleMLP(D=4, W=16, input_ch=embed.out_dim, latent_dim=8)
    rng = np.random.default_rng(4)
    latent = jt.array(rng.normal(size=(6, 8)).astype(np.float32))
    rays_o = rng.uniform(-0.2, 0.2, (6, 3)).astype(np.float32)
    rays_d = (np.array([0, 0, -1.0]) + rng.uniform(-0.2, 0.2, (6, 3))).astype(np.float32)
    return [StyleField(n, mlp, embed, latent) for n in nerfs], mlp, latent, rays_o, rays_d


@pytest.mark.parametrize("white_bkgd", [False, True])
def test_every_sample_kept_is_the_exact_render_with_its_gradients(white_bkgd):
    (coarse, fine), mlp, latent, rays_o, rays_d = fields(-0.1)  # light passes some rays
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6, white_bkgd=white_bkgd)
    results = []
    exact = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts, share_color=True)
    z, wc, wf, _ = top_samples(*shared_weights(coarse, fine, rays_o, rays_d, opts), 14)
    cached = composite_cached(fine.colors(cached_points(rays_o, rays_d, z)), wc, wf, white_bkgd)
    for out in (exact, cached):
        loss = (out["coarse"]["rgb"] ** 2).sum() + (out["fine"]["rgb"] ** 2).sum()
        results.append((out, [g.numpy() for g in jt.grad(loss, mlp.parameters() + [latent])]))
    (a, ga), (b, gb) = results
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(b[level]["rgb"].numpy(), a[level]["rgb"].numpy(), rtol=1e-5, atol=1e-6)
        assert a[level]["acc"].numpy().min() < 0.99  # some light passes: the background term counts
    for x, y in zip(ga, gb):
        np.testing.assert_allclose(y, x, rtol=1e-4, atol=1e-6)


def test_an_opaque_surface_needs_few_samples():
    (coarse, fine), _, _, rays_o, rays_d = fields(20.0)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6)
    exact = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts, share_color=True)
    z, wc, wf, _ = top_samples(*shared_weights(coarse, fine, rays_o, rays_d, opts), 3)
    cached = composite_cached(fine.colors(cached_points(rays_o, rays_d, z)), wc, wf)
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(cached[level]["rgb"].numpy(), exact[level]["rgb"].numpy(), atol=1e-3)


def test_shared_weights_are_the_renderers():
    (coarse, fine), _, _, rays_o, rays_d = fields()
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6)
    exact = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts, share_color=True)
    z, wc, wf = shared_weights(coarse, fine, rays_o, rays_d, opts)
    np.testing.assert_allclose(z, exact["fine"]["z_vals"].numpy(), rtol=1e-6)
    np.testing.assert_allclose(wf, exact["fine"]["weights"].numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(wc.sum(1), exact["coarse"]["weights"].numpy().sum(1), rtol=1e-5)
    assert ((wc > 0).sum(1) <= 8).all()  # coarse weight only at the coarse depths
    with pytest.raises(ValueError, match="fine samples"):
        shared_weights(coarse, fine, rays_o, rays_d, RenderOptions(n_samples=8, n_fine=0))


def test_jittered_depths_stay_within_their_spread_and_cover_it():
    z = np.tile(np.linspace(0.1, 0.9, 5, dtype=np.float32), (2000, 1))
    spread = np.full_like(z, 0.05)
    out = jittered(z, spread, np.random.default_rng(0))
    assert out.dtype == np.float32 and np.abs(out - z).max() <= 0.05 + 1e-7
    assert np.abs(out - z).max() > 0.049 and abs(float((out - z).mean())) < 1e-3  # uniform about z
    np.testing.assert_array_equal(jittered(z, np.zeros_like(z), np.random.default_rng(1)), z)


@pytest.mark.parametrize("white_bkgd", [False, True])
def test_a_top_k_render_is_the_cache_rule_at_render_time(white_bkgd):
    """RenderOptions.top_k: render_rays colours each ray from its K heaviest samples exactly as the
    style stage's cache composites them (top_samples + composite_cached); depth and acc stay the
    full render's; K = every sample is the exact render."""
    import dataclasses
    (coarse, fine), _, _, rays_o, rays_d = fields(1.0)  # weight spread along each ray
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6, white_bkgd=white_bkgd)
    exact = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts, share_color=True)
    renders = []
    for k in (1, 3):
        got = render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, top_k=k),
                          share_color=True)
        renders.append(got["fine"]["rgb"].numpy())
        z, wc, wf, _ = top_samples(*shared_weights(coarse, fine, rays_o, rays_d, opts), k)
        ref = composite_cached(fine.colors(cached_points(rays_o, rays_d, z)), wc, wf, white_bkgd)
        for level in ("coarse", "fine"):
            np.testing.assert_allclose(got[level]["rgb"].numpy(), ref[level]["rgb"].numpy(), rtol=1e-5, atol=1e-6)
            for key in ("depth", "acc"):
                np.testing.assert_allclose(got[level][key].numpy(), exact[level][key].numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(renders[0] - renders[1]).max() > 1e-4  # K matters on this density (the tolerance: 1e-5)
    every = render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, top_k=14),
                        share_color=True)
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(every[level]["rgb"].numpy(), exact[level]["rgb"].numpy(), rtol=1e-5, atol=1e-6)
    one = render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, top_k=1), share_color=True)
    # K = 1: the colour at the one heaviest depth, times the level's opacity (+ white behind)
    z1, _, _, _ = top_samples(*shared_weights(coarse, fine, rays_o, rays_d, opts), 1)
    c1 = fine.colors(cached_points(rays_o, rays_d, z1)).numpy()[:, 0]
    acc = exact["fine"]["acc"].numpy()[:, None]
    np.testing.assert_allclose(one["fine"]["rgb"].numpy(), c1 * acc + (1 - acc if white_bkgd else 0), rtol=1e-5,
                               atol=1e-6)


@pytest.mark.parametrize("surface", [False, True])
def test_one_point_samples_on_the_device_select_as_top_samples(surface):
    """k = 1 renders select on the device (renderer.one_point_samples) what top_samples selects from
    the fetched weights (renderer._level_weights): on rays with weight along them, a ray with none
    (empty space: the first sample, no opacity), and rays whose heaviest sample is a coarse one the
    fine level has no weight at."""
    from render.renderer import _level_weights, one_point_samples
    rng = np.random.default_rng(5)
    R, S, F = 40, 8, 6
    z_vals = np.sort(rng.uniform(0, 1, (R, S)), 1).astype(np.float32)
    z_all = np.sort(np.concatenate([z_vals, rng.uniform(0, 1, (R, F))], 1), 1).astype(np.float32)
    coarse_at = np.stack([np.searchsorted(z_all[r], z_vals[r]) for r in range(R)]).astype(np.int32)
    sigma_c, sigma_f = rng.normal(0, 3, (R, S)).astype(np.float32), rng.normal(0, 3, (R, S + F)).astype(np.float32)
    sigma_c[0], sigma_f[0] = -10, -10  # empty space
    sigma_c[1:4], sigma_f[1:4] = -10, -10
    sigma_c[1:4, 3] = 1e4  # an opaque coarse sample where the fine level sees nothing
    rays_d = rng.normal(0, 1, (R, 3)).astype(np.float32)
    geo = {k: jt.array(v) for k, v in dict(z_vals=z_vals, z_all=z_all, coarse_at=coarse_at, sigma_c=sigma_c,
                                            sigma_f=sigma_f).items()}
    got = one_point_samples(geo, jt.array(rays_d), surface)
    z_a, w_c, w_f, d_c, d_f, a_c, a_f = _level_weights(geo, jt.array(rays_d), S)
    want = top_samples(z_a, w_c, w_f, 1, surface)
    for key, ref in zip(("z", "w_coarse", "w_fine"), want):
        np.testing.assert_allclose(got[key].numpy(), ref, rtol=1e-5, atol=1e-7)
    for value, ref in zip(got["depth"] + got["acc"], (d_c, d_f, a_c, a_f)):
        np.testing.assert_allclose(value.numpy(), ref, rtol=1e-6, atol=1e-7)
    assert got["z"].numpy()[0, 0] == z_all[0, 0] and got["w_fine"].numpy()[0, 0] == 0
    assert (got["w_coarse"].numpy()[1:4, 0] > 0.99).all() and (got["w_fine"].numpy()[1:4, 0] == 0).all()
    np.testing.assert_array_equal(got["z"].numpy()[1:4, 0], z_vals[1:4, 3])  # the coarse sample's depth


def test_a_surface_render_colours_each_ray_at_its_expected_depth():
    """RenderOptions(top_k=1, surface=True): the style field's colour at the fine level's expected
    depth (sum w z / sum w over the exact render's weights), times each level's opacity."""
    import dataclasses
    (coarse, fine), _, _, rays_o, rays_d = fields(1.0)  # weight spread along each ray
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6)
    exact = render_rays(rays_o, rays_d, None, coarse, fine, opts=opts, share_color=True)
    heaviest = render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, top_k=1),
                           share_color=True)["fine"]["rgb"].numpy()
    got = render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, top_k=1, surface=True),
                      share_color=True)
    w, z = exact["fine"]["weights"].numpy(), exact["fine"]["z_vals"].numpy()
    depth = ((w * z).sum(1) / w.sum(1))[:, None].astype(np.float32)
    colour = fine.colors(cached_points(rays_o, rays_d, depth)).numpy()[:, 0]
    for level in ("coarse", "fine"):
        acc = exact[level]["acc"].numpy()[:, None]
        np.testing.assert_allclose(got[level]["rgb"].numpy(), colour * acc, rtol=1e-4, atol=1e-6)
    assert np.abs(got["fine"]["rgb"].numpy() - heaviest).max() > 1e-4  # not the heaviest sample's colour


def test_a_top_k_render_needs_the_shared_colour_path():
    import dataclasses
    (coarse, fine), _, _, rays_o, rays_d = fields()
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6, top_k=2)
    with pytest.raises(ValueError, match="top_k renders need share_color"):
        render_rays(rays_o, rays_d, None, coarse, fine, opts=opts)
    with pytest.raises(ValueError, match="top_k renders need share_color"):
        render_rays(rays_o, rays_d, None, coarse, fine, opts=dataclasses.replace(opts, n_fine=0), share_color=True)


def test_kept_weight_is_the_fine_weight_of_the_heaviest_samples():
    """Against a per-ray Python sort: the k heaviest by coarse + fine weight (top_samples' choice),
    their fine weight summed over the rays; k above the samples a ray has keeps them all."""
    rng = np.random.default_rng(4)
    w_c, w_f = rng.uniform(0, 1, (6, 10)), rng.uniform(0, 1, (6, 10))
    for ks in ([1, 4, 10, 40], [1, 4], [3, 9]):  # every sample ranked, or only the heaviest max(ks)
        got = kept_weight(w_c, w_f, ks)
        want = []
        for k in ks:
            want.append(sum(sum(w_f[r, i] for i in sorted(range(10), key=lambda i: -(w_c[r, i] + w_f[r, i]))[:k])
                            for r in range(6)))
        np.testing.assert_allclose(got, want, rtol=1e-12)
    z = np.sort(rng.uniform(0, 1, (6, 10)), 1)
    kept = top_samples(z, w_c, w_f, 4)[0]  # the same samples as top_samples keeps
    order = np.argsort(-(w_c + w_f), axis=1)[:, :4]
    np.testing.assert_allclose(np.sort(kept, 1), np.sort(np.take_along_axis(z, order, 1), 1), rtol=1e-6)

