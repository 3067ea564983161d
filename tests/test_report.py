"""evaluation/report.py: which decoders the per-frame AdaIN baselines use."""
import os
import types

import numpy as np

from core.checkpoint import save_atomic
from evaluation.report import adain_networks


def _args(vgg, decoder):
    return types.SimpleNamespace(vgg_pth_path=vgg, decoder_pth_path=decoder)


def _weights(decoder):
    return {k: v.numpy().copy() for k, v in decoder.state_dict().items()}


def test_the_2d_decoder_is_the_reference_and_the_3d_tuned_one_comes_beside_it(tmp_path, vgg_relu3_path,
                                                                              decoder_relu3_path):
    args, exp, quiet = _args(vgg_relu3_path, decoder_relu3_path), str(tmp_path), lambda *a: None
    # no stage 3 result: one decoder
    encoder, decoder, tuned = adain_networks(args, exp, quiet)
    assert tuned is None and encoder.deepest_channels == 256
    given = _weights(decoder)
    # a fine-tune of 0 iterations leaves the weights as they were: still one decoder
    save_atomic({"decoder": decoder.state_dict(), "iter": 0}, os.path.join(exp, "decoder.pkl"))
    assert adain_networks(args, exp, quiet)[2] is None
    # a real fine-tune: the 2D decoder keeps the given weights, the second one has the tuned ones
    changed = {k: v + np.float32(0.01) for k, v in given.items()}
    save_atomic({"decoder": changed, "iter": 5}, os.path.join(exp, "decoder.pkl"))
    _, decoder, tuned = adain_networks(args, exp, quiet)
    assert tuned is not None
    for k, v in _weights(decoder).items():
        np.testing.assert_array_equal(v, given[k])
    for k, v in _weights(tuned).items():
        np.testing.assert_allclose(v, changed[k])
