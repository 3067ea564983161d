"""pipeline/latents.py: style statistics, the VAE (trained once, then loaded) and the style priors.

The encoder is the real relu3_1 VGG (C = 256) on small style crops.
"""
import os

import jittor as jt
import numpy as np
import pytest

from core.config import parse_args
from pipeline import latents
from models.vae import StyleVAE, style_statistics
from pipeline.latents import load_or_train_vae, style_priors


@pytest.fixture(scope="module")
def encoder(vgg_relu3_path):
    from models.vgg import VGGEncoder
    return VGGEncoder.from_pth(vgg_relu3_path, quiet=True)


@pytest.fixture(scope="module")
def style_images(styles_dir):
    from dataset.image_folder import load_image
    names = ["la_muse.jpg", "sketch.png", "mondrian.jpg"]
    sizes = [16, 20, 12]  # different sizes: the statistics do not depend on them
    return [load_image(os.path.join(styles_dir, n), short_side=s) for n, s in zip(names, sizes)]


@pytest.fixture(scope="module")
def style_dir(tmp_path_factory, styles_dir):
    """The three styles as small files: the in-pipeline VAE trains on a folder."""
    import cv2
    root = tmp_path_factory.mktemp("vae_styles")
    for n in ("la_muse.jpg", "sketch.png", "mondrian.jpg"):
        img = cv2.imread(os.path.join(styles_dir, n))
        cv2.imwrite(str(root / n), cv2.resize(img, (24, 20), interpolation=cv2.INTER_AREA))
    return str(root)


def build_vae(args, in_dim):
    return StyleVAE(in_dim=in_dim, latent=args.vae_latent, hidden=args.vae_w, depth=args.vae_d,
                    kl_lambda=args.vae_kl_lambda)


def vae_args(tmp_path, vgg="unused.pth", style_dir="./all_styles/", **over):
    opts = dict(vae_w=32, vae_d=3, vae_latent=6, vae_steps=5, vae_pth_path=str(tmp_path / "missing.pkl"),
                vgg_pth_path=vgg, vae_style_dir=style_dir, style_size=16)
    opts.update(over)
    return parse_args([x for k, v in opts.items() for x in (f"--{k}", str(v))])


def channel_stats_reference(feat):
    """feat [C,H,W] -> [2C]: per-channel mean, then std = sqrt(unbiased var + 1e-5)."""
    flat = feat.reshape(feat.shape[0], -1).astype(np.float64)
    return np.concatenate([flat.mean(1), np.sqrt(flat.var(1, ddof=1) + 1e-5)])


def test_style_statistics_are_per_channel(encoder, style_images):
    stats = style_statistics(encoder, style_images)
    C = encoder.deepest_channels
    assert C == 256
    assert stats.shape == (3, 2 * C) and stats.dtype == np.float32
    for row, img in zip(stats, style_images):
        with jt.no_grad():
            feat = encoder.encode(jt.array(img.transpose(2, 0, 1)[None])).numpy()[0]
        np.testing.assert_allclose(row, channel_stats_reference(feat), rtol=1e-4, atol=1e-5)
    assert np.abs(stats[0] - stats[1]).max() > 1e-2  # different styles, different statistics




def _weights(module):
    return {k: v.numpy().copy() for k, v in module.state_dict().items()}


def test_vae_is_trained_once_then_loaded(tmp_path, encoder, style_dir, vgg_relu3_path, count_steps):
    args = vae_args(tmp_path, vgg_relu3_path, style_dir)
    expdir = str(tmp_path / "exp")
    os.makedirs(expdir)
    vae = load_or_train_vae(args, encoder, expdir, log=lambda *_: None)
    assert len(count_steps) == args.vae_steps
    path = os.path.join(expdir, "vae.pkl")
    assert os.path.isfile(path)
    assert vae.in_dim == 2 * encoder.deepest_channels and vae.latent == 6
    trained = _weights(vae)

    count_steps.clear()
    logs = []
    again = load_or_train_vae(args, encoder, expdir, log=logs.append)
    assert count_steps == []
    assert any(path in line for line in logs)
    for k, v in _weights(again).items():
        np.testing.assert_array_equal(v, trained[k], err_msg=k)


def test_vae_training_lowers_its_loss(tmp_path, encoder, style_images, style_dir, vgg_relu3_path):
    stats = style_statistics(encoder, style_images)
    args = vae_args(tmp_path)
    jt.set_global_seed(0)
    vae = build_vae(args, stats.shape[1])
    noise = jt.zeros((len(stats), args.vae_latent))  # the mean code: a deterministic loss

    def loss(model):
        with jt.no_grad():
            return float(model.loss(jt.array(stats), noise)[2].item())
    before = loss(vae)
    # the in-pipeline trainer is train_style_modules' (same options, written into expdir)
    from pipeline.pretrain_2d import train_vae
    targs = latents.vae_training_args(vae_args(tmp_path, vgg_relu3_path, style_dir, vae_steps=150),
                                      style_dir, str(tmp_path / "exp"))
    targs.lr, targs.lr_decay = 1e-3, 0.0
    trained = StyleVAE.load(train_vae(targs, log=lambda *_: None))
    assert loss(trained) < 0.5 * before


def test_vae_pth_path_is_preferred(tmp_path, encoder, style_images, count_steps):
    """A VAE file given by --vae_pth_path is used as is (no training, no vae.pkl written)."""
    stats = style_statistics(encoder, style_images)
    args = vae_args(tmp_path)
    given = build_vae(args, stats.shape[1])
    path = str(tmp_path / "given_vae.pkl")
    given.save(path)
    expdir = str(tmp_path / "exp")
    os.makedirs(expdir)
    vae = load_or_train_vae(vae_args(tmp_path, vae_pth_path=path), encoder, expdir, log=lambda *_: None)
    assert count_steps == []
    assert not os.path.exists(os.path.join(expdir, "vae.pkl"))
    for k, v in _weights(vae).items():
        np.testing.assert_array_equal(v, given.state_dict()[k].numpy(), err_msg=k)


def test_pipeline_vae_file_has_the_models_layout(tmp_path, encoder, style_dir, vgg_relu3_path):
    """<expdir>/vae.pkl loads with StyleVAE.load (the layout models/vae.py documents)."""
    args = vae_args(tmp_path, vgg_relu3_path, style_dir)
    expdir = str(tmp_path)
    vae = load_or_train_vae(args, encoder, expdir, log=lambda *_: None)
    loaded = StyleVAE.load(os.path.join(expdir, "vae.pkl"))
    assert loaded.config == vae.config
    for k, v in _weights(loaded).items():
        np.testing.assert_array_equal(v, vae.state_dict()[k].numpy(), err_msg=k)


def test_style_priors(tmp_path, encoder, style_images):
    args = vae_args(tmp_path)
    stats = style_statistics(encoder, style_images)
    vae = build_vae(args, stats.shape[1])
    mu, logvar = style_priors(vae, encoder, style_images)
    assert mu.shape == (3, 6) and logvar.shape == (3, 6)
    assert mu.dtype == np.float32 and logvar.dtype == np.float32
    with jt.no_grad():
        ref_mu, ref_logvar = vae.encode(jt.array(stats))
    np.testing.assert_allclose(mu, ref_mu.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(logvar, ref_logvar.numpy(), rtol=1e-5, atol=1e-6)
    assert np.abs(mu[0] - mu[1]).max() > 0  # one prior per style


def test_vae_for_another_encoder_depth_is_refused(tmp_path, encoder):
    path = str(tmp_path / "vae1024.pkl")
    StyleVAE(in_dim=1024, latent=6, hidden=32, depth=3).save(path)
    with pytest.raises(ValueError, match="1024.*512"):
        load_or_train_vae(vae_args(tmp_path, vae_pth_path=path), encoder, str(tmp_path), log=lambda *_: None)
