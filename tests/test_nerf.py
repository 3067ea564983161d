"""models/nerf.py: layout, parameter count, initialisation and a NumPy forward."""
import jittor as jt
import numpy as np
import pytest

from models.nerf import NeRF


def test_default_parameter_count_matches_hand_formula():
    net = NeRF()  # D=8, W=256, 63 + 27 inputs, skip after layer 4, view directions
    lin = lambda i, o: i * o + o  # noqa: E731
    trunk = lin(63, 256) + 6 * lin(256, 256) + lin(256 + 63, 256)   # 493,056
    heads = lin(256, 1) + lin(256, 256) + lin(256 + 27, 128) + lin(128, 3)  # 102,788
    expected = trunk + heads
    assert expected == 595844  # "about 596k" (ORIGINAL.md)
    assert sum(int(np.prod(p.shape)) for p in net.parameters()) == expected
    no_dirs = NeRF(use_viewdirs=False, input_ch_views=0)
    assert sum(int(np.prod(p.shape)) for p in no_dirs.parameters()) == trunk + lin(256, 1) + lin(256, 3)
    assert tuple(net.pts_linears[5].weight.shape) == (256, 319)


def test_initialisation_is_pytorch_linear_default():
    # PyTorch nn.Linear: weight and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    net = NeRF(D=3, W=256, input_ch=63, input_ch_views=27)
    w = net.pts_linears[1].weight.numpy()
    b = net.pts_linears[1].bias.numpy()
    bound = 1 / np.sqrt(256)
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.02 * bound
    assert w.max() > 0.95 * bound and w.min() < -0.95 * bound


def numpy_nerf(net, x, d):
    p = {k: v.numpy().astype(np.float64) for k, v in net.state_dict().items()}
    lin = lambda name, h: h @ p[name + ".weight"].T + p[name + ".bias"]  # noqa: E731
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    h = x
    for i in range(net.D):
        h = relu(lin(f"pts_linears.{i}", h))
        if i in net.skips:
            h = np.concatenate([x, h], -1)
    sigma = lin("alpha_linear", h)[..., 0]
    if net.use_viewdirs:
        f = lin("feature_linear", h)
        h = relu(lin("views_linear", np.concatenate([f, d], -1)))
        rgb = 1 / (1 + np.exp(-lin("rgb_linear", h)))
    else:
        rgb = 1 / (1 + np.exp(-lin("rgb_linear", h)))
    return rgb, sigma


@pytest.mark.parametrize("use_viewdirs", [True, False])
def test_forward_matches_numpy(use_viewdirs):
    net = NeRF(D=6, W=32, input_ch=15, input_ch_views=9, skips=(2,), use_viewdirs=use_viewdirs)
    x = np.random.randn(7, 15).astype(np.float32)
    d = np.random.randn(7, 9).astype(np.float32)
    rgb, sigma = net(jt.array(x), jt.array(d))
    rgb_ref, sigma_ref = numpy_nerf(net, x.astype(np.float64), d.astype(np.float64))
    assert rgb.shape == (7, 3) and sigma.shape == (7,)
    np.testing.assert_allclose(rgb.numpy(), rgb_ref, atol=1e-5)
    np.testing.assert_allclose(sigma.numpy(), sigma_ref, atol=1e-4)
    # density/color split gives the same numbers; rgb is in [0, 1]
    s2, feat = net.density(jt.array(x))
    np.testing.assert_allclose(s2.numpy(), sigma.numpy(), atol=1e-6)
    assert feat.shape == (7, 32)
    assert (rgb.numpy() >= 0).all() and (rgb.numpy() <= 1).all()


def test_skip_after_last_layer_is_ignored_and_missing_dirs_error():
    net = NeRF(D=5, W=16, input_ch=9, input_ch_views=6, skips=(4,))
    assert net.skips == ()
    rgb, sigma = net(jt.zeros((2, 9)), jt.zeros((2, 6)))
    assert rgb.shape == (2, 3)
    with pytest.raises(ValueError, match="dir_emb"):
        net(jt.zeros((2, 9)))
