"""core/optim.py: the project's Adam, fused (one multi-tensor kernel per group) or per-tensor,
makes exactly jt.optim.Adam's updates, keeps checkpointable state, and compiles once."""
import jittor as jt
import numpy as np
import pytest

from core.checkpoint import adam_state, load_adam_state
from core.optim import Adam

SHAPES = ((3, 8), (8,), (8, 8), (8,), (8, 2), (2,), (2,))  # a 3-layer MLP and a frozen scale


def _params(seed=0):
    rng = np.random.default_rng(seed)
    params = [jt.array(rng.standard_normal(s).astype(np.float32) * 0.5) for s in SHAPES]
    params[-1].stop_grad()  # used by the loss, but the optimizer must leave it alone
    return params


def _loss(params, k):
    # a new batch every step, so that the moments matter
    w1, b1, w2, b2, w3, b3, scale = params
    rng = np.random.default_rng(100 + k)
    x = jt.array(rng.standard_normal((16, 3)).astype(np.float32))
    y = jt.array(rng.standard_normal((16, 2)).astype(np.float32))
    h = jt.nn.relu(jt.matmul(x, w1) + b1)
    h = jt.nn.relu(jt.matmul(h, w2) + b2)
    return (((jt.matmul(h, w3) + b3) * scale - y) ** 2).mean()


def _groups(params):
    return [{"params": params[:2] + params[-1:], "lr": 0.05}, {"params": params[2:-1], "lr": 0.01}]


def _make(kind, params, **kw):
    if kind == "jittor":
        return jt.optim.Adam(_groups(params), lr=0.05, **kw)
    return Adam(_groups(params), lr=0.05, fused=kind == "fused", **kw)


def _train(opt, params, steps, first=0):
    for k in range(first, first + steps):
        for pg, lr in zip(opt.param_groups, (0.05, 0.01)):
            pg["lr"] = lr * 0.8 ** k  # the stages change lr every step
        opt.step(_loss(params, k))
    return [p.numpy() for p in params]


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_fused_and_unfused_make_jittors_updates(weight_decay):
    kw = dict(betas=(0.9, 0.99), eps=1e-6, weight_decay=weight_decay)
    runs = {}
    for kind in ("jittor", "unfused", "fused"):
        params = _params()
        runs[kind] = _train(_make(kind, params, **kw), params, 6)
    start = [p.numpy() for p in _params()]
    for i, (ref, unfused, fused) in enumerate(zip(runs["jittor"], runs["unfused"], runs["fused"])):
        np.testing.assert_allclose(fused, ref, rtol=1e-5, atol=1e-6, err_msg=f"parameter {i}")
        np.testing.assert_allclose(fused, unfused, rtol=1e-5, atol=1e-6, err_msg=f"parameter {i}")
        if i < len(SHAPES) - 1:
            assert np.abs(fused - start[i]).max() > 1e-2, f"parameter {i} did not move"
    np.testing.assert_array_equal(runs["fused"][-1], start[-1])  # stop_grad: untouched


def test_weight_decay_changes_the_fused_update():
    # guards the test above: the kernel must read weight_decay, not just match at 0
    plain = _train(_make("fused", _params()), _params(), 3)
    params = _params()
    decayed = _train(_make("fused", params, weight_decay=0.1), params, 3)
    assert np.abs(plain[0] - decayed[0]).max() > 1e-4


def test_moments_match_the_unfused_path():
    opts = {}
    for kind in ("unfused", "fused"):
        params = _params()
        opts[kind] = _make(kind, params)
        _train(opts[kind], params, 3)
    a, b = adam_state(opts["unfused"]), adam_state(opts["fused"])
    assert a["n_step"] == b["n_step"] == 3
    for key in ("m", "v"):
        for ga, gb in zip(a[key], b[key]):
            for x, y in zip(ga, gb):
                np.testing.assert_allclose(y, x, rtol=1e-5, atol=1e-8)
    assert np.abs(b["v"][1][0]).max() > 0  # the second group's moments were written


def test_checkpoint_state_round_trip_then_continued_steps_match():
    params = _params()
    opt = _make("fused", params)
    _train(opt, params, 3)
    state = adam_state(opt)
    state_params = [p.numpy() for p in params]
    resumed_params = [jt.array(p.numpy()) for p in params]
    resumed_params[-1].stop_grad()
    resumed = _make("fused", resumed_params)
    load_adam_state(resumed, state)
    assert resumed.n_step == 3
    expected = _train(opt, params, 3, first=3)
    got = _train(resumed, resumed_params, 3, first=3)
    for i, (a, b) in enumerate(zip(got, expected)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=f"parameter {i}")
    # guard: without the restored moments and step count the continuation differs
    cold_params = [jt.array(p) for p in state_params]
    cold = _train(_make("fused", cold_params), cold_params, 3, first=3)
    assert np.abs(cold[0] - expected[0]).max() > 1e-4


def _profiled_steps(opt, params, lrs):
    """Run one step per lr; return the profiler rows of the optimizer's own work (not the loss)."""
    rows = []
    for k, lr in enumerate(lrs):
        for pg in opt.param_groups:
            pg["lr"] = lr
        opt.backward(_loss(params, k))
        jt.sync_all(True)  # the gradients are computed outside the profile
        jt.profiler.start(0, 0)
        opt.step()
        jt.sync_all(True)
        jt.profiler.stop()
        rows += jt.profiler.report()[1:]
    return rows


def test_fused_step_is_one_kernel_per_group_compiled_once():
    params = _params()
    opt = _make("fused", params)
    _train(opt, params, 1)  # compile
    rows = _profiled_steps(opt, params, [0.031, 0.017, 0.0047])
    code = [r for r in rows if r[0].startswith("code")]
    # one code op per group and step, and the same kernel (jit key) for every lr: a source that
    # embedded lr or the step size would make a new key per step
    assert len(code) == 2 * 3
    assert len({r[0] for r in code}) == 2
    assert all(int(r[2]) == 1 for r in code)
    # besides the kernel, at most the scalars' upload per group: O(1) launches, not O(tensors)
    assert sum(int(r[2]) for r in rows) <= 2 * 2 * 3
    # guard: the per-tensor path takes at least a launch per parameter tensor
    params = _params()
    unfused = _make("unfused", params)
    assert sum(int(r[2]) for r in _profiled_steps(unfused, params, [0.01])) >= len(SHAPES) - 1


def test_fused_rejects_non_float32_parameters():
    p = jt.zeros((3,), "float64")
    opt = Adam([p], lr=0.1)
    with pytest.raises(ValueError, match="float32"):
        opt.step((p * p).sum())
    q = jt.ones((3,), "float64")
    Adam([q], lr=0.1, fused=False).step((q * q).sum())  # the reference path takes it
    assert q.numpy().max() < 1


def test_gradients_too_small_for_a_normal_second_moment_update_as_the_reference():
    """Gradients of 1e-21 .. 1e-18 make v subnormal on the first step; the fused update must still
    equal NumPy's (sqrt(v) ~ 1e-19, nothing beside eps) and not be NaN."""
    rng = np.random.default_rng(0)
    start = rng.normal(size=(16, 24)).astype(np.float32)
    w = np.float32(rng.choice([1e-21, -2e-20, 1.6e-18, 3e-19, 1.0], size=(16, 24)))
    p = jt.array(start)
    Adam([p], lr=1e-3, fused=True).step((p * jt.array(w)).sum())
    m = 0.1 * w.astype(np.float64)
    v = 0.001 * w.astype(np.float64) ** 2
    step_size = 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9)
    want = start - m * step_size / (np.sqrt(v) + 1e-8)
    got = p.numpy()
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
