"""pipeline/preflight.py: the up-front checks of every input a later stage reads.

Each bad input here used to be found only when its stage started (after the NeRF and the
geometry: 34 minutes on a GPU for fern.txt, days on a CPU); tests/test_pipeline.py checks
that run_stylenerf.py stops on them before the NeRF stage.
"""
import os
import shutil

import numpy as np
import pytest

from core.checkpoint import CheckpointError
from core.pth import MissingWeightsError, PthError
from dataset.image_folder import ImageFolderError
from models.decoder import Decoder
from models.vae import StyleVAE
from pipeline import preflight


def _truncated_copy(src, dst, keep=0.6):
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[:int(len(data) * keep)])
    return str(dst)


def test_real_weights_pass_and_give_the_encoder_depth(vgg_relu3_path, decoder_relu3_path):
    assert preflight.check_vgg(vgg_relu3_path) == (vgg_relu3_path, 256)
    assert preflight.check_decoder(decoder_relu3_path, 256) == decoder_relu3_path


def test_a_vgg_file_cut_short_or_of_another_layout_is_named(tmp_path, vgg_relu3_path, decoder_relu3_path):
    cut = _truncated_copy(vgg_relu3_path, tmp_path / "vgg_normalised.pth")
    with pytest.raises(PthError, match="vgg_normalised.pth: truncated"):
        preflight.check_vgg(cut)
    with pytest.raises(PthError, match="not a normalised VGG-19"):
        preflight.check_vgg(decoder_relu3_path)  # the decoder given as the VGG
    with pytest.raises(MissingWeightsError, match="get_assets.py"):
        preflight.check_vgg(str(tmp_path / "none" / "vgg_normalised.pth"))


def test_a_bad_decoder_file_is_named(tmp_path, vgg_relu3_path, decoder_relu3_path):
    cut = _truncated_copy(decoder_relu3_path, tmp_path / "decoder.pth")
    with pytest.raises(PthError, match="decoder.pth: truncated"):
        preflight.check_decoder(cut, 256)
    with pytest.raises(PthError, match="not an AdaIN decoder"):
        preflight.check_decoder(vgg_relu3_path, 256)
    with pytest.raises(PthError, match="a decoder for 256-channel features"):
        preflight.check_decoder(decoder_relu3_path, 512)  # relu3_1 decoder, relu4_1 encoder
    # our own decoder pickle: checked the same way, one shape changed
    sd = Decoder.read_state_dict(decoder_relu3_path)
    saved = str(tmp_path / "decoder_finetuned.pkl")
    Decoder.from_state_dict(sd, 256).save(saved)
    assert preflight.check_decoder(saved, 256) == saved
    from core.checkpoint import load, save_atomic
    ck = load(saved)
    ck["state_dict"]["5.weight"] = np.zeros((128, 128, 1, 1), np.float32)
    save_atomic(ck, saved)
    with pytest.raises(PthError, match=r"5.weight: file \(128, 128, 1, 1\), expected \(128, 128, 3, 3\)"):
        preflight.check_decoder(saved, 256)


def test_vae_files(tmp_path):
    good = StyleVAE(in_dim=512, latent=4, hidden=16, depth=2).save(str(tmp_path / "vae.pkl"))
    preflight.check_vae(good, 256)
    with pytest.raises(ValueError, match="a VAE over 512 statistics, but the VGG encoder gives 1024"):
        preflight.check_vae(good, 512)
    cut = _truncated_copy(good, tmp_path / "cut.pkl", keep=0.5)
    with pytest.raises(CheckpointError, match="cut.pkl is not a readable checkpoint"):
        preflight.check_vae(cut, 256)


def test_every_undecodable_image_is_named_at_once(tmp_path, styles_dir):
    folder = tmp_path / "styles"
    shutil.copytree(styles_dir, folder)
    _truncated_copy(folder / "la_muse.jpg", folder / "la_muse.jpg.part", keep=0.5)
    os.replace(folder / "la_muse.jpg.part", folder / "la_muse.jpg")
    (folder / "readme.png").write_text("not an image")
    from dataset.image_folder import list_images
    paths = list_images(str(folder))
    with pytest.raises(ImageFolderError) as e:
        preflight.check_images(paths, "style images")
    msg = str(e.value)
    assert f"2 of {len(paths)} style images cannot be decoded" in msg
    assert str(folder / "la_muse.jpg") in msg and str(folder / "readme.png") in msg and "\n" not in msg


def test_check_writable(tmp_path, monkeypatch):
    preflight.check_writable(str(tmp_path / "new" / "folder"))
    assert os.listdir(tmp_path / "new" / "folder") == []  # the probe is gone
    from tests.faults import fail_writes_under
    import errno
    fail_writes_under(monkeypatch, tmp_path / "full", code=errno.ENOSPC)
    with pytest.raises(OSError) as e:
        preflight.check_writable(str(tmp_path / "full"))
    assert e.value.errno == errno.ENOSPC and str(tmp_path / "full") in e.value.filename


def test_target_size_holds_the_texture_window():
    from types import SimpleNamespace
    hwf = (378, 504, 400.0)
    ok = SimpleNamespace(target_factor=2, style_patch=64, style_patch_weight=0.1)
    preflight.check_target_size(ok, hwf)  # 252x189 targets hold a 64 window
    with pytest.raises(ValueError, match=r"--style_patch 64 is larger than the targets \(63x47"):
        preflight.check_target_size(SimpleNamespace(target_factor=8, style_patch=64, style_patch_weight=0.1), hwf)
    # turned by 45 degrees a 33 window spans 47 pixels: 63x47 targets hold it, not a 34 one
    preflight.check_target_size(SimpleNamespace(target_factor=8, style_patch=33, style_patch_weight=0.1), hwf)
    with pytest.raises(ValueError, match="a turned window needs 48 pixels a side; expected at most 33"):
        preflight.check_target_size(SimpleNamespace(target_factor=8, style_patch=34, style_patch_weight=0.1), hwf)
    # without the texture term the window does not matter
    preflight.check_target_size(SimpleNamespace(target_factor=8, style_patch=64, style_patch_weight=0.0), hwf)
    with pytest.raises(ValueError, match="--target_factor 64: targets of 7x5 pixels from 504x378 views"):
        preflight.check_target_size(SimpleNamespace(target_factor=64, style_patch=4, style_patch_weight=0.0), hwf)


def test_fern_quicks_texture_window_fits_its_targets_and_the_error_says_what_to_change():
    """fern_quick's 256-pixel window needs 362-pixel targets: fern at factor 4 over 2 (504x378)
    holds it; at --factor 8 the one-line error names the option and the largest window."""
    from core.config import parse_args
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    args = parse_args(["--config", os.path.join(root, "configs", "fern_quick.txt")])
    preflight.check_target_size(args, (756, 1008, 815.0))  # fern's views at factor 4
    with pytest.raises(ValueError, match=r"--style_patch 256 is larger than the targets \(252x189 at --target_factor 2\)"
                                         r".*expected at most 133"):
        preflight.check_target_size(args, (378, 504, 407.0))  # at factor 8
    args.target_factor = 1  # the config's advice for --factor 8
    preflight.check_target_size(args, (378, 504, 407.0))
    # fern_cpu's 128-pixel window (the same share of its targets) fits fern at factor 8 over 2
    cpu = parse_args(["--config", os.path.join(root, "configs", "fern_cpu.txt")])
    assert (cpu.style_patch, cpu.style_patch_ref, cpu.target_factor) == (128, "style", 2)
    assert (cpu.style_patch_every, cpu.style_patch_weight) == (3, 0.009)  # a window every third step
    preflight.check_target_size(cpu, (378, 504, 407.0))


def test_the_sample_cache_must_fit_in_the_memory_available():
    from types import SimpleNamespace
    hwf = (756, 1008, 800.0)  # fern at factor 4: 20 views, K 32, full size = 3.65 GiB
    args = SimpleNamespace(style_samples=32, target_factor=1)
    preflight.check_sample_cache(args, hwf, 20, available=8 * 2**30)
    with pytest.raises(ValueError, match=r"--style_samples 32: the sample cache of 20 views at 1008x756 needs "
                                         r"3\.6 GB of host memory, 4\.0 GB are available"):
        preflight.check_sample_cache(args, hwf, 20, available=4 * 2**30)
    preflight.check_sample_cache(SimpleNamespace(style_samples=32, target_factor=2), hwf, 20, available=4 * 2**30)
    preflight.check_sample_cache(SimpleNamespace(style_samples=0, target_factor=1), hwf, 20, available=1)
    assert preflight.available_memory() > 0
