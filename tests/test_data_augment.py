"""Section 4 augmentation, 10-crop testing, the batch iterator, top-k error."""
from __future__ import annotations

import threading

import numpy as np
import pytest

from numpy_alexnet.data import (TEN_CROP_ORDER, BatchIterator, EvalTransform, TrainTransform,
                                average_ten_crop, center_crop, crop, flip_horizontal,
                                mean_image, pca_color, pca_color_shift, pca_eigen,
                                random_crop_flip, softmax, ten_crop, ten_crop_offsets,
                                topk_correct, topk_error, topk_errors)
from numpy_alexnet.data import augment


def coord_images(n, h, w):
    """(n, 3, h, w) int32 whose channels hold (image, row, col): a crop shows where it came from."""
    img, row, col = np.meshgrid(np.arange(n), np.arange(h), np.arange(w), indexing="ij")
    return np.stack([img, row, col], axis=1).astype(np.int32)    # (n, 3, h, w)


# --------------------------------------------------------------------------- #
# Crops and reflections
# --------------------------------------------------------------------------- #
def test_reflection_is_exact(rng):
    x = rng.integers(0, 256, size=(2, 3, 5, 7), dtype=np.uint8)
    f = flip_horizontal(x)
    for j in range(7):
        np.testing.assert_array_equal(f[..., j], x[..., 6 - j])
    np.testing.assert_array_equal(flip_horizontal(f), x)


def test_random_crops_stay_in_bounds_and_cover_every_offset(rng):
    N, h, w, S = 3000, 7, 10, 4                       # H != W; 4 x 7 offsets possible
    x = coord_images(N, h, w)
    out = random_crop_flip(x, S, rng)
    assert out.shape == (N, 3, S, S) and out.dtype == x.dtype
    assert np.all(out[:, 0] == np.arange(N)[:, None, None])       # each from its own image
    top = out[:, 1, 0, 0]
    left = out[:, 2, 0, :].min(axis=1)
    flipped = out[:, 2, 0, 0] > out[:, 2, 0, -1]
    assert top.min() == 0 and top.max() == h - S and left.min() == 0 and left.max() == w - S
    seen = set(zip(top.tolist(), left.tolist()))
    assert seen == {(t, l) for t in range(h - S + 1) for l in range(w - S + 1)}
    assert 0.45 < flipped.mean() < 0.55
    # Every crop is exactly the window at its offset, reflected where flipped.
    for n in range(0, N, 97):
        ref = x[n, :, top[n]:top[n] + S, left[n]:left[n] + S]
        np.testing.assert_array_equal(out[n], ref[..., ::-1] if flipped[n] else ref)


def test_crop_of_a_single_image_at_many_offsets():
    mean = coord_images(1, 6, 8)[0]                     # (3, 6, 8)
    out = crop(mean, [0, 2, 1], [4, 0, 3], 3, flip=[False, True, False])
    assert out.shape == (3, 3, 3, 3)
    np.testing.assert_array_equal(out[0], mean[:, 0:3, 4:7])
    np.testing.assert_array_equal(out[1], mean[:, 2:5, 0:3][..., ::-1])
    with pytest.raises(ValueError, match="out of bounds"):
        crop(mean, [4], [0], 3)
    with pytest.raises(ValueError, match="larger than the image"):
        random_crop_flip(mean[None], 7, np.random.default_rng(0))


def test_center_crop_position():
    x = coord_images(2, 7, 10)
    c = center_crop(x, 4)                               # top (7-4)//2 = 1, left (10-4)//2 = 3
    assert c.shape == (2, 3, 4, 4)
    assert c[0, 1, 0, 0] == 1 and c[0, 2, 0, 0] == 3


def test_ten_crops_sit_where_the_paper_puts_them():
    N, h, w, S = 2, 9, 12, 5
    x = coord_images(N, h, w)
    t = ten_crop(x, S)
    assert t.shape == (10, N, 3, S, S) and len(TEN_CROP_ORDER) == 10
    corners = {"top-left": (0, 0), "top-right": (0, w - S), "bottom-left": (h - S, 0),
               "bottom-right": (h - S, w - S), "centre": ((h - S) // 2, (w - S) // 2)}
    assert ten_crop_offsets(h, w, S) == list(corners.values())
    for i, name in enumerate(TEN_CROP_ORDER):
        top, left = corners[name.replace(" reflected", "")]
        ref = x[:, :, top:top + S, left:left + S]
        np.testing.assert_array_equal(t[i], ref[..., ::-1] if "reflected" in name else ref)


def test_average_ten_crop(rng):
    N, K = 3, 4
    logits = rng.normal(size=(10, N, K))
    probs = softmax(logits)
    expected = probs.mean(axis=0)
    np.testing.assert_allclose(average_ten_crop(probs), expected)
    np.testing.assert_allclose(average_ten_crop(probs.reshape(10 * N, K)), expected)
    np.testing.assert_allclose(average_ten_crop(logits, from_logits=True), expected)
    np.testing.assert_allclose(average_ten_crop(probs).sum(axis=1), 1.0)
    with pytest.raises(ValueError):
        average_ten_crop(probs.reshape(10 * N, K)[:-1])


# --------------------------------------------------------------------------- #
# Statistics and colour
# --------------------------------------------------------------------------- #
def test_mean_image_in_chunks(rng, monkeypatch):
    monkeypatch.setattr(augment, "_CHUNK_PIXELS", 7 * 5 * 3)     # 3 images a chunk
    x = rng.integers(0, 256, size=(10, 3, 5, 7), dtype=np.uint8)
    m = mean_image(x)
    assert m.shape == (3, 5, 7) and m.dtype == np.float32
    np.testing.assert_allclose(m, x.astype(np.float64).mean(axis=0), rtol=1e-6)


def test_pca_recovers_a_known_covariance(rng, monkeypatch):
    monkeypatch.setattr(augment, "_CHUNK_PIXELS", 4096)          # several chunks
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    true_vals = np.array([900.0, 100.0, 16.0])
    cov = q @ np.diag(true_vals) @ q.T
    pix = rng.multivariate_normal([120, 110, 100], cov, size=64 * 16 * 20)   # (P, 3)
    x = pix.reshape(64, 16, 20, 3).transpose(0, 3, 1, 2)          # (N, H, W, C) -> (N, C, H, W)
    vals, vecs = pca_eigen(x)
    # Exactly the eigen-decomposition of the sample covariance ...
    sample = np.cov(pix.T, bias=True)
    np.testing.assert_allclose(vecs @ np.diag(vals) @ vecs.T, sample, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(vecs.T @ vecs, np.eye(3), atol=1e-12)
    assert np.all(np.diff(vals) < 0)
    # ... which is close to the covariance the pixels were drawn from.
    np.testing.assert_allclose(vals, true_vals, rtol=0.05)
    assert np.all(np.abs(np.sum(vecs * q[:, np.argsort(-np.diag(q.T @ cov @ q))], axis=0)) > 0.99)


def test_pca_color_shift_has_the_papers_distribution(rng):
    vecs, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    vals = np.array([5000.0, 400.0, 50.0])
    n = 20000
    shift = pca_color_shift(n, vals, vecs, np.random.default_rng(7), std=0.1)   # (n, 3)
    # Same draws by hand: a ~ N(0, 0.1) per image, offset p @ (a * l), l on the 0-1 scale.
    alpha = np.random.default_rng(7).normal(0.0, 0.1, size=(n, 3))
    np.testing.assert_allclose(shift, 255.0 * (alpha * vals / 255.0 ** 2) @ vecs.T)
    # Its covariance: p diag((0.1 * l / 255)^2) p^T.
    expected = vecs @ np.diag((0.1 * vals / 255.0) ** 2) @ vecs.T
    np.testing.assert_allclose(np.cov(shift.T), expected, rtol=0.05, atol=1e-3)
    # pixel_scale=1: the literal formula.
    lit = pca_color_shift(4, vals, vecs, np.random.default_rng(7), pixel_scale=1.0)
    np.testing.assert_allclose(lit, (alpha[:4] * vals) @ vecs.T)


def test_pca_color_adds_one_offset_per_image(rng):
    x = rng.normal(size=(4, 3, 5, 7)).astype(np.float32)
    vecs, vals = np.eye(3), np.array([300.0, 200.0, 100.0])
    y = pca_color(x, vals, vecs, np.random.default_rng(3))
    d = y - x                                           # constant over H, W for each image
    np.testing.assert_allclose(d, d[:, :, :1, :1].repeat(5, 2).repeat(7, 3), atol=1e-5)
    np.testing.assert_allclose(d[:, :, 0, 0],
                               pca_color_shift(4, vals, vecs, np.random.default_rng(3)),
                               rtol=1e-5)


def test_train_transform_is_crop_of_mean_subtracted_image(rng):
    x = rng.integers(0, 256, size=(6, 3, 9, 11), dtype=np.uint8)
    mean = mean_image(x)
    vals, vecs = pca_eigen(x)
    out = TrainTransform(mean, 5, vals, vecs)(x, np.random.default_rng(5))
    assert out.shape == (6, 3, 5, 5) and out.dtype == np.float32
    # The same draws, by hand: crop (x - mean), then the colour offset.
    r = np.random.default_rng(5)
    top, left, mirror = augment.random_crop_params(6, 9, 11, 5, r)
    shift = pca_color_shift(6, vals, vecs, r)
    centred = x.astype(np.float64) - mean
    for n in range(6):
        ref = centred[n, :, top[n]:top[n] + 5, left[n]:left[n] + 5]
        ref = (ref[..., ::-1] if mirror[n] else ref) + shift[n][:, None, None]
        np.testing.assert_allclose(out[n], ref, rtol=1e-5, atol=1e-3)


def test_eval_transform_modes(rng):
    x = rng.integers(0, 256, size=(2, 3, 8, 10), dtype=np.uint8)
    mean = mean_image(x)
    centred = x.astype(np.float32) - mean
    np.testing.assert_allclose(EvalTransform(mean, 6)(x), center_crop(centred, 6))
    np.testing.assert_allclose(EvalTransform(mean, 6, mode="ten")(x), ten_crop(centred, 6))
    np.testing.assert_allclose(EvalTransform(mean)(x), centred)


# --------------------------------------------------------------------------- #
# Batch iterator
# --------------------------------------------------------------------------- #
def make_iter(n=23, **kw):
    images = np.arange(n, dtype=np.uint8)[:, None, None, None] * np.ones((1, 3, 2, 2), np.uint8)
    return BatchIterator(images, np.arange(n), **{"batch_size": 5, **kw})


def ids(batches):
    return [y.tolist() for _, y in batches]


def test_epoch_covers_every_example_once_and_is_seeded():
    it = make_iter(seed=3)
    assert len(it) == 5
    e0 = ids(it)
    e1 = ids(it)                                        # iter() moves to the next epoch
    assert sorted(sum(e0, [])) == list(range(23)) and [len(b) for b in e0] == [5, 5, 5, 5, 3]
    assert e0 != e1
    again = make_iter(seed=3)
    assert ids(again) == e0
    again.set_epoch(1)
    assert ids(again) == e1
    assert ids(make_iter(seed=4)) != e0
    assert len(make_iter(drop_last=True)) == 4 and ids(make_iter(shuffle=False))[0] == [0, 1, 2, 3, 4]


def test_x_matches_y_and_is_float32():
    for x, y in make_iter(seed=1):
        assert x.dtype == np.float32 and x.shape[1:] == (3, 2, 2)
        np.testing.assert_array_equal(x[:, 0, 0, 0], y)


def test_resume_mid_epoch_and_prefetch_give_the_same_batches():
    tf = TrainTransform(crop_size=1)                    # random: must be seeded per batch
    a = make_iter(seed=9, transform=tf)
    b = make_iter(seed=9, transform=tf, prefetch=False)
    full = list(a.epoch_iter(2))
    same = list(b.epoch_iter(2))
    tail = list(a.epoch_iter(2, start_batch=3))
    for (x1, y1), (x2, y2) in zip(full, same):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert len(tail) == 2
    for (x1, y1), (x2, y2) in zip(full[3:], tail):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)


def test_transform_gets_uint8_and_to_device_is_applied():
    seen = []

    def tf(x, rng):
        seen.append(x.dtype)
        return x.astype(np.float32) + 0.5

    it = make_iter(transform=tf, to_device=lambda a: ("dev", a))
    (xd, x), (yd, y) = next(iter(it))
    assert xd == yd == "dev" and seen[0] == np.uint8 and x[0, 0, 0, 0] == y[0] + 0.5


def test_worker_error_reaches_the_caller():
    def bad(x, rng):
        raise RuntimeError("boom in transform")

    with pytest.raises(RuntimeError, match="boom in transform"):
        list(make_iter(transform=bad))


def prefetch_threads():
    return [t for t in threading.enumerate() if t.name == "BatchIterator-prefetch"]


def test_thread_is_cleaned_up_when_the_consumer_stops_early():
    gen = iter(make_iter(n=200))
    next(gen)
    assert len(prefetch_threads()) == 1
    gen.close()                                         # what `break` + garbage collection do
    assert prefetch_threads() == []
    for _ in make_iter(n=200):
        break
    assert prefetch_threads() == []


def test_background_thread_overlaps_with_the_caller():
    """While the caller is busy on batch i, batch i+1 is being built."""
    import time
    built = []

    def slow(x, rng):
        time.sleep(0.05)
        built.append(time.perf_counter())
        return x.astype(np.float32)

    t0 = time.perf_counter()
    for _ in make_iter(n=30, transform=slow):          # 6 batches
        time.sleep(0.05)                                # the "training step"
    elapsed = time.perf_counter() - t0
    assert elapsed < 6 * 0.1 * 0.85                     # serial would be 0.6 s


# --------------------------------------------------------------------------- #
# Top-k error
# --------------------------------------------------------------------------- #
def test_topk_hand_computed():
    scores = np.array([
        [0.1, 0.5, 0.2, 0.0, 0.1, 0.1],   # label 1: top-1 right
        [0.3, 0.1, 0.2, 0.0, 0.4, 0.0],   # label 2: 3rd -> top-1 wrong, top-5 right
        [0.6, 0.1, 0.1, 0.1, 0.05, 0.05],  # label 5: 5th/6th, tied with 4 -> rank 5 -> wrong
        [0.0, 0.0, 0.0, 0.0, 0.0, 1.0],   # label 5: right
    ])
    labels = np.array([1, 2, 5, 5])
    assert topk_error(scores, labels, 1) == pytest.approx(0.5)
    assert topk_error(scores, labels, 5) == pytest.approx(0.25)
    assert topk_error(scores, labels, 6) == 0.0
    np.testing.assert_array_equal(topk_correct(scores, labels, 2), [True, False, False, True])
    assert topk_errors(scores, labels) == {1: 0.5, 5: 0.25}
    # Logits and probabilities give the same answer.
    logits = np.log(scores + 1e-3)
    assert topk_errors(softmax(logits), labels) == topk_errors(logits, labels)


def test_topk_ties_and_nans_count_against():
    assert topk_error(np.zeros((4, 10)), np.arange(4), 5) == 1.0   # a dead network
    assert topk_error(np.array([[np.nan, 0.0]]), np.array([0]), 1) == 1.0
    with pytest.raises(ValueError):
        topk_error(np.zeros((2, 3)), np.array([0, 1]), 4)
