"""The two kinds of source, found and recognised, and read into a :class:`Dataset`.

* the official CIFAR-10 python release: the ``cifar-10-batches-py`` directory
  or the ``cifar-10-python.tar.gz`` it comes in (pickled batches
  ``data_batch_1`` .. ``data_batch_5`` for training, ``test_batch`` for test),
  unpickled by a reader that refuses anything but arrays;
* image-folder trees ``split/class/image`` (as ImageNet is laid out), as a
  directory or as a ``.tar``/``.tar.gz`` of one.  The split folders sit at the
  top (or under one enclosing folder, as ``cifar10-jpeg/train/...``); the class
  index is the position of the class folder's name in the sorted list of names.

Nothing here touches the network unless :func:`download_cifar10` is called.
"""
from __future__ import annotations

import hashlib
import io
import os
import pickle
import posixpath
import tarfile
from pathlib import Path

import numpy as np

from ..files import atomic_write
from ..progress import progress_bar
from .arrays import DataError, Dataset, Split
from .cache import default_cache_dir, file_digest
from .decode import IMAGE_EXTENSIONS, decode_all

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_FILENAME = "cifar-10-python.tar.gz"
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")

SPLIT_NAMES = ("train", "val", "valid", "validation", "test")


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
    target = dest / CIFAR10_FILENAME
    if target.exists() and file_digest(target, "md5") == md5:
        return target
    try:
        response = urllib.request.urlopen(url, timeout=60)
    except (urllib.error.URLError, OSError) as err:
        raise ConnectionError(
            f"could not download {url} ({err}). Offline, fetch the file elsewhere and "
            f"put it at {target} (md5 {md5}).") from err

    def write(out):                      # raising here leaves no file behind
        digest, total = hashlib.md5(), int(response.headers.get("Content-Length") or 0)
        with response, progress_bar(progress, total=total or None, unit="B", unit_scale=True,
                                    desc=CIFAR10_FILENAME) as bar:
            while chunk := response.read(1 << 20):
                out.write(chunk)
                digest.update(chunk)
                bar.update(len(chunk))
        if digest.hexdigest() != md5:
            raise DataError(f"{url}: downloaded file has md5 {digest.hexdigest()}, "
                            f"expected {md5}; not kept")
    return atomic_write(target, write)


# --------------------------------------------------------------------------- #
# Finding and recognising the source
# --------------------------------------------------------------------------- #
def resolve_source(path, cache_dir) -> Path:
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


def source_kind(src: Path) -> str:
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


def load_cifar10_python(src: Path) -> Dataset:
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
def load_image_folder(src: Path, resize, limit_per_class, progress, workers) -> Dataset:
    if src.is_dir():
        files, dirs = scan_dir(src)
    else:
        files, dirs = scan_tar(src, progress)
    classes, items = folder_items(src, files, dirs, limit_per_class)
    sources = [files[p] for _, _, p in items]           # bytes (from a tar) or a Path
    names = [display_name(src, p) for _, _, p in items]
    images = decode_all(sources, names, resize, progress, workers)

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
    layout = folder_layout(src, files, dirs)      # {split: {class: [relpath, ...]}}
    classes = shared_classes(src, layout)
    class_index = {c: i for i, c in enumerate(classes)}
    items = []
    for split in sorted(layout, key=_split_order):
        for c in sorted(layout[split]):
            paths = sorted(layout[split][c])
            if limit_per_class is not None:
                paths = paths[:int(limit_per_class)]
            items += [(split, class_index[c], p) for p in paths]
    return classes, items


def shared_classes(src: Path, layout: dict) -> tuple[str, ...]:
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


def scan_dir(root: Path) -> tuple[dict, set]:
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


def scan_tar(src: Path, progress: bool, keep=None) -> tuple[dict, set]:
    """{member name: bytes} of image files, and the set of directory names.

    One streaming pass: the encoded images are kept in memory (about the size
    of the archive) and decoded afterwards.  keep: a test of the member name
    saying which images' bytes to keep (None: all); the others map to None.
    """
    files, dirs = {}, set()
    bar = progress_bar(progress, desc=f"reading {src.name}", unit=" files")
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


def folder_layout(src: Path, files: dict, dirs: set) -> dict:
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
            raise DataError(f"{display_name(src, f)}: image outside a class folder; "
                            f"expected {parts[0]}/<class>/<image>")
        layout[parts[0]][parts[1]].append(f)
    for split, per_class in layout.items():
        split_dir = posixpath.join(root, split)
        if not per_class:
            raise DataError(f"{display_name(src, split_dir)}: split folder without class folders")
        for c, paths in per_class.items():
            if not paths:
                raise DataError(f"{display_name(src, posixpath.join(split_dir, c))}: empty class "
                                f"folder (no images with extensions {sorted(set(IMAGE_EXTENSIONS))})")
    return layout


def display_name(src: Path, relpath: str) -> str:
    return str(src / relpath) if src.is_dir() else f"{src}:{relpath}"

