"""models/vgg.py: the real relu3_1 encoder vs a NumPy VGG, depth selection, path resolution."""
import collections
import os

import imageio.v2 as imageio
import jittor as jt
import numpy as np
import pytest

from core.pth import MissingWeightsError, PthError, load_state_dict
from models import layers, vgg
from models.vgg import VGGEncoder, expected_shapes, resolve_vgg_path


def fern_crop(fern_dir, h=24, w=32):
    img = imageio.imread(os.path.join(fern_dir, "images_8", "image000.png"))[..., :3]
    crop = img[100:100 + h, 200:200 + w].astype(np.float32) / 255.0
    return crop.transpose(2, 0, 1)[None]  # [1,3,h,w]


def np_conv_reflect(x, w, b):
    k = w.shape[2]
    p = k // 2
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect") if p else x
    h, wd = x.shape[2], x.shape[3]
    out = np.zeros((x.shape[0], w.shape[0], h, wd))
    for ky in range(k):
        for kx in range(k):
            out += np.einsum("bchw,oc->bohw", xp[:, :, ky:ky + h, kx:kx + wd], w[:, :, ky, kx])
    return out + b.reshape(1, -1, 1, 1)


def np_pool_ceil(x):
    b, c, h, w = x.shape
    xp = np.full((b, c, h + h % 2, w + w % 2), -np.inf)
    xp[:, :, :h, :w] = x
    return xp.reshape(b, c, xp.shape[2] // 2, 2, xp.shape[3] // 2, 2).max(axis=(3, 5))


def np_vgg_relu3(x, sd):
    """AdaIN's vgg Sequential layers 0..17 in float64 NumPy; returns relu1_1, relu2_1, relu3_1."""
    W = {k: v.astype(np.float64) for k, v in sd.items()}
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = np_conv_reflect(x.astype(np.float64), W["0.weight"], W["0.bias"])
    r11 = relu(np_conv_reflect(h, W["2.weight"], W["2.bias"]))
    h = np_pool_ceil(relu(np_conv_reflect(r11, W["5.weight"], W["5.bias"])))
    r21 = relu(np_conv_reflect(h, W["9.weight"], W["9.bias"]))
    h = np_pool_ceil(relu(np_conv_reflect(r21, W["12.weight"], W["12.bias"])))
    r31 = relu(np_conv_reflect(h, W["16.weight"], W["16.bias"]))
    return [r11, r21, r31]


@pytest.mark.parametrize("impl", ["jittor", "im2col", "gemm"])
def test_real_relu3_encoder_matches_numpy(fern_dir, vgg_relu3_path, monkeypatch, impl, capsys):
    monkeypatch.setattr(layers, "CONV_IMPL", impl)
    x = fern_crop(fern_dir, 24, 30)  # 30: odd after one pool -> exercises ceil mode
    enc = VGGEncoder.from_pth(vgg_relu3_path)
    assert enc.taps == ["relu1_1", "relu2_1", "relu3_1"] and enc.deepest_channels == 256
    feats = enc(jt.array(x))
    want = np_vgg_relu3(x, load_state_dict(vgg_relu3_path))
    assert [tuple(f.shape) for f in feats] == [(1, 64, 24, 30), (1, 128, 12, 15), (1, 256, 6, 8)]
    for got, ref in zip(feats, want):
        got = got.numpy()
        scale = np.abs(ref).max()
        assert scale > 1e-2  # real features, not all zero
        np.testing.assert_allclose(got / scale, ref / scale, atol=1e-4)
    np.testing.assert_allclose(enc.encode(jt.array(x)).numpy(), feats[-1].numpy())


def test_depth_message_printed_once(vgg_relu3_path, capsys, monkeypatch):
    monkeypatch.setattr(vgg, "_reported", set())
    VGGEncoder.from_pth(vgg_relu3_path)
    VGGEncoder.from_pth(vgg_relu3_path)
    out = capsys.readouterr().out
    assert out.count("has weights up to relu3_1: taps relu1_1, relu2_1, relu3_1, deepest 256") == 1


def _random_full_state_dict(seed=0):
    """The full file's layout (its relu4_1 part plus a relu5_1-style extra key)."""
    rng = np.random.default_rng(seed)
    sd = collections.OrderedDict()
    for key, shape in expected_shapes("relu4_1").items():
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        sd[key] = (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)
    sd["32.weight"] = np.zeros((4, 4, 3, 3), np.float32)  # extra deeper keys are ignored
    return sd


def test_full_layout_goes_to_relu4_1_and_weights_are_frozen(capsys):
    enc = VGGEncoder.from_state_dict(_random_full_state_dict(), "full.pth")
    assert "full.pth has weights up to relu4_1" in capsys.readouterr().out
    assert enc.taps == ["relu1_1", "relu2_1", "relu3_1", "relu4_1"] and enc.deepest_channels == 512
    x = jt.array(np.random.default_rng(0).random((2, 3, 20, 18)).astype(np.float32))
    feats = enc(x)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 20, 18), (2, 128, 10, 9), (2, 256, 5, 5),
                                               (2, 512, 3, 3)]
    loss = feats[-1].sqr().mean()
    gx = jt.grad(loss, x).numpy()
    assert np.abs(gx).sum() > 0  # gradients reach the input ...
    assert all(p.is_stop_grad() for p in enc.parameters())  # ... but never the weights
    opt = jt.nn.Adam(list(enc.parameters()) + [jt.zeros(1)], lr=0.1)
    before = enc.conv29.weight.numpy().copy()
    opt.step(loss)
    np.testing.assert_array_equal(enc.conv29.weight.numpy(), before)


def test_bad_weights_and_paths(tmp_path, vgg_relu3_path, capsys):
    sd = _random_full_state_dict()
    sd["9.weight"] = sd["9.weight"][:, :32]
    with pytest.raises(PthError, match=r"bad.pth.*9.weight: file \(128, 32, 3, 3\), expected \(128, 64, 3, 3\)"):
        VGGEncoder.from_state_dict(sd, "bad.pth")
    with pytest.raises(PthError, match="dec.pth: not a normalised VGG-19"):
        VGGEncoder.from_state_dict({"1.weight": np.zeros((128, 256, 3, 3))}, "dec.pth")
    # full file missing, relu3_1 file beside it: use that, and say so
    folder = tmp_path / "pre"
    folder.mkdir()
    os.symlink(vgg_relu3_path, folder / "vgg_normalised_conv3_1.pth")
    got = resolve_vgg_path(str(folder / "vgg_normalised.pth"))
    assert got == str(folder / "vgg_normalised_conv3_1.pth")
    assert "vgg_normalised.pth not found; using" in capsys.readouterr().out
    assert resolve_vgg_path(got) == got
    with pytest.raises(MissingWeightsError, match="scripts/get_assets.py"):
        resolve_vgg_path(str(tmp_path / "empty" / "vgg_normalised.pth"))
