"""pipeline/style_stage.py: batch sampling, the style field, and style training.

A tiny frozen random NeRF (D=5, W=16; density bias raised so the rays are opaque) gives the
geometry; the targets are one constant colour per style, so the style MLP + latents can learn them.
"""
import os
from types import SimpleNamespace

import jittor as jt
import numpy as np
import pytest

from core.config import parse_args
from dataset.camera_paths import quaternion_to_rotation
from models.embedder import PositionalEncoding
from models.nerf import NeRF
from models.style_mlp import StyleMix, StyleMLP
from pipeline import style_stage
from pipeline.nerf_stage import NeRFSystem
from dataset.rays import image_rays, pixel_rays
from pipeline.style_stage import StyleField, load_style_model, sample_batch, style_fields, train_style
from render.options import RenderOptions
from render.renderer import render_rays

H, W, FOCAL = 8, 10, 9.0
STYLE_COLOURS = np.array([[200, 40, 40], [30, 170, 220]], np.uint8)
LATENT = 8


def random_poses(n, seed=0):
    rng = np.random.default_rng(seed)
    poses = []
    for _ in range(n):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = rng.uniform(0, 0.1)
        R = quaternion_to_rotation(np.concatenate([[np.cos(angle / 2)], np.sin(angle / 2) * axis]))
        poses.append(np.concatenate([R, rng.uniform(-0.2, 0.2, (3, 1))], 1))
    return np.float32(poses)


def test_sample_batch_is_in_range_and_roughly_uniform():
    rng = np.random.default_rng(0)
    n = 60000
    s, v, r, c = sample_batch(rng, 3, 5, 4, 6, n)
    for ids, k in ((s, 3), (v, 5), (r, 4), (c, 6)):
        assert ids.shape == (n,) and ids.min() == 0 and ids.max() == k - 1
        counts = np.bincount(ids, minlength=k)
        assert np.abs(counts / n - 1.0 / k).max() < 0.01
    # the four draws are independent: every (style, view) pair appears about equally often
    pairs = np.bincount(s * 5 + v, minlength=15) / n
    assert np.abs(pairs - 1 / 15).max() < 0.01


# ---------------------------------------------------------------- the style field

@pytest.fixture
def field_parts():
    embed = PositionalEncoding(2)
    nerf = NeRF(D=5, W=16, input_ch=embed.out_dim, input_ch_views=0, use_viewdirs=False)
    mlp = StyleMLP(D=4, W=16, input_ch=embed.out_dim, latent_dim=LATENT)
    return nerf, mlp, embed


def test_style_field_density_is_frozen_colour_is_trainable(field_parts):
    nerf, mlp, embed = field_parts
    pts = jt.array(np.random.default_rng(0).uniform(-1, 1, (4, 5, 3)).astype(np.float32))
    latent = jt.array(np.random.default_rng(1).normal(size=(4, LATENT)).astype(np.float32))
    rgb, sigma = StyleField(nerf, mlp, embed, latent)(pts)
    assert tuple(rgb.shape) == (4, 5, 3) and tuple(sigma.shape) == (4, 5)
    # density is the NeRF's
    ref_sigma, _ = nerf.density(embed(pts.reshape(-1, 3)))
    np.testing.assert_allclose(sigma.numpy(), ref_sigma.numpy().reshape(4, 5), rtol=1e-5, atol=1e-6)
    loss = rgb.sum() + (sigma * sigma).sum()
    nerf_grads = jt.grad(loss, nerf.parameters())
    assert all(np.abs(g.numpy()).max() == 0 for g in nerf_grads)
    mlp_grads = jt.grad(loss, mlp.parameters())
    assert all(np.abs(g.numpy()).max() > 0 for g in mlp_grads)
    assert np.abs(jt.grad(loss, latent).numpy()).min() > 0  # every ray's code gets a gradient


def test_style_field_latent_broadcast(field_parts):
    nerf, mlp, embed = field_parts
    pts = jt.array(np.random.default_rng(0).uniform(-1, 1, (3, 6, 3)).astype(np.float32))
    z = np.random.default_rng(1).normal(size=LATENT).astype(np.float32)
    rgb_one, sigma_one = StyleField(nerf, mlp, embed, jt.array(z))(pts)
    rgb_rows, sigma_rows = StyleField(nerf, mlp, embed, jt.array(np.tile(z, (3, 1))))(pts)
    np.testing.assert_allclose(rgb_one.numpy(), rgb_rows.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(sigma_one.numpy(), sigma_rows.numpy())
    # per-ray codes are really per ray: another code for ray 1 changes only ray 1
    codes = np.tile(z, (3, 1))
    codes[1] += 1.0
    rgb_mixed, _ = StyleField(nerf, mlp, embed, jt.array(codes))(pts)
    diff = np.abs(rgb_mixed.numpy() - rgb_one.numpy()).max(axis=(1, 2))
    assert diff[0] == 0 and diff[2] == 0 and diff[1] > 1e-4


# ---------------------------------------------------------------- training

def style_args(**over):
    opts = dict(netdepth=5, netwidth=16, netdepth_fine=5, netwidth_fine=16, style_D=4, embed_freq_coor=2,
                vae_latent=LATENT, N_samples=8, N_samples_fine=8, batch_size_style=128, lrate=3e-3,
                origin_step=0, total_step=6, i_weights=2, ckp_num=2, i_print=1000, seed=0)
    opts.update(over)
    # True: a bare flag (--target_propagation)
    return parse_args([x for k, v in opts.items() for x in ((f"--{k}",) if v is True else (f"--{k}", str(v)))])


@pytest.fixture
def style_setup(tmp_path):
    args = style_args()
    jt.set_global_seed(0)
    system = NeRFSystem(args)
    for net in (system.coarse, system.fine):  # opaque from the first samples on
        net.alpha_linear.bias.assign(jt.full(net.alpha_linear.bias.shape, 20.0))
    geo = SimpleNamespace(n_views=3, hwf=(H, W, FOCAL), c2ws=random_poses(3))
    targets = [np.broadcast_to(col, (3, H, W, 3)).copy() for col in STYLE_COLOURS]
    rng = np.random.default_rng(5)
    mu = rng.normal(size=(2, LATENT)).astype(np.float32)
    logvar = np.full((2, LATENT), -2.0, np.float32)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=8, perturb=False, noise_std=0.0, white_bkgd=False,
                         lindisp=False)
    return dict(args=args, system=system, geo=geo, targets=targets, mu=mu, logvar=logvar,
                names=["a.jpg", "b.png"], expdir=str(tmp_path), opts=opts)


def run(st, **over):
    args = style_args(**over)
    return train_style(args, st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], st["names"],
                       st["expdir"], st["opts"], log=st.setdefault("logs", []).append)


def mimic_mse(model, st):
    """Fine-level MSE to the targets over every pixel of every (style, view)."""
    errs = []
    for s in range(2):
        for v in range(3):
            ro, rd, _ = image_rays(H, W, FOCAL, st["geo"].c2ws[v])
            ids = np.full(H * W, s, np.int32)
            with jt.no_grad():
                latent = model.latents.lookup(ids, np.full(H * W, v, np.int32))
                out = render_rays(ro, rd, None, *style_fields(st["system"], model.mlp, latent, ids), opts=st["opts"],
                                  share_color=True)
                rgb = out["fine"]["rgb"].numpy()
            errs.append(((rgb - STYLE_COLOURS[s] / 255.0) ** 2).mean())
    return float(np.mean(errs))


def nerf_weights(system):
    return [p.numpy().copy() for p in system.parameters()]




def test_training_learns_the_targets_and_keeps_the_nerf(style_setup, count_steps):
    st = style_setup
    before_nerf = nerf_weights(st["system"])
    untrained = style_stage.StyleModel(st["args"], st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim,
                                       st["names"])
    before = mimic_mse(untrained, st)
    model = run(st, total_step=30, i_weights=10)
    after = mimic_mse(model, st)
    assert len(count_steps) == 30
    assert after < 0.3 * before, (before, after)
    for a, b in zip(before_nerf, nerf_weights(st["system"])):
        np.testing.assert_array_equal(a, b)
    # codes moved (they learn), the style priors did not
    assert np.abs(model.latents.codes.numpy() - untrained.latents.codes.numpy()).max() > 0
    np.testing.assert_array_equal(model.latents.mu.numpy(), st["mu"])


def test_training_from_each_rays_heaviest_sample_learns_the_targets(style_setup, count_steps):
    """--style_render_samples 1 (RenderOptions.top_k): the renderer's style steps colour each ray
    at its heaviest sample only, and learn the targets as rendered that way."""
    import dataclasses
    st = style_setup
    st["opts"] = dataclasses.replace(st["opts"], top_k=1)
    untrained = style_stage.StyleModel(st["args"], st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim,
                                       st["names"])
    before = mimic_mse(untrained, st)
    after = mimic_mse(run(st, total_step=30, i_weights=10), st)
    assert len(count_steps) == 30 and after < 0.3 * before, (before, after)


def test_checkpoints_rotate_and_training_resumes(style_setup, count_steps):
    st = style_setup
    run(st)  # steps 1..6, checkpoints at 2, 4, 6, keep 2
    assert sorted(f for f in os.listdir(st["expdir"]) if f.startswith("style_")) == \
        ["style_000004.pkl", "style_000006.pkl", "style_inputs.json"]  # and what they learned from
    assert len(count_steps) == 6
    count_steps.clear()
    model = run(st, total_step=8)
    assert len(count_steps) == 2  # steps 7 and 8 only
    assert any("step 6" in line for line in st["logs"])
    assert sorted(f for f in os.listdir(st["expdir"]) if f.startswith("style_") and f.endswith(".pkl")) == \
        ["style_000006.pkl", "style_000008.pkl"]
    # finished: nothing more to do, and the loaded model is the saved one
    count_steps.clear()
    again = run(st, total_step=8)
    assert count_steps == []
    np.testing.assert_array_equal(again.latents.codes.numpy(), model.latents.codes.numpy())
    for (k, a), b in zip(model.mlp.state_dict().items(), again.mlp.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    loaded, step = load_style_model(style_args(total_step=8), st["system"], st["expdir"])
    assert step == 8 and loaded.style_names == st["names"]
    np.testing.assert_array_equal(loaded.latents.codes.numpy(), model.latents.codes.numpy())


def test_resume_with_other_styles_is_refused(style_setup):
    st = style_setup
    run(st, total_step=2)
    st["names"] = ["a.jpg", "c.jpg"]
    with pytest.raises(ValueError) as err:
        run(st, total_step=4)
    msg = str(err.value)
    assert "['a.jpg', 'b.png']" in msg and "['a.jpg', 'c.jpg']" in msg



@pytest.mark.parametrize("noise_std", [0.0, 1.0])
def test_shared_colour_rendering_equals_two_colour_passes(field_parts, noise_std):
    """render_rays(share_color=True) - the style MLP once, at the fine depths - gives the images
    and gradients of the two-pass rendering (coarse density from another NeRF, as in the style
    stage); with sigma noise, one draw serves the fine sampling and the coarse image."""
    nerf, mlp, embed = field_parts
    nerf_fine = NeRF(D=5, W=16, input_ch=embed.out_dim, input_ch_views=0, use_viewdirs=False)
    rng = np.random.default_rng(4)
    rays_o = jt.array(rng.uniform(-0.2, 0.2, (6, 3)).astype(np.float32))
    rays_d = jt.array((np.array([0, 0, -1.0]) + rng.uniform(-0.2, 0.2, (6, 3))).astype(np.float32))
    latent = jt.array(rng.normal(size=(6, LATENT)).astype(np.float32))
    fields = StyleField(nerf, mlp, embed, latent), StyleField(nerf_fine, mlp, embed, latent)
    opts = RenderOptions(near=0.0, far=1.0, n_samples=8, n_fine=6, noise_std=noise_std)
    results = []
    for share in (False, True):
        jt.set_global_seed(7)  # the same sigma noise draws in both
        out = render_rays(rays_o, rays_d, None, *fields, opts=opts, share_color=share)
        loss = (out["coarse"]["rgb"] ** 2).sum() + (out["fine"]["rgb"] ** 2).sum()
        grads = jt.grad(loss, mlp.parameters() + [latent])
        results.append((out, [g.numpy() for g in grads]))
    (two, g_two), (one, g_one) = results
    if noise_std == 0:
        for level in ("coarse", "fine"):
            for key in ("rgb", "depth", "acc", "weights", "z_vals"):
                np.testing.assert_allclose(one[level][key].numpy(), two[level][key].numpy(), rtol=1e-5, atol=1e-6)
        for a, b in zip(g_one, g_two):
            np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    else:  # the noise is drawn in another order; what must hold: one draw serves the fine
        # sampling and the coarse image (the fine depths follow the coarse output's weights)
        from render.samplers import hierarchical_z
        again = hierarchical_z(one["coarse"]["z_vals"], one["coarse"]["weights"], 6)
        np.testing.assert_allclose(again.numpy(), one["fine"]["z_vals"].numpy(), rtol=1e-6, atol=1e-7)
        assert all(np.isfinite(g).all() for g in g_one)


def test_logp_weight_decays_once_per_1000_style_steps_as_the_original():
    args = SimpleNamespace(logp_loss_lambda=0.1, logp_loss_decay=0.5, origin_step=100)
    got = [style_stage.logp_weight(args, s) for s in (100, 1099, 1100, 3150)]
    np.testing.assert_allclose(got, [0.1, 0.1, 0.05, 0.0125])
    args.logp_loss_decay = 1.0  # the default: a constant weight
    assert style_stage.logp_weight(args, 5000001) == 0.1


def test_target_factor_draws_pixels_of_the_smaller_targets_with_their_camera(style_setup, monkeypatch):
    """--target_factor 2: half-size targets, rays through the pixels of the half-size camera."""
    st = style_setup
    st["targets"] = [np.broadcast_to(col, (3, H // 2, W // 2, 3)).copy() for col in STYLE_COLOURS]
    seen = []

    def spy(h, w, focal, c2ws, rows, cols, **kw):
        seen.append((h, w, focal, rows.max(), cols.max()))
        return pixel_rays(h, w, focal, c2ws, rows, cols, **kw)
    monkeypatch.setattr(style_stage, "pixel_rays", spy)
    run(st, total_step=2, target_factor=2)
    assert len(seen) == 2
    for h, w, focal, r, c in seen:
        assert (h, w, focal) == (H // 2, W // 2, FOCAL / 2) and r < H // 2 and c < W // 2


def test_style_width_and_learning_rate_options(style_setup):
    st = style_setup
    model = run(st, total_step=4, style_W=24, style_lrate=2e-3, lrate_decay=100)
    assert model.width == 24 and model.mlp.hidden[0].weight.shape[0] == 24
    assert model.opt.param_groups[0]["lr"] == pytest.approx(2e-3 * 0.1 ** (4 / 100))
    assert model.opt.param_groups[1]["lr"] == style_stage.LATENT_LR  # the codes' rate is its own
    # rendering commands rebuild the checkpoint's width whatever --style_W says now
    loaded, _ = load_style_model(style_args(total_step=4), st["system"], st["expdir"])
    assert loaded.width == 24
    for (k, a), b in zip(model.mlp.state_dict().items(), loaded.mlp.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    # without the options: --netwidth and --lrate, as the original
    args = style_args(lrate_decay=100)
    assert style_stage.style_width(args) == 16
    assert style_stage.style_lrate(args, 100) == pytest.approx(3e-3 * 0.1)


def train_with_spies(st, monkeypatch, loss_name, args, encoder, **kw):
    """train_style with the window sampler and the texture loss `loss_name` of style_stage
    recorded: (windows [(styles, views, rows, cols)], the loss's calls: its arguments after the
    encoder, e.g. (rgb, reference, p))."""
    windows, seen = [], []
    real_window, real_loss = style_stage.patch_pixels, getattr(style_stage, loss_name)

    def window_spy(*a):
        windows.append(real_window(*a))
        return windows[-1]

    def loss_spy(encoder, *a):
        seen.append(a)
        return real_loss(encoder, *a)
    monkeypatch.setattr(style_stage, "patch_pixels", window_spy)
    monkeypatch.setattr(style_stage, loss_name, loss_spy)
    train_style(args, st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], st["names"], st["expdir"],
                st["opts"], log=lambda *_: None, encoder=encoder, **kw)
    return windows, seen


def test_texture_term_judges_the_last_rows_against_their_target_window(style_setup, monkeypatch):
    """--style_patch_weight > 0: the batch ends with one turned window whose bilinear target
    reaches the texture term in row-major order, and its weight enters the loss."""
    st = style_setup
    rng = np.random.default_rng(3)
    st["targets"] = [rng.integers(0, 256, (3, H, W, 3)).astype(np.uint8) for _ in range(2)]
    args = style_args(total_step=2, style_patch_weight=0.5, style_patch=4)
    from models.vgg import VGGEncoder
    windows, seen = train_with_spies(st, monkeypatch, "patch_texture_loss", args, VGGEncoder(deepest="relu1_1"))
    assert len(seen) == 2 and len(windows) == 2
    for (rgb, tgt, p), (ws, wv, wr, wc) in zip(seen, windows):
        assert p == 4 and rgb.shape == (16, 3)
        ref = window_target_reference(st["targets"][ws[0]][wv[0]].astype(np.float64), wr, wc) / 255.0
        np.testing.assert_allclose(tgt.numpy(), ref, atol=1e-5)
    with pytest.raises(ValueError, match="needs the VGG encoder"):
        train_style(style_args(total_step=4, style_patch_weight=0.5, style_patch=4),
                    st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], st["names"], st["expdir"],
                    st["opts"], log=lambda *_: None)


def test_style_patch_every_puts_the_window_on_every_nth_step_only(style_setup, monkeypatch):
    """--style_patch_every 2: steps 2 and 4 of four hold the window and its texture term; the
    other steps render the MSE batch alone."""
    st = style_setup
    rows = []
    real_rays = style_stage.pixel_rays
    monkeypatch.setattr(style_stage, "pixel_rays", lambda *a, **k: rows.append(len(a[3])) or real_rays(*a, **k))
    args = style_args(total_step=4, style_patch_weight=0.5, style_patch=4, style_patch_every=2)
    from models.vgg import VGGEncoder
    windows, seen = train_with_spies(st, monkeypatch, "patch_texture_loss", args, VGGEncoder(deepest="relu1_1"))
    assert len(windows) == 2 and len(seen) == 2
    assert rows == [128, 128 + 16, 128, 128 + 16]


def view_reference_setup(st, seed, ref):
    """Random propagated targets (into st) and views' own stylizations, and the style options of
    --style_patch_ref ref for two steps: (args, own)."""
    rng = np.random.default_rng(seed)
    st["targets"], own = ([rng.integers(0, 256, (3, H, W, 3)).astype(np.uint8) for _ in range(2)] for _ in range(2))
    return style_args(total_step=2, style_patch_weight=0.5, style_patch=4, style_patch_ref=ref,
                      target_propagation=True), own


def test_view_reference_judges_the_window_against_the_views_own_stylization(style_setup, monkeypatch):
    """--style_patch_ref view: the window's pixels still join the MSE to the (propagated) targets,
    and its texture term reads the same window of the view's own stylization."""
    st = style_setup
    args, own = view_reference_setup(st, 5, "view")
    from models.vgg import VGGEncoder
    windows, seen = train_with_spies(st, monkeypatch, "patch_texture_loss", args, VGGEncoder(deepest="relu1_1"),
                                     view_targets=own)
    assert len(seen) == 2
    for (rgb, ref, p), (ws, wv, wr, wc) in zip(seen, windows):
        want = window_target_reference(own[ws[0]][wv[0]].astype(np.float64), wr, wc) / 255.0
        np.testing.assert_allclose(ref.numpy(), want, atol=1e-5)
        assert not np.allclose(want, window_target_reference(st["targets"][ws[0]][wv[0]].astype(np.float64),
                                                              wr, wc) / 255.0, atol=1e-2)
    args.total_step = 4  # two steps more, without the views' own stylizations
    with pytest.raises(ValueError, match="own stylizations"):
        train_style(args, st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], st["names"], st["expdir"],
                    st["opts"], log=lambda *_: None, encoder=VGGEncoder(deepest="relu1_1"))


def test_view_std_reference_takes_the_target_window_and_the_views_own_window(style_setup, monkeypatch):
    """--style_patch_ref view_std: patch_split_loss gets the window's target (propagated) pixels
    for the means and the same window of the view's own stylization for the stds."""
    st = style_setup
    args, own = view_reference_setup(st, 7, "view_std")
    from models.vgg import VGGEncoder
    windows, seen = train_with_spies(st, monkeypatch, "patch_split_loss", args, VGGEncoder(deepest="relu1_1"),
                                     view_targets=own)
    assert len(seen) == 2
    for (_, target, own_window, _), (ws, wv, wr, wc) in zip(seen, windows):
        for got, images in ((target, st["targets"]), (own_window, own)):
            want = window_target_reference(images[ws[0]][wv[0]].astype(np.float64), wr, wc) / 255.0
            np.testing.assert_allclose(got.numpy(), want, atol=1e-5)


def test_style_image_reference_judges_the_window_against_its_styles_image(style_setup, monkeypatch):
    """--style_patch_ref style: each step's window is judged against the statistics of the image
    of the window's style (not its target window), and the images are required."""
    st = style_setup
    images = [np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.8)]  # one flat image per style
    args = style_args(total_step=3, style_patch_weight=0.5, style_patch=4, style_patch_ref="style")
    from models.vgg import VGGEncoder
    encoder = VGGEncoder(deepest="relu1_1")
    windows, seen = train_with_spies(st, monkeypatch, "patch_style_image_loss", args, encoder, style_images=images)
    assert len(seen) == 3 and len(windows) == 3
    for (rgb, stats, p), (ws, *_rest) in zip(seen, windows):
        flat = images[ws[0]].transpose(2, 0, 1)[None]
        want = encoder(jt.array(flat))[0].numpy().reshape(1, -1, 64).mean(-1)
        assert p == 4 and rgb.shape == (16, 3)
        np.testing.assert_allclose(stats[0][0].numpy(), want, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="one image per style"):
        train_style(style_args(total_step=4, style_patch_weight=0.5, style_patch=4, style_patch_ref="style"),
                    st["system"], st["geo"], st["targets"], st["mu"], st["logvar"], st["names"], st["expdir"],
                    st["opts"], log=lambda *_: None, encoder=encoder, style_images=images[:1])


def test_balanced_windows_are_drawn_as_an_uncut_run_draws_them_after_a_resume(style_setup, monkeypatch, tmp_path):
    """--style_patch_balance: the stage says how it draws, the windows' running losses go into the
    style checkpoints, and a run resumed from one draws the same windows as an uncut run."""
    st = style_setup
    images = [np.full((8, 8, 3), v, np.float32) for v in (0.2, 0.8)]
    from models.vgg import VGGEncoder
    encoder = VGGEncoder(deepest="relu1_1")
    over = dict(style_patch_weight=0.5, style_patch=4, style_patch_ref="style", style_patch_balance=True)
    drawn = {}
    real_window = style_stage.patch_pixels
    for name, stops in (("uncut", (6,)), ("resumed", (3, 6))):
        st["expdir"] = str(tmp_path / name)
        drawn[name] = []
        for stop in stops:
            logs = []
            windows = []
            monkeypatch.setattr(style_stage, "patch_pixels",
                                lambda *a: windows.append(real_window(*a)) or windows[-1])
            train_style(style_args(total_step=stop, i_weights=3, **over), st["system"], st["geo"], st["targets"],
                        st["mu"], st["logvar"], st["names"], st["expdir"], st["opts"], log=logs.append,
                        encoder=encoder, style_images=images)
            drawn[name] += [(int(w[0][0]), int(w[1][0])) for w in windows]
            assert any(x.startswith("texture windows per style (--style_patch_balance)") for x in logs)
            assert any(x.startswith("texture windows per style at the end: a ") for x in logs)
    assert len(drawn["uncut"]) == 6 and drawn["resumed"] == drawn["uncut"]
    ck = style_stage.style_checkpoints(st["expdir"], style_args(**over)).load_latest(("window_balance",))[2]
    assert len(ck["window_balance"]["running"]) == 2 and not np.isnan(ck["window_balance"]["running"]).all()


def test_nn_reference_matches_the_window_to_its_styles_features(style_setup, monkeypatch):
    """--style_patch_ref nn: each step's window is matched to the deepest features of the image of
    the window's style."""
    st = style_setup
    rng = np.random.default_rng(7)
    images = [rng.uniform(0, 1, (8, 8, 3)).astype(np.float32) for _ in range(2)]
    args = style_args(total_step=3, style_patch_weight=0.5, style_patch=4, style_patch_ref="nn")
    from models.vgg import VGGEncoder
    encoder = VGGEncoder(deepest="relu1_1")
    windows, seen = train_with_spies(st, monkeypatch, "patch_nn_loss", args, encoder, style_images=images)
    assert len(seen) == 3
    from pipeline.style_patch import style_image_features
    for (rgb, rows, p), (ws, *_rest) in zip(seen, windows):
        np.testing.assert_allclose(rows.numpy(), style_image_features(encoder, images[ws[0]]).numpy(), atol=1e-6)


def window_target_reference(img, rows, cols):
    """Bilinear interpolation, pixel by pixel (scipy's map_coordinates, order 1)."""
    from scipy.ndimage import map_coordinates
    return np.stack([map_coordinates(img[..., ch], [rows, cols], order=1) for ch in range(3)], -1)


def test_hash_encoding_trains_saves_and_reloads_with_its_settings(style_setup, count_steps):
    """--style_encoding hash: the grid's table trains at --hash_lrate (decayed as the MLP's rate),
    the targets are learnt, the checkpoint keeps the grid's settings and box (a render rebuilds
    them whatever its options say), and resuming with the plain encoding is refused."""
    st = style_setup
    hash_opts = dict(style_encoding="hash", hash_levels=4, hash_log2_size=10, hash_max_res=32,
                     hash_lrate=1e-2, lrate_decay=100)
    untrained = style_stage.StyleModel(style_args(**hash_opts), st["mu"], st["logvar"], 3,
                                       st["system"].embed_xyz.out_dim, st["names"])
    before = mimic_mse(untrained, st)
    table0 = untrained.mlp.grid.table.numpy().copy()
    model = run(st, total_step=30, i_weights=10, **hash_opts)
    assert len(count_steps) == 30 and mimic_mse(model, st) < 0.3 * before
    assert np.abs(model.mlp.grid.table.numpy() - table0).max() > 1e-3
    assert model.opt.param_groups[2]["lr"] == pytest.approx(1e-2 * 0.1 ** (30 / 100))
    # the box is the training views' ray segments, in NDC as the renderer samples them
    lo, hi = np.split(model.mlp.grid.box.numpy(), 2)
    want_lo, want_hi = style_stage.style_box(style_args(**hash_opts), st["geo"], st["opts"])
    np.testing.assert_allclose(lo, want_lo)
    np.testing.assert_allclose(hi, want_hi)
    loaded, _ = load_style_model(style_args(total_step=30), st["system"], st["expdir"])
    assert loaded.encoding == {"levels": 4, "log2_size": 10, "max_res": 32}
    for (k, a), b in zip(model.mlp.state_dict().items(), loaded.mlp.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    # its checkpoints resumed with the default encoding: the option named with both values
    with pytest.raises(ValueError, match="style_000030.pkl was trained with other inputs than this run's "
                                         r"\(--style_encoding hash -> pe; --hash_levels 4 -> 16"):
        run(st, total_step=32, i_weights=10)
    os.remove(os.path.join(st["expdir"], "style_inputs.json"))  # checkpoints from before the record
    with pytest.raises(ValueError, match="--style_encoding hash --hash_levels 4.*now asked for --style_encoding pe"):
        run(st, total_step=32, i_weights=10)


def test_per_style_hash_grids_train_each_styles_own_table(style_setup, count_steps):
    """--hash_per_style: one grid per style, each trained (the batches mix the styles), the
    targets learnt, the checkpoint rebuilt with its grids; resuming with the shared grid is
    refused naming the option; the renders route each style through its own grid."""
    from pipeline.stylized_render import render_with_latent, render_with_latents
    st = style_setup
    hash_opts = dict(style_encoding="hash", hash_levels=4, hash_log2_size=10, hash_max_res=32, lrate_decay=100)
    args = style_args(hash_per_style=True, **hash_opts)
    untrained = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
    assert untrained.encoding == {"levels": 4, "log2_size": 10, "max_res": 32, "per_style": True}
    rows = 4 << 10  # a style's table: 4 levels of 2^10 rows
    [table0] = [t.numpy().copy() for t in untrained.mlp.grid_tables()]
    assert table0.shape[0] == 2 * rows and np.abs(table0[:rows] - table0[rows:]).max() > 0  # drawn apart
    before = mimic_mse(untrained, st)
    model = run(st, total_step=30, i_weights=10, hash_per_style=True, **hash_opts)
    assert len(count_steps) == 30 and mimic_mse(model, st) < 0.3 * before
    [table] = [t.numpy() for t in model.mlp.grid_tables()]
    for k in (0, 1):  # each style's table trained
        assert np.abs(table[k * rows:(k + 1) * rows] - table0[k * rows:(k + 1) * rows]).max() > 1e-3
    loaded, _ = load_style_model(style_args(total_step=30), st["system"], st["expdir"])
    assert loaded.encoding["per_style"] and loaded.mlp.n_grids == 2
    for (k, a), b in zip(model.mlp.state_dict().items(), loaded.mlp.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    with pytest.raises(ValueError, match=r"other inputs than this run's \(--hash_per_style True -> False"):
        run(st, total_step=32, i_weights=10, **hash_opts)
    # the videos' render: several styles over one geometry = each style alone; an interpolation
    # frame at either end = that style
    c2w = st["geo"].c2ws[1]
    latents = [jt.array(loaded.mu[k]) for k in (0, 1)]
    together = render_with_latents(st["system"], loaded, latents, args, st["opts"], H, W, FOCAL, c2w, styles=[0, 1])
    for k in (0, 1):
        alone = render_with_latent(st["system"], loaded, latents[k], args, st["opts"], H, W, FOCAL, c2w, style=k)
        np.testing.assert_allclose(together[k]["fine"]["rgb"], alone["fine"]["rgb"], atol=1e-5)
        mix = render_with_latent(st["system"], loaded, latents[k], args, st["opts"], H, W, FOCAL, c2w,
                                 style=StyleMix(0, 1, float(k)))
        np.testing.assert_allclose(mix["fine"]["rgb"], alone["fine"]["rgb"], atol=1e-5)
    other = render_with_latent(st["system"], loaded, latents[0], args, st["opts"], H, W, FOCAL, c2w, style=1)
    assert np.abs(other["fine"]["rgb"] - together[0]["fine"]["rgb"]).max() > 1e-3  # the grids do differ
    # a checkpoint of the former layout (a grid module per style, grids.<k>.*, an Adam moment per
    # table) loads as the same model and optimizer
    from core import checkpoint
    _, path = style_stage.style_checkpoints(st["expdir"], args).latest()
    ck = checkpoint.load(path)
    sd = {k: v for k, v in ck["style_mlp"].items() if not k.startswith("grid.")}
    for k in (0, 1):
        for key, v in ck["style_mlp"].items():
            if key.startswith("grid."):
                sd[f"grids.{k}.{key[5:]}"] = v[k * rows:(k + 1) * rows] if key == "grid.table" else v
    opt = ck["optimizer"]
    split = lambda moments: moments[:-1] + [[moments[-1][0][:rows], moments[-1][0][rows:]]]
    former = dict(ck, style_mlp=sd, optimizer=dict(opt, m=split(opt["m"]), v=split(opt["v"])))
    again = style_stage.StyleModel(args, st["mu"], st["logvar"], 3, st["system"].embed_xyz.out_dim, st["names"])
    again.load(former, "former.pkl")
    for (k, a), b in zip(loaded.mlp.state_dict().items(), again.mlp.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)
    for got, want in zip(checkpoint.adam_state(again.opt)["v"], opt["v"]):
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
