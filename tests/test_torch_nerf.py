"""bench/torch_nerf.py, the PyTorch yardstick of the NeRF step, against the project's renderer:
with the same weights and rays it renders the same images and gradients (so bench_nerf.py times
the same arithmetic in both). Runs where PyTorch is installed; it is never a dependency."""
import os
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import jittor as jt  # noqa: E402

from bench.torch_nerf import TorchNeRFStep  # noqa: E402
from core.config import parse_args  # noqa: E402
from pipeline.nerf_stage import NeRFSystem  # noqa: E402
from render.options import RenderOptions  # noqa: E402
from render.renderer import render_rays  # noqa: E402

TINY = ["--use_viewdir", "--netdepth", "6", "--netwidth", "32", "--netdepth_fine", "6", "--netwidth_fine", "32",
        "--N_samples", "16", "--N_samples_fine", "16", "--embed_freq_coor", "6", "--embed_freq_dir", "2",
        "--matmul", "fp32"]


def rays(n, seed=0):
    """NDC-like rays: origins near the z = -1 plane, directions forward; view directions unit."""
    rng = np.random.default_rng(seed)
    o = np.concatenate([rng.uniform(-0.5, 0.5, (n, 2)), -np.ones((n, 1))], 1).astype(np.float32)
    d = np.concatenate([rng.uniform(-0.3, 0.3, (n, 2)), 2 * np.ones((n, 1))], 1).astype(np.float32)
    v = d / np.linalg.norm(d, axis=1, keepdims=True)
    return o, d, v.astype(np.float32)


@pytest.fixture(scope="module")
def pair():
    args = parse_args(TINY)
    jt.set_global_seed(3)
    system = NeRFSystem(args)
    return args, system, TorchNeRFStep(args, 0.0, 1.0, state=system.state(), device="cpu")


def test_same_weights_and_rays_render_the_same_images(pair):
    args, system, theirs = pair
    o, d, v = rays(64)
    ours = render_rays(o, d, v, *system.fields(), opts=RenderOptions(n_samples=16, n_fine=16))
    with torch.no_grad():
        got = theirs.render(*(torch.tensor(x) for x in (o, d, v)), perturb=False, noise_std=0.0)
    for level in ("coarse", "fine"):
        np.testing.assert_allclose(got[level]["rgb"].numpy(), ours[level]["rgb"].numpy(), atol=2e-5)
        np.testing.assert_allclose(got[level]["z_vals"].numpy(), ours[level]["z_vals"].numpy(), atol=1e-5)
    assert ours["fine"]["rgb"].numpy().std() > 1e-3  # not a constant image that anything would match


def test_same_loss_gives_the_same_gradients(pair):
    args, system, theirs = pair
    o, d, v = rays(64, seed=1)
    target = np.random.default_rng(2).uniform(0, 1, (64, 3)).astype(np.float32)
    ours = render_rays(o, d, v, *system.fields(), opts=RenderOptions(n_samples=16, n_fine=16))
    tgt = jt.array(target)
    loss = ((ours["coarse"]["rgb"] - tgt) ** 2).mean() + ((ours["fine"]["rgb"] - tgt) ** 2).mean()
    params = system.coarse.parameters() + system.fine.parameters()
    grads = jt.grad(loss, params)
    got = theirs.render(*(torch.tensor(x) for x in (o, d, v)), perturb=False, noise_std=0.0)
    t = torch.tensor(target)
    theirs_loss = ((got["coarse"]["rgb"] - t) ** 2).mean() + ((got["fine"]["rgb"] - t) ** 2).mean()
    theirs_params = list(theirs.nets["coarse"].parameters()) + list(theirs.nets["fine"].parameters())
    theirs_grads = torch.autograd.grad(theirs_loss, theirs_params)
    assert theirs_loss.item() == pytest.approx(float(loss.item()), rel=1e-5)
    for g_ours, g_theirs in zip(grads, theirs_grads):
        scale = max(float(np.abs(g_theirs.numpy()).max()), 1e-8)
        assert np.abs(g_ours.numpy() - g_theirs.numpy()).max() <= 1e-3 * scale


def test_a_training_step_lowers_the_loss_on_a_fixed_batch():
    args = parse_args(TINY + ["--lrate", "5e-3"])
    theirs = TorchNeRFStep(args, 0.0, 1.0, device="cpu")  # its own weights: the pair's stay as they are
    o, d, v = rays(128, seed=4)
    batch = {"rays_o": o, "rays_d": d, "viewdirs": v, "rgb": np.full((128, 3), 0.25, np.float32)}
    first = float(theirs.step(batch))
    for _ in range(20):
        last = float(theirs.step(batch))
    assert last < 0.5 * first


def test_the_benchmark_times_both_steps_on_one_workload(fern_dir, capsys):
    """bench_nerf.yardstick (on a GPU after the NeRF figures; here on the CPU, tiny)."""
    from bench import bench_nerf
    from pipeline.stages import load_scene
    args = parse_args(TINY + ["--datadir", fern_dir, "--factor", "8", "--batch_size", "64", "--device", "cpu"])
    out = bench_nerf.yardstick(args, load_scene(args), steps=3, warmup=1, need_gpu=False)
    assert out["ours_it_s"] > 0 and out["torch_it_s"] > 0 and out["steps"] == 3
    assert out["ratio"] == pytest.approx(out["ours_it_s"] / out["torch_it_s"], rel=0.02)
    assert f"{out['ratio']:.2f}x" in capsys.readouterr().out
    assert bench_nerf.yardstick(args, load_scene(args), steps=3) is None  # no GPU: a CPU figure says nothing
