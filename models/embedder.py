"""Positional encoding of NeRF: x -> [x, sin(2^0 x), cos(2^0 x), ..., sin(2^(L-1) x), cos(2^(L-1) x)].

The order (per frequency: sin of every input dim, then cos of every input dim) is nerf-pytorch's,
so weights laid out for it line up.  xyz with L=10 gives 63 dims, a direction with L=4 gives 27.
"""
import jittor as jt
import numpy as np
from jittor import nn


class PositionalEncoding(nn.Module):
    """x [..., input_dims] -> [..., out_dim]; out_dim = input_dims * (include_input + 2 * n_freqs)."""

    def __init__(self, n_freqs, input_dims=3, include_input=True):
        super().__init__()
        if int(n_freqs) != n_freqs or n_freqs < 0:
            raise ValueError(f"PositionalEncoding: n_freqs must be an integer >= 0, got {n_freqs!r}")
        self.n_freqs = int(n_freqs)
        self.input_dims = int(input_dims)
        self.include_input = bool(include_input)
        self.out_dim = self.input_dims * (int(self.include_input) + 2 * self.n_freqs)
        if self.out_dim == 0:
            raise ValueError("PositionalEncoding: no output (n_freqs=0 and include_input=False)")
        # 2^0 .. 2^(L-1), exact in float32; underscore: not a parameter, not in state_dict
        self._freqs = (2.0 ** np.arange(self.n_freqs)).astype(np.float32)

    def execute(self, x):
        if x.shape[-1] != self.input_dims:
            raise ValueError(f"PositionalEncoding: expected last dim {self.input_dims}, got shape {x.shape}")
        parts = [x] if self.include_input else []
        if self.n_freqs:
            lead = tuple(x.shape[:-1])
            freqs = jt.array(self._freqs).reshape((self.n_freqs, 1))
            scaled = x.unsqueeze(-2) * freqs                       # [..., L, D]
            sincos = jt.stack([jt.sin(scaled), jt.cos(scaled)], dim=-2)  # [..., L, 2, D]
            parts.append(sincos.reshape(lead + (2 * self.n_freqs * self.input_dims,)))
        return parts[0] if len(parts) == 1 else jt.concat(parts, dim=-1)
