"""Image files to uint8 arrays: one image, a batch of them, or a whole set in worker processes.

* :func:`decode_image`: a file (bytes or a path) as uint8 (H, W, C=3) RGB, other
  modes converted, optionally rescaled as in section 4 of the paper: "rescaled
  such that the shorter side was of length 256, and then [we] cropped out the
  central 256x256 patch" (``resize=256``; the filter, bilinear, is not given in
  the paper);
* :func:`decode_images`: images that must share one size, as (n, C, H, W);
* :func:`decode_all`: a whole set, in a pool of forked processes when it pays.

The pool's workers ignore SIGINT and SIGHUP (:func:`ignore_group_signals`):
a Ctrl-C or a hang-up reaches the whole process group, and the main process
alone decides what it means (it stops the pool, which ends its workers with
SIGTERM, quietly).  This is the one place with a loop over images:
unavoidable for JPEG.
"""
from __future__ import annotations

import io
import os
import posixpath
import signal
import threading

import numpy as np

from ..progress import progress_bar
from .arrays import DataError

IMAGE_EXTENSIONS = {
    ".jpg": "JPEG", ".jpeg": "JPEG", ".jfif": "JPEG", ".png": "PNG", ".bmp": "BMP",
    ".gif": "GIF", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP",
    ".ppm": "PPM", ".pgm": "PPM", ".pbm": "PPM",
}

_INSTALL_HINT = "pip install 'numpy-alexnet[data]'"


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


def decode_all(sources, names, resize, progress, workers) -> np.ndarray:
    """All images as one uint8 (N, C=3, H, W) array, in a process pool when it pays.

    workers: processes (None: the CPU count); the pool is used for 2,000
    images or more, forked, and only while this process runs no other thread.
    """
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
    bar = progress_bar(progress, total=n, desc="decoding images", unit=" img")
    try:
        if use_pool:
            import multiprocessing
            with multiprocessing.get_context("fork").Pool(
                    workers, initializer=ignore_group_signals) as pool:
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


def ignore_group_signals():
    """In a pool's worker: SIGINT and SIGHUP ignored, SIGTERM to its default action.

    A Ctrl-C or a hang-up goes to the whole process group; the main process
    handles it and stops the pool.  SIGTERM ends the worker at once and
    without a traceback, so that ``Pool.terminate`` (which sends it) works
    even where a forked worker inherited the main process's own handler.
    """
    for name, action in (("SIGINT", signal.SIG_IGN), ("SIGHUP", signal.SIG_IGN),
                         ("SIGTERM", signal.SIG_DFL)):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), action)


def _mp_methods():
    import multiprocessing
    return multiprocessing.get_all_start_methods()
