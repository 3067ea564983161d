"""evaluation/style_strength.py: known answers and a NumPy reference on the real relu3_1 VGG."""
import os

import cv2
import imageio.v2 as imageio
import jittor as jt
import numpy as np
import pytest

from core.pth import load_state_dict
from dataset.image_folder import load_image
from evaluation.style_strength import (StyleStrengthInputError, content_distance, highpass_energy, loss_terms, measure,
                                       measure_many, path_sharpness, sharpness, std_level, style_loss, tap_statistics)
from models.adain import style_loss as adain_style_loss
from models.vgg import VGGEncoder
from tests.test_vgg import np_vgg_relu3


@pytest.fixture(scope="module")
def encoder(vgg_relu3_path):
    return VGGEncoder.from_pth(vgg_relu3_path, quiet=True)


@pytest.fixture(scope="module")
def crops(fern_dir):
    """Three 24x30 fern crops [3,24,30,3] in [0,1] (30: odd after one pool, ceil mode)."""
    img = imageio.imread(os.path.join(fern_dir, "images_8", "image000.png"))[..., :3].astype(np.float32) / 255
    return np.stack([img[100:124, 200:230], img[150:174, 60:90], img[300:324, 400:430]])


@pytest.fixture(scope="module")
def style_img(styles_dir):
    img = load_image(os.path.join(styles_dir, "la_muse.jpg"))
    return cv2.resize(img, (22, 18), interpolation=cv2.INTER_AREA)  # another size than the frames


def np_style_loss(frame, style, sd, eps=1e-5):
    """The AdaIN style loss of one [H,W,3] frame, float64 NumPy end to end."""
    def stats(f):
        flat = f.reshape(f.shape[0], f.shape[1], -1)
        return flat.mean(-1), np.sqrt(flat.var(-1, ddof=1) + eps)
    total = 0.0
    for o, s in zip(np_vgg_relu3(frame.transpose(2, 0, 1)[None], sd),
                    np_vgg_relu3(style.transpose(2, 0, 1)[None], sd)):
        (om, os_), (sm, ss) = stats(o), stats(s)
        total += ((om - sm) ** 2).mean() + ((os_ - ss) ** 2).mean()
    return total


def test_style_loss_matches_numpy_and_adain(encoder, crops, style_img, vgg_relu3_path):
    got = style_loss(encoder, crops, style_img, batch=2)  # two batches: 2 + 1 frames
    sd = load_state_dict(vgg_relu3_path)
    want = np.array([np_style_loss(f, style_img, sd) for f in crops])
    assert want.min() > 1e-3  # a real loss, not zero
    np.testing.assert_allclose(got, want, rtol=2e-4)
    # per frame it is exactly models.adain.style_loss of that frame alone
    with jt.no_grad():
        one = adain_style_loss(encoder(jt.array(crops[1:2].transpose(0, 3, 1, 2))),
                               encoder(jt.array(style_img.transpose(2, 0, 1)[None]))).item()
    np.testing.assert_allclose(got[1], one, rtol=1e-5)


def test_loss_terms_per_tap_match_numpy(encoder, crops, style_img, vgg_relu3_path):
    sd = load_state_dict(vgg_relu3_path)
    got = loss_terms(tap_statistics(encoder, crops[:1]), tap_statistics(encoder, style_img))[0]

    def stats(f):
        flat = f.reshape(f.shape[0], -1)
        return flat.mean(-1), np.sqrt(flat.var(-1, ddof=1) + 1e-5)
    want = []
    for o, s in zip(np_vgg_relu3(crops[0].transpose(2, 0, 1)[None], sd),
                    np_vgg_relu3(style_img.transpose(2, 0, 1)[None], sd)):
        (om, os_), (sm, ss) = stats(o[0]), stats(s[0])
        want.append([((om - sm) ** 2).mean(), ((os_ - ss) ** 2).mean()])
    assert got.shape == (3, 2) and min(map(min, want)) > 0
    np.testing.assert_allclose(got, want, rtol=2e-4)


def test_std_level_is_the_ratio_of_summed_stds(encoder, crops, style_img):
    frame, style = tap_statistics(encoder, crops), tap_statistics(encoder, style_img)
    got = std_level(frame, style)
    assert got.shape == (3, 3)
    np.testing.assert_allclose(got[2, 1], frame[1][1][2].sum() / style[1][1][0].sum(), rtol=1e-12)
    np.testing.assert_allclose(std_level(style, style), 1.0)  # the painting against itself
    # a flat grey frame has no feature variation at all: only the eps floor of the stds remains
    flat = std_level(tap_statistics(encoder, np.full((1, 32, 32, 3), 0.5, np.float32)), style)
    assert flat.max() < 0.02


def test_style_image_as_the_frame_has_zero_style_loss(encoder, style_img, crops):
    assert style_loss(encoder, style_img, style_img)[0] < 1e-9
    stats = tap_statistics(encoder, style_img)
    assert [m.shape for m, _ in stats] == [(1, 64), (1, 128), (1, 256)]
    mixed = style_loss(encoder, [style_img, style_img], style_stats=stats)
    assert mixed.shape == (2,) and mixed.max() < 1e-9
    assert style_loss(encoder, crops[:1], style_stats=stats)[0] > 1e-3


def test_content_distance_matches_numpy_and_is_zero_against_itself(encoder, crops, vgg_relu3_path):
    np.testing.assert_array_equal(content_distance(encoder, crops, crops), 0.0)
    other = crops[::-1].copy()
    got = content_distance(encoder, crops, other, batch=2)
    sd = load_state_dict(vgg_relu3_path)

    def deep(img):
        return np_vgg_relu3(img.transpose(2, 0, 1)[None], sd)[-1]
    want = np.array([((deep(a) - deep(b)) ** 2).mean() for a, b in zip(crops, other)])
    assert got[1] == 0.0 and want[0] > 1e-3  # the middle crop met itself
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=1e-9)


def test_highpass_energy_known_answers():
    # a grey 0/1 checkerboard: the Laplacian is -4 on the 1s and +4 on the 0s -> energy 16
    board = (np.indices((6, 8)).sum(0) % 2).astype(np.float32)
    assert highpass_energy(np.repeat(board[..., None], 3, -1))[0] == pytest.approx(16.0)
    # a linear ramp has no curvature
    ramp = np.repeat(np.linspace(0, 1, 9, dtype=np.float32)[None, :, None], 3, -1).repeat(5, 0)
    assert highpass_energy(ramp)[0] == pytest.approx(0.0, abs=1e-12)
    # only the luminance counts: pure blue weighs 0.114 -> energy 16 * 0.114^2
    blue = np.zeros((6, 8, 3), np.float32)
    blue[..., 2] = board
    assert highpass_energy(blue)[0] == pytest.approx(16 * 0.114 ** 2)


def test_sharpness_of_itself_contrast_and_blur(crops):
    np.testing.assert_allclose(sharpness(crops, crops), 1.0)
    mean = crops.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(sharpness(mean + 0.5 * (crops - mean), crops), 0.25, rtol=1e-5)
    np.testing.assert_allclose(sharpness(crops * 0.9 + 0.05, crops), 0.81, rtol=1e-5)
    blurred = np.stack([cv2.GaussianBlur(c, (5, 5), 1.0) for c in crops])
    s = sharpness(blurred, crops)
    assert (s < 0.5).all(), s
    assert (sharpness(crops, blurred) > 2).all()


def test_path_sharpness_is_a_ratio_of_mean_energies():
    board = np.repeat((np.indices((6, 8)).sum(0) % 2).astype(np.float32)[..., None], 3, -1)
    flat = np.full_like(board, 0.5)
    # energies: frames 16 and 4 (half the contrast), references 16 and 0
    frames, reference = np.stack([board, 0.25 + 0.5 * board]), np.stack([board, flat])
    assert path_sharpness(frames, reference) == pytest.approx(20 / 16)
    assert sharpness(frames, reference)[1] > 1e12  # per frame, the flat reference explodes
    assert path_sharpness(reference, reference) == 1.0


def test_measure_is_the_three_measures(encoder, crops, style_img):
    other = np.clip(crops[::-1] * 1.2, 0, 1)
    got = measure(encoder, other, style_img, crops, batch=2)
    np.testing.assert_allclose(got["style_loss"], style_loss(encoder, other, style_img), rtol=1e-6)
    np.testing.assert_allclose(got["content_distance"], content_distance(encoder, other, crops), rtol=1e-6)
    np.testing.assert_allclose(got["sharpness"], sharpness(other, crops))
    terms = got.pop("style_loss_terms")
    assert terms.shape == (3, 3, 2)  # frames, taps relu1_1..relu3_1, (means, stds)
    np.testing.assert_allclose(got.pop("std_level"), std_level(tap_statistics(encoder, other),
                                                               tap_statistics(encoder, style_img)), rtol=1e-9)
    np.testing.assert_allclose(terms.sum(axis=(1, 2)), got["style_loss"], rtol=1e-12)
    assert {k: v.shape for k, v in got.items()} == {k: (3,) for k in got}
    same = measure(encoder, crops, style_img, crops)
    assert (same["content_distance"] == 0).all() and np.allclose(same["sharpness"], 1)


def test_measure_many_is_measure_of_each_set_with_one_content_pass(encoder, crops, style_img, monkeypatch):
    sets = {"a": np.clip(crops[::-1] * 1.2, 0, 1), "b": crops ** 2, "c": crops}
    alone = {key: measure(encoder, frames, style_img, crops, batch=2) for key, frames in sets.items()}
    real, content_passes = encoder.encode, []

    def counting(x):
        content_passes.append(x.shape[0])
        return real(x)
    monkeypatch.setattr(encoder, "encode", counting)
    together = measure_many(encoder, sets, style_img, crops, batch=2)
    assert content_passes == [2, 1]  # the 3 content frames once, in batches of 2, for all three sets
    for key in sets:
        assert together[key].keys() == alone[key].keys()
        for name, value in alone[key].items():
            np.testing.assert_array_equal(together[key][name], value, err_msg=f"{key} {name}")


def test_bad_inputs_say_what_was_expected(encoder, crops, style_img):
    with pytest.raises(StyleStrengthInputError, match=r"frames must be images \[N,H,W,3\]"):
        sharpness(crops[..., :2], crops[..., :2])
    with pytest.raises(StyleStrengthInputError, match="reference frames .* must match"):
        content_distance(encoder, crops, crops[:2])
    with pytest.raises(StyleStrengthInputError, match="content frames .* must match"):
        measure(encoder, crops, style_img, crops[:, :10])
    with pytest.raises(StyleStrengthInputError, match="style image or its tap statistics"):
        style_loss(encoder, crops)
    with pytest.raises(StyleStrengthInputError, match="at least 3x3"):
        highpass_energy(np.zeros((1, 2, 5, 3)))
