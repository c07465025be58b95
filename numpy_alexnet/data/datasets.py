"""Loading CIFAR-10 and image-folder datasets into uint8 arrays, with a cache.

The entry points of the data package's in-memory path:

* :func:`load_dataset`: a source (``sources.py``) decoded (``decode.py``) into a
  :class:`~numpy_alexnet.data.arrays.Dataset`, from the cache when it holds it
  (``cache.py``);
* :func:`load_arrays`: one split as float32 arrays, for small sets;
* :func:`dataset_info`: counts, mean pixel and RGB PCA, from the cache's
  statistics file when it has them;
* :func:`decoded_size`: how many bytes the arrays would take, found before
  decoding, so that a set too large for memory can be streamed instead
  (``stream.py``).

Everything is stored as ``uint8`` images (N, C=3, H, W) plus ``int64`` labels
(N,) plus the class names; conversion to float32 happens later, one batch at a
time (see ``augment.py``).  Section 4 of the paper: images "rescaled such that
the shorter side was of length 256, and then [we] cropped out the central
256x256 patch".  That is ``resize=256`` here.  ``resize=None`` keeps images at
their size (all must share it).
"""
from __future__ import annotations

import sys
import time

import numpy as np

from .arrays import DataError, Dataset, DatasetStats, stats_path
from .cache import cache_path, read_cache, write_cache
from .decode import decode_image
from .sources import (display_name, folder_items, load_cifar10_python, load_image_folder,
                      resolve_source, scan_dir, scan_tar, source_kind)


def load_dataset(path, resize: int | None = None, limit_per_class: int | None = None,
                 cache_dir=None, use_cache: bool = True, progress: bool = True,
                 workers: int | None = None) -> Dataset:
    """Load a CIFAR-10 python release or an image-folder tree as uint8 arrays.

    path: a ``cifar-10-batches-py`` directory or ``cifar-10-python.tar.gz``; an
        image-folder tree ``split/class/image`` as a directory, ``.tar`` or
        ``.tar.gz``; or the name ``"cifar10"`` for the official release in the
        cache directory (never downloaded implicitly: see ``sources.download_cifar10``).
    resize: None keeps each image's size (all must share it); 256 rescales the
        short side to 256 and takes the central 256x256 (the paper's section 4).
        Image folders only.
    limit_per_class: keep the first N files (sorted by name) of each class in
        each split: a deterministic subset.  Image folders only.
    cache_dir: where decoded arrays are kept (default ``cache.default_cache_dir()``).
    workers: processes used to decode images (default: the CPU count, when the
        set is large enough for it to pay).
    """
    src = resolve_source(path, cache_dir)
    kind = source_kind(src)
    if kind == "cifar10-python" and (resize is not None or limit_per_class is not None):
        raise DataError(f"{src}: resize and limit_per_class apply to image folders, "
                        "not to the CIFAR-10 python arrays")
    if resize is not None and int(resize) < 1:
        raise ValueError(f"resize must be a positive size or None, got {resize!r}")
    if limit_per_class is not None and int(limit_per_class) < 1:
        raise ValueError(f"limit_per_class must be a positive count or None, got {limit_per_class!r}")
    params = {"kind": kind, "resize": resize, "limit_per_class": limit_per_class}

    entry = None
    if use_cache:
        entry = cache_path(src, params, cache_dir)
        if entry.exists():
            try:
                ds = read_cache(entry)
                ds.source = str(src)
                return ds
            except Exception as err:            # unreadable entry: decode again, replace it
                print(f"numpy-alexnet: ignoring unreadable cache {entry} ({err})",
                      file=sys.stderr)

    t0 = time.perf_counter()
    if kind == "cifar10-python":
        ds = load_cifar10_python(src)
    else:
        ds = load_image_folder(src, resize, limit_per_class, progress, workers)
    ds.source, ds.kind = str(src), kind
    if progress:
        n = sum(len(s) for s in ds.splits.values())
        print(f"numpy-alexnet: decoded {n} images from {src} in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if entry is not None:
        write_cache(entry, ds)
        ds.cache_path = entry
    return ds


def load_arrays(path, split: str = "train", **kwargs) -> tuple[np.ndarray, np.ndarray, tuple]:
    """(images float32 (N, 3, H, W) on the 0-255 scale, labels int64 (N,), classes).

    For small sets: the float copy is 4x the uint8 one.  ``kwargs`` go to
    :func:`load_dataset`.
    """
    s = load_dataset(path, **kwargs)[split]
    x, y = s.as_float32()
    return x, y, s.classes


def dataset_info(path, resize: int | None = None, limit_per_class: int | None = None,
                 cache_dir=None, use_cache: bool = True, progress: bool = True) -> dict:
    """Counts per split and class, image shape, mean pixel and RGB PCA of the training set.

    On a second call the answer comes from the small stats file next to the
    cached arrays, without reading the images.
    """
    src = resolve_source(path, cache_dir)
    params = {"kind": source_kind(src), "resize": resize, "limit_per_class": limit_per_class}
    if use_cache:
        entry = cache_path(src, params, cache_dir)
        if entry.exists() and stats_path(entry).exists():
            stats, info = DatasetStats.load(stats_path(entry))
            info.update(source=str(src), cached=True, cache_path=str(entry))
            return _with_stats(info, stats)
    ds = load_dataset(src, resize, limit_per_class, cache_dir, use_cache, progress)
    info = ds.info_counts()
    info.update(cached=False, cache_path=str(ds.cache_path) if ds.cache_path else None)
    stats = ds.stats() if "train" in ds.splits else None
    return _with_stats(info, stats)


def decoded_size(path, resize: int | None = None, limit_per_class: int | None = None,
                 cache_dir=None) -> tuple[int, int]:
    """(images, bytes) of the uint8 arrays :func:`load_dataset` would make of ``path``.

    Found without decoding: from the cache entry when there is one, else from
    the list of files (an archive is read once, its bytes not kept) and the
    image size (``resize``, or the size of one image).
    """
    src = resolve_source(path, cache_dir)
    kind = source_kind(src)
    if kind == "cifar10-python":
        return 60000, 60000 * 3 * 32 * 32                   # the release: 60,000 32x32 images
    entry = cache_path(src, {"kind": kind, "resize": resize, "limit_per_class": limit_per_class},
                       cache_dir)
    if entry.exists():
        try:
            splits = read_cache(entry).splits.values()      # memory-mapped: nothing read
            return sum(len(s) for s in splits), sum(s.images.nbytes for s in splits)
        except Exception:                                  # unreadable: count the files
            pass
    kept = []                                               # one image's bytes, for its size

    def keep_one(name: str) -> bool:
        if kept:
            return False
        kept.append(name)
        return True
    files, dirs = scan_dir(src) if src.is_dir() else scan_tar(src, progress=False, keep=keep_one)
    _, items = folder_items(src, files, dirs, limit_per_class)
    if resize is not None:
        H = W = int(resize)
    else:
        relpath = kept[0] if kept else items[0][2]
        H, W = decode_image(files[relpath], display_name(src, relpath)).shape[:2]
    return len(items), len(items) * 3 * H * W


def _with_stats(info: dict, stats: DatasetStats | None) -> dict:
    if stats is not None:
        info.update(mean_pixel=[float(v) for v in stats.mean_pixel],
                    pca_eigvals=[float(v) for v in stats.eigvals],
                    pca_eigvecs=[[float(v) for v in row] for row in stats.eigvecs])
    return info
