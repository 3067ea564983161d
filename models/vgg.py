"""The normalised VGG-19 encoder of AdaIN, frozen; its depth follows the weights file.

AdaIN's `vgg` nn.Sequential (indices = state-dict keys):
    0 conv1x1 3->3 (RGB->BGR, x255, mean folded in)
    1 pad, 2 conv 3->64, 3 relu1_1 | 4 pad, 5 conv 64->64, 6 relu, 7 pool
    8 pad, 9 conv 64->128, 10 relu2_1 | 11 pad, 12 conv, 13 relu, 14 pool
    15 pad, 16 conv 128->256, 17 relu3_1 | 18/19, 21/22, 24/25 conv 256->256 + relu, 27 pool
    28 pad, 29 conv 256->512, 30 relu4_1
Padding is reflection, pools are 2x2 ceil mode.  The full `vgg_normalised.pth` goes on
to relu5_1 (unused here); the relu3_1 file of shared/assets stops after key 16.
"""
import collections

import jittor as jt

from core.pth import PthError, check_state_dict, load_state_dict, resolve_weights
from models.layers import Conv2d, max_pool2d_ceil

# (key index, in, out, kernel) of each conv, grouped by the tap that ends the group;
# "pool" runs before the first conv of its group
STAGES = collections.OrderedDict([
    ("relu1_1", dict(pool=False, convs=[(0, 3, 3, 1), (2, 3, 64, 3)])),
    ("relu2_1", dict(pool=True, convs=[(5, 64, 64, 3)], after_pool=[(9, 64, 128, 3)])),
    ("relu3_1", dict(pool=True, convs=[(12, 128, 128, 3)], after_pool=[(16, 128, 256, 3)])),
    ("relu4_1", dict(pool=True, convs=[(19, 256, 256, 3), (22, 256, 256, 3), (25, 256, 256, 3)],
                     after_pool=[(29, 256, 512, 3)])),
])
TAP_CHANNELS = {"relu1_1": 64, "relu2_1": 128, "relu3_1": 256, "relu4_1": 512}
VGG_FILES = ("vgg_normalised.pth", "vgg_normalised_conv3_1.pth")

_reported = set()  # depth messages already printed (once per file)


def expected_shapes(deepest):
    """State-dict shapes of the encoder up to tap `deepest` (e.g. "relu3_1")."""
    shapes = {}
    for tap, stage in STAGES.items():
        for idx, cin, cout, k in stage["convs"] + stage.get("after_pool", []):
            shapes[f"{idx}.weight"] = (cout, cin, k, k)
            shapes[f"{idx}.bias"] = (cout,)
        if tap == deepest:
            return shapes
    raise ValueError(f"unknown VGG tap {deepest!r}")


def depth_of(sd, source):
    """Deepest tap the state dict supports: relu4_1 if it has conv 29, else relu3_1."""
    if "29.weight" in sd:
        return "relu4_1"
    if "16.weight" in sd:
        return "relu3_1"
    raise PthError(f"{source}: not a normalised VGG-19 (no conv 16 or 29; keys {', '.join(list(sd)[:12])})")


def resolve_vgg_path(path):
    """`path`, or a known VGG file beside it (the relu3_1 one if the full one is absent)."""
    return resolve_weights(path, VGG_FILES, "VGG encoder")


class VGGEncoder(jt.Module):
    """Frozen normalised VGG-19 up to `deepest` ("relu3_1" or "relu4_1").

    execute(x [B,3,H,W] in [0,1]) -> [feature per tap], tap k of shape
    [B, TAP_CHANNELS[k], ceil(H/2^k), ceil(W/2^k)] (k = 0 for relu1_1).
    Gradients flow to the input, never into the weights.
    """

    def __init__(self, deepest="relu4_1"):
        super().__init__()
        if deepest not in STAGES:
            raise ValueError(f"deepest tap must be one of {list(STAGES)}, got {deepest!r}")
        self.taps = list(STAGES)[:list(STAGES).index(deepest) + 1]
        self.deepest_channels = TAP_CHANNELS[deepest]
        self._plan = []  # per tap: (pool first?, [conv names before pool], [after pool])
        for tap in self.taps:
            stage = STAGES[tap]
            names = []
            for group in ("convs", "after_pool"):
                part = []
                for idx, cin, cout, k in stage.get(group, []):
                    name = f"conv{idx}"
                    setattr(self, name, Conv2d(cin, cout, k, padding=k // 2, padding_mode="reflect"))
                    part.append(name)
                names.append(part)
            self._plan.append((stage["pool"], names[0], names[1]))
        self._freeze()

    def _freeze(self):
        for p in self.parameters():
            p.stop_grad()

    @classmethod
    def from_state_dict(cls, sd, source="<state dict>", quiet=False):
        deepest = depth_of(sd, source)
        shapes = expected_shapes(deepest)
        check_state_dict(sd, shapes, source)
        enc = cls(deepest)
        for key in shapes:
            if key.endswith(".weight"):
                idx = key.split(".")[0]
                getattr(enc, f"conv{idx}").load_weights(sd[key], sd[f"{idx}.bias"])
        enc._freeze()
        msg = (f"VGG encoder: {source} has weights up to {deepest}: taps {', '.join(enc.taps)}, "
               f"deepest {enc.deepest_channels} channels"
               + ("" if deepest == "relu4_1" else
                  " (no conv 29 in the file, so no relu4_1; AdaIN's full vgg_normalised.pth has it)"))
        if not quiet and msg not in _reported:
            _reported.add(msg)
            print(msg, flush=True)
        return enc

    @classmethod
    def from_pth(cls, path, quiet=False):
        """Encoder from a .pth (depth chosen by the file's keys; says which, once)."""
        return cls.from_state_dict(load_state_dict(path), path, quiet=quiet)

    def execute(self, x):
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"VGGEncoder expects [B,3,H,W] images, got {tuple(x.shape)}")
        feats = []
        h = x
        for i, (pool, before, after) in enumerate(self._plan):
            # conv 0 (the 1x1 colour transform) has no ReLU; every other conv has one
            for name in before:
                h = getattr(self, name)(h)
                if name != "conv0":
                    h = jt.nn.relu(h)
            if pool:
                h = max_pool2d_ceil(h, 2)
            for name in after:
                h = jt.nn.relu(getattr(self, name)(h))
            feats.append(h)
        return feats

    def encode(self, x):
        """Deepest tap only: [B, deepest_channels, H/2^(n-1), W/2^(n-1)]."""
        return self.execute(x)[-1]

