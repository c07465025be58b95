"""Data pipeline: loading, cache, bad files, CLI.  Fixtures are made in tmp_path.

Augmentation, loader and metrics live in test_data_augment.py.
"""
from __future__ import annotations

import argparse
import io
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from numpy_alexnet.data import (CIFAR10_CLASSES, CIFAR10_MD5, DataError, dataset_info,
                                default_cache_dir, download_cifar10, load_arrays, load_dataset,
                                source_fingerprint)
from numpy_alexnet.data import datasets as D
from numpy_alexnet.data.arrays import stats_path
from numpy_alexnet.data.cache import cache_path, file_digest

Image = pytest.importorskip("PIL.Image")

H, W = 5, 7                   # H != W, so a swapped axis shows


# --------------------------------------------------------------------------- #
# Fixture builders
# --------------------------------------------------------------------------- #
def cifar_batch_bytes(images_nchw: np.ndarray, labels, name: bytes) -> bytes:
    """A batch in the official format: a Python-2 style dict with bytes keys,
    'data' (N, 3072) uint8 rows of R, G, B planes, 'labels' a list of ints."""
    d = {b"batch_label": name, b"labels": [int(v) for v in labels],
         b"data": images_nchw.reshape(len(images_nchw), -1),     # (N, C, H, W) -> (N, 3072)
         b"filenames": [b"img_%d.png" % i for i in range(len(labels))]}
    return pickle.dumps(d, protocol=2)


def make_cifar(root: Path, rng) -> tuple[Path, dict]:
    """cifar-10-batches-py/ with 5 train batches of 3 images and a test batch of 4."""
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    truth = {"train_x": [], "train_y": [], "test_x": None, "test_y": None}
    for b in range(1, 6):
        x = rng.integers(0, 256, size=(3, 3, 32, 32), dtype=np.uint8)
        y = rng.integers(0, 10, size=3)
        (d / f"data_batch_{b}").write_bytes(cifar_batch_bytes(x, y, b"training batch %d" % b))
        truth["train_x"].append(x)
        truth["train_y"].append(y)
    x = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    y = np.array([3, 1, 4, 1])
    (d / "test_batch").write_bytes(cifar_batch_bytes(x, y, b"testing batch 1"))
    truth.update(test_x=x, test_y=y)
    names = [n.encode() for n in CIFAR10_CLASSES]
    (d / "batches.meta").write_bytes(pickle.dumps(
        {b"label_names": names, b"num_cases_per_batch": 3, b"num_vis": 3072}, protocol=2))
    truth["train_x"] = np.concatenate(truth["train_x"])
    truth["train_y"] = np.concatenate(truth["train_y"])
    return d, truth


def tar_of(src_dir: Path, out: Path, arcname: str | None = None) -> Path:
    mode = "w:gz" if out.name.endswith(".gz") else "w"
    with tarfile.open(out, mode) as tf:
        tf.add(src_dir, arcname=arcname or src_dir.name)
    return out


def save(img, path: Path, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kw)
    return path


def rgb(rng, h=H, w=W):
    return rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)


def make_folder(root: Path, rng) -> dict:
    """root/{train,test}/{ant,cat,dog}/NN.png: lossless PNGs of H x W.

    train: ant 2, cat 3, dog 1 images; test: ant 1, cat 1, dog 1.
    Returns {relpath: (H, W, 3) pixels}.
    """
    counts = {"train": {"dog": 1, "cat": 3, "ant": 2}, "test": {"ant": 1, "cat": 1, "dog": 1}}
    pixels = {}
    for split, per_class in counts.items():
        for cls, n in per_class.items():
            for i in range(n):
                a = rgb(rng)
                rel = f"{split}/{cls}/{i:02d}.png"
                save(Image.fromarray(a), root / rel)
                pixels[rel] = a
    return pixels


@pytest.fixture
def cache(tmp_path):
    return tmp_path / "cache"


# --------------------------------------------------------------------------- #
# CIFAR-10 python release
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("form", ["dir", "tar.gz"])
def test_cifar_python_loads_both_forms(tmp_path, rng, cache, form):
    d, truth = make_cifar(tmp_path / "src", rng)
    path = d if form == "dir" else tar_of(d, tmp_path / "cifar-10-python.tar.gz")
    ds = load_dataset(path, cache_dir=cache, progress=False)
    assert ds.kind == "cifar10-python"
    assert ds.classes == CIFAR10_CLASSES
    assert ds.train.images.shape == (15, 3, 32, 32) and ds.train.images.dtype == np.uint8
    np.testing.assert_array_equal(ds.train.images, truth["train_x"])
    np.testing.assert_array_equal(ds.train.labels, truth["train_y"])
    np.testing.assert_array_equal(ds.test.labels, [3, 1, 4, 1])
    assert ds.test.labels.dtype == np.int64
    # "load to (N, 3, H, W) float32 with a known image's pixels intact"
    x, y, classes = load_arrays(path, "test", cache_dir=cache, progress=False)
    assert x.dtype == np.float32 and x.shape == (4, 3, 32, 32)
    # The first row of a batch holds R (1024), G, B planes of image 0, row-major.
    row = truth["test_x"][1].reshape(-1)
    assert x[1, 0, 0, 0] == row[0] and x[1, 1, 0, 0] == row[1024] and x[1, 2, 31, 31] == row[3071]
    assert x[1, 0, 2, 5] == row[2 * 32 + 5]


def test_cifar_parent_dir_is_found(tmp_path, rng, cache):
    d, truth = make_cifar(tmp_path / "src", rng)
    ds = load_dataset(d.parent, cache_dir=cache, progress=False)   # the folder holding it
    np.testing.assert_array_equal(ds.test.images, truth["test_x"])


def test_cifar_missing_batch_is_named(tmp_path, rng, cache):
    d, _ = make_cifar(tmp_path / "src", rng)
    (d / "test_batch").unlink()
    with pytest.raises(DataError, match="test_batch"):
        load_dataset(d, cache_dir=cache, progress=False)


def test_cifar_pickle_that_runs_code_is_refused(tmp_path, rng, cache):
    d, _ = make_cifar(tmp_path / "src", rng)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))
    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": Evil()}, protocol=2))
    with pytest.raises(DataError, match="data_batch_3.*refusing"):
        load_dataset(d, cache_dir=cache, progress=False)


def test_cifar10_by_name_missing_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_dataset("cifar10", cache_dir=tmp_path / "nowhere", progress=False)
    msg = str(err.value)
    assert str(tmp_path / "nowhere" / "cifar-10-python.tar.gz") in msg
    assert "numpy-alexnet data download" in msg and CIFAR10_MD5 in msg


def test_cifar10_by_name_found_in_cache_dir(tmp_path, rng, cache):
    d, truth = make_cifar(tmp_path / "src", rng)
    cache.mkdir()
    tar_of(d, cache / "cifar-10-python.tar.gz")
    ds = load_dataset("cifar10", cache_dir=cache, progress=False)
    np.testing.assert_array_equal(ds.train.labels, truth["train_y"])


def test_download_md5_mismatch_is_not_kept(tmp_path):
    """The download path, offline: a file:// URL with the wrong checksum."""
    fake = tmp_path / "fake.tar.gz"
    fake.write_bytes(b"not cifar")
    with pytest.raises(DataError, match="md5"):
        download_cifar10(tmp_path / "dest", url=fake.as_uri(), progress=False)
    assert not (tmp_path / "dest" / "cifar-10-python.tar.gz").exists()
    good = download_cifar10(tmp_path / "dest", url=fake.as_uri(),
                              md5=file_digest(fake, "md5"), progress=False)
    assert good.read_bytes() == b"not cifar"
    assert [p.name for p in (tmp_path / "dest").iterdir()] == ["cifar-10-python.tar.gz"]


# --------------------------------------------------------------------------- #
# Image folders
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("form", ["dir", "tar", "tar.gz"])
def test_image_folder_loads_all_forms(tmp_path, rng, cache, form):
    root = tmp_path / "tree"
    pixels = make_folder(root, rng)
    if form == "dir":
        path = root
    else:   # packed under one enclosing folder, as the shared archive is
        path = tar_of(root, tmp_path / f"tree.{form}", arcname="cifar-mini")
    ds = load_dataset(path, cache_dir=cache, progress=False)
    assert ds.kind == "image-folder"
    assert ds.classes == ("ant", "cat", "dog")                    # sorted folder names
    assert list(ds.splits) == ["train", "test"]
    tr = ds.train
    assert tr.images.shape == (6, 3, H, W) and tr.images.dtype == np.uint8
    np.testing.assert_array_equal(tr.labels, [0, 0, 1, 1, 1, 2])
    np.testing.assert_array_equal(ds.test.labels, [0, 1, 2])
    np.testing.assert_array_equal(tr.class_counts(), [2, 3, 1])
    # Images are stored in sorted order: train/cat/01.png is row 3.
    np.testing.assert_array_equal(tr.images[3], pixels["train/cat/01.png"].transpose(2, 0, 1))
    x, y, classes = load_arrays(path, "train", cache_dir=cache, progress=False)
    assert x.dtype == np.float32 and x.shape == (6, 3, H, W)
    np.testing.assert_array_equal(x[5], pixels["train/dog/00.png"].transpose(2, 0, 1))


def test_jpeg_and_png_named_jpg_load(tmp_path, rng, cache):
    root = tmp_path / "tree"
    smooth = np.tile(np.linspace(40, 200, W, dtype=np.uint8)[None, :, None], (H, 1, 3))
    save(Image.fromarray(smooth), root / "train/a/0.jpg", quality=95)
    save(Image.fromarray(smooth), root / "train/a/1.jpg", format="PNG")      # wrong extension
    ds = load_dataset(root, cache_dir=cache, progress=False)
    assert np.abs(ds.train.images[0].astype(int) - smooth.transpose(2, 0, 1)).max() <= 8
    np.testing.assert_array_equal(ds.train.images[1], smooth.transpose(2, 0, 1))


def test_limit_per_class_takes_first_sorted(tmp_path, rng, cache):
    root = tmp_path / "tree"
    pixels = make_folder(root, rng)
    ds = load_dataset(root, limit_per_class=2, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(ds.train.class_counts(), [2, 2, 1])
    np.testing.assert_array_equal(ds.train.images[2], pixels["train/cat/00.png"].transpose(2, 0, 1))
    np.testing.assert_array_equal(ds.train.images[3], pixels["train/cat/01.png"].transpose(2, 0, 1))


def test_resize_short_side_then_centre_crop(tmp_path, rng, cache):
    root = tmp_path / "tree"
    tall = rgb(rng, 30, 12)                         # H=30, W=12: short side is W
    save(Image.fromarray(tall), root / "train/a/tall.png")
    save(Image.fromarray(rgb(rng, 9, 20)), root / "train/b/wide.png")
    ds = load_dataset(root, resize=8, cache_dir=cache, progress=False)
    assert ds.train.images.shape == (2, 3, 8, 8)
    # Independent recomputation: 12x30 -> 8x20 (W x H), rows 6..13 in the middle.
    ref = np.asarray(Image.fromarray(tall).resize((8, 20), Image.BILINEAR))[6:14]
    np.testing.assert_array_equal(ds.train.images[0], ref.transpose(2, 0, 1))


def test_images_of_different_sizes_need_resize(tmp_path, rng, cache):
    root = tmp_path / "tree"
    save(Image.fromarray(rgb(rng)), root / "train/a/0.png")
    save(Image.fromarray(rgb(rng, H + 1, W)), root / "train/a/1_odd.png")
    with pytest.raises(DataError, match=r"1_odd\.png.*resize=256"):
        load_dataset(root, cache_dir=cache, progress=False)


# --------------------------------------------------------------------------- #
# Bad data
# --------------------------------------------------------------------------- #
def test_missing_path_is_named(tmp_path):
    missing = tmp_path / "no" / "such.tar.gz"
    with pytest.raises(FileNotFoundError, match="such.tar.gz.*expected"):
        load_dataset(missing)


@pytest.mark.parametrize("form", ["dir", "tar.gz"])
def test_corrupt_image_is_named(tmp_path, rng, cache, form):
    root = tmp_path / "tree"
    make_folder(root, rng)
    (root / "train/cat/99_corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg")
    path = root if form == "dir" else tar_of(root, tmp_path / "t.tar.gz")
    with pytest.raises(DataError, match=r"train/cat/99_corrupt\.jpg.*cannot decode"):
        load_dataset(path, cache_dir=cache, progress=False)


def test_truncated_jpeg_is_named(tmp_path, rng, cache):
    root = tmp_path / "tree"
    buf = io.BytesIO()
    Image.fromarray(rgb(rng, 64, 64)).save(buf, format="JPEG", quality=90)
    save(Image.fromarray(rgb(rng, 64, 64)), root / "train/a/0.jpg")
    (root / "train/a/1_cut.jpg").write_bytes(buf.getvalue()[:len(buf.getvalue()) // 2])
    with pytest.raises(DataError, match=r"1_cut\.jpg.*truncated"):
        load_dataset(root, cache_dir=cache, progress=False)


@pytest.mark.parametrize("form", ["dir", "tar"])
def test_empty_class_folder_is_named(tmp_path, rng, cache, form):
    root = tmp_path / "tree"
    make_folder(root, rng)
    (root / "test" / "emu").mkdir()
    path = root if form == "dir" else tar_of(root, tmp_path / "t.tar")
    with pytest.raises(DataError, match=r"test/emu.*empty class folder"):
        load_dataset(path, cache_dir=cache, progress=False)


def test_tree_without_splits_is_explained(tmp_path, rng, cache):
    root = tmp_path / "tree"
    save(Image.fromarray(rgb(rng)), root / "cat/0.png")
    save(Image.fromarray(rgb(rng)), root / "dog/0.png")
    with pytest.raises(DataError, match="split/class/image"):
        load_dataset(root, cache_dir=cache, progress=False)


def test_image_outside_class_folder_is_named(tmp_path, rng, cache):
    root = tmp_path / "tree"
    make_folder(root, rng)
    save(Image.fromarray(rgb(rng)), root / "train/loose.png")
    with pytest.raises(DataError, match="loose.png.*outside a class folder"):
        load_dataset(root, cache_dir=cache, progress=False)


def test_other_modes_become_rgb(tmp_path, rng, cache):
    """Grayscale, gray+alpha, palette, RGBA and CMYK are converted to RGB."""
    root = tmp_path / "tree"
    a = rgb(rng)
    gray = a[..., 0]
    save(Image.fromarray(gray, "L"), root / "train/a/0_L.png")
    save(Image.fromarray(np.dstack([gray, a[..., 1]]), "LA"), root / "train/a/1_LA.png")
    pal = Image.fromarray(a).quantize(colors=16)                     # mode P
    save(pal, root / "train/a/2_P.png")
    save(Image.fromarray(np.dstack([a, a[..., :1]]), "RGBA"), root / "train/a/3_RGBA.png")
    cmy = 255 - a
    cmyk = Image.fromarray(np.dstack([cmy, np.zeros_like(gray)]), "CMYK")   # K = 0
    save(cmyk, root / "train/a/4_CMYK.tif")
    save(Image.fromarray(gray.astype(np.uint16) * 257), root / "train/a/5_I16.png")
    x = load_dataset(root, cache_dir=cache, progress=False).train.images   # (6, 3, H, W)
    g3 = np.broadcast_to(gray, (3, H, W))
    np.testing.assert_array_equal(x[0], g3)
    np.testing.assert_array_equal(x[1], g3)                          # alpha dropped
    np.testing.assert_array_equal(x[2], np.asarray(pal.convert("RGB")).transpose(2, 0, 1))
    np.testing.assert_array_equal(x[3], a.transpose(2, 0, 1))        # alpha dropped
    np.testing.assert_array_equal(x[4], a.transpose(2, 0, 1))        # R = 255 - C with K = 0
    np.testing.assert_array_equal(x[5], g3)                          # 16-bit: high byte


# --------------------------------------------------------------------------- #
# Cache
# --------------------------------------------------------------------------- #
def test_second_load_comes_from_cache(tmp_path, rng, cache, monkeypatch):
    root = tmp_path / "tree"
    make_folder(root, rng)
    tgz = tar_of(root, tmp_path / "t.tar.gz")
    first = load_dataset(tgz, cache_dir=cache, progress=False)
    assert first.cache_path.exists() and first.cache_path.suffix == ".npz"
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]   # written atomically

    def no_decoding(*a, **k):
        raise AssertionError("decoded again despite the cache")
    monkeypatch.setattr(D, "load_image_folder", no_decoding)
    again = load_dataset(tgz, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(again.train.images, first.train.images)
    np.testing.assert_array_equal(again.test.labels, first.test.labels)
    assert again.classes == first.classes
    # The cache file is a plain .npz
    with np.load(first.cache_path) as z:
        np.testing.assert_array_equal(z["train.images"], first.train.images)
    # Other parameters, another entry.
    with pytest.raises(AssertionError, match="decoded again"):
        load_dataset(tgz, limit_per_class=1, cache_dir=cache, progress=False)


def test_cache_key_follows_content(tmp_path, rng):
    root = tmp_path / "tree"
    make_folder(root, rng)
    a = tar_of(root, tmp_path / "a.tar")
    fp1 = source_fingerprint(a)
    assert fp1["size"] == a.stat().st_size and len(fp1["sha256"]) == 64
    save(Image.fromarray(rgb(rng)), root / "train/ant/09.png")
    assert source_fingerprint(tar_of(root, tmp_path / "a.tar"))["sha256"] != fp1["sha256"]
    d1 = source_fingerprint(root)
    (root / "train/ant/09.png").unlink()
    assert source_fingerprint(root) != d1


def test_env_var_sets_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("NUMPY_ALEXNET_CACHE", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("NUMPY_ALEXNET_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "numpy-alexnet"


def test_info_counts_and_stats_cached(tmp_path, rng, cache):
    root = tmp_path / "tree"
    make_folder(root, rng)
    info = dataset_info(root, cache_dir=cache, progress=False)
    assert not info["cached"]
    assert info["splits"] == {"train": [2, 3, 1], "test": [1, 1, 1]}
    assert info["image_shape"] == [3, H, W]
    x = load_dataset(root, cache_dir=cache).train.images.astype(np.float64)
    np.testing.assert_allclose(info["mean_pixel"], x.mean(axis=(0, 2, 3)), rtol=1e-5)
    pix = x.transpose(1, 0, 2, 3).reshape(3, -1)       # (N, C, H, W) -> (C, N*H*W)
    ref = np.linalg.eigvalsh(np.cov(pix, bias=True))[::-1]
    np.testing.assert_allclose(info["pca_eigvals"], ref, rtol=1e-6)
    again = dataset_info(root, cache_dir=cache, progress=False)
    assert again["cached"] and again["splits"] == info["splits"]
    np.testing.assert_allclose(again["pca_eigvals"], info["pca_eigvals"])


# --------------------------------------------------------------------------- #
# CLI and imports
# --------------------------------------------------------------------------- #
def run_cli(argv):
    from numpy_alexnet.data.cli import add_commands
    parser = argparse.ArgumentParser(prog="numpy-alexnet")
    add_commands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_data_info(tmp_path, rng, cache, capsys):
    root = tmp_path / "tree"
    make_folder(root, rng)
    tgz = tar_of(root, tmp_path / "t.tar.gz")
    assert run_cli(["data", "info", str(tgz), "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "(written)" in out and f"{H}x{W}" in out and "eigenvalues" in out
    assert "cat" in out and "total" in out
    assert run_cli(["data", "info", str(tgz), "--cache-dir", str(cache)]) == 0
    assert "(hit)" in capsys.readouterr().out
    assert run_cli(["data", "info", str(tmp_path / "missing"), "--cache-dir", str(cache)]) == 1
    assert "missing" in capsys.readouterr().err


def test_import_needs_only_numpy(tmp_path):
    code = ("import sys; sys.modules['PIL'] = None; sys.modules['tqdm'] = None\n"
            "import numpy_alexnet.data as d\n"
            "try:\n"
            "    d.decode_image(b'x', 'a.jpg')\n"
            "except ImportError as e:\n"
            "    print('IMPORTERROR', e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert "IMPORTERROR" in out.stdout and "numpy-alexnet[data]" in out.stdout


# --------------------------------------------------------------------------- #
# The shared archive (cheap: checksum, and the cached info if present)
# --------------------------------------------------------------------------- #
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cifar10-jpeg.tar.gz"


@pytest.mark.skipif(not SHARED.exists(), reason="shared archive not present")
def test_shared_archive_checksum_and_cached_info():
    expected = (SHARED.parent / "SHA256SUMS").read_text().split()[0]
    fp = source_fingerprint(SHARED)
    assert fp["sha256"] == expected
    entry = cache_path(SHARED, {"kind": "image-folder", "resize": None,
                                "limit_per_class": None}, None)
    if not stats_path(entry).exists():
        pytest.skip("run `numpy-alexnet data info ../shared/data/cifar10-jpeg.tar.gz` first")
    info = dataset_info(SHARED, progress=False)
    assert info["cached"] and info["image_shape"] == [3, 32, 32]
    assert [sum(info["splits"][s]) for s in ("train", "test")] == [50000, 10000]
    assert len(info["classes"]) == 10


def test_unreadable_cache_entry_is_rebuilt(tmp_path, rng, cache):
    root = tmp_path / "tree"
    make_folder(root, rng)
    first = load_dataset(root, cache_dir=cache, progress=False)
    first.cache_path.write_bytes(b"garbage")
    again = load_dataset(root, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(again.train.images, first.train.images)
    assert load_dataset(root, cache_dir=cache, progress=False).cache_path.stat().st_size > 100


# --------------------------------------------------------------------------- #
# Symbolic links in image folders
# --------------------------------------------------------------------------- #
def test_a_symlinked_class_folder_is_read_and_a_link_loop_ends(tmp_path, rng, cache):
    """A class folder that is a link into another tree is read like a folder (it was
    called "an empty class folder"); a link back up the tree does not loop."""
    root = tmp_path / "src"
    pixels = make_folder(root, rng)
    elsewhere = tmp_path / "elsewhere" / "dog"
    elsewhere.parent.mkdir()
    (root / "train" / "dog").rename(elsewhere)
    (root / "train" / "dog").symlink_to(elsewhere, target_is_directory=True)
    (root / "train" / "cat" / "loop").symlink_to(root / "train", target_is_directory=True)
    ds = load_dataset(root, cache_dir=cache, progress=False)
    assert ds.classes == ("ant", "cat", "dog")
    assert list(ds.train.class_counts()) == [2, 3, 1]
    dog = ds.train.images[ds.train.labels == 2][0].transpose(1, 2, 0)    # (H, W, 3)
    np.testing.assert_array_equal(dog, pixels["train/dog/00.png"])
