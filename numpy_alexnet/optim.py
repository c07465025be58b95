"""Momentum SGD exactly as section 5 of the paper writes it.

    v <- momentum * v - weight_decay * lr * w - lr * dL/dw
    w <- w + v

The velocity ``v`` of each parameter is allocated once, on the parameter's own
device, and kept across steps (the optimizer owns it, keyed by the parameter's
qualified name such as 'conv1.W').  ``lr`` is a plain attribute: a schedule
changes it between steps.

Fine-tuning: ``lr_mults`` maps a layer name to a multiplier of the learning
rate (and of the weight-decay term) for that layer's parameters; 0 freezes it.
"""
from __future__ import annotations

from .backend import get_array_module, on_device_of, to_numpy
from .net import KeyMismatchError


class MomentumSGD:
    def __init__(self, net, lr: float = 0.01, momentum: float = 0.9,
                 weight_decay: float = 0.0005, lr_mults: dict[str, float] | None = None):
        self.net = net
        self.lr, self.momentum, self.weight_decay = float(lr), float(momentum), float(weight_decay)
        layer_names = {layer.name for layer in net}
        unknown = sorted(set(lr_mults or {}) - layer_names)
        if unknown:
            raise KeyMismatchError(f"MomentumSGD: lr_mults names unknown layers {unknown}; "
                                   f"layers: {sorted(layer_names)}")
        self.lr_mults = dict(lr_mults or {})
        self.velocity: dict = {}
        self.steps = 0

    def step(self) -> None:
        """Apply one update from the gradients the last ``backward`` left in each layer."""
        for name, layer, key in self.net.named_params():
            mult = self.lr_mults.get(layer.name, 1.0)
            if mult == 0.0:
                continue                                  # frozen
            w, g = layer.params[key], layer.grads[key]
            v = self.velocity.get(name)
            if v is None or get_array_module(v) is not get_array_module(w):
                with on_device_of(w):
                    v = get_array_module(w).zeros_like(w)
                self.velocity[name] = v
            lr = self.lr * mult
            v *= self.momentum
            v -= (self.weight_decay * lr) * w
            v -= lr * g
            w += v
        self.steps += 1

    def state_dict(self) -> dict:
        """Host copies of the velocities plus the scalar settings."""
        state = {f"velocity/{k}": to_numpy(v) for k, v in self.velocity.items()}
        state.update(lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay,
                     steps=self.steps)
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore velocities onto each parameter's device, and the settings."""
        from .backend import move_array
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
        self.velocity = velocity
        self.lr = float(state["lr"])
        self.momentum = float(state["momentum"])
        self.weight_decay = float(state["weight_decay"])
        self.steps = int(state["steps"])
