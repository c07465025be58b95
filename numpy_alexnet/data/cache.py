"""The cache of decoded arrays, and what keys it: a source's identity by content.

Decoding 60,000 JPEGs takes seconds, so the decoded arrays are kept in
``$NUMPY_ALEXNET_CACHE`` (default ``~/.cache/numpy-alexnet``) as an
uncompressed ``NAME-KEY.npz``, written whole or not at all and read back
memory-mapped.  KEY hashes the source's identity (:func:`source_fingerprint`),
the preprocessing parameters and a format version.

A source's identity is its content, never where it lies or when it was
written: a file's size and SHA-256; a folder's total size and a SHA-256 over
its files' relative paths, sizes and SHA-256s, so that a copy of the folder
(``cp -r``) or a file touched is the same data.  Hashing a large folder reads
every byte once: the files' hashes are kept in ``hashes-KEY.json`` with the
size, times and inode they were computed at, and a file unchanged since is
not read again (as git's index does).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path

import numpy as np

from ..files import atomic_write, atomic_write_text
from .arrays import DataError, Dataset, Split

# Bump when the cached layout or the decoding changes, so old entries are ignored.
CACHE_VERSION = 1

# The files of the cache folder: decoded arrays, their statistics, folders' file hashes,
# and the CIFAR-10 release downloaded there.
_CACHE_FILE = re.compile(r"^(.+-[0-9a-f]{20}(\.stats)?\.npz|hashes-[0-9a-f]{20}\.json|"
                         r"cifar-10-python\.tar\.gz)$")


def default_cache_dir() -> Path:
    """``$NUMPY_ALEXNET_CACHE`` if set, else ``~/.cache/numpy-alexnet``."""
    env = os.environ.get("NUMPY_ALEXNET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "numpy-alexnet"


def is_cache_file(name: str) -> bool:
    """Whether ``name`` is one of the files the cache folder holds."""
    return bool(_CACHE_FILE.match(name))


def file_digest(path, algorithm: str = "sha256") -> str:
    """The hex digest of a file's bytes ('sha256' or 'md5'), read a megabyte at a time."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- #
# Identity by content
# --------------------------------------------------------------------------- #
def source_fingerprint(src, cache_dir=None) -> dict:
    """A source's identity by content (see the module's docstring).

    A file: ``{"size", "sha256"}``; a folder: ``{"size", "tree_sha256", "hashed"}``
    (``hashed`` says what the tree's hash covers; an older version hashed
    modification times instead of contents and wrote no ``hashed``).
    cache_dir: where the folder's file hashes are kept (default :func:`default_cache_dir`).
    """
    src = Path(src)
    if src.is_file():
        return {"size": src.stat().st_size, "sha256": file_digest(src)}
    memo = _HashMemo(src, cache_dir)
    h, total = hashlib.sha256(), 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src).as_posix()
        h.update(f"D {rel}\n".encode())             # empty folders count too
        for f in sorted(filenames):
            path = os.path.join(dirpath, f)
            st = os.stat(path)
            total += st.st_size
            h.update(f"F {rel}/{f} {st.st_size} {memo.sha256(f'{rel}/{f}', path, st)}\n".encode())
    memo.save()
    return {"size": total, "tree_sha256": h.hexdigest(), "hashed": "paths, sizes, contents"}


class _HashMemo:
    """The SHA-256 of each file of a folder, with the (size, mtime, ctime, inode) it was
    computed at; a file whose four are unchanged is not read again."""

    def __init__(self, folder: Path, cache_dir):
        root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        where = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:20]
        self.path = root / f"hashes-{where}.json"
        try:
            self.known = json.loads(self.path.read_text())
        except (OSError, ValueError):
            self.known = {}
        self.now: dict[str, list] = {}

    def sha256(self, relpath: str, path: str, st: os.stat_result) -> str:
        stamp = [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]
        known = self.known.get(relpath)
        digest = known[4] if isinstance(known, list) and known[:4] == stamp else file_digest(path)
        self.now[relpath] = stamp + [digest]
        return digest

    def save(self) -> None:
        if self.now != self.known:
            try:
                atomic_write_text(self.path, json.dumps(self.now))
            except OSError:                 # a speed-up only: hashed again next time
                pass


# --------------------------------------------------------------------------- #
# The decoded arrays
# --------------------------------------------------------------------------- #
def cache_path(src: Path, params: dict, cache_dir) -> Path:
    """Where the arrays of ``src`` decoded with ``params`` are cached."""
    key = {"version": CACHE_VERSION, **source_fingerprint(src, cache_dir), **params}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    stem = src.name.split(".")[0] or "data"
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / f"{stem}-{digest}.npz"


def write_cache(path: Path, ds: Dataset) -> None:
    """``ds``'s arrays and class names into an uncompressed .npz (loads fast), whole or not at all."""
    arrays = {"classes": np.array(ds.classes, dtype=str), "kind": np.array(ds.kind),
              "split_names": np.array(list(ds.splits), dtype=str)}
    for name, s in ds.splits.items():
        arrays[f"{name}.images"] = s.images
        arrays[f"{name}.labels"] = s.labels
    atomic_write(path, lambda f: np.savez(f, **arrays))


def read_cache(path: Path) -> Dataset:
    """The Dataset of a cache entry, its arrays memory-mapped read-only."""
    z = _load_npz_mmap(path)
    classes = tuple(str(c) for c in z["classes"])
    splits = {str(n): Split(z[f"{n}.images"], z[f"{n}.labels"], classes, str(n))
              for n in z["split_names"]}
    return Dataset(splits, classes, kind=str(z["kind"]), cache_path=path)


def _load_npz_mmap(path: Path) -> dict:
    """The arrays of an uncompressed .npz, memory-mapped read-only (no copy, no wait).

    ``np.load(..., mmap_mode='r')`` ignores mmap_mode for .npz files; but an
    uncompressed .npz is a zip of .npy files stored as they are, so each array
    can be mapped at its offset in the file.  Falls back to np.load otherwise.
    """
    import struct
    import zipfile
    arrays = {}
    with zipfile.ZipFile(path) as zf, open(path, "rb") as f:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                with np.load(path, allow_pickle=False) as z:
                    return {k: z[k] for k in z.files}
            f.seek(info.header_offset)
            local = f.read(30)                              # the zip local file header
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            f.seek(info.header_offset + 30 + name_len + extra_len)
            version = np.lib.format.read_magic(f)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, fortran, dtype = read_header(f)
            key = info.filename[:-len(".npy")]
            if dtype.hasobject:
                raise DataError(f"{path}: unexpected object array {key!r} in the cache")
            if int(np.prod(shape)) == 0 or dtype.kind == "U":
                f.seek(0)
                with np.load(path, allow_pickle=False) as z:
                    arrays[key] = z[key]
            else:
                mapped = np.memmap(path, dtype=dtype, mode="r", offset=f.tell(),
                                   shape=shape, order="F" if fortran else "C")
                # A plain ndarray view: np.memmap's Python-level hooks would slow
                # every operation on every slice taken from it.
                arrays[key] = np.asarray(mapped)
    return arrays

