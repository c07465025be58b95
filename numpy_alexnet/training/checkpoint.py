"""Checkpoints: everything a run needs to go on exactly where it stopped.

One backend-neutral ``.npz`` (host NumPy arrays, no pickles) holding

* ``param/<layer.key>``     every parameter ('conv1.W', 'fc8.b', ...);
* ``velocity/<layer.key>``  the optimizer's momentum buffers;
* ``extra/<name>``          arrays of the data preprocessing (the mean image);
* ``meta``                  one JSON string: format version, epoch and batch
  (the position of the data iterator: the next batch to run), global step,
  the optimizer's scalars, the schedule's state, the random-generator states
  of the dropout layers, the running sums of the epoch in progress, the
  per-epoch history, the step of the best checkpoint (``best_step``), the
  rates set by hand on resume (``lr_changes``) and the run's configuration.

The data iterator needs no generator state of its own: batch b of epoch e is
a pure function of (seed, e, b) (see ``numpy_alexnet.data.loader``), so its
position is enough.

Writes are atomic: the file is written under a temporary name in the same
folder, flushed and fsync'ed, then renamed over the target (``os.replace`` is
atomic on POSIX and Windows).  A run killed at any instant leaves either the
old checkpoint or the new one, never a torn file.  A ``best.npz`` that a
failed write left out is written when the run resumes (:func:`restore_due_best`).
"""
from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..backend import to_numpy
from ..files import atomic_write as atomic_write_bytes_via

FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or does not fit the network."""


def rng_states(net) -> dict:
    """{layer name: bit-generator state} for every layer that owns a NumPy Generator."""
    out = {}
    for layer in net:
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator):
            out[layer.name] = rng.bit_generator.state        # a JSON-able dict
    return out


def set_rng_states(net, states: dict) -> None:
    for layer in net:
        rng = getattr(layer, "rng", None)
        if isinstance(rng, np.random.Generator):
            if layer.name not in states:
                raise CheckpointError(f"checkpoint has no generator state for layer {layer.name!r}")
            rng.bit_generator.state = states[layer.name]


def save_checkpoint(path, net, optimizer, meta: dict, extra: dict | None = None) -> Path:
    """Write ``net``'s weights, ``optimizer``'s velocities, ``meta`` and ``extra`` arrays."""
    arrays = {f"param/{k}": v for k, v in net.state_dict().items()}
    opt_state = optimizer.state_dict()
    for k, v in opt_state.items():
        if k.startswith("velocity/"):
            arrays[k] = to_numpy(v)
    meta = dict(meta)
    meta["format_version"] = FORMAT_VERSION
    meta["optimizer"] = {k: v for k, v in opt_state.items() if not k.startswith("velocity/")}
    meta["rng"] = rng_states(net)
    for k, v in (extra or {}).items():
        arrays[f"extra/{k}"] = to_numpy(v)
    arrays["meta"] = np.array(json.dumps(meta, sort_keys=True))
    path = Path(path)
    atomic_write_bytes_via(path, lambda f: np.savez(f, **arrays))
    return path


def read_checkpoint(path) -> dict:
    """{'params', 'velocity', 'extra', 'meta'} of a checkpoint, as host arrays and a dict."""
    path = Path(path)
    if path.is_dir():
        raise CheckpointError(f"{path} is a folder; expected a checkpoint file such as "
                              f"{path / 'checkpoints' / 'best.npz'}")
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    # Checked first: np.load would take any other file for a pickle and suggest allow_pickle.
    unreadable = (f"{path}: not a readable checkpoint: corrupt, truncated, or not an .npz "
                  "written by numpy-alexnet train")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(unreadable)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as err:
        raise CheckpointError(f"{unreadable} ({type(err).__name__})") from err
    if "meta" not in data:
        raise CheckpointError(f"{path}: not a numpy-alexnet checkpoint (no 'meta' entry)")
    try:
        meta = json.loads(str(data.pop("meta")))
    except ValueError as err:
        raise CheckpointError(f"{unreadable} (its 'meta' entry is not JSON)") from err
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {meta.get('format_version')}, "
                              f"this version reads {FORMAT_VERSION}")
    out = {"params": {}, "velocity": {}, "extra": {}, "meta": meta}
    for k, v in data.items():
        group, _, name = k.partition("/")
        if group == "param":
            out["params"][name] = v
        elif group == "velocity":
            out["velocity"][name] = v
        elif group == "extra":
            out["extra"][name] = v
    return out


def read_meta(path) -> dict:
    """The ``meta`` of a checkpoint alone (no weights read), or CheckpointError."""
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"]))
    except Exception as err:
        raise CheckpointError(f"{path}: not a readable checkpoint ({type(err).__name__})") from err


def restore_due_best(latest, best) -> bool:
    """Write ``best`` as a copy of ``latest`` if ``latest`` is the best checkpoint and
    ``best`` does not hold it (a write that failed after ``latest``'s); whether it did.

    ``meta['best_step']`` records the step of the run's best checkpoint: an
    epoch that improved saves ``latest`` and then ``best`` at the same
    position, so ``best`` is then ``latest``'s copy.
    """
    meta = read_meta(latest)
    if meta.get("best_step") is None or meta["best_step"] != meta["step"]:
        return False
    best = Path(best)
    if best.is_file():
        try:
            if read_meta(best).get("step") == meta["step"]:
                return False
        except CheckpointError:                     # unreadable: replaced below
            pass
    with open(latest, "rb") as src:
        atomic_write_bytes_via(best, lambda f: shutil.copyfileobj(src, f, 1 << 20))
    return True


def load_checkpoint(path, net, optimizer=None) -> dict:
    """Load weights (and velocities, generator states) into ``net``/``optimizer``; return it.

    The returned dict is :func:`read_checkpoint`'s; its ``meta`` holds the
    epoch, batch, step, schedule and history for the trainer.
    """
    ck = read_checkpoint(path)
    try:
        net.load_state_dict(ck["params"])
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: {err}") from err
    set_rng_states(net, ck["meta"].get("rng", {}))
    if optimizer is not None:
        state = {f"velocity/{k}": v for k, v in ck["velocity"].items()}
        state.update(ck["meta"]["optimizer"])
        optimizer.load_state_dict(state)
    return ck
