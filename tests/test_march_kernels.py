"""render/march_kernels.py: the fast renderer's kernels against NumPy."""
import jittor as jt
import numpy as np

from render.fast import Skipping
from render.march_kernels import colour_mask, padded_size, select, transmittance
from render.occupancy import OccupancyGrid


def test_occupancy_lookup_matches_the_grid():
    rng = np.random.default_rng(0)
    occ = rng.random((5, 6, 7)) < 0.4
    grid = OccupancyGrid(np.array([-1, -2, 0], np.float32), np.array([1, 1, 3], np.float32), occ)
    pts = rng.uniform(-2.5, 3.5, (40, 9, 3)).astype(np.float32)  # inside and outside the box
    got = Skipping(grid).occupied(jt.array(pts)).numpy().astype(bool)
    assert got.shape == (40, 9) and 0.1 < got.mean() < 0.95
    np.testing.assert_array_equal(got, grid.lookup(pts))


def test_transmittance():
    rng = np.random.default_rng(1)
    sigma = rng.normal(0, 3, (6, 10)).astype(np.float32)
    z = np.sort(rng.uniform(0, 2, (6, 10)), -1).astype(np.float32)
    d = rng.normal(size=(6, 3)).astype(np.float32)
    T = transmittance(jt.array(sigma), jt.array(z), jt.array(d)).numpy()
    delta = np.concatenate([np.diff(z, axis=-1), np.full((6, 1), 1e10)], -1) * np.linalg.norm(d, axis=-1)[:, None]
    ref = np.concatenate([np.ones((6, 1)), np.exp(-np.cumsum(np.maximum(sigma, 0) * delta, -1))], -1)
    np.testing.assert_allclose(T, ref, rtol=1e-5, atol=1e-7)


def reference_select(mask, cursor, limit, z, visible, quota, stop, force_last):
    """Each ray's samples of this round, by the rule select's docstring states."""
    R, S = mask.shape
    picked, new_cursor = [], cursor.copy()
    for r in range(R):
        j, taken = cursor[r], 0
        if visible[r] > stop:
            while j < S and taken < quota and z[r, j] < limit[r]:
                if mask[r, j] or (force_last and j == S - 1):
                    picked.append((r, j))
                    taken += 1
                j += 1
        new_cursor[r] = j
    return picked, new_cursor


def test_select_compacts_one_round_as_the_rule_says():
    rng = np.random.default_rng(2)
    R, S = 37, 11
    mask = (rng.random((R, S)) < 0.5).astype(np.uint8)
    z = np.sort(rng.uniform(0, 1, (R, S)), -1).astype(np.float32)
    state = dict(cursor=np.zeros(R, np.int32), limit=np.where(rng.random(R) < 0.5, rng.uniform(0, 1, R), np.inf),
                 visible=rng.uniform(0, 1, R))
    seen = set()
    for quota, force_last, stop in ((1e9, True, 0.2), (3, True, 0.2), (3, True, 0.5), (1e9, False, -1.0)):
        limit = state["limit"] if quota > 100 else np.full(R, np.inf)
        want, want_cursor = reference_select(mask, state["cursor"], limit, z, state["visible"], quota, stop,
                                             force_last)
        index, ray, n, cursor = select(jt.array(mask), jt.array(state["cursor"]), jt.array(limit.astype(np.float32)),
                                       jt.array(z), jt.array(state["visible"].astype(np.float32)), quota, stop,
                                       force_last)
        assert n == len(want) > 0
        index, ray = index.numpy(), ray.numpy()
        assert len(index) == padded_size(n) and (index[n:] == R * S).all() and (ray[n:] == R).all()
        assert sorted(zip(index[:n] // S, index[:n] % S)) == sorted(want)
        np.testing.assert_array_equal(ray[:n], index[:n] // S)
        np.testing.assert_array_equal(cursor.numpy(), want_cursor)
        seen |= set(want)
        state["cursor"] = want_cursor  # the next round resumes there
    assert len(seen) > R  # the rounds did pick different samples
    none, _, n, _ = select(jt.array(np.zeros((R, S), np.uint8)), jt.zeros((R,), dtype="int32"),
                           jt.full((R,), float("inf")), jt.array(z), jt.ones((R,)), 1e9, 0.0, False)
    assert none is None and n == 0


def test_colour_mask_and_padded_sizes():
    rng = np.random.default_rng(3)
    need_f = (rng.random((5, 9)) < 0.3).astype(np.uint8)
    need_c = (rng.random((5, 4)) < 0.5).astype(np.uint8)
    coarse_at = np.stack([np.sort(rng.choice(9, 4, replace=False)) for _ in range(5)]).astype(np.int32)
    want = need_f.copy()
    for r, j in zip(*np.nonzero(need_c)):
        want[r, coarse_at[r, j]] = 1
    got = colour_mask(jt.array(need_f), jt.array(need_c), jt.array(coarse_at)).numpy()
    np.testing.assert_array_equal(got, want)
    for n in (1, 16, 17, 100, 1000, 4097, 123456):
        m = padded_size(n)
        assert n <= m < n + max(16, n / 16)
    assert len({padded_size(n) for n in range(20000, 40000)}) <= 32  # few distinct batch shapes
