"""Checks of notebook 7's exercises: one epoch of training with your loss, and
the error on held-out images, each against the library on a small network
with dropout (so that training mode shows) and a last batch smaller than the
others (so that an unweighted mean shows)."""
from __future__ import annotations

import numpy as np

from numpy_alexnet import LayerInputError, MomentumSGD, SoftmaxCrossEntropy
from numpy_alexnet.data import BatchIterator, topk_error
from numpy_alexnet.models import build
from numpy_alexnet.training import FixedSchedule, Trainer

from . import fail

SPEC = [
    ("conv1", "conv", dict(in_channels=3, out_channels=4, kernel_size=3, padding=1, weight_std=0.3)),
    ("relu1", "relu", {}),
    ("pool1", "maxpool", dict(kernel_size=3, stride=2)),
    ("flatten", "flatten", {}),
    ("fc1", "linear", dict(in_features=4 * 3 * 3, out_features=12, weight_std=0.3)),
    ("relu2", "relu", {}),
    ("drop", "dropout", dict(rate=0.5)),
    ("fc2", "linear", dict(in_features=12, out_features=5, weight_std=0.3)),
]
N_IMAGES, BATCH = 37, 10                    # the last batch holds 7


def _problem():
    r = np.random.default_rng(71)
    images = r.integers(0, 256, size=(N_IMAGES, 3, 8, 8)).astype(np.uint8)
    labels = r.integers(0, 5, size=N_IMAGES)
    net = build(SPEC, input_shape=(3, 8, 8), seed=3, dtype=np.float64)
    to_input = lambda x, rng=None: (x.astype(np.float64) - 128) / 64
    batches = BatchIterator(images, labels, BATCH, seed=0, transform=to_input, prefetch=False)
    return net, MomentumSGD(net, lr=0.05, momentum=0.9, weight_decay=0.0), batches


def _library_loss(scores, labels):
    """The library's softmax cross-entropy as (loss, dz), the form of exercise 1.8."""
    loss_fn = SoftmaxCrossEntropy()
    loss = float(loss_fn.forward(scores, labels))
    return loss, loss_fn.backward()


def test_train_epoch(train_epoch):
    net, opt, batches = _problem()
    trainer = Trainer(net, opt, batches, schedule=FixedSchedule(), progress=False, quiet=True)
    row = trainer.fit(1)[0]
    unweighted = {k: float(np.mean([s[k] for s in trainer.step_log])) for k in ("loss", "error")}
    mine, my_opt, my_batches = _problem()
    before = {name: layer.params[key].copy() for name, layer, key in mine.named_params()}
    try:
        result = train_epoch(mine, my_opt, my_batches, _library_loss)
    except LayerInputError as e:
        fail(f"{e}; hint: net.backward takes dz, the gradient of the loss with respect to the "
             "scores (N, classes), the second value loss_fn returns")
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        fail(f"return 2 values (the mean loss, the running error), got {result!r}")
    loss, error = float(result[0]), float(result[1])
    if all(np.array_equal(before[name], layer.params[key]) for name, layer, key in mine.named_params()):
        fail("the weights did not change: call opt.step() after net.backward(dz) on every batch")
    if my_opt.steps != len(batches):
        fail(f"{my_opt.steps} steps for {len(batches)} batches: one opt.step() per batch")
    weights_agree = all(np.allclose(layer.params[key], ref.params[key], rtol=1e-10, atol=1e-12)
                        for (_, layer, key), (_, ref, _) in zip(mine.named_params(), net.named_params()))
    if not weights_agree:
        fail("after one epoch the weights differ from the library's Trainer: each batch goes "
             "forward with train=True (dropout drops in training), then the loss and dz, "
             "net.backward(dz), then opt.step(), in that order")
    for name, got, want in (("running error", error, row["train_error"]), ("mean loss", loss, row["train_loss"])):
        if abs(got - want) <= 1e-10:
            continue
        if abs(got - unweighted[name.split()[-1]]) <= 1e-10:
            fail(f"{name} {got:.4f}, the library's Trainer {want:.4f}: the mean of the batches' "
                 f"means; weight each batch by its size, the last one holds 7 of the {N_IMAGES} images")
        fail(f"{name} {got:.4f}, the library's Trainer {want:.4f}: count it on each batch's scores as "
             "they were trained on, before the step changed the weights")


def test_test_error(test_error):
    net, _, _ = _problem()
    r = np.random.default_rng(72)
    images = r.integers(0, 256, size=(N_IMAGES, 3, 8, 8)).astype(np.uint8)
    labels = r.integers(0, 5, size=N_IMAGES)
    to_input = lambda x, rng=None: (x.astype(np.float64) - 128) / 64
    want = topk_error(net.forward(to_input(images), train=False), labels)
    batches = BatchIterator(images, labels, BATCH, shuffle=False, transform=to_input, prefetch=False)
    try:
        got = test_error(net, batches)
    except ValueError as e:                 # the predictions do not line up with the labels
        fail(f"test_error raised ValueError ({e}); hint: the class of highest score in each row, "
             "scores.argmax(axis=1), one per image")
    if isinstance(got, (tuple, list)) or np.ndim(got) != 0:
        fail(f"return one number, the fraction of images classified wrong; got {got!r}")
    got = float(got)
    if abs(got - want) < 1e-12:
        return
    if got > 1:
        fail(f"{got:g}: a fraction of the images, between 0 and 1, not a count")
    scores = [net.forward(x, train=False) for x, _ in batches]
    per_batch = [topk_error(sc, y) for sc, (_, y) in zip(scores, batches)]
    if abs(got - np.mean(per_batch)) < 1e-12:
        fail(f"error {got:.4f}, expected {want:.4f}: the mean of the batches' errors; count every "
             f"batch by its size ({N_IMAGES} images, the last batch holds 7)")
    fail(f"error {got:.4f}, expected {want:.4f}: held-out images go through the net in test mode, "
         "net.forward(x, train=False), where dropout keeps every neuron (and scales them)")
