"""pipeline/warm_start.py: the original's `<step>.tar` (or a nerf_<step>.pkl) becomes the experiment's
first NeRF checkpoint; its density is the original network's, checked against a NumPy forward pass."""
import os

import jittor as jt
import numpy as np
import pytest

from core.checkpoint import CheckpointError
from core.config import parse_args
from pipeline.nerf_stage import load_trained_nerf, nerf_stage_done
from pipeline.warm_start import warm_start_nerf
from tests.test_original_ckpt import jt_save_file, original_nerf_state

# the original's remap layer is 256 wide whatever --netwidth is: only W = 256 has its layout
SIZE = ["--netdepth", "5", "--netwidth", "256", "--netdepth_fine", "5", "--netwidth_fine", "256",
        "--embed_freq_coor", "1", "--embed_freq_dir", "1", "--use_viewdir", "--origin_step", "5"]
IN_CH = VIEWS_CH = 3 + 3 * 2 * 1


def args_for(tmp_path, *extra):
    return parse_args(SIZE + ["--basedir", str(tmp_path), "--expname", "exp"] + list(extra))


def original_files(tmp_path, step=5):
    coarse = original_nerf_state(D=5, W=256, in_ch=IN_CH, views_ch=VIEWS_CH, seed=11)
    fine = original_nerf_state(D=5, W=256, in_ch=IN_CH, views_ch=VIEWS_CH, seed=12)
    return jt_save_file(tmp_path / f"{step:06d}.tar", coarse, fine, step), coarse, fine


def numpy_sigma(sd, x):
    """The original MLP_style's density: ReLU linears, the input concatenated in front after layer 4."""
    h = x.astype(np.float64)
    i = 0
    while f"net.base_layers.{i}.weight" in sd:
        h = np.maximum(h @ sd[f"net.base_layers.{i}.weight"].T + sd[f"net.base_layers.{i}.bias"], 0)
        if i == 4 and f"net.base_layers.{i + 1}.weight" in sd:
            h = np.concatenate([x, h], -1)
        i += 1
    return (h @ sd["net.sigma_layer.weight"].T + sd["net.sigma_layer.bias"])[:, 0]


def test_original_tar_becomes_the_first_checkpoint_with_the_same_density(tmp_path):
    src, coarse, fine = original_files(tmp_path)
    args = args_for(tmp_path, "--warm_start", src)
    expdir = str(tmp_path / "exp")
    logs = []
    saved = warm_start_nerf(args, expdir, logs.append)
    assert os.path.basename(saved) == "nerf_000005.pkl" and "warm start from" in logs[0]
    assert nerf_stage_done(args, expdir)  # step 5 >= --origin_step 5
    system, step, _ = load_trained_nerf(args, expdir)
    assert step == 5
    x = np.random.default_rng(0).standard_normal((7, IN_CH)).astype(np.float32)
    for net, sd in ((system.coarse, coarse), (system.fine, fine)):
        with jt.no_grad():
            sigma, _ = net.density(jt.array(x))
        np.testing.assert_allclose(sigma.numpy(), numpy_sigma(sd, x), rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(system.fine.views_linear.weight.numpy(), fine["net.rgb_layers.0.weight"])
    # a rerun keeps the experiment's own checkpoint
    assert warm_start_nerf(args, expdir, logs.append) is None
    assert "not used" in logs[-1] and "checkpoints of its own" in logs[-1]


def test_an_original_tar_in_the_experiment_folder_is_picked_up(tmp_path):
    os.makedirs(tmp_path / "exp")
    original_files(tmp_path / "exp", step=3)
    original_files(tmp_path / "exp", step=4)
    args = args_for(tmp_path)
    assert os.path.basename(warm_start_nerf(args, str(tmp_path / "exp"), lambda *_: None)) == "nerf_000004.pkl"
    assert not nerf_stage_done(args, str(tmp_path / "exp"))  # 4 < 5: stage 1 trains on from step 4
    assert warm_start_nerf(args_for(tmp_path / "other"), str(tmp_path / "other" / "exp")) is None  # nothing there


def test_own_checkpoint_as_warm_start(tmp_path):
    src, _, _ = original_files(tmp_path)
    first = warm_start_nerf(args_for(tmp_path, "--warm_start", src), str(tmp_path / "exp"), lambda *_: None)
    args = parse_args(SIZE + ["--basedir", str(tmp_path), "--expname", "again", "--warm_start", first])
    saved = warm_start_nerf(args, str(tmp_path / "again"), lambda *_: None)
    a, _, _ = load_trained_nerf(args, str(tmp_path / "again"))
    b, _, _ = load_trained_nerf(args, str(tmp_path / "exp"))
    assert saved.endswith("nerf_000005.pkl")
    np.testing.assert_array_equal(a.coarse.pts_linears[2].weight.numpy(), b.coarse.pts_linears[2].weight.numpy())


def test_mismatches_are_clear(tmp_path):
    src, _, _ = original_files(tmp_path)
    other = parse_args([a if a != "5" or i != 1 else "6" for i, a in enumerate(SIZE)]
                       + ["--basedir", str(tmp_path), "--warm_start", src])  # --netdepth 6
    with pytest.raises(CheckpointError, match=r"000005.tar \(coarse\) does not fit the model"):
        warm_start_nerf(other, str(tmp_path / "x"))
    no_views = parse_args([a for a in SIZE if a != "--use_viewdir"] + ["--basedir", str(tmp_path),
                                                                         "--warm_start", src])
    with pytest.raises(CheckpointError, match="add --use_viewdir"):
        warm_start_nerf(no_views, str(tmp_path / "y"))
    with pytest.raises(CheckpointError, match="--warm_start .*missing.tar: no such file"):
        warm_start_nerf(args_for(tmp_path, "--warm_start", str(tmp_path / "missing.tar")), str(tmp_path / "z"))
