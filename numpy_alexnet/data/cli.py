"""``numpy-alexnet data ...``: look at a dataset, fetch CIFAR-10.

    numpy-alexnet data info PATH [--resize 256] [--limit-per-class N] [--json]
    numpy-alexnet data download [DEST]

``add_commands(subparsers)`` adds the ``data`` command to the package's CLI; each
handler returns an exit code.
"""
from __future__ import annotations

import json
import sys
import time

from ..argtypes import integer


def add_commands(subparsers) -> None:
    data = subparsers.add_parser("data", help="datasets: counts, statistics, download",
                                 description="Datasets: counts, statistics, download.")
    sub = data.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    sub.required = True

    info = sub.add_parser(
        "info", help="counts per split and class, image size, mean pixel, PCA eigenvalues",
        description="Load (or read from the cache) a CIFAR-10 python release or an "
                    "image-folder tree and report what is in it.")
    info.add_argument("path", help="cifar-10-batches-py/, cifar-10-python.tar.gz, an image-folder "
                                   "tree split/class/image (dir, .tar, .tar.gz), or 'cifar10'")
    info.add_argument("--resize", type=integer(1), default=None,
                      help="short side to this size then a centre square crop (the paper: 256)")
    info.add_argument("--limit-per-class", type=integer(1), default=None,
                      help="keep the first N images (sorted names) of each class and split")
    info.add_argument("--cache-dir", default=None,
                      help="cache directory (default $NUMPY_ALEXNET_CACHE or ~/.cache/numpy-alexnet)")
    info.add_argument("--no-cache", action="store_true", help="decode again and do not store")
    info.add_argument("--json", action="store_true", help="print the report as JSON")
    info.set_defaults(func=_info)

    dl = sub.add_parser("download", help="download the official CIFAR-10 python release (needs a network)")
    dl.add_argument("dest", nargs="?", default=None,
                    help="directory to put cifar-10-python.tar.gz in (default: the cache directory)")
    dl.set_defaults(func=_download)


def _info(args) -> int:
    from .arrays import DataError
    from .datasets import dataset_info
    t0 = time.perf_counter()
    try:
        info = dataset_info(args.path, resize=args.resize, limit_per_class=args.limit_per_class,
                            cache_dir=args.cache_dir, use_cache=not args.no_cache)
    except (OSError, DataError, ImportError, ValueError) as err:     # OSError: a file's name
        print(f"numpy-alexnet data info: {err}", file=sys.stderr)
        return 1
    info["seconds"] = round(time.perf_counter() - t0, 3)
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        print(format_info(info))
    return 0


def format_info(info: dict) -> str:
    """The human-readable report of ``dataset_info``."""
    classes, splits = info["classes"], info["splits"]
    C, H, W = info["image_shape"]
    lines = [f"source       {info['source']} ({info['kind']})",
             f"cache        {info.get('cache_path')} ({'hit' if info.get('cached') else 'written'})",
             f"images       {H}x{W}, {C} channels, uint8",
             f"classes      {len(classes)}",
             ""]
    names = list(splits)
    width = max(len(c) for c in classes + ["total"])
    lines.append(f"{'class':<{width}}  " + "  ".join(f"{n:>8}" for n in names))
    for i, c in enumerate(classes):
        lines.append(f"{c:<{width}}  " + "  ".join(f"{splits[n][i]:>8,}" for n in names))
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{sum(splits[n]):>8,}" for n in names))
    if "mean_pixel" in info:
        r, g, b = info["mean_pixel"]
        lines += ["", f"mean pixel (train, 0-255)   R {r:.2f}  G {g:.2f}  B {b:.2f}",
                  "RGB PCA (train pixels, 0-255 scale; eigenvectors are columns):",
                  "  eigenvalues  " + "  ".join(f"{v:10.2f}" for v in info["pca_eigvals"])]
        for name, row in zip("RGB", info["pca_eigvecs"]):
            lines.append(f"  {name}            " + "  ".join(f"{v:10.4f}" for v in row))
    if "seconds" in info:
        lines += ["", f"answered in {info['seconds']:.2f} s"]
    return "\n".join(lines)


def _download(args) -> int:
    from .arrays import DataError
    from .sources import download_cifar10
    try:
        path = download_cifar10(args.dest)
    except (OSError, DataError) as err:             # OSError includes ConnectionError
        print(f"numpy-alexnet data download: {err}", file=sys.stderr)
        return 1
    print(path)
    return 0
