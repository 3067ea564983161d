"""What a style training learned from, kept beside its checkpoints (<expdir>/style_inputs.json).

Stage 6 resumes from the newest style checkpoint, and a finished one is simply used. When the
inputs changed since it was trained - other targets (another decoder, --target_propagation),
another sample cache or another option that changes what the style field learns - resuming
would continue, or render, a stylization other than the one asked for, without a word. So the
record is written when a style training starts from scratch and compared whenever its
checkpoints are used: a difference is a one-line error naming what changed (the options before
the NeRF stage, the targets and samples when stage 6 starts). Checkpoints without a record
(written before it existed) are taken as they are.
"""
import json
import os

from core.cache_key import read_key, write_key

# the options that change what the style field learns (not how long, how often it is saved or
# how it is rendered): a checkpoint trained with other values is another stylization
TRAINING_OPTIONS = ("style_type", "latent_type", "style_D", "style_W", "style_encoding", "hash_levels",
                    "hash_log2_size", "hash_max_res", "hash_per_style", "hash_lrate", "style_lrate", "batch_size_style",
                    "rgb_loss_lambda", "logp_loss_lambda", "logp_loss_decay", "style_patch_weight",
                    "style_patch", "style_patch_every", "style_patch_ref", "style_samples", "style_point",
                    "surface_jitter")
# options added after records were first written: a record without one was trained at its default
ADDED_LATER = {"style_patch_every": 1, "hash_per_style": False}


class StaleStyleError(ValueError):
    """Style checkpoints trained on other inputs than this run's."""


def record_path(expdir):
    return os.path.join(expdir, "style_inputs.json")


def options_record(args):
    return {name: getattr(args, name) for name in TRAINING_OPTIONS}


def current(args, expdir):
    """The record of this run's inputs: its options, and the stored keys of the targets and (with
    --style_samples) of the sample cache, as the stages before made them."""
    samples = read_key(os.path.join(expdir, "style_samples", "meta.json")) if args.style_samples > 0 else None
    return {"options": options_record(args), "targets": read_key(os.path.join(expdir, "targets", "meta.json")),
            "samples": samples}


def _normal(value):
    return json.loads(json.dumps(value))  # tuples as lists, as they come back from the file


def _differences(old, new):
    """'--name old -> new' for each changed option, 'the targets (...)' / 'the samples (...)'
    when their keys differ."""
    was = {**ADDED_LATER, **(old.get("options") or {})}
    out = [f"--{k} {was.get(k)} -> {v}" for k, v in new["options"].items() if _normal(was.get(k)) != _normal(v)]
    out += [f"the {k} ({_changed_entries(old.get(k), _normal(new[k]))})"
            for k in ("targets", "samples") if k in new and old.get(k) != _normal(new[k])]
    return out


def _changed_entries(old, new):
    """'name: old -> new' for each entry of two keys (dicts) that differs ('absent' where one has
    none); other values whole, cut to 80 characters."""
    if not (isinstance(old, dict) and isinstance(new, dict)):
        return f"{json.dumps(old)[:80]} -> {json.dumps(new)[:80]}"
    shown = lambda d, k: json.dumps(d[k])[:80] if k in d else "absent"  # noqa: E731
    return "; ".join(f"{k}: {shown(old, k)} -> {shown(new, k)}" for k in sorted(set(old) | set(new))
                     if k not in old or k not in new or old[k] != new[k])


def mismatch(args, expdir, options_only=False):
    """What changed since the style checkpoints here were trained ([] when nothing did, when
    there is no record or no checkpoint)."""
    old = read_key(record_path(expdir))
    if not old:
        return []
    new = current(args, expdir)
    if options_only:
        new = {"options": new["options"]}
    return _differences(old, new)


def check(args, expdir, checkpoint, options_only=False):
    """Raise StaleStyleError when `checkpoint` (a style checkpoint here) was trained on other inputs."""
    changed = mismatch(args, expdir, options_only)
    if changed:
        raise StaleStyleError(
            f"{checkpoint} was trained with other inputs than this run's ({'; '.join(changed)}): "
            f"another --expname keeps both stylizations; --no_reload trains the style stage again here")


def record(args, expdir):
    """Store this run's inputs: a style training starts from scratch."""
    write_key(record_path(expdir), current(args, expdir))
