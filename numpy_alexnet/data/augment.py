"""The paper's data augmentation and test-time cropping (section 4), on batches.

Axis legend: N batch, C channels (3, RGB), H height, W width, K classes.
All functions take a whole batch (N, C, H, W) and are vectorized over it: the
crops are one fancy-indexing gather from a strided window view, the
reflection a reversed slice, the colour shift one broadcast add.

Section 4, step by step:

1. ``mean_image``: the per-pixel mean of the training set, (C, H, W), is
   subtracted from every image ("subtracting the mean activity over the
   training set from each pixel").
2. ``random_crop_flip``: a random S x S patch (S = 224/227 of 256; 24 of 32
   at CIFAR scale, as cuda-convnet did) and, with probability 1/2, its
   horizontal reflection.
3. ``pca_color``: add ``[p1 p2 p3] [a1 l1, a2 l2, a3 l3]^T`` to every pixel of
   an image, where p_i, l_i are the eigenvectors and eigenvalues of the 3x3
   covariance of the training set's RGB pixels (``pca_eigen``) and
   a_i ~ N(0, 0.1) is drawn once per image each time the image is used.
4. ``ten_crop`` / ``average_ten_crop``: at test time the four corner patches,
   the centre patch and their reflections; the network's softmax outputs on
   the ten are averaged.

:class:`TrainTransform` and :class:`EvalTransform` chain these for a batch of
uint8 images and return float32, ready for the network.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .metrics import softmax

# How many pixels (N*H*W) to turn into float64 at once in the statistics:
# small enough (1.5 MB a channel) to stay in the CPU cache.
_CHUNK_PIXELS = 1 << 16


def _check_batch(x, name="x"):
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"{name}: expected a batch (N, 3, H, W), got shape {x.shape}")


def _chunks(n: int, per_image: int):
    """Ranges of images holding about _CHUNK_PIXELS pixels each."""
    step = max(1, _CHUNK_PIXELS // per_image)
    return [(s, min(s + step, n)) for s in range(0, n, step)]


# --------------------------------------------------------------------------- #
# Training-set statistics
# --------------------------------------------------------------------------- #
def mean_image(x: np.ndarray) -> np.ndarray:
    """Per-pixel mean over the batch axis: x (N, C, H, W) -> float32 (C, H, W).

    Accumulated in float64 a chunk at a time, so no float copy of the whole
    set is ever made (50,000 x 3 x 256 x 256 would be 39 GB in float32).
    """
    _check_batch(x)
    N, C, H, W = x.shape
    total = np.zeros((C, H, W), dtype=np.float64)
    for s, e in _chunks(N, H * W):
        total += x[s:e].sum(axis=0, dtype=np.float64)
    return (total / N).astype(np.float32)


def pca_eigen(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decomposition of the 3x3 covariance of all RGB pixels of x (N, 3, H, W).

    Returns (eigvals (3,), eigvecs (3, 3)): eigenvalues largest first, on the
    scale of x (0-255 for uint8 images, so variances in units of levels^2), and
    unit eigenvectors as the *columns* of eigvecs (eigvecs[:, i] goes with
    eigvals[i]), each signed so its entries sum to a positive number.

    The covariance is E[p p^T] - E[p] E[p]^T with p = (R, G, B), accumulated in
    float64 from per-chunk sums and outer products.
    """
    s1, s2 = rgb_moments(x)
    return pca_from_moments(s1, s2, x.shape[0] * x.shape[2] * x.shape[3])


def rgb_moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(sum of p (3,), sum of p p^T (3, 3)) over the RGB pixels p of x (N, 3, H, W), float64.

    Sums of parts add up: a dataset read a chunk at a time (``data.stream``)
    adds its chunks' moments and calls :func:`pca_from_moments` once.
    """
    _check_batch(x)
    N, C, H, W = x.shape
    s1 = np.zeros(C, dtype=np.float64)            # sum of p
    s2 = np.zeros((C, C), dtype=np.float64)       # sum of p p^T
    for s, e in _chunks(N, H * W):
        p = x[s:e].transpose(1, 0, 2, 3)                      # (n, C, H, W) -> (C, n, H, W)
        p = p.reshape(C, -1).astype(np.float64)               # (C, n*H*W): one column a pixel
        s1 += p.sum(axis=1)
        s2 += p @ p.T
    return s1, s2


def pca_from_moments(s1: np.ndarray, s2: np.ndarray, count: int):
    """:func:`pca_eigen`'s (eigvals, eigvecs) from the moments of ``count`` pixels."""
    mu = s1 / count
    cov = s2 / count - np.outer(mu, mu)
    eigvals, eigvecs = np.linalg.eigh(cov)         # ascending
    order = eigvals.argsort()[::-1]
    eigvals, eigvecs = eigvals[order], eigvecs[:, order]
    eigvecs = eigvecs * np.where(eigvecs.sum(axis=0) < 0, -1.0, 1.0)   # a fixed sign
    return np.maximum(eigvals, 0.0), eigvecs


# --------------------------------------------------------------------------- #
# Crops and reflections
# --------------------------------------------------------------------------- #
def flip_horizontal(x: np.ndarray) -> np.ndarray:
    """Mirror left-right: x[..., ::-1] (a view)."""
    return x[..., ::-1]


def random_crop_params(n: int, height: int, width: int, size: int, rng,
                       flip: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Offsets top (n,), left (n,) uniform in [0, height-size] and [0, width-size]
    (both ends included), and a reflection coin flip (n,) bool (all False if not flip)."""
    if size > height or size > width:
        raise ValueError(f"crop size {size} larger than the image {height}x{width} (HxW)")
    top = rng.integers(0, height - size + 1, size=n)
    left = rng.integers(0, width - size + 1, size=n)
    mirror = rng.random(n) < 0.5 if flip else np.zeros(n, dtype=bool)
    return top, left, mirror


def crop(x: np.ndarray, top, left, size: int, flip=None) -> np.ndarray:
    """Patch size x size at (top[i], left[i]) of image i, reflected where flip[i].

    x: (N, C, H, W), one offset pair per image; or (C, H, W), one image (such
    as the mean image) cropped at each of the len(top) offsets.
    Returns a new array (len(top), C, size, size) of x's dtype.
    """
    top, left = np.asarray(top, dtype=np.intp), np.asarray(left, dtype=np.intp)
    x4 = x if x.ndim == 4 else x[None]                        # (C, H, W) -> (1, C, H, W)
    H, W = x4.shape[2], x4.shape[3]
    if top.size and (top.min() < 0 or top.max() > H - size
                     or left.min() < 0 or left.max() > W - size):
        raise ValueError(f"crop offsets out of bounds for {size}x{size} patches of "
                         f"{H}x{W} (HxW) images")
    # Every size x size window of every image, as a view (no copy):
    # (N, C, H-size+1, W-size+1, size, size)
    windows = sliding_window_view(x4, (size, size), axis=(2, 3))
    img = np.arange(len(top)) if x.ndim == 4 else np.zeros(len(top), dtype=np.intp)
    # One window per image; the advanced indices are split by the C slice, so
    # their axis comes first: (N, C, size, size).
    out = windows[img, :, top, left]
    if flip is not None:
        flip = np.asarray(flip, dtype=bool)
        out[flip] = out[flip, :, :, ::-1]                    # reflect those images' columns
    return out


def random_crop_flip(x: np.ndarray, size: int, rng, flip: bool = True) -> np.ndarray:
    """Uniform random size x size crops of x (N, C, H, W), each reflected with
    probability 1/2: returns (N, C, size, size) of x's dtype."""
    _check_batch(x)
    N, C, H, W = x.shape
    top, left, mirror = random_crop_params(N, H, W, size, rng, flip)
    return crop(x, top, left, size, mirror)


def center_crop(x: np.ndarray, size: int) -> np.ndarray:
    """The central size x size patch of x (N, C, H, W) or (C, H, W) (a view)."""
    H, W = x.shape[-2], x.shape[-1]
    if size > H or size > W:
        raise ValueError(f"crop size {size} larger than the image {H}x{W} (HxW)")
    top, left = (H - size) // 2, (W - size) // 2
    return x[..., top:top + size, left:left + size]


TEN_CROP_ORDER = ("top-left", "top-right", "bottom-left", "bottom-right", "centre",
                  "top-left reflected", "top-right reflected", "bottom-left reflected",
                  "bottom-right reflected", "centre reflected")


def ten_crop_offsets(height: int, width: int, size: int) -> list[tuple[int, int]]:
    """(top, left) of the five patches in TEN_CROP_ORDER: four corners, then the centre."""
    if size > height or size > width:
        raise ValueError(f"crop size {size} larger than the image {height}x{width} (HxW)")
    b, r = height - size, width - size
    return [(0, 0), (0, r), (b, 0), (b, r), (b // 2, r // 2)]


def ten_crop(x: np.ndarray, size: int) -> np.ndarray:
    """The paper's ten test patches of x (N, C, H, W): (10, N, C, size, size).

    Order (TEN_CROP_ORDER): top-left, top-right, bottom-left, bottom-right,
    centre, then the same five patches reflected left-right.  Reshape to
    (10*N, C, size, size) to run them as one batch; ``average_ten_crop``
    undoes that.
    """
    _check_batch(x)
    H, W = x.shape[2], x.shape[3]
    five = np.stack([x[:, :, t:t + size, l:l + size]
                     for t, l in ten_crop_offsets(H, W, size)])   # (5, N, C, size, size)
    return np.concatenate([five, five[..., ::-1]])               # (10, N, C, size, size)


def average_ten_crop(scores: np.ndarray, from_logits: bool = False) -> np.ndarray:
    """Average the outputs on the ten crops: (10, N, K) or (10*N, K) -> (N, K).

    scores: softmax probabilities (the paper averages these), or logits with
    from_logits=True (a softmax is applied first).  Rows of a (10*N, K) input
    are crop-major, as ``ten_crop(x).reshape(10 * N, ...)`` orders them.
    """
    scores = np.asarray(scores)
    if scores.ndim == 2:
        if scores.shape[0] % 10:
            raise ValueError(f"expected 10*N rows, got {scores.shape[0]}")
        scores = scores.reshape(10, -1, scores.shape[1])     # (10*N, K) -> (10, N, K)
    if scores.ndim != 3 or scores.shape[0] != 10:
        raise ValueError(f"expected scores (10, N, K) or (10*N, K), got {scores.shape}")
    if from_logits:
        scores = softmax(scores)
    return scores.mean(axis=0)


# --------------------------------------------------------------------------- #
# Colour
# --------------------------------------------------------------------------- #
def pca_color_shift(n: int, eigvals, eigvecs, rng, std: float = 0.1,
                    pixel_scale: float = 255.0) -> np.ndarray:
    """The RGB offset (n, 3) of section 4 for n images: p @ (a * l), a ~ N(0, std).

    The paper does not say on what scale pixels were when l was computed, and
    the formula is not scale-free (l is a variance).  Read literally on the
    0-255 scale, CIFAR-10's l1 ~ 11,000 would move colours by ~1,000 levels
    at a = 0.1.  We follow the
    common reading (fb.resnet.torch, torchvision's references: eigenvalue
    0.2175 for ImageNet) of pixels on the 0-1 scale: with eigvals on the scale
    of the images (0-255, from ``pca_eigen``) the offset in 0-255 units is
    pixel_scale * p @ (a * l / pixel_scale**2).  pixel_scale=1 gives the
    literal formula.
    """
    eigvals, eigvecs = np.asarray(eigvals, np.float64), np.asarray(eigvecs, np.float64)
    alpha = rng.normal(0.0, std, size=(n, 3))                      # (N, 3): a_i per image
    return (alpha * (eigvals / pixel_scale)) @ eigvecs.T           # (N, 3) @ (3, 3) -> (N, 3)


def pca_color(x: np.ndarray, eigvals, eigvecs, rng, std: float = 0.1,
              pixel_scale: float = 255.0) -> np.ndarray:
    """x (N, 3, H, W) float plus one RGB offset per image (see pca_color_shift)."""
    _check_batch(x)
    shift = pca_color_shift(x.shape[0], eigvals, eigvecs, rng, std, pixel_scale)
    return x + shift.astype(x.dtype)[:, :, None, None]            # (N, 3) -> (N, 3, 1, 1)


# --------------------------------------------------------------------------- #
# The whole recipe on a batch
# --------------------------------------------------------------------------- #
class TrainTransform:
    """Section 4 for a training batch: uint8 (N, 3, H, W) -> float32 (N, 3, S, S).

    Random S x S crop and reflection, the same crop of the mean image
    subtracted (identical to cropping the mean-subtracted image), then the PCA
    colour shift.  Pixels stay on the 0-255 scale minus the mean, as in the
    paper and cuda-convnet; ``scale`` multiplies the result if another input
    scale is wanted (a deviation; 1.0 by default).

    mean: (3, H, W) mean image (or None); eigvals, eigvecs: from ``pca_eigen``
    (or None for no colour augmentation); crop_size S: None keeps H x W (the
    reflection still applies).
    """

    def __init__(self, mean=None, crop_size: int | None = None, eigvals=None, eigvecs=None,
                 pca_std: float = 0.1, flip: bool = True, scale: float = 1.0,
                 pixel_scale: float = 255.0):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.crop_size, self.flip, self.scale = crop_size, flip, float(scale)
        self.eigvals, self.eigvecs = eigvals, eigvecs
        self.pca_std, self.pixel_scale = pca_std, pixel_scale

    def __call__(self, x: np.ndarray, rng) -> np.ndarray:
        _check_batch(x)
        N, C, H, W = x.shape
        S = self.crop_size or min(H, W)
        top, left, mirror = random_crop_params(N, H, W, S, rng, self.flip)
        out = crop(x, top, left, S, mirror).astype(np.float32)      # (N, C, S, S)
        if self.mean is not None:
            out -= crop(self.mean, top, left, S, mirror)            # (N, C, S, S)
        if self.eigvals is not None and self.pca_std:
            shift = pca_color_shift(N, self.eigvals, self.eigvecs, rng, self.pca_std,
                                    self.pixel_scale)
            out += shift.astype(np.float32)[:, :, None, None]       # (N, 3) -> (N, 3, 1, 1)
        if self.scale != 1.0:
            out *= self.scale
        return out


class EvalTransform:
    """Test-time input: uint8 (N, 3, H, W) minus the mean image, as float32.

    mode 'center': the central S x S patch, (N, 3, S, S).
    mode 'ten': the paper's ten patches, (10, N, 3, S, S) (see ``ten_crop``).
    mode 'full' (or crop_size None): the whole image, (N, 3, H, W).
    The ``rng`` argument is accepted (and ignored) so it fits BatchIterator.
    """

    def __init__(self, mean=None, crop_size: int | None = None, mode: str = "center",
                 scale: float = 1.0):
        if mode not in ("center", "ten", "full"):
            raise ValueError(f"mode: expected 'center', 'ten' or 'full', got {mode!r}")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float32)
        self.crop_size, self.mode, self.scale = crop_size, mode, float(scale)

    def __call__(self, x: np.ndarray, rng=None) -> np.ndarray:
        _check_batch(x)
        x = x.astype(np.float32)
        if self.mean is not None:
            x -= self.mean                                   # (N, 3, H, W) - (3, H, W)
        if self.crop_size is not None and self.mode == "center":
            x = np.ascontiguousarray(center_crop(x, self.crop_size))
        elif self.crop_size is not None and self.mode == "ten":
            x = ten_crop(x, self.crop_size)                  # (10, N, 3, S, S)
        if self.scale != 1.0:
            x *= self.scale
        return x
