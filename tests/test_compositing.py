"""render/compositing.py: volume compositing vs NumPy, gradients vs finite differences, limit cases."""
import jittor as jt
import numpy as np

from render.compositing import composite


def numpy_composite(rgb, sigma, z, d, white_bkgd=False):
    """nerf-pytorch's raw2outputs (no noise) in float64."""
    dists = np.concatenate([z[:, 1:] - z[:, :-1], np.full((z.shape[0], 1), 1e10)], -1)
    dists = dists * np.linalg.norm(d, axis=-1, keepdims=True)
    alpha = 1 - np.exp(-np.maximum(sigma, 0) * dists)
    trans = np.cumprod(np.concatenate([np.ones((z.shape[0], 1)), 1 - alpha + 1e-10], -1), -1)[:, :-1]
    w = alpha * trans
    acc = w.sum(-1)
    out = (w[..., None] * rgb).sum(1)
    if white_bkgd:
        out = out + (1 - acc[:, None])
    return {"rgb": out, "depth": (w * z).sum(-1), "acc": acc, "weights": w}


def random_case(n_rays=6, n_samples=9):
    rgb = np.random.rand(n_rays, n_samples, 3)
    sigma = np.random.uniform(-1, 4, size=(n_rays, n_samples))
    sigma[np.abs(sigma) < 0.05] = 0.3  # keep finite differences away from the ReLU kink
    z = np.sort(np.random.uniform(1, 3, size=(n_rays, n_samples)), -1)
    d = np.random.randn(n_rays, 3)
    return rgb, sigma, z, d


def jt32(*arrays):
    return [jt.array(a.astype(np.float32)) for a in arrays]



def numeric_grad(f, x, eps=1e-6):
    """Central finite differences of the scalar f at x (float64)."""
    g = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        plus, minus = x.copy(), x.copy()
        plus[idx] += eps
        minus[idx] -= eps
        g[idx] = (f(plus) - f(minus)) / (2 * eps)
    return g

def test_matches_numpy_reference():
    for white in (False, True):
        rgb, sigma, z, d = random_case()
        out = composite(*jt32(rgb, sigma, z, d), white_bkgd=white)
        ref = numpy_composite(rgb, sigma, z, d, white_bkgd=white)
        for k in ("rgb", "depth", "acc", "weights"):
            np.testing.assert_allclose(out[k].numpy(), ref[k], rtol=1e-4, atol=1e-5, err_msg=k)
    assert out["rgb"].shape == (6, 3) and out["depth"].shape == (6,) and out["weights"].shape == (6, 9)


def test_gradients_match_finite_differences():
    rgb, sigma, z, d = random_case(3, 6)
    g_rgb, g_depth, g_acc = np.random.randn(3, 3), np.random.randn(3), np.random.randn(3)

    def loss_np(rgb_, sigma_):
        o = numpy_composite(rgb_, sigma_, z, d)
        return (o["rgb"] * g_rgb).sum() + (o["depth"] * g_depth).sum() + (o["acc"] * g_acc).sum()

    rgb_v, sigma_v, z_v, d_v = jt32(rgb, sigma, z, d)
    o = composite(rgb_v, sigma_v, z_v, d_v)
    loss = (o["rgb"] * jt.array(g_rgb.astype(np.float32))).sum() + (o["depth"] * jt.array(g_depth.astype(np.float32))).sum() \
        + (o["acc"] * jt.array(g_acc.astype(np.float32))).sum()
    grad_rgb, grad_sigma = [g.numpy() for g in jt.grad(loss, [rgb_v, sigma_v])]

    num_sigma = numeric_grad(lambda s: loss_np(rgb, s), sigma)
    num_rgb = numeric_grad(lambda c: loss_np(c, sigma), rgb)
    np.testing.assert_allclose(grad_sigma, num_sigma, rtol=2e-3, atol=2e-4)
    np.testing.assert_allclose(grad_rgb, num_rgb, rtol=2e-3, atol=2e-5)
    assert np.abs(num_sigma).max() > 0.05  # the check is not vacuous


def test_single_opaque_sample_and_empty_space():
    z = np.tile(np.linspace(1, 2, 8), (2, 1))
    sigma = np.full((2, 8), -5.0)          # relu -> empty space
    sigma[0, 3] = 1e4                      # ray 0: an opaque sample at index 3
    rgb = np.zeros((2, 8, 3))
    rgb[0, 3] = [0.2, 0.4, 0.6]
    d = np.array([[0, 0, -1.0], [0, 0, -1.0]])
    out = composite(*jt32(rgb, sigma, z, d))
    w = out["weights"].numpy()
    np.testing.assert_allclose(w[0], np.eye(8)[3], atol=1e-6)
    np.testing.assert_allclose(out["rgb"].numpy()[0], [0.2, 0.4, 0.6], atol=1e-6)
    np.testing.assert_allclose(out["depth"].numpy()[0], z[0, 3], rtol=1e-6)
    assert abs(out["acc"].numpy()[1]) < 1e-7 and np.abs(out["rgb"].numpy()[1]).max() < 1e-7
    white = composite(*jt32(rgb, sigma, z, d), white_bkgd=True)
    np.testing.assert_allclose(white["rgb"].numpy()[1], [1, 1, 1], atol=1e-6)
    np.testing.assert_allclose(white["rgb"].numpy()[0], [0.2, 0.4, 0.6], atol=1e-6)


def test_ray_length_scales_deltas_and_noise_changes_output():
    rgb, sigma, z, d = random_case()
    unit = d / np.linalg.norm(d, axis=-1, keepdims=True)
    a = composite(*jt32(rgb, sigma, z, 2 * unit))["weights"].numpy()
    b = composite(*jt32(rgb, 2 * sigma, z, unit))["weights"].numpy()  # sigma * 2|d| == 2 sigma * |d|
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    clean = composite(*jt32(rgb, sigma, z, d))["rgb"].numpy()
    noisy = composite(*jt32(rgb, sigma, z, d), noise_std=1.0)["rgb"].numpy()
    assert np.abs(noisy - clean).max() > 1e-3


def test_gradients_finite_with_fully_opaque_samples():
    # alpha == 1 exactly (in float32) mid-ray and at the last sample (delta 1e10): no NaN/inf
    sigma = np.array([[0.5, 1e4, 2.0, 3.0], [0.0, 0.2, 1.0, 50.0]])
    z = np.tile(np.linspace(1, 2, 4), (2, 1))
    rgb = np.random.rand(2, 4, 3)
    d = np.array([[0, 0, -1.0], [0.3, 0, -1.0]])
    rgb_v, sigma_v, z_v, d_v = jt32(rgb, sigma, z, d)
    o = composite(rgb_v, sigma_v, z_v, d_v)
    grads = jt.grad(o["rgb"].sum() + o["depth"].sum(), [rgb_v, sigma_v])
    for g in grads:
        assert np.isfinite(g.numpy()).all()
    ref = numpy_composite(rgb, sigma, z, d)
    np.testing.assert_allclose(o["weights"].numpy(), ref["weights"], atol=1e-6)


def _fd_check(loss_np, loss_jt, rgb, sigma, **tol):
    rgb_v, sigma_v = jt32(rgb, sigma)
    grad_rgb, grad_sigma = [g.numpy() for g in jt.grad(loss_jt(rgb_v, sigma_v), [rgb_v, sigma_v])]
    np.testing.assert_allclose(grad_sigma, numeric_grad(lambda s: loss_np(rgb, s), sigma), **tol)
    np.testing.assert_allclose(grad_rgb, numeric_grad(lambda c: loss_np(c, sigma), rgb), **tol)
    return grad_sigma


def test_gradients_of_weights_with_white_background():
    """All four outputs feed the loss (weights too), composited onto white."""
    rgb, sigma, z, d = random_case(3, 6)
    g_rgb, g_w, g_acc = np.random.randn(3, 3), np.random.randn(3, 6), np.random.randn(3)

    def loss_np(rgb_, sigma_):
        o = numpy_composite(rgb_, sigma_, z, d, white_bkgd=True)
        return (o["rgb"] * g_rgb).sum() + (o["weights"] * g_w).sum() + (o["acc"] * g_acc).sum()

    def loss_jt(rgb_v, sigma_v):
        o = composite(rgb_v, sigma_v, *jt32(z, d), white_bkgd=True)
        return ((o["rgb"] * jt32(g_rgb)[0]).sum() + (o["weights"] * jt32(g_w)[0]).sum()
                + (o["acc"] * jt32(g_acc)[0]).sum())

    g = _fd_check(loss_np, loss_jt, rgb, sigma, rtol=2e-3, atol=2e-4)
    assert np.abs(g).max() > 0.05


def test_rgb_only_loss_as_in_training():
    """Only the colour reaches the loss (depth, acc, weights get no gradient), as in NeRF training."""
    rgb, sigma, z, d = random_case(4, 7)
    target = np.random.rand(4, 3)

    def loss_np(rgb_, sigma_):
        return ((numpy_composite(rgb_, sigma_, z, d)["rgb"] - target) ** 2).mean()

    def loss_jt(rgb_v, sigma_v):
        return ((composite(rgb_v, sigma_v, *jt32(z, d))["rgb"] - jt32(target)[0]) ** 2).mean()

    _fd_check(loss_np, loss_jt, rgb, sigma, rtol=2e-3, atol=2e-5)


def test_backward_uses_the_forward_noise():
    """With density noise, the gradient is that of the noisy forward pass (same noise)."""
    from render.compositing import _Composite
    rgb, sigma, z, d = random_case(3, 6)
    noise = np.random.randn(3, 6)
    g_rgb = np.random.randn(3, 3)
    rgb_v, sigma_v, noise_v, z_v, d_v = jt32(rgb, sigma, noise, z, d)
    out_rgb = _Composite.apply(rgb_v, sigma_v, noise_v.stop_grad(), z_v.stop_grad(), d_v.stop_grad(), False)[0]
    np.testing.assert_allclose(out_rgb.numpy(), numpy_composite(rgb, sigma + noise, z, d)["rgb"], rtol=1e-4, atol=1e-5)
    (grad_sigma,) = jt.grad((out_rgb * jt32(g_rgb)[0]).sum(), [sigma_v])
    num = numeric_grad(lambda s: (numpy_composite(rgb, s + noise, z, d)["rgb"] * g_rgb).sum(), sigma)
    np.testing.assert_allclose(grad_sigma.numpy(), num, rtol=2e-3, atol=2e-4)


def test_one_kernel_forward_one_backward():
    rgb, sigma, z, d = random_case(8, 5)
    rgb_v, sigma_v, z_v, d_v = jt32(rgb, sigma, z, d)

    def codes(fn):
        fn()
        jt.sync_all(True)
        jt.profiler.start(0, 0)
        fn()
        jt.sync_all(True)
        jt.profiler.stop()
        return sum(int(r[2]) for r in jt.profiler.report()[1:] if r[0].startswith("code"))

    def forward():
        jt.sync(list(composite(rgb_v, sigma_v, z_v, d_v).values()))

    def forward_backward():  # a loss whose gradient needs the forward colour
        jt.sync(jt.grad(((composite(rgb_v, sigma_v, z_v, d_v)["rgb"] - 0.5) ** 2).sum(), [rgb_v, sigma_v]))

    assert codes(forward) == 1
    assert codes(forward_backward) == 2
