"""pipeline/decoder_finetune.py: working size, resizing of views, and the fine-tune on a tiny plane scene."""
import os
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline.decoder_finetune import resize_views, working_size


def plane_geometry(n_views=3, H=24, W=32, focal=30.0, depth=3.0):
    """Geometry data of a textured plane z = -depth seen by cameras shifted along x (no rotation).

    points are the exact ray/plane intersections; rgb is a function of the world point, so the
    views are photo-consistent.  Returns an object with GeometryData's fields.
    """
    c2ws, rgbs, pts = [], [], []
    for k in range(n_views):
        c2w = np.eye(4, dtype=np.float64)[:3]
        c2w[:, 3] = [0.15 * k, 0.05 * k, 0.0]
        j, i = np.meshgrid(np.arange(H), np.arange(W), indexing="ij")
        dirs = np.stack([(i - W / 2) / focal, -(j - H / 2) / focal, -np.ones_like(i, dtype=float)], -1)
        p = c2w[:, 3] + depth * dirs  # rotation is identity; dirs have z = -1
        rgb = 0.5 + 0.4 * np.stack([np.sin(3 * p[..., 0]), np.cos(2 * p[..., 1]), np.sin(p[..., 0] + p[..., 1])], -1)
        c2ws.append(c2w)
        rgbs.append(rgb)
        pts.append(p)
    return SimpleNamespace(rgb=np.float32(rgbs), points=np.float32(pts), c2ws=np.float32(c2ws),
                           hwf=(H, W, focal), depth=np.full((n_views, H, W), depth, np.float32),
                           n_views=n_views)


@pytest.mark.parametrize("H,W,max_side", [(378, 504, 512), (756, 1008, 512), (1008, 756, 256),
                                          (47, 63, 32), (30, 400, 100), (512, 512, 512), (33, 17, 9)])
def test_working_size_fits_and_keeps_aspect(H, W, max_side):
    h, w, s = working_size(H, W, max_side)
    assert max(h, w) <= max(max_side, 8)
    assert min(h, w) >= 8  # the VGG needs a few pixels after its poolings
    assert s <= 1.0
    if max(H, W) <= max_side:  # never enlarged
        assert (h, w, s) == (H, W, 1.0)
    else:
        assert max(h, w) == max_side
        assert s == pytest.approx(max_side / max(H, W))
    if min(H * s, W * s) >= 8:  # aspect kept up to rounding to whole pixels
        assert h == round(H * s) and w == round(W * s)
        assert abs(h / w - H / W) <= 0.5 / min(h, w) * (1 + H / W) + 1e-9


def test_resize_views_keeps_points_on_the_surface():
    geo = plane_geometry(n_views=3, H=24, W=32)
    rng = np.random.default_rng(0)
    geo.points = geo.points + np.float32(rng.normal(0, 0.1, geo.points.shape))  # no two points alike
    h, w, s = working_size(24, 32, 20)
    rgb, pts = resize_views(geo, [2, 0], h, w)
    assert rgb.shape == (2, h, w, 3) and pts.shape == (2, h, w, 3)
    assert rgb.dtype == np.float32 and pts.dtype == np.float32
    for out, v in zip(pts, [2, 0]):
        src = geo.points[v].reshape(-1, 3)
        # nearest resize: every output point is exactly one of this view's input points
        dist = np.abs(out.reshape(-1, 1, 3) - src[None]).max(-1).min(-1)
        assert dist.max() == 0.0
    # area resize of colours: the mean colour is preserved closely
    assert np.abs(rgb.mean((1, 2)) - geo.rgb[[2, 0]].mean((1, 2))).max() < 0.02


def test_resized_points_project_near_their_own_pixel():
    """Points at the working size, seen with focal * s, land within a pixel of where they are stored."""
    from render.splatting import project_points
    H, W, focal = 24, 32, 30.0
    geo = plane_geometry(n_views=2, H=H, W=W, focal=focal)
    h, w, s = working_size(H, W, 20)
    _, pts = resize_views(geo, [1], h, w)
    u, v, z = project_points(pts[0].reshape(-1, 3), geo.c2ws[1], h, w, focal * s)
    jj, ii = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    assert np.abs(u - ii.ravel()).max() < 1.0
    assert np.abs(v - jj.ravel()).max() < 1.0
    assert np.allclose(z, 3.0, atol=1e-5)


# ---------------------------------------------------------------- the fine-tune itself (real relu3_1 VGG + invertor)

@pytest.fixture(scope="module")
def networks(vgg_relu3_path, decoder_relu3_path):
    from models.decoder import Decoder
    from models.vgg import VGGEncoder
    encoder = VGGEncoder.from_pth(vgg_relu3_path, quiet=True)
    return encoder, lambda: Decoder.from_pth(decoder_relu3_path, encoder.deepest_channels)


@pytest.fixture(scope="module")
def style_images(styles_dir):
    from dataset.image_folder import load_image
    return [load_image(os.path.join(styles_dir, "la_muse.jpg"), short_side=16)]


def finetune_args(**over):
    from core.config import parse_args
    opts = dict(finetune_decoder_steps=2, i_weights_decoder=1, finetune_size=32, decoder_lrate=1e-3)
    opts.update(over)
    return parse_args([x for k, v in opts.items() for x in (f"--{k}", str(v))])




def _weights(decoder):
    return {k: v.numpy().copy() for k, v in decoder.state_dict().items()}


def test_finetune_trains_saves_and_then_only_loads(tmp_path, networks, style_images, count_steps):
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    geo = plane_geometry(n_views=3, H=24, W=32)
    args = finetune_args()
    expdir = str(tmp_path)
    decoder = new_decoder()
    before = _weights(decoder)
    out = finetune_decoder(args, geo, encoder, decoder, style_images, expdir, log=lambda *_: None)
    assert out is decoder
    assert len(count_steps) == 2
    assert os.path.isfile(os.path.join(expdir, "decoder.pkl"))
    after = _weights(decoder)
    assert all(np.isfinite(v).all() for v in after.values())
    changed = [k for k in before if not np.array_equal(before[k], after[k])]
    assert len(changed) == len(before)  # every layer was updated by the fine-tune
    # the mid-run checkpoint (iteration 1) exists; none at the last iteration (decoder.pkl is the result)
    assert sorted(f for f in os.listdir(expdir) if f.startswith("decoder_ft_")) == ["decoder_ft_000001.pkl"]

    # second call: loads decoder.pkl into a fresh decoder, no training
    count_steps.clear()
    again = finetune_decoder(args, geo, encoder, new_decoder(), style_images, expdir, log=lambda *_: None)
    assert count_steps == []
    for k, v in _weights(again).items():
        np.testing.assert_array_equal(v, after[k])


def test_a_runs_fine_tuned_decoder_starts_another_run_unchanged(tmp_path, networks, style_images, count_steps):
    """One run's decoder.pkl as --decoder_pth_path of another with --finetune_decoder_steps 0: the
    second run's decoder.pkl holds the same weights, and no step is trained."""
    from models.decoder import Decoder
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    geo = plane_geometry(n_views=3, H=24, W=32)
    first = str(tmp_path / "first")
    tuned = _weights(finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, first,
                                      log=lambda *_: None))
    count_steps.clear()
    second = str(tmp_path / "second")
    path = os.path.join(first, "decoder.pkl")
    args = finetune_args(finetune_decoder_steps=0, decoder_pth_path=path)
    out = finetune_decoder(args, geo, encoder, Decoder.from_file(path, encoder.deepest_channels), style_images,
                           second, log=lambda *_: None)
    assert count_steps == []
    for k, v in _weights(out).items():
        np.testing.assert_array_equal(v, tuned[k])
    for k, v in _weights(Decoder.from_file(os.path.join(second, "decoder.pkl"), encoder.deepest_channels)).items():
        np.testing.assert_array_equal(v, tuned[k])


def test_zero_iterations_keep_the_decoder_without_looking_at_the_views(tmp_path, networks, style_images,
                                                                      count_steps):
    """--finetune_decoder_steps 0 (fern_quick): decoder.pkl holds the given weights; one view is
    then no error, since nothing is splatted between views."""
    from models.decoder import Decoder
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    decoder = new_decoder()
    given = _weights(decoder)
    out = finetune_decoder(finetune_args(finetune_decoder_steps=0), plane_geometry(n_views=1), encoder, decoder,
                           style_images, str(tmp_path), log=lambda *_: None)
    assert out is decoder and count_steps == []
    saved = Decoder.from_file(os.path.join(str(tmp_path), "decoder.pkl"), encoder.deepest_channels)
    for k, v in _weights(saved).items():
        np.testing.assert_array_equal(v, given[k])


def test_finetune_resumes_from_its_checkpoint(tmp_path, networks, style_images, count_steps):
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    geo = plane_geometry(n_views=3, H=24, W=32)
    expdir = str(tmp_path)
    finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, expdir, log=lambda *_: None)
    os.remove(os.path.join(expdir, "decoder.pkl"))  # as if killed after iteration 1's checkpoint
    count_steps.clear()
    logs = []
    finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, expdir, log=logs.append)
    assert len(count_steps) == 1  # only iteration 2 is run again
    assert any("iteration 1" in line for line in logs)


def test_finetune_needs_two_views(tmp_path, networks, style_images):
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    geo = plane_geometry(n_views=1)
    with pytest.raises(ValueError, match="gen_factor"):
        finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, str(tmp_path), log=lambda *_: None)


def test_a_damaged_result_is_set_aside_and_the_fine_tune_runs_again(tmp_path, networks, style_images, count_steps):
    from pipeline.decoder_finetune import finetune_decoder
    encoder, new_decoder = networks
    geo = plane_geometry(n_views=3, H=24, W=32)
    expdir = str(tmp_path)
    finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, expdir, log=lambda *_: None)
    final = os.path.join(expdir, "decoder.pkl")
    data = open(final, "rb").read()
    with open(final, "wb") as f:
        f.write(data[:len(data) // 2])  # cut short
    count_steps.clear()
    logs = []
    finetune_decoder(finetune_args(), geo, encoder, new_decoder(), style_images, expdir, log=logs.append)
    assert len(count_steps) == 1  # from the iteration-1 checkpoint
    assert logs[0].startswith("warning:") and final in logs[0] and os.path.exists(final + ".corrupt")
    assert os.path.getsize(final) == len(data)  # written again, whole


def test_a_retrained_substitute_decoder_makes_the_fine_tune_stale(tmp_path):
    """decoder.pth absent: the lookup takes decoder_finetuned.pkl beside it, which the user may
    train again (train_style_modules.py --task finetune_decoder); decoder.pkl and the targets
    made from the old one must then be rebuilt, not reused."""
    from core.cache_key import write_key
    from pipeline.decoder_finetune import finetune_inputs, is_current
    pre, exp = tmp_path / "pretrained", tmp_path / "exp"
    (exp / "geometry").mkdir(parents=True)
    pre.mkdir()
    (exp / "geometry" / "meta.json").write_text("{}")
    (exp / "decoder.pkl").write_bytes(b"result")
    (pre / "decoder_finetuned.pkl").write_bytes(b"first decoder")
    (pre / "vgg_normalised_conv3_1.pth").write_bytes(b"vgg")
    args = finetune_args(decoder_pth_path=pre / "decoder.pth", vgg_pth_path=pre / "vgg_normalised.pth")
    styles = [np.zeros((4, 4, 3), np.float32)]
    write_key(str(exp / "decoder.key.json"), finetune_inputs(args, str(exp), styles))
    assert is_current(args, str(exp), styles)
    (pre / "decoder_finetuned.pkl").write_bytes(b"the decoder trained again")
    assert not is_current(args, str(exp), styles)
    write_key(str(exp / "decoder.key.json"), finetune_inputs(args, str(exp), styles))
    (pre / "vgg_normalised_conv3_1.pth").write_bytes(b"other vgg weights")
    assert not is_current(args, str(exp), styles)
