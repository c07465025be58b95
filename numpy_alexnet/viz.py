"""Figures as PNG files: training curves, the paper's Figures 1, 3 and 4, a confusion matrix.

Matplotlib is imported inside each function, through its object-oriented
API (``Figure`` + the Agg canvas), so importing the package needs no
matplotlib and nothing here changes the global pyplot backend (a notebook
keeps its inline backend).  Every function writes ``path`` and returns the
``Figure`` (a notebook can display it).  ``pip install 'numpy-alexnet[plots]'``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .files import atomic_write


def _figure(figsize):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError("plots need matplotlib: pip install 'numpy-alexnet[plots]'") from err
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path, dpi=100):
    """``fig`` into ``path`` (its format from the suffix), whole or not at all."""
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, bbox_inches="tight"))
    return fig


def _hwc(imgs) -> np.ndarray:
    """Images (..., 3, H, W) or (..., H, W, 3) as float (..., H, W, 3) in [0, 1] for imshow."""
    a = np.asarray(imgs)
    if a.shape[-1] != 3 and a.shape[-3] == 3:
        a = np.moveaxis(a, -3, -1)                           # (..., C, H, W) -> (..., H, W, C)
    if a.dtype == np.uint8:
        return a.astype(np.float64) / 255.0
    a = a.astype(np.float64)
    lo, hi = a.min(), a.max()
    return (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)


# --------------------------------------------------------------------------- #
# Training curves
# --------------------------------------------------------------------------- #
def training_curves(history: list[dict], path, title: str = "training"):
    """Loss and error against epochs from a Trainer's history (metrics.json rows)."""
    fig = _figure((10, 4))
    ax1, ax2 = fig.subplots(1, 2)
    ep = [r["epoch"] for r in history]

    def series(key):
        pts = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        return ([p[0] for p in pts], [p[1] for p in pts]) if pts else None

    for key, label in (("train_loss", "training (running)"), ("val_loss", "validation")):
        s = series(key)
        if s:
            ax1.plot(*s, marker="o", ms=3, label=label)
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("cross-entropy loss")
    ax1.set_title(f"{title}: loss")
    ax1.legend()
    for key, label in (("train_error", "training top-1 (running)"), ("val_top1", "validation top-1"),
                       ("val_top5", "validation top-5")):
        s = series(key)
        if s:
            ax2.plot(*s, marker="o", ms=3, label=label)
    ax2.set_xlabel("epoch")
    ax2.set_ylabel("error rate")
    ax2.set_ylim(0, 1)
    ax2.set_title(f"{title}: error")
    ax2.legend()
    if len(ep) == 1:
        for ax in (ax1, ax2):
            ax.set_xlim(0.5, 1.5)
    return _save(fig, path)


# --------------------------------------------------------------------------- #
# Figure 1: ReLU versus tanh
# --------------------------------------------------------------------------- #
def relu_vs_tanh_plot(panels: list[dict], path, target: float = 0.25, suptitle: str | None = None,
                      reference: dict | None = None, notes=()):
    """The paper's Figure 1: training error against epochs, ReLU solid, tanh dashed.

    panels: one dict per input regime, {'title': str, 'runs': [{'activation':
    'relu'|'tanh', 'train_error': [errors], 'epochs': [their epochs] (default
    1, 2, ...)}, ...]}.
    reference: {'relu': [(epoch, error), ...], 'tanh': [...]}, drawn faint (the
    paper's curves).  A dotted horizontal line marks ``target``.  No text sits
    on the curves: one legend goes right of the panels, and ``notes`` (lines
    of text) in a box under them.  Sizes are in inches, laid out by hand.
    """
    import textwrap
    n = len(panels)
    # One panel (the quick form) gets the room two would share.
    panel_w, axes_w, axes_h, legend_w = (6.6, 5.7, 3.9, 3.3) if n == 1 else (5.0, 4.1, 3.4, 2.9)
    W = 0.7 + n * panel_w + legend_w
    lines = [textwrap.fill(line, int(W * 15), subsequent_indent="   ") for line in notes]
    notes_h = (0.16 * sum(t.count("\n") + 1 for t in lines) + 0.3) if lines else 0.0
    top = 0.9 if suptitle else 0.6                     # room for the titles above the axes
    H = top + axes_h + 0.75 + notes_h
    fig = _figure((W, H))
    styles = {"relu": dict(color="black", linestyle="-"), "tanh": dict(color="tab:blue", linestyle="--")}
    names = {"relu": "ReLU", "tanh": "tanh"}
    handles = {}
    for i, panel in enumerate(panels):
        ax = fig.add_axes([(0.7 + i * panel_w) / W, (notes_h + 0.75) / H, axes_w / W, axes_h / H])
        right = 0.0
        for run in panel["runs"]:
            act = run["activation"]
            err = run["train_error"]
            x = run.get("epochs") or list(range(1, len(err) + 1))
            right = max(right, x[-1] if len(x) else 0)
            line, = ax.plot(x, err, lw=1.5, alpha=0.9, **styles[act])
            handles.setdefault(f"{names[act]}, this run", line)
        for act, pts in (reference or {}).items():
            line, = ax.plot(*zip(*pts), lw=3.5, alpha=0.2, **styles[act])
            handles.setdefault(f"{names[act]}, the paper's Figure 1\n(read off it)", line)
        line = ax.axhline(target, color="gray", lw=1, linestyle=":")
        handles.setdefault(f"target {target:.0%}" + ("" if target == 0.25 else "\n(the paper's: 25%)"),
                           line)
        if reference:                       # enough of the paper's curves to compare with
            right = max(right, _first_below(reference.get("tanh", ()), target) or 0)
        ax.set_xlabel("epochs (passes over the training images)")
        ax.set_ylabel("training error rate (running)")
        ax.set_ylim(0, 0.9)
        ax.set_xlim(0, right * 1.05 if right else None)
        ax.set_title(panel.get("title", ""), fontsize=9)
    if handles:
        fig.legend(list(handles.values()), list(handles), fontsize=8, loc="upper left",
                   bbox_to_anchor=((0.7 + (n - 1) * panel_w + axes_w + 0.25) / W,
                                   (notes_h + 0.75 + axes_h) / H), frameon=False)
    if lines:
        fig.text(0.1 / W, (notes_h - 0.1) / H, "\n".join(lines), fontsize=8, va="top", ha="left",
                 bbox=dict(boxstyle="round", facecolor="#f4f4f4", edgecolor="#bbbbbb"))
    if suptitle:
        fig.suptitle(suptitle, fontsize=10, x=0.1 / W, ha="left", y=1 - 0.15 / H)
    return _save(fig, path, dpi=100)


def _first_below(points, level):
    """The first x where the piecewise-linear curve ``points`` [(x, y), ...] reaches ``level``."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y1 <= level <= y0:
            return x0 + (x1 - x0) * (y0 - level) / (y0 - y1) if y0 != y1 else x0
    return None


# --------------------------------------------------------------------------- #
# Figure 3: the conv1 kernels
# --------------------------------------------------------------------------- #
def kernel_grid(W, path, towers: int = 2, title: str = "conv1 kernels"):
    """The first layer's kernels as RGB tiles, one row per tower (the paper's Figure 3).

    W: (F, 3, K, K), e.g. AlexNet's conv1 (96, 3, 11, 11): two rows of 48,
    the top row the first tower's kernels (GPU 1), the bottom the second's.
    Each kernel is scaled to [0, 1] on its own (min to 0, max to 1).
    ``towers=1`` lays a single-tower net's kernels out in rows of up to 48.
    """
    W = np.asarray(W, dtype=np.float64)
    if W.ndim != 4 or W.shape[1] != 3:
        raise ValueError(f"kernel_grid: expected kernels (F, 3, K, K), got {W.shape}")
    F, _, K, K2 = W.shape
    if towers > 1 and F % towers == 0:
        rows, cols = towers, F // towers
    else:
        cols = min(F, 48)
        rows = -(-F // cols)
    lo = W.min(axis=(1, 2, 3), keepdims=True)
    hi = W.max(axis=(1, 2, 3), keepdims=True)
    tiles = (W - lo) / np.where(hi > lo, hi - lo, 1.0)            # (F, 3, K, K) in [0, 1]
    tiles = tiles.transpose(0, 2, 3, 1)                            # (F, 3, K, K) -> (F, K, K, 3)
    gap = 1
    canvas = np.ones((rows * (K + gap) + gap, cols * (K2 + gap) + gap, 3))
    for f in range(F):
        r, c = divmod(f, cols)
        y, x = gap + r * (K + gap), gap + c * (K2 + gap)
        canvas[y:y + K, x:x + K2] = tiles[f]
    fig = _figure((max(4.0, cols * 0.22), max(1.2, rows * 0.32 + 0.6)))
    ax = fig.subplots()
    ax.imshow(canvas, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([(K + gap) * r + gap + K / 2 for r in range(rows)])
    ax.set_yticklabels([f"tower {r + 1}" if rows == towers else f"row {r + 1}" for r in range(rows)])
    ax.set_xlabel(f"{F} kernels of {K}x{K2}x3, each scaled to its own range")
    ax.set_title(title)
    return _save(fig, path, dpi=120)


# --------------------------------------------------------------------------- #
# Figure 4: nearest neighbours in feature space
# --------------------------------------------------------------------------- #
def neighbour_grid(query_imgs, neighbour_imgs, path, title: str = "nearest training images (fc7)",
                   query_labels=None, neighbour_labels=None):
    """Each row: a query image, then its nearest training images (the paper's Figure 4).

    query_imgs: (Q, 3, H, W) or (Q, H, W, 3); neighbour_imgs: (Q, M, 3, H, W)
    or (Q, M, H, W, 3).  uint8 images are shown as they are; float images
    are scaled to [0, 1] over the whole set.  Optional label strings go under
    the tiles.
    """
    q = _hwc(query_imgs)
    nb = _hwc(neighbour_imgs)
    if nb.ndim != 5 or nb.shape[0] != q.shape[0]:
        raise ValueError(f"neighbour_grid: expected neighbours (Q, M, ...) for {q.shape[0]} queries, "
                         f"got {np.shape(neighbour_imgs)}")
    Q, M = nb.shape[:2]
    fig = _figure((1.3 * (M + 1), 1.4 * Q + 0.6))
    axes = np.atleast_2d(fig.subplots(Q, M + 1))
    for i in range(Q):
        for j in range(M + 1):
            ax = axes[i, j]
            ax.imshow(q[i] if j == 0 else nb[i, j - 1], interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            lab = (query_labels[i] if j == 0 and query_labels is not None else
                   neighbour_labels[i][j - 1] if j > 0 and neighbour_labels is not None else None)
            if lab is not None:
                ax.set_xlabel(str(lab), fontsize=7)
            if i == 0:
                ax.set_title("query" if j == 0 else f"neighbour {j}", fontsize=8)
    fig.suptitle(title)
    return _save(fig, path)


# --------------------------------------------------------------------------- #
# Confusion matrix
# --------------------------------------------------------------------------- #
def confusion_matrix_plot(cm, classes, path, title: str = "confusion matrix", normalize: bool = False):
    """cm[i, j]: how many images of true class i were predicted as class j."""
    cm = np.asarray(cm, dtype=np.float64)
    K = len(classes)
    if cm.shape != (K, K):
        raise ValueError(f"confusion_matrix_plot: expected a ({K}, {K}) matrix, got {cm.shape}")
    shown = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1) if normalize else cm
    fig = _figure((0.55 * K + 2.5, 0.55 * K + 1.8))
    ax = fig.subplots()
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xticklabels(classes, rotation=45, ha="right", fontsize=8)
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if K <= 20:
        top = shown.max() if shown.size else 1
        for i in range(K):
            for j in range(K):
                txt = f"{shown[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
                ax.text(j, i, txt, ha="center", va="center", fontsize=7,
                        color="white" if shown[i, j] > 0.6 * top else "black")
    return _save(fig, path)
