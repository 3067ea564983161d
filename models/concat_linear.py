"""A linear layer applied to a concatenation, without building the concatenation.

The NeRF and style MLPs feed layers with `concat([h, latent])`, `concat([x_emb, h])` or
`concat([feature, dir_emb])`. Built literally, each concatenation is a copy of a
[points x width] array (and a slice of its gradient in the backward pass), and the per-ray
inputs - the latent code, the encoded view direction - are first copied to every sample of the
ray. Since

    concat([a, b]) @ W^T + bias  =  a @ W_a^T + b @ W_b^T + bias      (W = [W_a | W_b], by columns)

each part is multiplied by its own block of columns of the same weight (so parameters and
checkpoints do not change), and a per-ray part is multiplied once per ray, [R, c] @ W_b^T, and
its [R, O] product broadcast to the ray's samples inside the addition. On the H200 the
concatenations of a NeRF step were about 2 ms of 23 ms (session 5 profile).
"""
import jittor as jt


def per_point_or_ray(x, n_points):
    """How a part of n_points rows relates to x: ('point', x) if x has one row per point;
    ('ray', x [R,c], samples S) if it has one row per ray of S = n_points / R samples (a single
    row [c] or [1,c] is one ray holding every point)."""
    if x.ndim == 1:
        x = x.reshape((1, x.shape[0]))
    rows = x.shape[0]
    if rows == n_points:
        return "point", x, 1
    if rows == 0 or n_points % rows:
        raise ValueError(f"a per-ray input of {rows} rows does not divide {n_points} points")
    return "ray", x, n_points // rows


def concat_linear(layer, parts, n_points):
    """layer(concat(parts, -1)) for a Linear `layer` (weight [O, sum c_i], bias [O]).

    parts: Vars of n_points rows [n_points, c_i] (per point) or of R rows [R, c_i] with
    n_points = R * S (per ray: the row holds for the ray's S consecutive points).
    Returns [n_points, O].
    """
    widths = [p.shape[-1] for p in parts]
    if sum(widths) != layer.weight.shape[1]:
        raise ValueError(f"concat_linear: parts of widths {widths} (sum {sum(widths)}) for a layer "
                         f"taking {layer.weight.shape[1]}")
    out_dim = layer.weight.shape[0]
    total, col = None, 0
    for part, width in zip(parts, widths):
        kind, x, samples = per_point_or_ray(part, n_points)
        y = jt.nn.matmul_transpose(x, layer.weight[:, col:col + width])
        if kind == "ray":  # [R, O] -> the same row for each of the ray's samples
            rays = x.shape[0]
            y = y.reshape((rays, 1, out_dim)).broadcast((rays, samples, out_dim)).reshape((n_points, out_dim))
        total = y if total is None else total + y
        col += width
    return total if layer.bias is None else total + layer.bias
