"""Data for AlexNet (section 4 of the paper): datasets, augmentation, batches, metrics.

Importing this package needs only NumPy; Pillow (image files) and tqdm
(progress bars) are imported when used: ``pip install 'numpy-alexnet[data]'``.

    from numpy_alexnet.data import load_dataset, TrainTransform, BatchIterator
    ds = load_dataset("../shared/data/cifar10-jpeg.tar.gz")        # uint8 (N, 3, 32, 32)
    st = ds.stats()                                                # mean image, RGB PCA
    tf = TrainTransform(st.mean_image, 24, st.eigvals, st.eigvecs)
    for x, y in BatchIterator(ds.train.images, ds.train.labels, 128, transform=tf):
        ...                                                        # x float32 (128, 3, 24, 24)

A folder too large for RAM (ImageNet-sized) streams from disk instead, the
batches built in worker processes (``stream.py``):

    folder = ImageFolder("/data/imagenet", resize=256)             # lists files only
    st = folder.stats()                                            # one streamed pass, cached
    tf = TrainTransform(st.mean_image, 227, st.eigvals, st.eigvecs)
    batches = StreamingBatchIterator(folder.train, folder.train.labels, 128, transform=tf,
                                     workers=4)                    # same batches as in RAM
"""
from .augment import (TEN_CROP_ORDER, EvalTransform, TrainTransform, average_ten_crop,
                      center_crop, crop, flip_horizontal, mean_image, pca_color,
                      pca_color_shift, pca_eigen, random_crop_flip, random_crop_params,
                      ten_crop, ten_crop_offsets)
from .arrays import DataError, Dataset, DatasetStats, Split
from .cache import default_cache_dir, source_fingerprint
from .datasets import dataset_info, load_arrays, load_dataset
from .decode import decode_image
from .loader import BatchIterator
from .stream import (ImageFolder, ImageFolderSplit, StreamingBatchIterator, batch_iterator,
                     streamed_stats)
from .metrics import softmax, topk_correct, topk_error, topk_errors
from .sources import CIFAR10_CLASSES, CIFAR10_MD5, CIFAR10_URL, download_cifar10

__all__ = [
    "DataError", "Dataset", "DatasetStats", "Split", "load_dataset", "load_arrays",
    "dataset_info", "decode_image", "default_cache_dir", "download_cifar10",
    "source_fingerprint", "CIFAR10_CLASSES", "CIFAR10_MD5", "CIFAR10_URL",
    "mean_image", "pca_eigen", "flip_horizontal", "random_crop_params", "crop",
    "random_crop_flip", "center_crop", "ten_crop", "ten_crop_offsets", "TEN_CROP_ORDER",
    "average_ten_crop", "pca_color", "pca_color_shift", "TrainTransform", "EvalTransform",
    "BatchIterator", "ImageFolder", "ImageFolderSplit", "StreamingBatchIterator",
    "batch_iterator", "streamed_stats", "softmax", "topk_correct", "topk_error", "topk_errors",
]
