"""models/style_mlp.py: style MLP layout/forward and latent codes vs NumPy; the hash-grid style
MLP's per-style grids against each grid's NumPy reference."""
import jittor as jt
import numpy as np
import pytest

from models.hash_grid import HashGrid, hash_grid_numpy
from models.style_mlp import HashStyleMLP, LatentCodes, StyleMix, StyleMLP


def n_params(module):
    return sum(int(np.prod(p.shape)) for p in module.parameters())


def test_default_parameter_count_matches_hand_formula():
    lin = lambda i, o: i * o + o  # noqa: E731
    D, W, X, L = 8, 256, 63, 32
    # hidden 0: [x, z]; hidden 1..6: [h, z] (+ x at index 4); output: [h, z] -> 3
    expected = lin(X + L, W) + 5 * lin(W + L, W) + lin(W + L + X, W) + lin(W + L, 3)
    assert expected == 485475  # "~485k" (ORIGINAL.md)
    net = StyleMLP(D=D, W=W, input_ch=X, latent_dim=L)
    assert n_params(net) == expected
    assert tuple(net.hidden[4].weight.shape) == (256, 351)
    assert len(net.hidden) + 1 == D


def numpy_style_mlp(net, x, z):
    p = {k: v.numpy().astype(np.float64) for k, v in net.state_dict().items()}
    lin = lambda name, h: h @ p[name + ".weight"].T + p[name + ".bias"]  # noqa: E731
    h = x
    for i in range(net.D - 1):
        inp = np.concatenate([h, z] + ([x] if i in net.skips else []), -1)
        h = np.maximum(lin(f"hidden.{i}", inp), 0)
    return 1 / (1 + np.exp(-lin("out_linear", np.concatenate([h, z], -1))))


def test_forward_matches_numpy():
    net = StyleMLP(D=6, W=24, input_ch=15, latent_dim=5, skips=(3,))
    x = np.random.randn(9, 15).astype(np.float32)
    z = np.random.randn(9, 5).astype(np.float32)
    rgb = net(jt.array(x), jt.array(z)).numpy()
    assert rgb.shape == (9, 3)
    np.testing.assert_allclose(rgb, numpy_style_mlp(net, x.astype(np.float64), z.astype(np.float64)), atol=1e-5)
    with pytest.raises(ValueError, match="StyleMLP"):
        net(jt.array(x), jt.zeros((9, 4)))


def make_codes(sigma_scale=1.0):
    mu = np.random.randn(3, 4).astype(np.float32)
    logvar = np.random.uniform(-2, 1, size=(3, 4)).astype(np.float32)
    codes = LatentCodes(mu, logvar, n_views=5, sigma_scale=sigma_scale, rng=np.random.default_rng(7))
    return codes, mu, logvar


def test_initialisation_is_mean_plus_scaled_noise():
    codes, mu, logvar = make_codes()
    noise = np.random.default_rng(7).standard_normal((3, 5, 4)).astype(np.float32)
    np.testing.assert_allclose(codes.codes.numpy(), mu[:, None] + np.exp(logvar[:, None] / 2) * noise, rtol=1e-5)
    assert codes.codes.shape == (3, 5, 4)


def test_lookup_style_mean_and_logp_vs_numpy():
    codes, mu, logvar = make_codes(sigma_scale=0.5)
    z = codes.codes.numpy()
    s = np.array([0, 2, 2, 1, 0], np.int32)
    v = np.array([4, 0, 0, 3, 1], np.int32)
    np.testing.assert_allclose(codes.lookup(s, v).numpy(), mu[s] + 0.5 * (z[s, v] - mu[s]), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(codes.style_mean(s).numpy(), mu[s])
    logp_ref = np.mean(np.sum((z[s, v] - mu[s]) ** 2 / (np.exp(logvar[s] / 2) + 1e-3), -1))
    np.testing.assert_allclose(codes.logp_loss(s, v).item(), logp_ref, rtol=1e-5)
    # gradient w.r.t. the codes, with a repeated (style, view) pair accumulating
    grad = jt.grad(codes.logp_loss(jt.array(s), jt.array(v)), codes.codes).numpy()
    ref = np.zeros_like(z)
    for si, vi in zip(s, v):
        ref[si, vi] += 2 * (z[si, vi] - mu[si]) / (np.exp(logvar[si] / 2) + 1e-3) / len(s)
    np.testing.assert_allclose(grad, ref, rtol=1e-4, atol=1e-6)


def test_only_codes_train_and_state_dict_roundtrip():
    codes, mu, _ = make_codes()
    opt = jt.optim.Adam(codes.parameters(), lr=1e-2)
    before = codes.codes.numpy().copy()
    opt.step(codes.logp_loss(np.array([0, 1]), np.array([2, 3])))
    after = codes.codes.numpy()
    assert not np.allclose(after[0, 2], before[0, 2]) and np.allclose(after[2], before[2])
    np.testing.assert_array_equal(codes.mu.numpy(), mu)  # fixed
    state = codes.state_dict()
    assert set(state) == {"codes", "mu", "logvar"}
    other, _, _ = make_codes()
    other.load_state_dict(state)
    np.testing.assert_array_equal(other.codes.numpy(), after)
    assert other.mu.is_stop_grad() and not other.codes.is_stop_grad()


def test_out_of_range_ids_raise():
    codes, _, _ = make_codes()
    with pytest.raises(ValueError, match="view id"):
        codes.lookup(np.array([0]), np.array([5]))
    with pytest.raises(ValueError, match="style id"):
        codes.style_mean(np.array([3]))


# ---------------------------------------------------------------- per-style hash grids

LO, HI = np.array([-1.0, -1.0, 0.0]), np.array([1.0, 1.0, 1.0])
ROWS = 3 << 8  # a table's rows: 3 levels of 2^8


def random_grid(seed, n_tables=1):
    g = HashGrid(LO, HI, n_levels=3, n_features=2, log2_size=8, base_res=2, max_res=24, n_tables=n_tables)
    g.table.assign(jt.array(np.random.default_rng(seed).standard_normal(g.table.shape).astype(np.float32)))
    return g


def numpy_features(grid, pts, k=0):
    """Table k's features by the NumPy reference, from that table's rows alone."""
    return hash_grid_numpy(pts, grid.table.numpy()[k * ROWS:(k + 1) * ROWS], grid.resolutions, LO, HI, 8)


def test_per_style_grids_read_each_point_from_its_own_styles_table():
    grid = random_grid(1, n_tables=3)
    mlp = HashStyleMLP(grid, D=4, W=8, input_ch=3, latent_dim=2)
    rng = np.random.default_rng(0)
    pts = rng.uniform(LO, HI, (50, 3)).astype(np.float32)
    ids = rng.integers(0, 3, 50)
    ids[:3] = [2, 0, 1]  # every style present, out of order
    got = mlp.features(jt.array(pts), ids).numpy()
    want = np.stack([numpy_features(grid, pts[i:i + 1], k)[0] for i, k in enumerate(ids)])
    np.testing.assert_allclose(got, want, atol=2e-5)
    # one style for every point: that table alone; a blend of two: their features blended
    np.testing.assert_allclose(mlp.features(jt.array(pts), 1).numpy(), numpy_features(grid, pts, 1), atol=2e-5)
    blend = mlp.features(jt.array(pts), StyleMix(0, 2, 0.25)).numpy()
    np.testing.assert_allclose(blend, 0.75 * numpy_features(grid, pts, 0) + 0.25 * numpy_features(grid, pts, 2),
                               atol=3e-5)


def test_per_style_grids_learn_only_from_their_own_styles_points():
    grid = random_grid(1, n_tables=3)
    mlp = HashStyleMLP(grid, D=4, W=8, input_ch=3, latent_dim=2)
    rng = np.random.default_rng(0)
    pts = rng.uniform(LO, HI, (40, 3)).astype(np.float32)
    ids = np.array([0, 2] * 20)  # style 1 absent
    G = rng.standard_normal((40, 6)).astype(np.float32)
    grad = jt.grad((mlp.features(jt.array(pts), ids) * jt.array(G)).sum(), grid.table).numpy()
    moved = [float(np.abs(grad[k * ROWS:(k + 1) * ROWS]).max()) > 0 for k in range(3)]
    assert moved == [True, False, True]
    # the lookup is linear in the table: its gradient is exact against finite differences
    table = grid.table.numpy().astype(np.float64)

    def loss(t):
        return sum((hash_grid_numpy(pts[ids == k], t[k * ROWS:(k + 1) * ROWS], grid.resolutions, LO, HI, 8)
                    * G[ids == k]).sum() for k in (0, 2))
    base = loss(table)
    for row in [int(r) for r in np.argwhere(np.abs(grad[:, 0]) > 0)[:3, 0]] + [2 * ROWS + 5]:
        bumped = table.copy()
        bumped[row, 0] += 1.0
        assert abs((loss(bumped) - base) - grad[row, 0]) < 1e-3
    assert mlp.grid_tables() == [grid.table] and mlp.n_grids == 3


def test_a_shared_grid_ignores_the_style_and_keeps_its_checkpoint_names():
    grid = random_grid(1)
    mlp = HashStyleMLP(grid, D=4, W=8, input_ch=3, latent_dim=2)
    pts = jt.array(np.random.default_rng(0).uniform(LO, HI, (10, 3)).astype(np.float32))
    np.testing.assert_array_equal(mlp.features(pts, np.arange(10) % 3).numpy(), mlp.features(pts).numpy())
    assert "grid.table" in mlp.state_dict() and mlp.grid_tables() == [grid.table]


def test_per_style_grids_without_a_valid_style_are_refused():
    mlp = HashStyleMLP(random_grid(1, n_tables=2), D=4, W=8, input_ch=3, latent_dim=2)
    pts = jt.array(np.zeros((4, 3), np.float32))
    with pytest.raises(ValueError, match="need the style of the points"):
        mlp.features(pts)
    with pytest.raises(ValueError, match="style index out of range 0..1"):
        mlp.features(pts, np.array([0, 1, 2, 0]))
    with pytest.raises(ValueError, match=r"\(3,\) style indices for 4 points"):
        mlp.features(pts, np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="grid must be a HashGrid"):
        HashStyleMLP([], D=4, W=8, input_ch=3, latent_dim=2)
