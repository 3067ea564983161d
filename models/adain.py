"""AdaIN: channel statistics, the AdaIN op, AdaIN's content/style losses, stylisation.

Statistics follow pytorch-AdaIN: per (sample, channel) mean over H*W, and
std = sqrt(unbiased variance + eps).
"""
import jittor as jt

from models.layers import mean_var_last


def channel_stats(feat, eps=1e-5):
    """feat [B,C,H,W] -> (mean [B,C], std [B,C]), std = sqrt(unbiased var + eps)."""
    if feat.ndim != 4:
        raise ValueError(f"channel_stats expects [B,C,H,W], got {tuple(feat.shape)}")
    b, c, h, w = feat.shape
    # unbiased like torch.var (a 1x1 map has variance 0); one GPU block per (sample, channel)
    mean, var = mean_var_last(feat.reshape([b, c, h * w]))
    return mean, (var + eps).sqrt()


def adain(content_feat, style_feat, eps=1e-5):
    """Give content_feat [B,C,H,W] the channel mean/std of style_feat [B or 1,C,H',W']."""
    if content_feat.shape[1] != style_feat.shape[1]:
        raise ValueError(f"adain: content has {content_feat.shape[1]} channels, style {style_feat.shape[1]}")
    b, c = content_feat.shape[:2]
    c_mean, c_std = channel_stats(content_feat, eps)
    s_mean, s_std = channel_stats(style_feat, eps)
    sb = style_feat.shape[0]
    normalized = (content_feat - c_mean.reshape([b, c, 1, 1])) / c_std.reshape([b, c, 1, 1])
    return normalized * s_std.reshape([sb, c, 1, 1]) + s_mean.reshape([sb, c, 1, 1])


def mse(a, b):
    return (a - b).sqr().mean()


def content_loss(out_deepest, target):
    """MSE between the output's deepest features and the AdaIN target t."""
    return mse(out_deepest, target)


def style_loss(out_taps, style_taps, eps=1e-5):
    """Sum over taps of MSE(channel means) + MSE(channel stds); style batch B or 1."""
    if len(out_taps) != len(style_taps):
        raise ValueError(f"style_loss: {len(out_taps)} output taps vs {len(style_taps)} style taps")
    total = 0.0
    for o, s in zip(out_taps, style_taps):
        om, os_ = channel_stats(o, eps)
        sm, ss = channel_stats(s, eps)
        total = total + mse(om, sm) + mse(os_, ss)
    return total


def gram(feat):
    """feat [B,C,H,W] -> Gram matrices [B,C,C] / (C*H*W): second-order statistics that keep
    which channels fire together (texture), which channel means and stds do not."""
    b, c, h, w = feat.shape
    f = feat.reshape([b, c, h * w])
    return jt.nn.bmm_transpose(f, f) / float(c * h * w)  # f @ f^T


def gram_loss(out_taps, style_taps):
    """Sum over taps of MSE(Gram(output), Gram(style)); both batches the same size."""
    total = 0.0
    for o, s in zip(out_taps, style_taps):
        total = total + mse(gram(o), gram(s))
    return total


def stylize(encoder, decoder, content, style, alpha=1.0):
    """content [B,3,H,W], style [B or 1,3,H',W'] in [0,1] -> decoded image [B,3,H,W] (unclamped).

    alpha blends the AdaIN target with the content features (1 = full style).
    """
    c_feat = encoder.encode(content)
    t = adain(c_feat, encoder.encode(style))
    if alpha != 1.0:
        t = alpha * t + (1.0 - alpha) * c_feat
    return decoder(t)


def training_losses(encoder, decoder, content, style, gram_weight=0.0):
    """AdaIN's decoder objective for one batch.

    content, style [B,3,H,W] in [0,1] -> (output [B,3,H,W], content loss, style loss).
    The target t is a constant (no gradient into the encoder or through t).  gram_weight > 0
    adds gram_weight x gram_loss to the style loss (same-sized crops: the Grams compare).
    """
    style_taps = [f.stop_grad() for f in encoder(style)]
    t = adain(encoder.encode(content), style_taps[-1]).stop_grad()
    out = decoder(t)
    out_taps = encoder(out)
    loss_s = style_loss(out_taps, style_taps)
    if gram_weight:
        loss_s = loss_s + gram_weight * gram_loss(out_taps, style_taps)
    return out, content_loss(out_taps[-1], t), loss_s
