"""What each stage cost the last time it ran with this Jittor cache, said before it runs again.

A stage's line (pipeline/stages.py) says what to expect before its progress bar starts:
- run before here with the same options: "about T (as the last run with these options here)";
- run before with other options: its kernels are mostly compiled already;
- not run with this Jittor cache (or the cache is empty): Jittor compiles its kernels first,
  roughly for how long an empty cache took on a CPU or a GPU (FIRST_COMPILE_S, measured),
  instead of a bar that extrapolates a compiling first step to hours.

The record lives beside Jittor's kernels (<cache_path>/stylenerf_stages.json): a wiped cache
wipes it too, so "compiled before" means the kernels are really there.
"""
import hashlib
import json
import os

from core.eta import format_duration

RECORD = "stylenerf_stages.json"
KEEP = 20  # settings remembered per stage
# seconds of compiling a stage's kernels on an empty Jittor cache: the 2-core CPU from the tiny
# main command (docs/COMPILE.md, 2026-12-04: empty cache minus warm); the H200 from
# fern_quick's stages on a fresh machine (2026-12-02); None: not measured there
FIRST_COMPILE_S = {
    "cpu": {"1 NeRF": 35, "2 geometry": 4, "3 decoder fine-tune": 38, "4 stylized targets": 2,
            "5 latents (VAE)": 1, "6 style training": 14},
    "cuda": {"1 NeRF": None, "2 geometry": None, "3 decoder fine-tune": 73, "4 stylized targets": None,
             "5 latents (VAE)": 105, "6 style training": 159},
}
# what does not change a stage's kernels or its time
_NOT_SETTINGS = ("config", "expname", "basedir", "time_limit", "no_reload")


def record_path():
    import jittor as jt
    return os.path.join(jt.flags.cache_path, RECORD)


def settings_digest(args):
    """A short digest of the options that shape the work (not names, folders, time limits)."""
    items = sorted((k, repr(v)) for k, v in vars(args).items() if k not in _NOT_SETTINGS)
    return hashlib.sha1(repr(items).encode()).hexdigest()[:12]


def load(path=None):
    try:
        with open(path or record_path()) as f:
            data = json.load(f)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _runs(data, stage):
    """{digest: {"seconds", "kernels"}} of a stage (entries of another layout are left out)."""
    runs = data.get(stage)
    return {k: v for k, v in runs.items() if isinstance(v, dict)} if isinstance(runs, dict) else {}


def save(stage, seconds, kernels, digest, path=None):
    """Record that `stage` ran in `seconds`, compiling `kernels`, with settings `digest` (the
    newest KEEP settings of each stage are kept, so that runs of other configs in between do not
    erase a config's time)."""
    path = path or record_path()
    data = load(path)
    runs = _runs(data, stage)
    runs.pop(digest, None)  # re-inserted last: the newest
    runs[digest] = {"seconds": round(float(seconds), 1), "kernels": int(kernels)}
    data[stage] = dict(list(runs.items())[-KEEP:])
    try:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f, indent=1)
        os.replace(tmp, path)
    except OSError:
        pass  # a read-only cache: the next run just says less


def expectation(stage, digest, on_cpu, path=None, cache_empty=False):
    """The line's "what to expect" text for `stage` with settings `digest`; cache_empty: Jittor's
    kernel folder holds nothing yet (else an unrecorded stage may still find its kernels there,
    compiled before the record existed)."""
    runs = _runs(load(path), stage)
    same = runs.get(digest)
    if same is not None:
        return f"expected about {format_duration(same.get('seconds', 0))}, as the last run with these options here"
    if runs:
        return "its kernels were compiled by an earlier run here (other options: a few more may be)"
    where = "cpu" if on_cpu else "cuda"
    typical = FIRST_COMPILE_S[where].get(stage)
    machine = "a 2-core CPU" if on_cpu else "an H200"
    head = ("Jittor's cache is empty: it compiles this stage's kernels before the first step" if cache_empty else
            "no earlier run of this stage recorded with this Jittor cache: Jittor may compile its kernels first")
    if typical is None:
        return head
    return f"{head} (about {format_duration(typical)} on {machine} with an empty cache)"
