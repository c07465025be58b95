"""Checks of notebook 4's exercises: the paper's momentum update, in place, and
PyTorch's rule beside it."""
from __future__ import annotations

import numpy as np

from numpy_alexnet import MomentumSGD, SoftmaxCrossEntropy
from numpy_alexnet.layers import Linear
from numpy_alexnet.net import Sequential

from . import fail, rel_error, which


def _small_problem(seed=0):
    """A two-layer network in float64, a fixed batch, and a function that fills its gradients."""
    r = np.random.default_rng(seed)
    net = Sequential([Linear(6, 5, weight_std=0.5, rng=r, dtype=np.float64, name="fc1"),
                      Linear(5, 3, weight_std=0.5, bias=0.1, rng=r, dtype=np.float64, name="fc2")])
    x, y, loss_fn = r.standard_normal((8, 6)), r.integers(0, 3, 8), SoftmaxCrossEntropy()

    def gradients():
        loss_fn.forward(net.forward(x, train=True), y)
        net.backward(loss_fn.backward())
    return net, gradients


def test_momentum_update(momentum_update):
    r = np.random.default_rng(41)
    w0, g, v0 = r.standard_normal((3, 4)), r.standard_normal((3, 4)), r.standard_normal((3, 4))
    mu, decay_lr, lr = 0.9, 0.003, 0.1
    w, v = w0.copy(), v0.copy()
    momentum_update(w, g, v, mu, decay_lr, lr)
    want_v = mu * v0 - decay_lr * w0 - lr * g
    want_w = w0 + want_v
    if np.array_equal(w, w0) and np.array_equal(v, v0):
        fail("w and v are unchanged after the call: update them in place (v *= ..., v -= ..., "
             "w += v); `v = ...` binds a new array inside the function, which the optimizer "
             "never sees")
    if np.array_equal(v, v0):
        fail("v is unchanged after the call: the velocity is the optimizer's, kept from step to "
             "step; update it in place (v *= momentum, v -= ...) rather than binding a new v")
    if np.array_equal(w, w0):
        fail("w is unchanged after the call: update it in place, w += v")
    if np.allclose(w, w0 + v0):
        fail("w moved by the old velocity: update v first, then w with the new v (w += v after "
             "v is updated)")
    hint = which(np.concatenate([w, v]), {
        "decay_lr is already weight_decay x lr: subtract decay_lr * w, not decay_lr * lr * w":
            np.concatenate([w0 + mu * v0 - decay_lr * lr * w0 - lr * g, mu * v0 - decay_lr * lr * w0 - lr * g]),
        "the weight decay term: v also loses decay_lr * w":
            np.concatenate([w0 + mu * v0 - lr * g, mu * v0 - lr * g]),
        "the sign: the step goes against the gradient, v -= lr * g":
            np.concatenate([w0 + mu * v0 - decay_lr * w0 + lr * g, mu * v0 - decay_lr * w0 + lr * g]),
        "momentum: the new v keeps momentum times the old v (v *= momentum), it is not rebuilt":
            np.concatenate([w0 - decay_lr * w0 - lr * g, -decay_lr * w0 - lr * g])})
    if hint:
        fail(f"after one step w and v are off; hint: {hint}")
    err = rel_error(np.concatenate([w, v]), np.concatenate([want_w, want_v]))
    if not err < 1e-12:
        fail(f"after one step w and v are off by relative error {err:.1e}: v <- momentum v - "
             "decay_lr w - lr g, then w <- w + v")
    # Five steps of a small network against MomentumSGD
    ref, ref_grads = _small_problem()
    opt = MomentumSGD(ref, lr=0.1, momentum=0.9, weight_decay=0.01)
    mine, my_grads = _small_problem()
    velocity = {name: np.zeros_like(layer.params[key]) for name, layer, key in mine.named_params()}
    for _ in range(5):
        ref_grads()
        opt.step()
        my_grads()
        for name, layer, key in mine.named_params():
            momentum_update(layer.params[key], layer.grads[key], velocity[name], 0.9, 0.01 * 0.1, 0.1)
    for (name, a, key), (_, b, _) in zip(ref.named_params(), mine.named_params()):
        err = rel_error(a.params[key], b.params[key])
        if not err < 1e-12:
            fail(f"{name} after 5 steps of a small network: relative error {err:.1e} against MomentumSGD")
    w32, v32 = w0.astype(np.float32), v0.astype(np.float32)
    momentum_update(w32, g.astype(np.float32), v32, mu, decay_lr, lr)
    if w32.dtype != np.float32 or abs(w32 - want_w).max() > 1e-5:
        fail("in float32 arrays the update is off: it must work in place on the network's float32 weights")


def _paper_rule(w, v, g, lr, mu, wd):                 # section 5, for the comparison
    v = mu * v - wd * lr * w - lr * g
    return w + v, v


def _follow(rule, lrs, w0, grad_of):
    w, state = w0.copy(), np.zeros_like(w0)
    for lr in lrs:
        w, state = rule(w, state, grad_of(w), lr, 0.9, 0.01)
    return w


def test_torch_sgd_step(torch_sgd_step):
    A = np.random.default_rng(1).standard_normal((4, 4))
    A = A @ A.T + np.eye(4)                             # a quadratic bowl
    grad_of = lambda w: A @ w
    w0 = np.arange(1.0, 5.0)
    fixed, dropped = [0.05] * 10, [0.05] * 5 + [0.005] * 5
    same = rel_error(_follow(torch_sgd_step, fixed, w0, grad_of), _follow(_paper_rule, fixed, w0, grad_of))
    if not same < 1e-12:
        fail(f"with a fixed rate PyTorch's rule and the paper's follow the same path (v = -lr b); "
             f"relative difference {same:.1e}: b <- momentum b + (g + weight_decay w), then w <- w - lr b")
    apart = rel_error(_follow(torch_sgd_step, dropped, w0, grad_of), _follow(_paper_rule, dropped, w0, grad_of))
    if not apart > 1e-3:
        fail(f"after a rate drop the two rules should part, but differ by only {apart:.1e}: PyTorch's "
             "buffer b sums gradients, and lr multiplies it when it is used (w - lr b), so a new rate "
             "applies to the whole buffer at once; the paper's v sums steps already scaled by the old rate")
    try:
        import torch
    except ImportError:
        return
    p = torch.nn.Parameter(torch.tensor(w0))
    opt = torch.optim.SGD([p], lr=0.05, momentum=0.9, weight_decay=0.01)
    for lr in dropped:
        opt.param_groups[0]["lr"] = lr
        opt.zero_grad()
        p.grad = torch.tensor(grad_of(p.detach().numpy()))
        opt.step()
    err = rel_error(p.detach().numpy(), _follow(torch_sgd_step, dropped, w0, grad_of))
    if not err < 1e-12:
        fail(f"against torch.optim.SGD: relative error {err:.1e}")
