"""models/decoder.py: real relu3_1 invertor reconstructs fern; layouts, files, errors."""
import os

import imageio.v2 as imageio
import jittor as jt
import numpy as np
import pytest

from core.checkpoint import CheckpointError, save_atomic
from core.pth import MissingWeightsError, PthError, load_state_dict
from models.decoder import Decoder, expected_shapes, resolve_decoder_path
from models.vgg import VGGEncoder
from tests.test_pth import fake_torch  # noqa: F401 (fixture)


def psnr(a, b):
    return -10 * np.log10(np.mean((a - b) ** 2))


def test_real_invertor_reconstructs_fern(fern_dir, vgg_relu3_path, decoder_relu3_path):
    img = imageio.imread(os.path.join(fern_dir, "images_8", "image003.png"))[..., :3]
    crop = (img[120:184, 180:244].astype(np.float32) / 255.0).transpose(2, 0, 1)[None]  # 64x64
    enc = VGGEncoder.from_pth(vgg_relu3_path)
    dec = Decoder.from_pth(decoder_relu3_path, enc.deepest_channels)
    assert dec.deepest_channels == 256
    rec = dec(enc.encode(jt.array(crop))).numpy()
    assert rec.shape == crop.shape
    p_rec = psnr(np.clip(rec, 0, 1), crop)
    p_mean = psnr(crop.mean(axis=(2, 3), keepdims=True) * np.ones_like(crop), crop)
    print(f"fern 64x64: reconstruction PSNR {p_rec:.2f} dB, mean-colour baseline {p_mean:.2f} dB")
    # measured: 20.7 dB vs 15.2 dB (a 4x-blurred copy scores 19.8 dB)
    assert p_rec > 19.0 and p_rec > p_mean + 4.0
    assert psnr(np.clip(rec[:, ::-1], 0, 1), crop) < p_rec - 0.5  # colour channels in RGB order


def test_relu4_layout_shapes_and_save_load(tmp_path):
    dec = Decoder(512)
    assert list(expected_shapes(512))[::2] == [f"{k}.weight" for k in (1, 5, 8, 11, 14, 18, 21, 25, 28)]
    assert list(expected_shapes(256))[::2] == [f"{k}.weight" for k in (1, 5, 8, 12, 15)]
    t = jt.array(np.random.default_rng(0).standard_normal((2, 512, 3, 4)).astype(np.float32))
    out = dec(t).numpy()
    assert out.shape == (2, 3, 24, 32)
    path = dec.save(str(tmp_path / "dec.pkl"))
    back = Decoder.from_file(path, 512)
    np.testing.assert_allclose(back(t).numpy(), out, rtol=1e-6, atol=1e-6)
    for key, arr in back.weights().items():
        np.testing.assert_array_equal(arr, dec.weights()[key])


def test_a_runs_fine_tuned_decoder_loads_as_a_decoder_file(tmp_path):
    """<expdir>/decoder.pkl (the consistency fine-tune's result: the module's state dict) is a
    decoder file too, e.g. for --decoder_pth_path: the same weights, the same output."""
    dec = Decoder(256)
    path = str(tmp_path / "decoder.pkl")
    save_atomic({"decoder": dec.state_dict(), "iter": 300}, path)
    back = Decoder.from_file(path, 256)
    for key, arr in dec.weights().items():
        np.testing.assert_array_equal(back.weights()[key], arr)
    t = jt.array(np.random.default_rng(1).standard_normal((1, 256, 3, 4)).astype(np.float32))
    np.testing.assert_allclose(back(t).numpy(), dec(t).numpy(), rtol=1e-6, atol=1e-6)
    save_atomic({"decoder": {"conv1.weight": np.zeros((3, 3))}, "iter": 1}, path)
    with pytest.raises(PthError, match=r"decoder.pkl: not an AdaIN decoder \(no 4-D '1.weight'"):
        Decoder.from_file(path, 256)


def test_wrong_weights_give_clear_errors(tmp_path, decoder_relu3_path, vgg_relu3_path):
    with pytest.raises(PthError, match=r"decoder for 256-channel features \(relu3_1\).*512 channels"):
        Decoder.from_pth(decoder_relu3_path, 512)
    sd = load_state_dict(decoder_relu3_path)
    del sd["12.bias"]
    sd["8.weight"] = sd["8.weight"][:32]
    with pytest.raises(PthError, match=r"x.pth.*missing keys 12.bias.*8.weight: file \(32, 128, 3, 3\)"):
        Decoder.from_state_dict(sd, 256, "x.pth")
    with pytest.raises(PthError, match="not an AdaIN decoder"):
        Decoder.from_pth(vgg_relu3_path)
    other = str(tmp_path / "other.pkl")
    save_atomic({"state_dict": {}}, other)
    with pytest.raises(CheckpointError, match="other.pkl: not a decoder file written by Decoder.save or by a run"):
        Decoder.load(other)
    with pytest.raises(ValueError, match=r"\[B,256,h,w\]"):
        Decoder(256)(jt.zeros((1, 512, 4, 4)))


def test_resolve_decoder_path(tmp_path, decoder_relu3_path, capsys):
    os.symlink(decoder_relu3_path, tmp_path / "feature_invertor_conv3_1.pth")
    got = resolve_decoder_path(str(tmp_path / "decoder.pth"), 256)
    assert got.endswith("feature_invertor_conv3_1.pth") and "using" in capsys.readouterr().out
    with pytest.raises(MissingWeightsError, match="relu4_1.*get_assets.py"):
        resolve_decoder_path(str(tmp_path / "decoder.pth"), 512)


def test_a_trained_decoder_beside_the_missing_one_comes_first(tmp_path, decoder_relu3_path):
    """train_style_modules' decoder_finetuned.pkl (trained for AdaIN) is preferred to the
    relu3_1 inverter, but only at its own depth; a given path that exists always wins."""
    os.symlink(decoder_relu3_path, tmp_path / "feature_invertor_conv3_1.pth")
    Decoder(256).save(str(tmp_path / "decoder_finetuned.pkl"))
    assert resolve_decoder_path(str(tmp_path / "decoder.pth"), 256).endswith("decoder_finetuned.pkl")
    with pytest.raises(MissingWeightsError, match="relu4_1"):  # a relu3_1 decoder is no relu4_1 one
        resolve_decoder_path(str(tmp_path / "decoder.pth"), 512)
    given = str(tmp_path / "feature_invertor_conv3_1.pth")
    assert resolve_decoder_path(given, 256) == given
    (tmp_path / "decoder_finetuned.pkl").write_bytes(b"not a pickle")  # unreadable: skipped
    assert resolve_decoder_path(str(tmp_path / "decoder.pth"), 256).endswith("feature_invertor_conv3_1.pth")


@pytest.mark.parametrize("name,wrapped", [("decoder_iter_200.pth.tar", False), ("decoder.pth", True)])
def test_the_originals_decoder_files(tmp_path, fake_torch, name, wrapped):  # noqa: F811
    """train_style_modules' decoder_iter_<N>.pth.tar (a plain state dict) and run_stylenerf's fine-tuned
    <expdir>/decoder.pth ({'decoder': state dict, 'step': n}), both torch zip files."""
    import collections
    from tests.test_pth import FakeTensor, write_zip
    rng = np.random.default_rng(3)
    sd = collections.OrderedDict((k, rng.standard_normal(s).astype(np.float32)) for k, s in expected_shapes(256).items())
    storages = {str(i): v.reshape(-1) for i, v in enumerate(sd.values())}
    tensors = collections.OrderedDict(
        (k, FakeTensor(str(i), 0, v.shape, tuple(int(np.prod(v.shape[j + 1:])) for j in range(v.ndim))))
        for i, (k, v) in enumerate(sd.items()))
    path = str(tmp_path / name)
    write_zip(path, {"decoder": tensors, "step": 1000} if wrapped else tensors, storages, fake_torch)
    dec = Decoder.from_file(path, 256)
    np.testing.assert_array_equal(dec.weights()["12.weight"], sd["12.weight"])
