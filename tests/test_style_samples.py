"""pipeline/style_samples.py: the style stage's sample cache - built per view at the targets'
size, keyed, resumed, and a style step from it equal to the renderer's when nothing is dropped."""
import dataclasses
import os

import jittor as jt
import numpy as np
import pytest

from core.config import ConfigError
from dataset.rays import pixel_rays
from pipeline import style_samples, style_stage
from render.cached_samples import top_samples
from render.options import RenderOptions
from render.renderer import shared_weights
from tests.test_style_stage import H, W, FOCAL, style_args, style_setup  # noqa: F401 (fixture)

EVAL = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=8)


def build(st, log=None, **over):
    args = style_args(**{"style_samples": 4, **over})
    return style_samples.load_or_build(args, st["geo"], st["system"].fields(), EVAL, st["expdir"],
                                       log or (lambda *_: None))


def test_the_cache_holds_every_pixels_heaviest_samples(style_setup):
    st = style_setup
    cache = build(st)
    assert cache.depth.shape == (3, H, W, 4) and cache.depth.dtype == np.float16
    v = 2
    rows, cols = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    ro, rd = pixel_rays(H, W, FOCAL, np.broadcast_to(st["geo"].c2ws[v], (H * W, 3, 4)), rows.ravel(), cols.ravel())
    ref = top_samples(*shared_weights(*st["system"].fields(), ro, rd, EVAL), 4)
    r, c = np.arange(H * W) // W, np.arange(H * W) % W
    for got, want in zip(cache.lookup(np.full(H * W, v), r, c), ref):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)  # float16


def test_a_one_sample_surface_cache_holds_each_pixels_expected_depth_and_is_keyed_apart(style_setup):
    """--style_samples 1 --style_point surface: the cache holds top_samples' surface point, and a
    heaviest-sample cache of the same K is not taken for it (nor the other way)."""
    st = style_setup
    heaviest = build(st, style_samples=1)
    logs = []
    cache = build(st, log=logs.append, style_samples=1, style_point="surface")
    assert any("style sample cache: the point at its expected depth of every pixel, 3 of 3 views" in line
               for line in logs)  # rebuilt: another key
    v = 1
    rows, cols = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    ro, rd = pixel_rays(H, W, FOCAL, np.broadcast_to(st["geo"].c2ws[v], (H * W, 3, 4)), rows.ravel(), cols.ravel())
    ref = top_samples(*shared_weights(*st["system"].fields(), ro, rd, EVAL), 1, surface=True)
    r, c = np.arange(H * W) // W, np.arange(H * W) % W
    for got, want in zip(cache.lookup(np.full(H * W, v), r, c), ref):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)  # float16
    assert np.abs(cache.depth[v].astype(np.float32) - heaviest.depth[v].astype(np.float32)).max() > 1e-3
    # --surface_jitter: another key; the same points, spread over the ray's depth spread
    logs.clear()
    jittered = build(st, log=logs.append, style_samples=1, style_point="surface", surface_jitter=2.0)
    assert any("3 of 3 views" in line for line in logs)
    ref = top_samples(*shared_weights(*st["system"].fields(), ro, rd, EVAL), 1, surface=True, surface_jitter=2.0)
    for got, want in zip(jittered.lookup(np.full(H * W, v), r, c), ref):
        np.testing.assert_allclose(got, want, rtol=2e-3, atol=1e-4)
    assert (jittered.spread[v] > cache.spread[v]).mean() > 0.5  # the interval is the smaller, mostly
    logs.clear()
    cache = build(st, log=logs.append, style_samples=1, style_point="surface")
    # rendered elsewhere than it trains: said, with the remedy; rendered there: nothing to say
    assert any("render with --style_render_samples 1" in line for line in logs)
    logs.clear()
    build(st, log=logs.append, style_samples=1, style_point="surface", style_render_samples=1)
    assert not any("--style_render_samples" in line for line in logs)
    # one point a ray: no share of the weight to tell, so no coverage ranked or kept
    folder = os.path.join(st["expdir"], "style_samples")
    assert not [f for f in os.listdir(folder) if f.startswith("view_") and f.endswith(".json")]
    assert not any("heaviest samples hold" in line for line in logs)


def test_half_size_targets_get_a_half_size_cache(style_setup):
    assert build(style_setup, target_factor=2).depth.shape == (3, H // 2, W // 2, 4)


def test_rebuilt_when_k_changes_and_resumed_view_by_view(style_setup, monkeypatch):
    st = style_setup
    rendered = []
    real = style_samples._render_view
    monkeypatch.setattr(style_samples, "_render_view", lambda *a: rendered.append(a[2]) or real(*a))
    first = build(st)
    assert rendered == [0, 1, 2]
    rendered.clear()
    build(st)
    assert rendered == []  # all cached
    folder = os.path.join(st["expdir"], "style_samples")
    os.remove(os.path.join(folder, "view_001.npz"))  # a build killed after view 0 and 2
    with open(os.path.join(folder, "view_002.npz"), "wb") as f:
        f.write(b"cut short")
    logs = []
    again = build(st, log=logs.append)
    assert rendered == [1, 2] and any("damaged style sample cache" in line for line in logs)
    np.testing.assert_array_equal(again.w_fine, first.w_fine)
    rendered.clear()
    logs.clear()
    assert build(st, log=logs.append, style_samples=6).depth.shape[-1] == 6
    assert rendered == [0, 1, 2] and any("k changed" in line for line in logs)


def test_a_step_from_every_sample_is_the_renderers_step(style_setup):
    """K = all samples: the same loss as rendering through the frozen NeRF (no jitter)."""
    st = style_setup
    losses, start = [], None
    for k in (0, 16):
        args = style_args(style_samples=k)
        samples = build(st, style_samples=k) if k else None
        model = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
        start = start or {n: p.numpy().copy() for n, p in model.mlp.state_dict().items()}
        model.mlp.load_state_dict(start)  # the same weights for both (the codes: seeded by --seed)
        step = style_stage.style_step(args, st["system"], st["geo"], st["targets"], model, st["opts"],
                                      samples=samples)
        losses.append([float(step(s)[0].item()) for s in (1, 2, 3)])
        assert step(4)[2] is None  # no texture term: nothing to show for it
    np.testing.assert_allclose(losses[1], losses[0], rtol=2e-3)
    assert losses[0][2] < losses[0][0]  # they learn, and alike


def test_training_from_the_cache_learns_the_targets(style_setup):
    st = style_setup
    args = style_args(style_samples=3, total_step=30, i_weights=10)
    model = style_stage.train_style(args, st["system"], st["geo"], st["targets"], st["mu"], st["logvar"],
                                    st["names"], st["expdir"], st["opts"], log=lambda *_: None, samples=build(st))
    from tests.test_style_stage import mimic_mse  # judged by the renderer, not the cache
    untrained = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
    assert mimic_mse(model, st) < 0.3 * mimic_mse(untrained, st)


def test_more_samples_than_a_ray_has_keep_them_all():
    """(the option's check itself: tests/test_config.py)"""
    assert style_args(style_samples=16).style_samples == 16
    assert style_args(style_samples=17).style_samples == 16  # 8 + 8 samples a ray
    with pytest.raises(ConfigError, match="--style_samples"):
        style_args(style_samples=4, N_samples_fine=0)


@pytest.mark.parametrize("perturb", [False, True])
def test_cached_depths_are_jittered_as_the_renderers_samples(style_setup, monkeypatch, perturb):
    st = style_setup
    calls = []
    real = style_stage.jittered
    monkeypatch.setattr(style_stage, "jittered", lambda z, spread, rng: calls.append(spread) or real(z, spread, rng))
    args = style_args(style_samples=4)
    model = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
    opts = dataclasses.replace(st["opts"], perturb=perturb)
    step = style_stage.style_step(args, st["system"], st["geo"], st["targets"], model, opts, samples=build(st))
    step(1)
    assert len(calls) == (1 if perturb else 0)
    if perturb:
        assert calls[0].shape == (args.batch_size_style, 4) and calls[0].max() > 0


def test_a_turned_window_keeps_its_positions_and_bilinear_target_with_the_cache(style_setup, monkeypatch):
    """The window's rays go through its own (sub-pixel) positions, with their nearest pixel's
    samples; its target is read bilinearly there, as without the cache."""
    from pipeline.style_patch import window_target
    st = style_setup
    rng = np.random.default_rng(3)
    st["targets"] = [rng.integers(0, 256, (3, H, W, 3)).astype(np.uint8) for _ in range(2)]
    windows, seen, rays = [], [], []
    real_window, real_rays = style_stage.patch_pixels, style_stage.pixel_rays
    monkeypatch.setattr(style_stage, "patch_pixels", lambda *a: windows.append(real_window(*a)) or windows[-1])
    monkeypatch.setattr(style_stage, "patch_texture_loss",
                        lambda enc, rgb, tgt, p: seen.append(tgt.numpy()) or rgb.sum() * 0 + 0.25)
    monkeypatch.setattr(style_stage, "pixel_rays", lambda *a, **k: rays.append(a[4:6]) or real_rays(*a, **k))
    args = style_args(style_samples=4, style_patch_weight=0.5, style_patch=4)
    model = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
    step = style_stage.style_step(args, st["system"], st["geo"], st["targets"], model, st["opts"], encoder=object(),
                                  samples=build(st))
    assert float(step(1)[2].item()) == pytest.approx(0.25)  # the term's value, for the progress line
    ws, wv, wr, wc = windows[0]
    assert np.abs(wr - np.rint(wr)).max() > 0.01  # a turned window: off the pixel grid
    np.testing.assert_array_equal(rays[0][0][-16:], wr)
    np.testing.assert_array_equal(rays[0][1][-16:], wc)
    np.testing.assert_allclose(seen[0], window_target(st["targets"][ws[0]][wv[0]], wr, wc) / 255.0, atol=1e-6)


def test_a_write_cut_short_by_a_kill_is_removed_before_the_build(style_setup):
    st = style_setup
    folder = os.path.join(st["expdir"], "style_samples")
    os.makedirs(folder)
    with open(os.path.join(folder, "view_001.tmp.npz"), "wb") as f:
        f.write(b"half")
    build(st)
    assert sorted(os.listdir(folder)) == ["meta.json"] + [f"view_{v:03d}.{e}" for v in range(3) for e in ("json", "npz")]


def test_the_cache_says_how_much_of_the_weight_it_holds(style_setup):
    """The share of the rays' fine weight the K (and 2K) heaviest samples hold, against a NumPy
    sort of every view's weights; the same line again when the cache is read back, and none for a
    cache whose coverage files are missing (built before they were kept)."""
    st = style_setup
    logs = []
    build(st, log=logs.append, style_samples=3)
    kept, total = np.zeros(2), 0.0
    rows, cols = np.meshgrid(np.arange(H, dtype=np.float64), np.arange(W, dtype=np.float64), indexing="ij")
    for v in range(3):
        ro, rd = pixel_rays(H, W, FOCAL, np.broadcast_to(st["geo"].c2ws[v], (H * W, 3, 4)), rows.ravel(), cols.ravel())
        _, w_c, w_f = shared_weights(*st["system"].fields(), ro, rd, EVAL)
        for r in range(len(w_f)):
            order = sorted(range(w_f.shape[1]), key=lambda i: -(w_c[r, i] + w_f[r, i]))
            kept += [sum(w_f[r, i] for i in order[:k]) for k in (3, 6)]
        total += w_f.sum()
    want = f"style sample cache: the 3 heaviest samples hold {kept[0] / total:.0%} of the rays' fine weight " \
           f"(6: {kept[1] / total:.0%})"
    line = [x for x in logs if x.startswith("style sample cache: the 3 heaviest samples hold")]
    assert len(line) == 1 and line[0].startswith(want), (line, want)
    logs.clear()
    build(st, log=logs.append, style_samples=3)
    assert [x for x in logs if "heaviest samples hold" in x] == line
    folder = os.path.join(st["expdir"], "style_samples")
    for f in os.listdir(folder):
        if f.endswith(".json") and f.startswith("view_"):
            os.remove(os.path.join(folder, f))
    logs.clear()
    build(st, log=logs.append, style_samples=3)
    assert not any("heaviest samples hold" in x for x in logs)


def test_the_coverage_line_says_what_to_do_under_nine_tenths():
    cov = [{"ks": [32, 64], "kept": [63.0, 95.0], "total": 100.0}, {"ks": [32, 64], "kept": [0.0, 0.0], "total": 0.0}]
    line = style_samples.coverage_line(32, cov)
    assert line.startswith("style sample cache: the 32 heaviest samples hold 63% of the rays' fine weight (64: 95%); "
                           "the default render takes the other 37%")
    assert "--style_render_samples 32" in line
    assert style_samples.coverage_line(32, [{"ks": [32, 64], "kept": [95.0, 99.0], "total": 100.0}]).endswith("(64: 99%)")
    assert style_samples.coverage_line(32, cov + [None]) is None
