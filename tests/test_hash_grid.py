"""models/hash_grid.py against its NumPy reference: values on dense and hashed levels, the
table's gradient (the lookup is linear in the table: finite differences are exact), clamping
outside the box, the level resolutions."""
import jittor as jt
import numpy as np
import pytest

from models.hash_grid import HashGrid, hash_grid_numpy, level_resolutions

LO, HI = np.array([-1.0, -0.5, 0.0]), np.array([1.0, 0.5, 2.0])


def grid_with_random_table(log2_size=8, seed=1):
    g = HashGrid(LO, HI, n_levels=4, n_features=2, log2_size=log2_size, base_res=2, max_res=40)
    g.table.assign(jt.array(np.random.default_rng(seed).standard_normal(g.table.shape).astype(np.float32)))
    return g


def test_level_resolutions_grow_geometrically_from_base_to_max():
    assert level_resolutions(16, 2048, 16)[0] == 16 and level_resolutions(16, 2048, 16)[-1] == 2048
    assert level_resolutions(2, 40, 4) == [2, 5, 14, 40]
    assert level_resolutions(8, 8, 1) == [8]


def test_forward_matches_numpy_on_dense_and_hashed_levels():
    g = grid_with_random_table()
    # levels of 2 and 5 cells fit 256 rows densely ((r+1)^3 <= 256); 14 and 40 are hashed
    assert [(r + 1) ** 3 <= 256 for r in g.resolutions] == [True, True, False, False]
    pts = np.random.default_rng(2).uniform(LO - 0.2, HI + 0.2, (700, 3)).astype(np.float32)
    out = g(jt.array(pts)).numpy()
    want = hash_grid_numpy(pts, g.table.numpy(), g.resolutions, LO, HI, 8)
    assert out.shape == (700, 8)
    np.testing.assert_allclose(out, want, atol=2e-5)


def test_a_point_on_a_dense_corner_reads_that_row():
    g = grid_with_random_table()
    # level 0: 2 cells a side, 3^3 corners; the box's centre is corner (1, 1, 1) = row 1 + 3 + 9
    out = g(jt.array(((LO + HI) / 2)[None].astype(np.float32))).numpy()
    np.testing.assert_allclose(out[0, :2], g.table.numpy()[13], atol=1e-6)


def test_points_outside_the_box_take_the_nearest_face():
    g = grid_with_random_table()
    inside = np.array([[0.3, 0.5, 2.0]], np.float32)   # on the box's faces
    outside = np.array([[0.3, 3.0, 9.0]], np.float32)  # beyond them
    np.testing.assert_allclose(g(jt.array(outside)).numpy(), g(jt.array(inside)).numpy(), atol=1e-6)


def test_table_gradient_matches_finite_differences():
    g = grid_with_random_table()
    rng = np.random.default_rng(3)
    pts = rng.uniform(LO, HI, (300, 3)).astype(np.float32)
    G = rng.standard_normal((300, 8)).astype(np.float32)
    grad = jt.grad((g(jt.array(pts)) * jt.array(G)).sum(), g.table).numpy()
    table = g.table.numpy().astype(np.float64)
    base = (hash_grid_numpy(pts, table, g.resolutions, LO, HI, 8) * G).sum()
    rows = [0, 13, 300, 511, 600, 1023] + list(np.argwhere(np.abs(grad[:, 0]) > 0)[:4, 0])
    for row in rows:
        for f in range(2):
            e = np.zeros_like(table)
            e[row, f] = 1.0
            want = (hash_grid_numpy(pts, table + e, g.resolutions, LO, HI, 8) * G).sum() - base
            assert grad[row, f] == pytest.approx(want, abs=1e-3), (row, f)
    assert np.count_nonzero(grad) > 100  # rows of several levels were touched


def test_bad_box_is_refused():
    with pytest.raises(ValueError, match="hi > lo"):
        HashGrid([0, 0, 0], [1, 0, 1])


def test_stacked_tables_read_the_table_each_point_names():
    g = HashGrid(LO, HI, n_levels=4, n_features=2, log2_size=8, base_res=2, max_res=40, n_tables=3)
    g.table.assign(jt.array(np.random.default_rng(4).standard_normal(g.table.shape).astype(np.float32)))
    rows = 4 << 8
    pts = np.random.default_rng(5).uniform(LO, HI, (60, 3)).astype(np.float32)
    ids = np.arange(60) % 3
    out = g(jt.array(pts), ids).numpy()
    for k in range(3):
        want = hash_grid_numpy(pts[ids == k], g.table.numpy()[k * rows:(k + 1) * rows], g.resolutions, LO, HI, 8)
        np.testing.assert_allclose(out[ids == k], want, atol=2e-5)
    np.testing.assert_array_equal(g(jt.array(pts), 2).numpy()[ids == 2], out[ids == 2])  # an int for all
    with pytest.raises(ValueError, match="3 tables: each point needs a table index"):
        g(jt.array(pts))
    with pytest.raises(ValueError, match=r"table index out of range 0..2"):
        g(jt.array(pts), ids + 1)
    with pytest.raises(ValueError, match=r"\(59,\) table indices for points \(60,\)"):
        g(jt.array(pts), ids[:59])
