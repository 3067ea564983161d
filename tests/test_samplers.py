"""render/samplers.py: stratified and inverse-CDF samples vs a NumPy port of nerf-pytorch."""
import jittor as jt
import numpy as np
import pytest

from render.samplers import hierarchical_z, stratified_samples


def numpy_sample_pdf(bins, weights, n_samples):
    """nerf-pytorch's sample_pdf (deterministic u), in NumPy, one row at a time."""
    out = np.zeros((weights.shape[0], n_samples), np.float32)
    u = np.linspace(0.0, 1.0, n_samples, dtype=np.float32)
    for r in range(weights.shape[0]):
        w = weights[r] + np.float32(1e-5)
        pdf = w / w.sum()
        cdf = np.concatenate([[0.0], np.cumsum(pdf)]).astype(np.float32)
        inds = np.searchsorted(cdf, u, side="right")
        below = np.maximum(inds - 1, 0)
        above = np.minimum(inds, len(cdf) - 1)
        denom = cdf[above] - cdf[below]
        denom = np.where(denom < 1e-5, 1.0, denom)
        t = (u - cdf[below]) / denom
        out[r] = bins[r, below] + t * (bins[r, above] - bins[r, below])
    return out


def test_stratified_deterministic_and_lindisp():
    z = stratified_samples(2.0, 6.0, 5, perturb=False, n_rays=3).numpy()
    np.testing.assert_allclose(z, np.tile([2, 3, 4, 5, 6], (3, 1)), rtol=1e-6)
    near = np.array([1.0, 2.0], np.float32)
    z = stratified_samples(near, 4.0, 4, perturb=False, lindisp=True).numpy()
    t = np.linspace(0, 1, 4)
    np.testing.assert_allclose(z, 1 / (1 / near[:, None] * (1 - t) + 1 / 4.0 * t), rtol=1e-5)


def test_stratified_perturbed_stays_in_bins():
    n_rays, n = 500, 8
    z = stratified_samples(np.zeros(n_rays, np.float32), 1.0, n, perturb=True).numpy()
    edges = np.linspace(0, 1, n)
    mids = 0.5 * (edges[1:] + edges[:-1])
    lower, upper = np.concatenate([[0.0], mids]), np.concatenate([mids, [1.0]])
    assert ((z >= lower - 1e-6) & (z <= upper + 1e-6)).all()
    assert (np.diff(z, axis=-1) >= 0).all()
    frac = (z - lower) / (upper - lower)  # uniform within the bin: mean 1/2, var 1/12
    assert abs(frac.mean() - 0.5) < 0.02 and abs(frac.var() - 1 / 12) < 0.01
    with pytest.raises(ValueError, match="n_rays"):
        stratified_samples(0.0, 1.0, 4)


def test_hierarchical_z_random_mode_follows_the_weights():
    """Random CDF positions (--fine_sampling random): every row sorted, the fine samples spread
    over the bins between the coarse midpoints as the interior weights say."""
    n = 2000
    z = np.tile(np.array([-0.125, 0.125, 0.375, 0.625, 0.875, 1.125], np.float32), (n, 1))  # mids 0 .. 1
    w = np.tile(np.array([5.0, 1.0, 0.0, 3.0, 0.0, 5.0], np.float32), (n, 1))  # interior: 1, 0, 3, 0
    out, where = hierarchical_z(jt.array(z), jt.array(w), 16, deterministic=False, with_coarse_index=True)
    out, where = out.numpy(), where.numpy()
    assert (np.diff(out, axis=-1) >= 0).all()
    fine_at = np.ones(out.shape, bool)
    np.put_along_axis(fine_at, where, False, -1)
    fine = out[fine_at].reshape(n, 16)
    assert (fine >= 0).all() and (fine <= 1).all()
    in_bin = np.histogram(fine, bins=np.linspace(0, 1, 5))[0] / fine.size
    np.testing.assert_allclose(in_bin, [0.25, 0.0, 0.75, 0.0], atol=0.01)


def test_hierarchical_z_merges_coarse_and_fine():
    z = np.sort(np.random.uniform(2, 6, size=(16, 12)).astype(np.float32), axis=-1)
    w = np.random.rand(16, 12).astype(np.float32)
    out = hierarchical_z(jt.array(z), jt.array(w), 10, deterministic=True).numpy()
    fine = numpy_sample_pdf(0.5 * (z[:, 1:] + z[:, :-1]), w[:, 1:-1], 10)
    assert out.shape == (16, 22)
    np.testing.assert_allclose(out, np.sort(np.concatenate([z, fine], -1), -1), atol=2e-5)
    assert (np.diff(out, axis=-1) >= 0).all()


def _fine_part(merged, coarse):
    """The fine samples of a merged row: the merged values less the coarse ones (as a multiset)."""
    rest = list(merged)
    for v in coarse:
        rest.remove(v)
    return np.array(rest)


@pytest.mark.parametrize("n_coarse, n_fine", [(64, 64), (3, 5), (12, 1), (9, 0)])
def test_hierarchical_z_matches_sample_pdf_and_a_sort(n_coarse, n_fine):
    """The fused kernel against nerf-pytorch's sample_pdf (NumPy) and a NumPy sort, with
    zero-weight rays, a delta, and the sizes of the NeRF config."""
    rng = np.random.default_rng(n_coarse + n_fine)
    z = np.sort(rng.uniform(0, 1, size=(40, n_coarse)).astype(np.float32), axis=-1)
    w = rng.random((40, n_coarse)).astype(np.float32)
    w[:5] = 0.0
    w[5:10] = 0.0
    w[5:10, n_coarse // 2] = 1.0
    out = hierarchical_z(jt.array(z), jt.array(w), n_fine, deterministic=True).numpy()
    assert out.shape == (40, n_coarse + n_fine)
    assert (np.diff(out, axis=-1) >= 0).all()
    # the index variant: the same depths, and each coarse depth (exactly) where it says
    out2, where = hierarchical_z(jt.array(z), jt.array(w), n_fine, deterministic=True, with_coarse_index=True)
    where = where.numpy()
    np.testing.assert_array_equal(out2.numpy(), out)
    assert where.dtype == np.int32 and (np.diff(where, axis=-1) > 0).all()
    np.testing.assert_array_equal(np.take_along_axis(out, where, -1), z)
    if not n_fine:
        np.testing.assert_array_equal(out, z)
        return
    mids = 0.5 * (z[:, 1:] + z[:, :-1])
    fine = numpy_sample_pdf(mids, w[:, 1:-1], n_fine)
    # rows of random or zero weights: the same samples.  (A sample at u = 1 can land one bin
    # apart where the CDF's last entry rounds to just above or below 1; with random weights that
    # moves it by a hair, after a delta by a whole low-density bin: those rows are checked below.)
    keep = [r for r in range(40) if not 5 <= r < 10]
    np.testing.assert_allclose(out[keep], np.sort(np.concatenate([z, fine], -1), -1)[keep], atol=1e-4)
    k = n_coarse // 2 - 1  # the delta's bin, between mids k and k+1
    for r in range(5, 10):
        inner = _fine_part(out[r], z[r])[1:-1]  # u = 0 and 1 map to the ends of the range
        assert ((inner >= mids[r, k] - 1e-6) & (inner <= mids[r, k + 1] + 1e-6)).all()


def test_hierarchical_z_random_positions_and_one_kernel():
    rng = np.random.default_rng(7)
    z = np.sort(rng.uniform(0, 1, size=(30, 16)).astype(np.float32), axis=-1)
    w = rng.random((30, 16)).astype(np.float32)
    u = np.sort(rng.random((30, 8)).astype(np.float32), axis=-1)
    out = hierarchical_z(jt.array(z), jt.array(w), 8, u=jt.array(u)).numpy()
    # reference: nerf-pytorch's lookup at these u, row by row
    bins, ww = 0.5 * (z[:, 1:] + z[:, :-1]), w[:, 1:-1] + np.float32(1e-5)
    for r in range(30):
        cdf = np.concatenate([[0.0], np.cumsum(ww[r] / ww[r].sum())]).astype(np.float32)
        inds = np.searchsorted(cdf, u[r], side="right")
        lo, hi = np.maximum(inds - 1, 0), np.minimum(inds, len(cdf) - 1)
        den = np.where(cdf[hi] - cdf[lo] < 1e-5, 1.0, cdf[hi] - cdf[lo])
        fine = bins[r, lo] + (u[r] - cdf[lo]) / den * (bins[r, hi] - bins[r, lo])
        np.testing.assert_allclose(out[r], np.sort(np.concatenate([z[r], fine])), atol=2e-5)
    rand = hierarchical_z(jt.array(z), jt.array(w), 8, deterministic=False).numpy()
    assert (np.diff(rand, axis=-1) >= 0).all()
    jt.sync_all(True)
    jt.profiler.start(0, 0)
    hierarchical_z(jt.array(z), jt.array(w), 8).sync()
    jt.sync_all(True)
    jt.profiler.stop()
    assert sum(int(r[2]) for r in jt.profiler.report()[1:] if r[0].startswith("code")) == 1
