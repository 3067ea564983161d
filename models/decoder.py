"""AdaIN decoder: mirrors the VGG encoder from its deepest tap back to RGB.

Layouts (numbers = the original nn.Sequential indices = .pth state-dict keys; every conv
is 3x3 with reflection padding and a ReLU, except the last):
- from relu4_1 (AdaIN's decoder.pth): 1 512->256, up, 5/8/11 256->256, 14 256->128, up,
  18 128->128, 21 128->64, up, 25 64->64, 28 64->3
- from relu3_1 (feature_invertor_conv3_1.pth): 1 256->128, up, 5 128->128, 8 128->64, up,
  12 64->64, 15 64->3
Output size = input size * 2^(number of ups) (8x from relu4_1, 4x from relu3_1).

Our own weight files (`Decoder.save/load`, e.g. decoder_finetuned.pkl) are checkpoint
pickles {"format", "deepest_channels", "state_dict"} with the same .pth key names.
"""
import collections
import os

import jittor as jt

from core import checkpoint
from core.pth import PthError, check_state_dict, is_pth_file, load_state_dict, resolve_weights
from models.layers import Conv2d, upsample_nearest2x

UP = "up"
LAYOUTS = {
    512: [(1, 512, 256), UP, (5, 256, 256), (8, 256, 256), (11, 256, 256), (14, 256, 128), UP,
          (18, 128, 128), (21, 128, 64), UP, (25, 64, 64), (28, 64, 3)],
    256: [(1, 256, 128), UP, (5, 128, 128), (8, 128, 64), UP, (12, 64, 64), (15, 64, 3)],
}
# files to try, per encoder depth, when the given decoder path is missing
DECODER_FILES = {512: ("decoder.pth",), 256: ("feature_invertor_conv3_1.pth",)}
FILE_FORMAT = "stylenerf-adain-decoder-v1"


def expected_shapes(deepest_channels):
    shapes = collections.OrderedDict()
    for op in LAYOUTS[deepest_channels]:
        if op != UP:
            key, cin, cout = op
            shapes[f"{key}.weight"] = (cout, cin, 3, 3)
            shapes[f"{key}.bias"] = (cout,)
    return shapes


TRAINED_FILE = "decoder_finetuned.pkl"  # what train_style_modules.py --task finetune_decoder writes


def saved_depth(path):
    """deepest_channels of a decoder file written by Decoder.save, None if it is not one."""
    try:
        ck = checkpoint.load(path, required_keys=("state_dict",))
    except (checkpoint.CheckpointError, OSError):
        return None
    return ck.get("deepest_channels") if ck.get("format") == FILE_FORMAT else None


def resolve_decoder_path(path, deepest_channels):
    """`path`, else beside it: a decoder trained for AdaIN by train_style_modules.py
    (decoder_finetuned.pkl, if it is of this depth), else the file for this depth
    (AdaIN's decoder.pth, the relu3_1 inverter); MissingWeightsError if none."""
    tap = "relu3_1" if deepest_channels == 256 else "relu4_1"
    trained = os.path.join(os.path.dirname(os.path.abspath(path)), TRAINED_FILE)
    names = DECODER_FILES[deepest_channels]
    if not os.path.isfile(path) and saved_depth(trained) == deepest_channels:
        names = (TRAINED_FILE,) + names
    return resolve_weights(path, names, f"AdaIN decoder ({tap})")


class Decoder(jt.Module):
    """execute(t [B,C,h,w]) -> image [B,3,h*2^u,w*2^u] (no output activation, like AdaIN)."""

    def __init__(self, deepest_channels=512):
        super().__init__()
        if deepest_channels not in LAYOUTS:
            raise ValueError(f"Decoder: deepest_channels must be 512 (relu4_1) or 256 (relu3_1), "
                             f"got {deepest_channels}")
        self.deepest_channels = deepest_channels
        self._ops = []
        layout = LAYOUTS[deepest_channels]
        for i, op in enumerate(layout):
            if op == UP:
                self._ops.append((UP, False))
                continue
            key, cin, cout = op
            setattr(self, f"conv{key}", Conv2d(cin, cout, 3, padding=1, padding_mode="reflect"))
            self._ops.append((f"conv{key}", i < len(layout) - 1))  # ReLU except after the last

    def execute(self, t):
        if t.ndim != 4 or t.shape[1] != self.deepest_channels:
            raise ValueError(f"Decoder expects [B,{self.deepest_channels},h,w] features, got {tuple(t.shape)}")
        h = t
        for name, relu in self._ops:
            if name == UP:
                h = upsample_nearest2x(h)
            else:
                h = getattr(self, name)(h)
                if relu:
                    h = jt.nn.relu(h)
        return h

    # ---- weights in the .pth key layout ------------------------------------------------------
    def weights(self):
        """OrderedDict .pth key -> np.ndarray."""
        out = collections.OrderedDict()
        for key in expected_shapes(self.deepest_channels):
            idx, kind = key.split(".")
            out[key] = getattr(getattr(self, f"conv{idx}"), kind).numpy()
        return out

    def load_weights(self, sd, source):
        check_state_dict(sd, expected_shapes(self.deepest_channels), source)
        for key in expected_shapes(self.deepest_channels):
            if key.endswith(".weight"):
                idx = key.split(".")[0]
                getattr(self, f"conv{idx}").load_weights(sd[key], sd[f"{idx}.bias"])
        return self

    @staticmethod
    def _channels_in(sd, source):
        w = sd.get("1.weight")
        if w is None or getattr(w, "ndim", 0) != 4:
            raise PthError(f"{source}: not an AdaIN decoder (no 4-D '1.weight'; keys {', '.join(list(sd)[:10])})")
        return int(w.shape[1])

    @classmethod
    def check_state_dict(cls, sd, deepest_channels=None, source="<state dict>"):
        """The input channels of a decoder state dict; PthError unless its layout and every
        shape fit (and match deepest_channels when given).  NumPy only: no network is built."""
        found = cls._channels_in(sd, source)
        if deepest_channels is not None and found != deepest_channels:
            raise PthError(f"{source}: a decoder for {found}-channel features "
                           f"(relu{3 if found == 256 else 4}_1), but the encoder's deepest tap has "
                           f"{deepest_channels} channels; use the decoder that matches the VGG file")
        if found not in LAYOUTS:
            raise PthError(f"{source}: decoder input of {found} channels; expected 512 or 256")
        check_state_dict(sd, expected_shapes(found), source)
        return found

    @classmethod
    def from_state_dict(cls, sd, deepest_channels=None, source="<state dict>"):
        return cls(cls.check_state_dict(sd, deepest_channels, source)).load_weights(sd, source)

    @classmethod
    def from_pth(cls, path, deepest_channels=None):
        """Decoder from a PyTorch .pth (AdaIN's decoder.pth or the relu3_1 invertor)."""
        return cls.from_state_dict(load_state_dict(path), deepest_channels, path)

    def save(self, path, extra=None):
        """Atomic checkpoint pickle, loadable by Decoder.load / Decoder.from_file."""
        state = {"format": FILE_FORMAT, "deepest_channels": self.deepest_channels, "state_dict": self.weights()}
        state.update(extra or {})
        checkpoint.save_atomic(state, path)
        return path

    @staticmethod
    def read_state_dict(path):
        """The weights of a decoder file: a PyTorch file (AdaIN's layout) or our pickle (Decoder.save)."""
        if str(path).endswith(".pth") or is_pth_file(path):
            return load_state_dict(path)
        return Decoder._read_pickle(path)

    @staticmethod
    def _read_pickle(path):
        """Decoder.save's file, or the decoder a run fine-tuned for consistency (<expdir>/decoder.pkl:
        the module's own names, conv<k>.weight for the .pth layout's <k>.weight)."""
        ck = checkpoint.load(path)
        if ck.get("format") == FILE_FORMAT and "state_dict" in ck:
            return ck["state_dict"]
        if isinstance(ck.get("decoder"), dict):
            return {k[len("conv"):] if k.startswith("conv") else k: v for k, v in ck["decoder"].items()}
        raise checkpoint.CheckpointError(f"{path}: not a decoder file written by Decoder.save "
                                         f"or by a run's decoder fine-tune")

    @classmethod
    def load(cls, path, deepest_channels=None):
        return cls.from_state_dict(cls._read_pickle(path), deepest_channels, path)

    @classmethod
    def from_file(cls, path, deepest_channels=None):
        """A decoder file, by content: a PyTorch file (AdaIN's decoder.pth, the original's
        decoder_iter_<N>.pth.tar or fine-tuned decoder.pth) or our pickle (Decoder.save)."""
        return cls.from_state_dict(cls.read_state_dict(path), deepest_channels, path)
