"""A dataset held in memory: uint8 image arrays, int64 labels and the class names.

* :class:`Split`: one split's images (N, C=3, H, W) and labels (N,);
* :class:`Dataset`: the named splits (``train``, ``test``, maybe ``val``) of one source;
* :class:`DatasetStats`: what section 4 needs from the training set (mean image,
  RGB PCA), kept in a small ``.npz`` next to the cached arrays;
* :class:`DataError`: a data source that cannot be used as it is.

Conversion to float32 happens later, a batch at a time (``augment.py``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import atomic_write


class DataError(ValueError):
    """A data source that cannot be used as it is; the message names the file."""


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

    def save(self, path, info: dict) -> None:
        """The four arrays and ``info`` (JSON) into the .npz ``path``, whole or not at all."""
        arrays = {"mean_image": self.mean_image, "mean_pixel": self.mean_pixel,
                  "eigvals": self.eigvals, "eigvecs": self.eigvecs,
                  "info_json": np.array(json.dumps(info))}
        atomic_write(path, lambda f: np.savez(f, **arrays))

    @classmethod
    def load(cls, path) -> tuple["DatasetStats", dict]:
        """(stats, info) from a file written by :meth:`save`."""
        with np.load(path, allow_pickle=False) as z:
            stats = cls(z["mean_image"], z["mean_pixel"], z["eigvals"], z["eigvecs"])
            info = json.loads(str(z["info_json"]))
        return stats, info


def stats_path(cache_path: Path) -> Path:
    """Where the statistics of the cached arrays ``NAME-KEY.npz`` go: ``NAME-KEY.stats.npz``."""
    return cache_path.with_name(cache_path.stem + ".stats.npz")


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
            path = stats_path(self.cache_path) if self.cache_path else None
            if path is not None and path.exists():
                self._stats = DatasetStats.load(path)[0]
            else:
                self._stats = DatasetStats.from_images(self.train.images)
                if path is not None:
                    self._stats.save(path, self.info_counts())
        return self._stats

    def info_counts(self) -> dict:
        """Counts per split and class, image size: the JSON-able part of ``data info``."""
        first = next(iter(self.splits.values()))
        return {
            "source": self.source, "kind": self.kind, "classes": list(self.classes),
            "image_shape": [int(s) for s in first.images.shape[1:]],
            "splits": {name: [int(c) for c in s.class_counts()] for name, s in self.splits.items()},
        }
