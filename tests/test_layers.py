"""models/layers.py: im2col convolution, padding, pooling and upsampling vs NumPy."""
import os
import jittor as jt
import numpy as np
import pytest

from models import layers
from models.layers import (Conv2d, conv2d_gemm, conv2d_im2col, conv2d_jittor, max_pool2d_ceil, reflect_pad,
                           upsample_nearest2x, zero_pad)

GPU_CONVS = {"im2col": conv2d_im2col, "gemm": conv2d_gemm}  # the GPU paths, run here on the CPU


def np_conv(x, w, b, padding, mode, stride=1):
    """Plain NumPy cross-correlation (float64)."""
    x, w = x.astype(np.float64), w.astype(np.float64)
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)),
                mode="reflect" if mode == "reflect" else "constant")
    o, c, k, _ = w.shape
    ho = (xp.shape[2] - k) // stride + 1
    wo = (xp.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], o, ho, wo))
    for ky in range(k):
        for kx in range(k):
            patch = xp[:, :, ky:ky + stride * (ho - 1) + 1:stride, kx:kx + stride * (wo - 1) + 1:stride]
            out += np.einsum("bchw,oc->bohw", patch, w[:, :, ky, kx])
    return out + (0 if b is None else b.reshape(1, -1, 1, 1))


def np_pool_ceil(x, k=2):
    b, c, h, w = x.shape
    ho, wo = -(-h // k), -(-w // k)
    out = np.empty((b, c, ho, wo), x.dtype)
    for i in range(ho):
        for j in range(wo):
            out[:, :, i, j] = x[:, :, i * k:(i + 1) * k, j * k:(j + 1) * k].max(axis=(2, 3))
    return out


@pytest.mark.parametrize("impl", sorted(GPU_CONVS))
@pytest.mark.parametrize("mode,padding,stride", [("reflect", 1, 1), ("zeros", 1, 1), ("reflect", 2, 2),
                                                 ("zeros", 0, 1), ("reflect", 2, 1)])
def test_gpu_conv_forward_matches_numpy_and_jittor(impl, mode, padding, stride):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 5, 7)).astype(np.float32)
    k = 3 if padding < 2 else 5
    w = rng.standard_normal((4, 3, k, k)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    want = np_conv(x, w, b, padding, mode, stride)
    got = GPU_CONVS[impl](jt.array(x), jt.array(w), jt.array(b), padding, mode, stride).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ref = conv2d_jittor(jt.array(x), jt.array(w), jt.array(b), padding, mode, stride).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("impl", sorted(GPU_CONVS))
@pytest.mark.parametrize("mode,padding,k", [("reflect", 1, 3), ("zeros", 1, 3), ("zeros", 0, 3),
                                            ("reflect", 0, 1), ("reflect", 2, 3)])
def test_gpu_conv_gradients_match_numpy(impl, mode, padding, k):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 2, 4, 5)).astype(np.float32)
    w = rng.standard_normal((3, 2, k, k)).astype(np.float32)
    b = rng.standard_normal(3).astype(np.float32)
    shape = np_conv(x, w, b, padding, mode).shape
    g = rng.standard_normal(shape).astype(np.float32)  # upstream gradient
    jx, jw, jb = jt.array(x), jt.array(w), jt.array(b)
    loss = (GPU_CONVS[impl](jx, jw, jb, padding, mode) * jt.array(g)).sum()
    gx, gw, gb = [v.numpy() for v in jt.grad(loss, [jx, jw, jb])]

    def L(xx, ww, bb):
        return float((np_conv(xx, ww, bb, padding, mode) * g).sum())
    # the loss is linear in each argument: unit differences give the exact gradient
    base = L(x, w, b)
    for arr, got in ((x, gx), (w, gw), (b, gb)):
        num = np.zeros(arr.shape)
        for idx in np.ndindex(arr.shape):
            pert = arr.astype(np.float64).copy()
            pert[idx] += 1.0
            args = [x, w, b]
            args[[a is arr for a in args].index(True)] = pert
            num[idx] = L(*args) - base
        np.testing.assert_allclose(got, num, rtol=1e-4, atol=1e-4)


def test_conv2d_module_same_on_every_path(monkeypatch):
    conv = Conv2d(3, 5, 3, padding=1)
    x = jt.array(np.random.default_rng(2).standard_normal((1, 3, 6, 6)).astype(np.float32))
    monkeypatch.setattr(layers, "CONV_IMPL", "im2col")
    a = conv(x).numpy()
    monkeypatch.setattr(layers, "CONV_IMPL", "gemm")
    gm = conv(x).numpy()
    monkeypatch.setattr(layers, "CONV_IMPL", "jittor")
    c = conv(x).numpy()
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gm, c, rtol=1e-5, atol=1e-5)
    want = np_conv(x.numpy(), conv.weight.numpy(), conv.bias.numpy(), 1, "reflect")
    np.testing.assert_allclose(a, want, rtol=1e-5, atol=1e-5)
    assert sorted(conv.state_dict()) == ["bias", "weight"]
    with pytest.raises(ValueError, match="reflection padding 1 needs an input larger"):
        conv(jt.zeros((1, 3, 1, 4)))
    with pytest.raises(ValueError, match="padding_mode"):
        Conv2d(3, 5, 3, padding_mode="circular")


def test_zero_pad_matches_numpy():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4) + 1
    np.testing.assert_array_equal(zero_pad(jt.array(x), 2).numpy(), np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2))))
    assert zero_pad(jt.array(x), 0).shape == x.shape


def test_reflect_pad_matches_numpy():
    x = np.arange(2 * 3 * 4, dtype=np.float32).reshape(1, 2, 3, 4)
    for p in (1, 2):
        np.testing.assert_array_equal(reflect_pad(jt.array(x), p).numpy(),
                                      np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect"))


@pytest.mark.parametrize("shape", [(1, 2, 4, 6), (2, 1, 5, 7), (1, 1, 1, 3), (1, 2, 2, 2)])
def test_max_pool_ceil_forward_and_grad(shape):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape).astype(np.float32)
    jx = jt.array(x)
    y = max_pool2d_ceil(jx)
    want = np_pool_ceil(x)
    np.testing.assert_array_equal(y.numpy(), want)
    g = rng.standard_normal(want.shape).astype(np.float32)
    gx = jt.grad((y * jt.array(g)).sum(), jx).numpy()
    # NumPy: each window's upstream gradient lands on its (unique, random data) maximum
    ref = np.zeros_like(x)
    for bi, ci, i, j in np.ndindex(want.shape):
        win = x[bi, ci, 2 * i:2 * i + 2, 2 * j:2 * j + 2]
        a, c = np.unravel_index(np.argmax(win), win.shape)
        ref[bi, ci, 2 * i + a, 2 * j + c] += g[bi, ci, i, j]
    np.testing.assert_allclose(gx, ref, atol=1e-6)
    if min(shape[2:]) > 2:  # Jittor's own ceil-mode pool agrees where it accepts the size
        jp = jt.nn.Pool(2, ceil_mode=True, op="maximum")(jx).numpy()
        np.testing.assert_array_equal(y.numpy(), jp)


def test_upsample_nearest2x_and_grad():
    x = np.random.default_rng(4).standard_normal((1, 2, 3, 4)).astype(np.float32)
    jx = jt.array(x)
    y = upsample_nearest2x(jx)
    np.testing.assert_array_equal(y.numpy(), x.repeat(2, axis=2).repeat(2, axis=3))
    g = np.random.default_rng(5).standard_normal((1, 2, 6, 8)).astype(np.float32)
    gx = jt.grad((y * jt.array(g)).sum(), jx).numpy()
    np.testing.assert_allclose(gx, g.reshape(1, 2, 3, 2, 4, 2).sum(axis=(3, 5)), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("impl", ["jittor", "cublas", "cublaslt"])  # cublaslt: Jittor's on the CPU
def test_linear_matches_numpy_with_gradients(impl, monkeypatch):
    from models.layers import Linear
    monkeypatch.setattr(layers, "LINEAR_IMPL", impl)
    rng = np.random.default_rng(7)
    lin = Linear(5, 4)
    x = rng.standard_normal((2, 3, 5)).astype(np.float32)  # leading dims are kept
    g = rng.standard_normal((2, 3, 4)).astype(np.float32)
    W, b = lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)
    jx = jt.array(x)
    y = lin(jx)
    np.testing.assert_allclose(y.numpy(), x @ W.T + b, rtol=1e-5, atol=1e-5)
    gx, gw, gb = jt.grad((y * jt.array(g)).sum(), [jx, lin.weight, lin.bias])
    g2, x2 = g.reshape(-1, 4).astype(np.float64), x.reshape(-1, 5).astype(np.float64)
    np.testing.assert_allclose(gx.numpy(), (g2 @ W).reshape(x.shape), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw.numpy(), g2.T @ x2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb.numpy(), g2.sum(0), rtol=1e-5, atol=1e-5)
    assert sorted(lin.state_dict()) == ["bias", "weight"]  # checkpoints as jt.nn.Linear's


@pytest.mark.parametrize("impl", ["jittor", "cublas", "cublaslt"])
def test_linear_relu_is_relu_of_the_layer(impl, monkeypatch):
    from models.layers import Linear, linear_relu
    monkeypatch.setattr(layers, "LINEAR_IMPL", impl)
    rng = np.random.default_rng(8)
    lin = Linear(7, 6)
    x = rng.standard_normal((3, 2, 7)).astype(np.float32)
    W, b = lin.weight.numpy().astype(np.float64), lin.bias.numpy().astype(np.float64)
    want = np.maximum(x @ W.T + b, 0)
    np.testing.assert_allclose(linear_relu(lin, jt.array(x)).numpy(), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(lin(jt.array(x), relu=True).numpy(), want, rtol=1e-5, atol=1e-5)
    # gradients through the ReLU (the "cublas" layer finds the bias gradient in the mask pass)
    g = rng.standard_normal((3, 2, 6)).astype(np.float32)
    jx = jt.array(x)
    gx, gw, gb = jt.grad((lin(jx, relu=True) * jt.array(g)).sum(), [jx, lin.weight, lin.bias])
    gp = (g * (want > 0)).reshape(-1, 6).astype(np.float64)
    np.testing.assert_allclose(gx.numpy(), (gp @ W).reshape(x.shape), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw.numpy(), gp.T @ x.reshape(-1, 7), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gb.numpy(), gp.sum(0), rtol=1e-5, atol=1e-5)
    # and a layer without a bias
    nob = Linear(7, 6, bias=False)
    Wn = nob.weight.numpy().astype(np.float64)
    yn = nob(jx, relu=True)
    np.testing.assert_allclose(yn.numpy(), np.maximum(x @ Wn.T, 0), rtol=1e-5, atol=1e-5)
    gxn = jt.grad((yn * jt.array(g)).sum(), jx).numpy()
    gpn = (g * (x @ Wn.T > 0)).reshape(-1, 6)
    np.testing.assert_allclose(gxn, (gpn @ Wn).reshape(x.shape), rtol=1e-5, atol=1e-5)


def test_linear_impl_is_checked():
    with pytest.raises(ValueError, match="--gemm must be one of"):
        layers.set_linear_impl("tensor")


def test_layers_decide_their_backward_kernels_in_the_forward(monkeypatch):
    """The kernels a backward uses are checked when the forward is built, not inside jt.grad
    (backend/kernels.kernel_ok: a first check there ended in a segfault on the H200)."""
    from backend import kernels
    monkeypatch.setattr(kernels, "_on_gpu", lambda: True)
    monkeypatch.setattr(kernels, "_kernel_state", {})
    rng = np.random.default_rng(7)
    lin = layers.Linear(5, 4)
    layers.linear_gemm(jt.array(rng.standard_normal((6, 5)).astype(np.float32)), lin.weight, lin.bias, relu=True)
    assert kernels._kernel_state == {"relu_grad_bias_sums": True}
    conv = Conv2d(2, 3, 3, padding=1)
    conv2d_gemm(jt.array(rng.standard_normal((1, 2, 5, 5)).astype(np.float32)), conv.weight, conv.bias, padding=1)
    assert kernels._kernel_state == {"relu_grad_bias_sums": True, "row_sums": True}


_STEP_WITH_PENDING_CHECKS = """
import sys
from backend import runtime
jt = runtime.setup(device="cpu", quiet=True)
from backend import kernels
kernels._on_gpu = lambda: True  # the kernels' first-use checks pending, as on a GPU
from bench.common import nerf_train_step
from core.config import parse_args
from core.optim import Adam
from pipeline.stages import apply_compute_options, load_scene
args = parse_args(["--config", "configs/fern.txt", "--datadir", sys.argv[1], "--factor", "8",
                   "--batch_size", "64", "--N_samples", "8", "--N_samples_fine", "8", "--gemm", "cublas"])
scene = load_scene(args)
apply_compute_options(args)
step, _ = nerf_train_step(args, scene, Adam, n_rays=args.batch_size)
for k in range(3):
    step(k)
jt.sync_all(True)
print("steps done", kernels._kernel_state)
"""


def test_cublas_nerf_steps_survive_pending_kernel_checks(fern_dir):
    """Regression: with the check of relu_grad_bias_sums still to run (as on a GPU), the
    --gemm cublas NeRF step made that check inside jt.grad and segfaulted (H200, 2026-12-02;
    the same on the CPU at 483e19c, exit code 139). The steps run in a grandchild under bash:
    Jittor's SIGCHLD handler ends a process (here pytest) whose own child dies of a signal."""
    import subprocess
    import sys
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, STYLENERF_DEVICE="cpu", PYTHONPATH=root)
    shell = '"$0" -c "$1" "$2"; echo "child exit code $?"'
    res = subprocess.run(["bash", "-c", shell, sys.executable, _STEP_WITH_PENDING_CHECKS, fern_dir], cwd=root,
                         env=env, capture_output=True, text=True, timeout=600)
    assert "child exit code 0" in res.stdout, f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}"
    assert "steps done {'relu_grad_bias_sums': True}" in res.stdout
