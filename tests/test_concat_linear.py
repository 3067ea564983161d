"""models.concat_linear against the literal concatenation, in NumPy (values and gradients)."""
import jittor as jt
import numpy as np
import pytest

from models.concat_linear import concat_linear
from models.layers import Linear


def _layer(in_dim, out_dim, seed):
    layer = Linear(in_dim, out_dim)
    rng = np.random.default_rng(seed)
    layer.weight.assign(jt.array(rng.standard_normal((out_dim, in_dim)).astype(np.float32)))
    layer.bias.assign(jt.array(rng.standard_normal(out_dim).astype(np.float32)))
    return layer


def _reference(layer, parts, n_points):
    """NumPy: every per-ray row repeated for its samples, concatenated, times W^T plus bias."""
    full = []
    for p in parts:
        p = p.reshape(1, -1) if p.ndim == 1 else p
        full.append(np.repeat(p, n_points // p.shape[0], axis=0))
    x = np.concatenate(full, -1).astype(np.float64)
    return x @ layer.weight.numpy().T.astype(np.float64) + layer.bias.numpy()


@pytest.mark.parametrize("shapes", [
    [(12, 5), (12, 3)],          # two per-point parts (the NeRF's skip layer)
    [(12, 5), (3, 4)],           # per point + per ray of 4 samples (latent code, view direction)
    [(12, 5), (4,)],             # one code for every point
    [(6, 2), (6, 3), (2, 1)],    # three parts, the last per ray of 3 samples
])
def test_matches_the_concatenation_and_its_gradients(shapes):
    rng = np.random.default_rng(len(shapes))
    parts = [rng.standard_normal(s).astype(np.float32) for s in shapes]
    n_points = shapes[0][0]
    layer = _layer(sum(s[-1] for s in shapes), 7, 1)
    xs = [jt.array(p) for p in parts]
    y = concat_linear(layer, xs, n_points)
    np.testing.assert_allclose(y.numpy(), _reference(layer, parts, n_points), rtol=1e-5, atol=1e-5)

    # L = sum(g * y): dL/dW and dL/dx of each part from the literal concatenation in NumPy
    g = rng.standard_normal((n_points, 7))
    grads = jt.grad((y * jt.array(g.astype(np.float32))).sum(), xs + [layer.weight, layer.bias])
    full = np.concatenate([np.repeat(p.reshape(1, -1) if p.ndim == 1 else p,
                                     n_points // (1 if p.ndim == 1 else p.shape[0]), axis=0) for p in parts], -1)
    w = layer.weight.numpy().astype(np.float64)
    np.testing.assert_allclose(grads[-2].numpy(), g.T @ full, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(grads[-1].numpy(), g.sum(0), rtol=1e-4, atol=1e-4)
    gx_full, col = g @ w, 0
    for p, gp in zip(parts, grads[:-2]):
        width = p.shape[-1]
        block = gx_full[:, col:col + width]
        rows = 1 if p.ndim == 1 else p.shape[0]
        expect = block.reshape(rows, n_points // rows, width).sum(1).reshape(p.shape)  # a ray's samples add up
        np.testing.assert_allclose(gp.numpy(), expect, rtol=1e-4, atol=1e-4)
        col += width


def test_clear_errors_for_parts_that_do_not_fit():
    layer = _layer(8, 2, 0)
    with pytest.raises(ValueError, match="widths \\[5, 2\\].*taking 8"):
        concat_linear(layer, [jt.zeros((6, 5)), jt.zeros((6, 2))], 6)
    with pytest.raises(ValueError, match="4 rows does not divide 6 points"):
        concat_linear(layer, [jt.zeros((6, 5)), jt.zeros((4, 3))], 6)
