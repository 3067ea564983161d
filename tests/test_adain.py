"""models/adain.py: statistics, AdaIN, losses vs NumPy; training_losses gradients."""
import jittor as jt
import numpy as np
import pytest

from models.adain import adain, channel_stats, content_loss, style_loss, stylize, training_losses


def np_stats(f, eps=1e-5):
    flat = f.reshape(f.shape[0], f.shape[1], -1).astype(np.float64)
    return flat.mean(-1), np.sqrt(flat.var(-1, ddof=1) + eps)


def test_channel_stats_vs_numpy():
    f = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32) * 3 + 1
    m, s = channel_stats(jt.array(f))
    nm, ns = np_stats(f)
    np.testing.assert_allclose(m.numpy(), nm, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(s.numpy(), ns, rtol=1e-5)


def test_adain_output_has_style_statistics():
    rng = np.random.default_rng(1)
    c = rng.standard_normal((2, 8, 6, 7)).astype(np.float32) * 2 - 1
    s = (rng.standard_normal((2, 8, 5, 9)) * rng.uniform(0.5, 3, (2, 8, 1, 1))
         + rng.uniform(-2, 2, (2, 8, 1, 1))).astype(np.float32)
    out = adain(jt.array(c), jt.array(s)).numpy()
    om, os_ = np_stats(out)
    sm, ss = np_stats(s)
    np.testing.assert_allclose(om, sm, atol=1e-4)
    np.testing.assert_allclose(os_, ss, rtol=1e-4)
    # the normalised content pattern is kept: correlation 1 per channel
    for b in range(2):
        for ch in range(8):
            assert np.corrcoef(out[b, ch].ravel(), c[b, ch].ravel())[0, 1] > 0.9999
    # one style for a batch of contents broadcasts
    out1 = adain(jt.array(c), jt.array(s[:1])).numpy()
    np.testing.assert_allclose(np_stats(out1)[0], np.repeat(sm[:1], 2, 0), atol=1e-4)
    with pytest.raises(ValueError, match="channels"):
        adain(jt.array(c), jt.array(s[:, :4]))


def test_losses_vs_numpy():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4, 3, 3)).astype(np.float32)
    np.testing.assert_allclose(content_loss(jt.array(a), jt.array(b)).numpy(), ((a - b) ** 2).mean(), rtol=1e-5)
    outs = [rng.standard_normal((2, 4, 6, 6)).astype(np.float32), a]
    styles = [rng.standard_normal((2, 4, 5, 5)).astype(np.float32) * 2, b + 1]
    want = 0.0
    for o, s in zip(outs, styles):
        (om, os_), (sm, ss) = np_stats(o), np_stats(s)
        want += ((om - sm) ** 2).mean() + ((os_ - ss) ** 2).mean()
    got = style_loss([jt.array(x) for x in outs], [jt.array(x) for x in styles]).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)
    # identical statistics: zero loss
    assert style_loss([jt.array(a)], [jt.array(a * 1.0)]).item() < 1e-10


class _TinyEncoder(jt.Module):
    """Two 'taps': the image itself and a fixed 1x1 channel mix of its 2x2 average."""

    def __init__(self):
        super().__init__()
        self.mix = jt.array(np.array([[1.0, 0.5, 0], [0, 1.0, -0.5], [0.3, 0, 1.0], [1, 1, 1]], np.float32))

    def execute(self, x):
        b, c, h, w = x.shape
        pooled = x.reshape([b, c, h // 2, 2, w // 2, 2]).mean(dims=[3, 5])
        deep = jt.nn.relu((self.mix.reshape([1, 4, 3, 1, 1]) * pooled.reshape([b, 1, 3, h // 2, w // 2])).sum(dim=2))
        return [x, deep]

    def encode(self, x):
        return self.execute(x)[-1]


class _TinyDecoder(jt.Module):
    def __init__(self):
        super().__init__()
        self.w = jt.array(np.random.default_rng(3).standard_normal((3, 4)).astype(np.float32) * 0.3)

    def execute(self, t):
        b, c, h, w = t.shape
        up = t.reindex([b, c, 2 * h, 2 * w], ["i0", "i1", "i2/2", "i3/2"])
        return (self.w.reshape([1, 3, 4, 1, 1]) * up.reshape([b, 1, 4, 2 * h, 2 * w])).sum(dim=2)


def test_training_losses_and_stylize_shapes_and_gradients():
    enc, dec = _TinyEncoder(), _TinyDecoder()
    rng = np.random.default_rng(4)
    content = jt.array(rng.random((2, 3, 8, 8)).astype(np.float32))
    style = jt.array(rng.random((2, 3, 8, 8)).astype(np.float32))
    out, lc, ls = training_losses(enc, dec, content, style)
    assert tuple(out.shape) == (2, 3, 8, 8)
    # the same numbers by hand
    t = adain(enc.encode(content), enc.encode(style))
    ot = enc(out)
    np.testing.assert_allclose(lc.numpy(), content_loss(ot[-1], t).numpy(), rtol=1e-6)
    np.testing.assert_allclose(ls.numpy(), style_loss(ot, enc(style)).numpy(), rtol=1e-6)
    g = jt.grad(lc + 2 * ls, dec.w).numpy()
    assert np.abs(g).sum() > 0
    # alpha = 0 decodes the content features themselves
    np.testing.assert_allclose(stylize(enc, dec, content, style, alpha=0.0).numpy(),
                               dec(enc.encode(content)).numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(stylize(enc, dec, content, style).numpy(), dec(t).numpy(), rtol=1e-5, atol=1e-6)


def test_gram_and_gram_loss_vs_numpy():
    from models.adain import gram, gram_loss
    rng = np.random.default_rng(3)
    a = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    b = rng.standard_normal((2, 4, 3, 5)).astype(np.float32)
    f = a.reshape(2, 4, 15)
    ref = np.einsum("bci,bdi->bcd", f, f) / (4 * 3 * 5)
    np.testing.assert_allclose(gram(jt.array(a)).numpy(), ref, rtol=1e-5, atol=1e-6)
    fb = b.reshape(2, 4, 15)
    ref_b = np.einsum("bci,bdi->bcd", fb, fb) / 60
    want = np.mean((ref - ref_b) ** 2) * 2  # two taps, both the same pair
    got = gram_loss([jt.array(a)] * 2, [jt.array(b)] * 2).item()
    assert abs(got - want) < 1e-6 * max(1.0, want)
    assert gram_loss([jt.array(a)], [jt.array(a)]).item() < 1e-12


def test_training_losses_gram_weight_adds_the_gram_term():
    from models.adain import gram_loss
    from models.decoder import Decoder
    from models.vgg import VGGEncoder
    jt.set_global_seed(0)
    enc, dec = VGGEncoder("relu3_1"), Decoder(256)
    rng = np.random.default_rng(0)
    c = jt.array(rng.random((1, 3, 16, 16)).astype(np.float32))
    s = jt.array(rng.random((1, 3, 16, 16)).astype(np.float32))
    with jt.no_grad():
        out, _, plain = training_losses(enc, dec, c, s)
        _, _, with_gram = training_losses(enc, dec, c, s, gram_weight=100.0)
        extra = 100.0 * gram_loss(enc(out), enc(s)).item()
    assert extra > 0
    assert abs(with_gram.item() - plain.item() - extra) < 1e-4 * max(1.0, with_gram.item())
