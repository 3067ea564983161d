"""One rule for every cached output: its inputs make a key, stored beside it; the output is
rebuilt exactly when the key changed.

    inputs = {"nerf_step": 120000, "decoder": file_stamp(path), "styles": array_digest(images)}
    if not refresh(key_path, inputs, clear=remove_old_outputs, what="geometry", log=log):
        ...the stored key differed (or was missing): clear() ran, the new key is stored; build...

A key is a JSON object.  Files that are themselves outputs of an earlier stage enter it as
file_stamp (size and nanosecond mtime: a same-size rewrite within a second still counts);
weights and images the user supplies as content_stamp (size and a digest of the bytes: the same
file copied or linked again, with a new mtime, keeps every cache built from it); arrays (style
images) as a digest of their bytes.  The key is written *before* the output is
built, so a rebuild cut short resumes under the same key (its partial files and checkpoints
still belong to it); a changed key removes them first (clear).
"""
import hashlib
import json
import os

import numpy as np

from core.oserrors import writing


def file_stamp(path):
    """'size:mtime_ns' of a file, or None when it does not exist."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return f"{st.st_size}:{st.st_mtime_ns}"


_DIGESTS = {}  # (path, size, mtime_ns) -> digest: each file is read once per process


def content_stamp(path):
    """'size:sha256 prefix' of a file's bytes, or None when it does not exist.  For the user's
    own inputs (VGG and decoder weights, style images: a few MB each, read in milliseconds)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    memo = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if memo not in _DIGESTS:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[memo] = h.hexdigest()[:16]
    return f"{st.st_size}:{_DIGESTS[memo]}"


def weights_stamps(path, alternatives):
    """[[file, content_stamp]] of a weights file asked for and of every file in its folder that the
    lookup (core/pth.resolve_weights) may take in its place: the key changes with whichever one
    is used, e.g. a decoder_finetuned.pkl trained again while the decoder.pth asked for is absent."""
    folder = os.path.dirname(path)
    files = [path] + [os.path.join(folder, n) for n in alternatives
                      if os.path.abspath(os.path.join(folder, n)) != os.path.abspath(path)]
    return [[f, content_stamp(f)] for f in files]


def array_digest(arrays):
    """A short digest of a list of arrays (shape, dtype and bytes)."""
    h = hashlib.sha1()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.shape}{a.dtype}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def read_key(key_path, log=None, what="cache"):
    """The stored key, None when missing, {} when unreadable (warned: then rebuilt)."""
    if not os.path.exists(key_path):
        return None
    try:
        with open(key_path) as f:
            return json.load(f)
    except (OSError, ValueError) as e:
        if log:
            log(f"warning: {what} key {key_path} is unreadable ({e}); rebuilding the {what}")
        return {}


def write_key(key_path, inputs):
    """Store the key as a new file that replaces the old one (os.replace): a kill mid-write leaves
    the old key, and a key linked from another experiment folder (bench/style_levers.py) stays
    that folder's."""
    os.makedirs(os.path.dirname(os.path.abspath(key_path)), exist_ok=True)
    tmp = key_path + ".tmp"
    with writing(key_path):
        with open(tmp, "w") as f:
            json.dump(inputs, f)
        os.replace(tmp, key_path)


def _normal(inputs):
    return json.loads(json.dumps(inputs))  # tuples as lists, as they come back from the file


def matches(key_path, inputs):
    """True when the stored key equals `inputs` (read only; nothing is removed)."""
    return read_key(key_path) == _normal(inputs)


def _short(value, limit=120):
    """A key's value for the stale line, cut to `limit` characters (render options are long)."""
    text = json.dumps(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def refresh(key_path, inputs, clear=None, what="cache", log=print):
    """True when the stored key equals `inputs` (the output may be reused).  Otherwise run
    clear() (remove the old output and its partial files), store the new key, return False."""
    old = read_key(key_path, log, what)
    if old == _normal(inputs):
        return True
    if old:
        new = _normal(inputs)
        changed = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        was = "; ".join(f"{k}: {_short(old.get(k))} -> {_short(new.get(k))}" for k in changed)
        log(f"{what} is stale ({', '.join(changed)} changed; {was}); rebuilding")
    if clear is not None:
        clear()
    write_key(key_path, inputs)
    return False
