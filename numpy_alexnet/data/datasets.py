"""Loading CIFAR-10 and image-folder datasets into uint8 arrays, with a cache.

Two source formats are read:

* the official CIFAR-10 python release: the ``cifar-10-batches-py`` directory
  or the ``cifar-10-python.tar.gz`` it comes in (pickled batches
  ``data_batch_1`` .. ``data_batch_5`` for training, ``test_batch`` for test);
* image-folder trees ``split/class/image`` (as ImageNet is laid out), as a
  directory or as a ``.tar``/``.tar.gz`` of one.  The split folders sit at the
  top (or under one enclosing folder, as ``cifar10-jpeg/train/...``); the class
  index is the position of the class folder's name in the sorted list of names.

Everything is stored as ``uint8`` images (N, C=3, H, W) plus ``int64`` labels
(N,) plus the class names; conversion to float32 happens later, one batch at a
time (see ``augment.py``).  Decoding 60,000 JPEGs takes seconds, so the decoded
arrays are cached in ``$NUMPY_ALEXNET_CACHE`` (default
``~/.cache/numpy-alexnet``) as an uncompressed ``.npz``; the cache key is the
source's size and SHA-256 (for a directory: a hash of its files' relative
paths, sizes and modification times) plus the preprocessing parameters.

Section 4 of the paper: images "rescaled such that the shorter side was of
length 256, and then [we] cropped out the central 256x256 patch".  That is
``resize=256`` here.  ``resize=None`` keeps images at their size (all must
share it).

Nothing here touches the network unless :func:`download_cifar10` is called.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import posixpath
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..progress import progress_bar

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILENAME = "cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

# Bump when the cached layout or the decoding changes, so old entries are ignored.
CACHE_VERSION = 1

IMAGE_EXTENSIONS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP",
    ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
    ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM",
}
SPLIT_NAMES = ("train", "val", "valid", "validation", "test")

_INSTALL_HINT = "pip install 'numpy-alexnet[data]'"


class DataError(ValueError):
    """A data source that cannot be used as it is; the message names the file."""


# --------------------------------------------------------------------------- #
# The in-memory structure
# --------------------------------------------------------------------------- #
@dataclass
class Split:
    """One split of a dataset.

    images: uint8 (N, C=3, H, W); labels: int64 (N,), indexes into ``classes``.
    """
    images: np.ndarray
    labels: np.ndarray
    classes: tuple[str, ...]
    name: str = ""

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def image_size(self) -> tuple[int, int]:
        """(H, W) of every image."""
        return int(self.images.shape[2]), int(self.images.shape[3])

    def class_counts(self) -> np.ndarray:
        """Images per class, int64 (K,)."""
        return np.bincount(self.labels, minlength=len(self.classes)).astype(np.int64)

    def subset(self, rows) -> "Split":
        """The images ``rows`` only (e.g. a ``--subset``), as ImageFolderSplit.subset."""
        rows = np.asarray(rows)
        return Split(self.images[rows], self.labels[rows], self.classes, self.name)

    def as_float32(self) -> tuple[np.ndarray, np.ndarray]:
        """(images as float32 (N, 3, H, W) on the 0-255 scale, labels): for small sets."""
        return self.images.astype(np.float32), self.labels


@dataclass
class DatasetStats:
    """What section 4 needs from the training set, on the 0-255 pixel scale.

    mean_image: float32 (3, H, W), the per-pixel mean subtracted from every image.
    mean_pixel: float64 (3,), the mean R, G, B.
    eigvals: float64 (3,), eigenvalues of the 3x3 RGB covariance, largest first.
    eigvecs: float64 (3, 3), the matching unit eigenvectors as columns.
    """
    mean_image: np.ndarray
    mean_pixel: np.ndarray
    eigvals: np.ndarray
    eigvecs: np.ndarray

    @classmethod
    def from_images(cls, images: np.ndarray) -> "DatasetStats":
        from .augment import mean_image, pca_eigen
        mean = mean_image(images)
        eigvals, eigvecs = pca_eigen(images)
        return cls(mean, mean.astype(np.float64).mean(axis=(1, 2)), eigvals, eigvecs)


@dataclass
class Dataset:
    """Named splits (``train``, ``test``, maybe ``val``) sharing one class list."""
    splits: dict[str, Split]
    classes: tuple[str, ...]
    source: str = ""
    kind: str = ""                      # 'cifar10-python' or 'image-folder'
    cache_path: Path | None = None      # the .npz the arrays came from / went to
    _stats: DatasetStats | None = field(default=None, repr=False)

    def __getitem__(self, name: str) -> Split:
        if name not in self.splits:
            raise DataError(f"{self.source}: no split {name!r}; it has {sorted(self.splits)}")
        return self.splits[name]

    @property
    def train(self) -> Split:
        return self["train"]

    @property
    def test(self) -> Split:
        return self["test"]

    def stats(self) -> DatasetStats:
        """Mean image and RGB PCA of the training split (computed once, then cached)."""
        if self._stats is None:
            stats_path = _stats_path(self.cache_path) if self.cache_path else None
            if stats_path is not None and stats_path.exists():
                self._stats = _read_stats(stats_path)[0]
            else:
                self._stats = DatasetStats.from_images(self.train.images)
                if stats_path is not None:
                    _write_stats(stats_path, self._stats, self.info_counts())
        return self._stats

    def info_counts(self) -> dict:
        """Counts per split and class, image size: the JSON-able part of ``data info``."""
        first = next(iter(self.splits.values()))
        return {
            "source": self.source, "kind": self.kind, "classes": list(self.classes),
            "image_shape": [int(s) for s in first.images.shape[1:]],
            "splits": {name: [int(c) for c in s.class_counts()] for name, s in self.splits.items()},
        }


# --------------------------------------------------------------------------- #
# Public entry points
# --------------------------------------------------------------------------- #
def default_cache_dir() -> Path:
    """``$NUMPY_ALEXNET_CACHE`` if set, else ``~/.cache/numpy-alexnet``."""
    env = os.environ.get("NUMPY_ALEXNET_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "numpy-alexnet"


def load_dataset(path, resize: int | None = None, limit_per_class: int | None = None,
                 cache_dir=None, use_cache: bool = True, progress: bool = True,
                 workers: int | None = None) -> Dataset:
    """Load a CIFAR-10 python release or an image-folder tree as uint8 arrays.

    path: a ``cifar-10-batches-py`` directory or ``cifar-10-python.tar.gz``; an
        image-folder tree ``split/class/image`` as a directory, ``.tar`` or
        ``.tar.gz``; or the name ``"cifar10"`` for the official release in the
        cache directory (never downloaded implicitly: see :func:`download_cifar10`).
    resize: None keeps each image's size (all must share it); 256 rescales the
        short side to 256 and takes the central 256x256 (the paper's section 4).
        Image folders only.
    limit_per_class: keep the first N files (sorted by name) of each class in
        each split: a deterministic subset.  Image folders only.
    cache_dir: where decoded arrays are kept (default :func:`default_cache_dir`).
    workers: processes used to decode images (default: the CPU count, when the
        set is large enough for it to pay).
    """
    src = _resolve_source(path, cache_dir)
    kind = _source_kind(src)
    if kind == "cifar10-python" and (resize is not None or limit_per_class is not None):
        raise DataError(f"{src}: resize and limit_per_class apply to image folders, "
                        "not to the CIFAR-10 python arrays")
    if resize is not None and int(resize) < 1:
        raise ValueError(f"resize must be a positive size or None, got {resize!r}")
    if limit_per_class is not None and int(limit_per_class) < 1:
        raise ValueError(f"limit_per_class must be a positive count or None, got {limit_per_class!r}")
    params = {"kind": kind, "resize": resize, "limit_per_class": limit_per_class}

    cache_path = None
    if use_cache:
        cache_path = _cache_path(src, params, cache_dir)
        if cache_path.exists():
            try:
                ds = _read_cache(cache_path)
                ds.source = str(src)
                return ds
            except Exception as err:            # unreadable entry: decode again, replace it
                print(f"numpy-alexnet: ignoring unreadable cache {cache_path} ({err})",
                      file=sys.stderr)

    t0 = time.perf_counter()
    if kind == "cifar10-python":
        ds = _load_cifar10_python(src)
    else:
        ds = _load_image_folder(src, resize, limit_per_class, progress, workers)
    ds.source, ds.kind = str(src), kind
    if progress:
        n = sum(len(s) for s in ds.splits.values())
        print(f"numpy-alexnet: decoded {n} images from {src} in "
              f"{time.perf_counter() - t0:.1f} s", file=sys.stderr)
    if cache_path is not None:
        _write_cache(cache_path, ds)
        ds.cache_path = cache_path
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
    src = _resolve_source(path, cache_dir)
    params = {"kind": _source_kind(src), "resize": resize, "limit_per_class": limit_per_class}
    if use_cache:
        cache_path = _cache_path(src, params, cache_dir)
        stats_path = _stats_path(cache_path)
        if cache_path.exists() and stats_path.exists():
            stats, info = _read_stats(stats_path)
            info.update(source=str(src), cached=True, cache_path=str(cache_path))
            return _with_stats(info, stats)
    ds = load_dataset(src, resize, limit_per_class, cache_dir, use_cache, progress)
    info = ds.info_counts()
    info.update(cached=False, cache_path=str(ds.cache_path) if ds.cache_path else None)
    stats = ds.stats() if "train" in ds.splits else None
    return _with_stats(info, stats)


def download_cifar10(dest_dir=None, url: str = CIFAR10_URL, md5: str = CIFAR10_MD5,
                     progress: bool = True) -> Path:
    """Download the official CIFAR-10 python release and check its MD5.

    Only ever called on request (tests never call it).  Returns the path of
    ``cifar-10-python.tar.gz`` in ``dest_dir`` (default: the cache directory).
    A file already there with the right checksum is kept.
    """
    import urllib.error
    import urllib.request

    dest = Path(dest_dir).expanduser() if dest_dir else default_cache_dir()
    if dest.exists() and not dest.is_dir():
        raise DataError(f"{dest} is a file; expected a directory to put {CIFAR10_FILENAME} in")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / CIFAR10_FILENAME
    if target.exists() and _md5(target) == md5:
        return target
    fd, tmp = tempfile.mkstemp(dir=dest, suffix=".part")
    try:
        with os.fdopen(fd, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=60)
            except (urllib.error.URLError, OSError) as err:
                raise ConnectionError(
                    f"could not download {url} ({err}). Offline, fetch the file elsewhere and "
                    f"put it at {target} (md5 {md5}).") from err
            total = int(response.headers.get("Content-Length") or 0)
            bar = _progress_bar(total=total or None, unit="B", unit_scale=True,
                                desc="cifar-10-python.tar.gz", disable=not progress)
            with response:
                while chunk := response.read(1 << 20):
                    out.write(chunk)
                    bar.update(len(chunk))
            bar.close()
        got = _md5(Path(tmp))
        if got != md5:
            raise DataError(f"{url}: downloaded file has md5 {got}, expected {md5}; not kept")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return target


# --------------------------------------------------------------------------- #
# Finding and recognising the source
# --------------------------------------------------------------------------- #
def _resolve_source(path, cache_dir) -> Path:
    if str(path).lower() in ("cifar10", "cifar-10"):
        root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
        for candidate in (root / CIFAR10_FILENAME, root / "cifar-10-batches-py"):
            if candidate.exists():
                return candidate
        raise FileNotFoundError(
            f"CIFAR-10 (official python release) not found: put {CIFAR10_FILENAME} "
            f"(md5 {CIFAR10_MD5}, from {CIFAR10_URL}) at {root / CIFAR10_FILENAME}, "
            f"or download it there with `numpy-alexnet data download {root}` "
            "(needs a network).")
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(
            f"{p}: no such file or directory; expected a CIFAR-10 python release "
            f"(cifar-10-batches-py/ or {CIFAR10_FILENAME}) or an image-folder tree "
            "split/class/image (a directory, .tar or .tar.gz)")
    return p


def _source_kind(src: Path) -> str:
    if src.is_dir():
        if _cifar_batches_dir(src) is not None:
            return "cifar10-python"
        return "image-folder"
    if not tarfile.is_tarfile(src):
        raise DataError(f"{src}: not a directory nor a .tar/.tar.gz archive; expected a "
                        "CIFAR-10 python release or an image-folder tree")
    # The official archive holds cifar-10-batches-py/...; an image folder holds images.
    with tarfile.open(src, "r:*") as tf:
        for member in tf:
            base = posixpath.basename(member.name)
            if base in ("data_batch_1", "test_batch", "batches.meta"):
                return "cifar10-python"
            if member.isfile() and posixpath.splitext(base)[1].lower() in IMAGE_EXTENSIONS:
                return "image-folder"
    return "image-folder"


def _cifar_batches_dir(d: Path) -> Path | None:
    for candidate in (d, d / "cifar-10-batches-py"):
        if (candidate / "data_batch_1").is_file() or (candidate / "test_batch").is_file():
            return candidate
    return None


# --------------------------------------------------------------------------- #
# CIFAR-10 python release
# --------------------------------------------------------------------------- #
class _ArrayUnpickler(pickle.Unpickler):
    """Unpickle dicts of lists, bytes and NumPy arrays, and nothing else.

    A pickle can run any code it names; the CIFAR batches need only these.
    """
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def _unpickle(raw: bytes, name: str) -> dict:
    try:
        obj = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except Exception as err:
        raise DataError(f"{name}: not a readable CIFAR batch ({type(err).__name__}: {err})") from err
    if not isinstance(obj, dict):
        raise DataError(f"{name}: expected a pickled dict, got {type(obj).__name__}")
    # Python 2 pickles give bytes keys under encoding='bytes'.
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_batch(raw: bytes, name: str) -> tuple[np.ndarray, np.ndarray]:
    d = _unpickle(raw, name)
    if "data" not in d or "labels" not in d:
        raise DataError(f"{name}: a CIFAR-10 batch needs 'data' and 'labels', has {sorted(d)}")
    data = np.asarray(d["data"], dtype=np.uint8)
    labels = np.asarray(d["labels"], dtype=np.int64)
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or data.shape[0] != labels.shape[0]:
        raise DataError(f"{name}: expected data (N, 3072) and N labels, got data "
                        f"{data.shape} and {labels.shape[0]} labels")
    # Each row holds the 1024 red, then green, then blue values, row-major.
    images = data.reshape(-1, 3, 32, 32)       # (N, 3072) -> (N, C, H, W)
    return images, labels


def _load_cifar10_python(src: Path) -> Dataset:
    """The official release: data_batch_1..5 (train), test_batch (test), batches.meta."""
    if src.is_dir():
        d = _cifar_batches_dir(src)
        files = {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}
        where = {name: str(d / name) for name in files}
    else:
        files, where = {}, {}
        with tarfile.open(src, "r:*") as tf:
            for member in tf:
                base = posixpath.basename(member.name)
                if member.isfile() and (base.startswith(("data_batch_", "test_batch"))
                                        or base == "batches.meta"):
                    files[base] = tf.extractfile(member).read()
                    where[base] = f"{src}:{member.name}"
    train_names = sorted((n for n in files if n.startswith("data_batch_")),
                         key=lambda n: int(n.rsplit("_", 1)[1]) if n.rsplit("_", 1)[1].isdigit() else 0)
    if not train_names or "test_batch" not in files:
        raise DataError(f"{src}: a CIFAR-10 python release needs data_batch_1..5 and "
                        f"test_batch; found {sorted(files)}")
    classes = CIFAR10_CLASSES
    if "batches.meta" in files:
        meta = _unpickle(files["batches.meta"], where["batches.meta"])
        names = meta.get("label_names")
        if names:
            classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    splits = {}
    for split, names in (("train", train_names), ("test", ["test_batch"])):
        parts = [_cifar_batch(files[n], where[n]) for n in names]
        images = np.concatenate([p[0] for p in parts])       # (N, C, H, W)
        labels = np.concatenate([p[1] for p in parts])
        if labels.size and (labels.min() < 0 or labels.max() >= len(classes)):
            raise DataError(f"{src}: labels outside 0..{len(classes) - 1} in the {split} batches")
        splits[split] = Split(images, labels, classes, split)
    return Dataset(splits, classes)


# --------------------------------------------------------------------------- #
# Image folders
# --------------------------------------------------------------------------- #
def _load_image_folder(src: Path, resize, limit_per_class, progress, workers) -> Dataset:
    if src.is_dir():
        files, dirs = _scan_dir(src)
    else:
        files, dirs = _scan_tar(src, progress)
    classes, items = folder_items(src, files, dirs, limit_per_class)
    sources = [files[p] for _, _, p in items]           # bytes (from a tar) or a Path
    names = [_display_name(src, p) for _, _, p in items]
    images = _decode_all(sources, names, resize, progress, workers)

    splits = {}
    split_of = np.array([s for s, _, _ in items])
    labels = np.array([y for _, y, _ in items], dtype=np.int64)
    for split in dict.fromkeys(s for s, _, _ in items):  # in order of first appearance
        rows = np.flatnonzero(split_of == split)         # contiguous: items are grouped by split
        splits[split] = Split(images[rows[0]:rows[-1] + 1], labels[rows], classes, split)
    return Dataset(splits, classes)


def folder_items(src: Path, files: dict, dirs: set, limit_per_class=None):
    """(classes, [(split, label, relpath), ...]) of an image-folder tree, in storage order.

    The order (splits as ``SPLIT_NAMES``, then classes and files sorted by name,
    the first ``limit_per_class`` of each class) is the order of the in-RAM
    arrays and of :class:`~numpy_alexnet.data.stream.ImageFolder`, so the two
    give the same image for the same index.
    """
    layout = _layout(src, files, dirs)      # {split: {class: [relpath, ...]}}
    classes = _shared_classes(src, layout)
    class_index = {c: i for i, c in enumerate(classes)}
    items = []
    for split in sorted(layout, key=_split_order):
        for c in sorted(layout[split]):
            paths = sorted(layout[split][c])
            if limit_per_class is not None:
                paths = paths[:int(limit_per_class)]
            items += [(split, class_index[c], p) for p in paths]
    return classes, items


def _shared_classes(src: Path, layout: dict) -> tuple[str, ...]:
    """The sorted class names, which every split must have as its class folders.

    A label is a class's place in this list, so a split with other folders
    (train {cat, dog}, test {bird, cat}) would mix up classes: refused.
    """
    first, *others = sorted(layout, key=_split_order)
    classes = tuple(sorted(layout[first]))
    for split in others:
        if tuple(sorted(layout[split])) != classes:
            raise DataError(f"{src}: split {split!r} has class folders {sorted(layout[split])} "
                            f"but split {first!r} has {list(classes)}; every split needs the "
                            "same class folders")
    return classes


def _split_order(name: str):
    return (SPLIT_NAMES.index(name) if name in SPLIT_NAMES else len(SPLIT_NAMES), name)


def _is_hidden(relpath: str) -> bool:
    return any(part.startswith((".", "__")) for part in relpath.split("/"))


def _is_image(relpath: str) -> bool:
    return posixpath.splitext(relpath)[1].lower() in IMAGE_EXTENSIONS


def _scan_dir(root: Path) -> tuple[dict, set]:
    """{relpath: Path} of image files, and the set of relative directory paths.

    Symbolic links to folders are followed (a class folder is often a link into
    another tree); a link back to a folder already being walked is not, so a
    loop of links cannot make the walk endless.
    """
    files, dirs = {}, set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        rel = Path(dirpath).relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        here = os.path.realpath(dirpath)
        # A link to this folder or to one above it would repeat the walk forever.
        dirnames[:] = [d for d in dirnames
                       if not _is_within(here, os.path.realpath(os.path.join(dirpath, d)))]
        for d in dirnames:
            dirs.add(posixpath.join(rel, d))
        for f in filenames:
            relpath = posixpath.join(rel, f)
            if _is_image(relpath) and not _is_hidden(relpath):
                files[relpath] = Path(dirpath) / f
    return files, {d for d in dirs if not _is_hidden(d)}


def _is_within(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies under it (both resolved)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _scan_tar(src: Path, progress: bool, keep=None) -> tuple[dict, set]:
    """{member name: bytes} of image files, and the set of directory names.

    One streaming pass: the encoded images are kept in memory (about the size
    of the archive) and decoded afterwards.  keep: a test of the member name
    saying which images' bytes to keep (None: all); the others map to None.
    """
    files, dirs = {}, set()
    bar = _progress_bar(desc=f"reading {src.name}", unit=" files", disable=not progress)
    try:
        with tarfile.open(src, "r|*") as tf:
            for member in tf:
                name = member.name.rstrip("/")
                while name.startswith("./"):
                    name = name[2:]
                if _is_hidden(name):
                    continue
                if member.isdir():
                    dirs.add(name)
                elif member.isfile() and _is_image(name):
                    files[name] = (tf.extractfile(member).read()
                                   if keep is None or keep(name) else None)
                    bar.update(1)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DataError(f"{src}: cannot read the archive ({type(err).__name__}: {err})") from err
    finally:
        bar.close()
    return files, dirs


def _layout(src: Path, files: dict, dirs: set) -> dict:
    """{split: {class: [relpath]}} from the paths of an image-folder tree."""
    for f in files:                             # a tar may omit directory entries
        parent = posixpath.dirname(f)
        while parent:
            dirs.add(parent)
            parent = posixpath.dirname(parent)

    def children(prefix):
        depth = prefix.count("/") + 1 if prefix else 0
        return sorted(d for d in dirs if d.count("/") == depth and
                      (not prefix or d.startswith(prefix + "/")))

    # Find the folder holding the splits: the top, or under one enclosing folder.
    root = ""
    while True:
        kids = children(root)
        if any(posixpath.basename(k) in SPLIT_NAMES for k in kids):
            break
        loose = [f for f in files if posixpath.dirname(f) == root]
        if len(kids) == 1 and not loose:
            root = kids[0]
            continue
        raise DataError(
            f"{src}: expected an image-folder tree split/class/image with split folders "
            f"such as train/ and test/ (found folders {[posixpath.basename(k) for k in kids][:8]} "
            f"under {root or 'the top'})")

    # Group the files by split and class in one pass: root/split/class/.../image.
    layout: dict[str, dict[str, list[str]]] = {}
    for split_dir in children(root):
        layout[posixpath.basename(split_dir)] = {
            posixpath.basename(c): [] for c in children(split_dir)}
    skip = len(root) + 1 if root else 0
    for f in files:
        if root and not f.startswith(root + "/"):
            continue
        parts = f[skip:].split("/")
        if len(parts) == 1:
            continue                           # a loose file next to the split folders
        if len(parts) == 2:
            raise DataError(f"{_display_name(src, f)}: image outside a class folder; "
                            f"expected {parts[0]}/<class>/<image>")
        layout[parts[0]][parts[1]].append(f)
    for split, per_class in layout.items():
        split_dir = posixpath.join(root, split)
        if not per_class:
            raise DataError(f"{_display_name(src, split_dir)}: split folder without class folders")
        for c, paths in per_class.items():
            if not paths:
                raise DataError(f"{_display_name(src, posixpath.join(split_dir, c))}: empty class "
                                f"folder (no images with extensions {sorted(set(IMAGE_EXTENSIONS))})")
    return layout


def _display_name(src: Path, relpath: str) -> str:
    return str(src / relpath) if src.is_dir() else f"{src}:{relpath}"


# --------------------------------------------------------------------------- #
# Decoding (the one place with a loop over images: unavoidable for JPEG)
# --------------------------------------------------------------------------- #
def _import_pil():
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(f"reading image files needs Pillow: {_INSTALL_HINT}") from err
    return Image


def decode_image(source, name: str, resize: int | None = None) -> np.ndarray:
    """One image file (bytes or a path) as uint8 (H, W, C=3) RGB.

    Grayscale ('L', 'LA', '1'), palette ('P', 'PA'), RGBA and CMYK images are
    converted to RGB; RGBA loses its alpha channel (it is dropped, not composited
    onto a background).  16-bit grayscale keeps its 8 high bits.  A file that
    cannot be decoded (corrupt, truncated, not an image) raises DataError
    naming ``name``.
    """
    Image = _import_pil()
    ext = posixpath.splitext(str(name))[1].lower()
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        try:
            img = Image.open(fp, formats=[IMAGE_EXTENSIONS[ext]] if ext in IMAGE_EXTENSIONS else None)
        except Image.UnidentifiedImageError:          # e.g. a PNG named .jpg
            if hasattr(fp, "seek"):
                fp.seek(0)
            img = Image.open(fp)
        with img:
            img.load()                                # raises on a truncated file
            img = _to_rgb(img, name)
    except DataError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as err:
        raise DataError(f"{name}: cannot decode image ({type(err).__name__}: {err})") from err
    if resize is not None:
        img = _resize_center_crop(img, int(resize))
    return np.asarray(img, dtype=np.uint8)             # (H, W, C)


def _to_rgb(img, name):
    Image = _import_pil()
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16") or img.mode == "I":
        # 16-bit grayscale: keep the high byte, then replicate to three channels.
        a = np.asarray(img).astype(np.uint32) >> (8 if img.mode.startswith("I;16") else 0)
        return Image.fromarray(np.clip(a, 0, 255).astype(np.uint8), "L").convert("RGB")
    if img.mode in ("P", "PA") and "transparency" in img.info:
        img = img.convert("RGBA")                    # as Pillow asks for palette transparency
    if img.mode in ("1", "L", "LA", "P", "PA", "RGBA", "RGBX", "RGBa", "CMYK", "YCbCr",
                    "LAB", "HSV", "La"):
        return img.convert("RGB")
    raise DataError(f"{name}: unsupported image mode {img.mode!r}; expected an 8-bit "
                    "RGB, grayscale, palette, RGBA or CMYK image")


def _resize_center_crop(img, size: int):
    """Short side to ``size`` (bilinear), then the central size x size patch (section 4)."""
    Image = _import_pil()
    w, h = img.size
    short = min(w, h)
    new_w, new_h = max(size, round(w * size / short)), max(size, round(h * size / short))
    if (new_w, new_h) != (w, h):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


# Set in the parent before forking, read by the workers (no pickling of inputs).
_WORK: dict = {}


def decode_images(sources, names, resize, shape, first_name: str) -> np.ndarray:
    """Decode images that must all be ``shape`` (H, W) into uint8 (n, C=3, H, W).

    first_name: the image that fixed the size, named when one differs.
    """
    H, W = shape
    out = np.empty((len(sources), H, W, 3), dtype=np.uint8)        # (n, H, W, C)
    for i, (source, name) in enumerate(zip(sources, names)):
        img = decode_image(source, name, resize)
        if img.shape != (H, W, 3):
            raise DataError(
                f"{name}: image is {img.shape[1]}x{img.shape[0]} (WxH) where {first_name} is "
                f"{W}x{H}; images of different sizes need resize=256 (the paper's rescaling)")
        out[i] = img
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))         # (n, H, W, C) -> (n, C, H, W)


def _decode_range(bounds):
    """Decode images [start, stop) of ``_WORK`` into uint8 (n, C, H, W)."""
    start, stop = bounds
    names = _WORK["names"]
    return start, decode_images(_WORK["sources"][start:stop], names[start:stop],
                                _WORK["resize"], _WORK["shape"], names[0])


def _decode_all(sources, names, resize, progress, workers) -> np.ndarray:
    """All images as one uint8 (N, C=3, H, W) array, in a process pool when it pays."""
    n = len(sources)
    first = decode_image(sources[0], names[0], resize)             # fixes H, W
    H, W = first.shape[:2]
    images = np.empty((n, 3, H, W), dtype=np.uint8)               # (N, C, H, W)
    chunk = max(1, min(1000, (1 << 24) // (3 * H * W)))           # at most ~16 MB a chunk
    ranges = [(s, min(s + chunk, n)) for s in range(0, n, chunk)]
    if workers is None:
        workers = os.cpu_count() or 1
    # Forking is safe only while this process runs no other thread.
    use_pool = (workers > 1 and n >= 2000 and "fork" in _mp_methods()
                and threading.active_count() == 1)
    _WORK.update(sources=sources, names=names, resize=resize, shape=(H, W))
    bar = _progress_bar(total=n, desc="decoding images", unit=" img", disable=not progress)
    try:
        if use_pool:
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                for start, block in pool.imap_unordered(_decode_range, ranges):
                    images[start:start + len(block)] = block
                    bar.update(len(block))
        else:
            for r in ranges:
                start, block = _decode_range(r)
                images[start:start + len(block)] = block
                bar.update(len(block))
    finally:
        _WORK.clear()
        bar.close()
    return images


def _mp_methods():
    import multiprocessing
    return multiprocessing.get_all_start_methods()


def _progress_bar(disable=False, **kwargs):
    return progress_bar(not disable, **kwargs)


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #
def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def source_fingerprint(src: Path) -> dict:
    """Size and SHA-256 of a file; for a directory a hash of (relpath, size, mtime) of its files."""
    src = Path(src)
    if src.is_file():
        return {"size": src.stat().st_size, "sha256": _sha256_file(src)}
    h, total = hashlib.sha256(), 0
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames.sort()
        rel = Path(dirpath).relative_to(src).as_posix()
        h.update(f"D {rel}\n".encode())             # empty folders count too
        for f in sorted(filenames):
            st = os.stat(os.path.join(dirpath, f))
            total += st.st_size
            h.update(f"F {rel}/{f} {st.st_size} {st.st_mtime_ns}\n".encode())
    return {"size": total, "tree_sha256": h.hexdigest()}


def _cache_path(src: Path, params: dict, cache_dir) -> Path:
    key = {"version": CACHE_VERSION, **source_fingerprint(src), **params}
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]
    stem = src.name.split(".")[0] or "data"
    root = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return root / f"{stem}-{digest}.npz"


def _stats_path(cache_path: Path) -> Path:
    return cache_path.with_name(cache_path.stem + ".stats.npz")


def _atomic_savez(path: Path, arrays: dict) -> None:
    """np.savez (uncompressed: loads fast) to a temporary file, then os.replace."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_cache(path: Path, ds: Dataset) -> None:
    arrays = {"classes": np.array(ds.classes, dtype=str), "kind": np.array(ds.kind),
              "split_names": np.array(list(ds.splits), dtype=str)}
    for name, s in ds.splits.items():
        arrays[f"{name}.images"] = s.images
        arrays[f"{name}.labels"] = s.labels
    _atomic_savez(path, arrays)


def _read_cache(path: Path) -> Dataset:
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


def _write_stats(path: Path, stats: DatasetStats, info: dict) -> None:
    _atomic_savez(path, {"mean_image": stats.mean_image, "mean_pixel": stats.mean_pixel,
                         "eigvals": stats.eigvals, "eigvecs": stats.eigvecs,
                         "info_json": np.array(json.dumps(info))})


def _read_stats(path: Path) -> tuple[DatasetStats, dict]:
    with np.load(path, allow_pickle=False) as z:
        stats = DatasetStats(z["mean_image"], z["mean_pixel"], z["eigvals"], z["eigvecs"])
        info = json.loads(str(z["info_json"]))
    return stats, info


def _with_stats(info: dict, stats: DatasetStats | None) -> dict:
    if stats is not None:
        info.update(mean_pixel=[float(v) for v in stats.mean_pixel],
                    pca_eigvals=[float(v) for v in stats.eigvals],
                    pca_eigvecs=[[float(v) for v in row] for row in stats.eigvecs])
    return info
