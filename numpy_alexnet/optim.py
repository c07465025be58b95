"""Momentum SGD exactly as section 5 of the paper writes it.

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

``momentum_update`` below is those two lines for one parameter, the
reference kernel of the op of that name: a fast backend may run it its own
way (Numba: one compiled pass over w, g and v, bit for bit the same).

The velocity ``v`` of each parameter is allocated once, on the parameter's own
device, and kept across steps (the optimizer owns it, keyed by the parameter's
qualified name such as 'conv1.W').  ``lr`` is a plain attribute: a schedule
changes it between steps.

Per-parameter rates: ``lr_mults`` maps a layer name ('fc8', all its
parameters) or a qualified parameter name ('conv1.b') to a multiplier of the
learning rate (and so of the weight-decay term); the parameter's own name
wins over its layer's, and 0 freezes.  Fine-tuning gives a new layer a larger
rate; cuda-convnet, the 2012 code, gives every bias twice its weights' rate
(``{"conv1.b": 2.0, ...}``).

Per-parameter weight decay: ``decay_mults`` maps a qualified parameter name
('conv1.b') or a layer name ('conv1', all its parameters) to a multiplier of
``weight_decay`` alone; the parameter's own name wins over its layer's.  The
2012 code decays weights but not biases (``no_bias_decay(net)``), and
cuda-convnet's CIFAR-10 nets decay only some layers; the paper's formula
decays every w, which is the default (no multipliers).  Like ``lr_mults``,
these are settings of the optimizer, not part of ``state_dict``.
"""
from __future__ import annotations

from .backend import get_array_module, get_ops, move_array, on_device_of, register, to_numpy
from .layers.base import is_finite_number
from .net import KeyMismatchError


def momentum_update(w, g, v, momentum: float, decay_lr: float, lr: float) -> None:
    """One parameter's update, in place: v <- momentum v - decay_lr w - lr g; w <- w + v."""
    v *= momentum
    v -= decay_lr * w                             # decay_lr = weight_decay * lr
    v -= lr * g
    w += v


register("numpy", momentum_update=momentum_update)


def _check_settings(lr, momentum, weight_decay) -> None:
    """ValueError naming the setting, what is allowed and the value, for nonsense."""
    for arg, value, ok, allowed in (
            ("lr", lr, is_finite_number(lr) and lr > 0, "a finite number > 0"),
            ("momentum", momentum, is_finite_number(momentum) and 0 <= momentum < 1,
             "in [0, 1) (at 1 or more the velocity never decays)"),
            ("weight_decay", weight_decay, is_finite_number(weight_decay) and weight_decay >= 0,
             "a finite number >= 0")):
        if not ok:
            raise ValueError(f"MomentumSGD: {arg} must be {allowed}, got {value!r}")


class MomentumSGD:
    def __init__(self, net, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0005, lr_mults: dict[str, float] | None = None,
                 decay_mults: dict[str, float] | None = None):
        if not hasattr(net, "named_params"):
            raise TypeError(f"MomentumSGD: net: expected a network with named_params() "
                            f"(a Sequential or a TwoTowerAlexNet), got {type(net).__name__}")
        _check_settings(lr, momentum, weight_decay)
        self.net = net
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        self.lr_mults = _check_mults(net, lr_mults, "lr_mults", "layers or parameters",
                                     "0 freezes a layer or parameter")
        self.decay_mults = _check_mults(net, decay_mults, "decay_mults", "layers or parameters",
                                        "0: no weight decay on that parameter")
        self.velocity: dict = {}
        self.steps = 0

    def step(self) -> None:
        """Apply one update from the gradients the last ``backward`` left in each layer."""
        for name, layer, key in self.net.named_params():
            mult = _mult(self.lr_mults, name, layer)
            if mult == 0.0:
                continue                                  # frozen
            w, g = layer.params[key], layer.grads[key]
            v = self.velocity.get(name)
            if v is None or get_array_module(v) is not get_array_module(w):
                with on_device_of(w):
                    v = get_array_module(w).zeros_like(w)
                self.velocity[name] = v
            lr = self.lr * mult
            decay_lr = self.weight_decay * _mult(self.decay_mults, name, layer) * lr
            get_ops(layer.backend).momentum_update(w, g, v, self.momentum, decay_lr, lr)
        self.steps += 1

    def state_dict(self) -> dict:
        """Host copies of the velocities plus the scalar settings."""
        state = {f"velocity/{k}": to_numpy(v) for k, v in self.velocity.items()}
        state.update(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                     steps=self.steps)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore velocities onto each parameter's device, and the settings."""
        params = {name: (layer, key) for name, layer, key in self.net.named_params()}
        velocity = {}
        for k, v in state.items():
            if not k.startswith("velocity/"):
                continue
            name = k[len("velocity/"):]
            if name not in params:
                raise KeyMismatchError(f"MomentumSGD: velocity for unknown parameter {name!r}")
            layer, key = params[name]
            if tuple(v.shape) != tuple(layer.params[key].shape):
                raise ValueError(f"MomentumSGD: velocity {name}: expected shape "
                                 f"{tuple(layer.params[key].shape)}, got {tuple(v.shape)}")
            velocity[name] = move_array(v.astype(layer.params[key].dtype), layer.backend, layer.device)
        _check_settings(float(state["lr"]), float(state["momentum"]), float(state["weight_decay"]))
        self.velocity = velocity
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        self.steps = int(state["steps"])


# -- per-parameter multipliers ----------------------------------------------------------------
def _mult(mults: dict, name: str, layer) -> float:
    """The multiplier of parameter ``name`` ('conv1.W'): its own, its layer's, or 1."""
    return mults.get(name, mults.get(layer.name, 1.0))


def _check_mults(net, mults, arg: str, what: str, zero: str) -> dict:
    """``mults`` ({layer or 'layer.key': multiplier}) as a dict of floats, after checking
    that every name is a layer or parameter of ``net`` and every value a number >= 0."""
    mults = dict(mults or {})
    params = sorted(name for name, _, _ in net.named_params())
    known = {layer.name for layer in net} | set(params)
    unknown = sorted(set(mults) - known)
    if unknown:
        raise KeyMismatchError(f"MomentumSGD: {arg} names unknown {what} {unknown}; "
                               f"layers: {sorted(layer.name for layer in net)}; parameters: {params}")
    bad = {k: v for k, v in mults.items() if not (is_finite_number(v) and v >= 0)}
    if bad:
        raise ValueError(f"MomentumSGD: {arg} must be finite numbers >= 0 ({zero}), got {bad}")
    return {k: float(v) for k, v in mults.items()}


def no_bias_decay(net) -> dict[str, float]:
    """``decay_mults`` that switch weight decay off on every bias ('b') of ``net``.

    The 2012 code (cuda-convnet) decays weights only; the paper's formula is
    written for every w, and ``MomentumSGD`` without multipliers follows it.
    """
    return {name: 0.0 for name, _, key in net.named_params() if key == "b"}
