"""Solutions to the exercises of notebook 04_training_relu_vs_tanh. Try them first."""


def momentum_update(w, g, v, momentum, decay_lr, lr):
    """Section 5's rule for one parameter, in place: v <- momentum v - decay_lr w - lr g; w <- w + v."""
    v *= momentum
    v -= decay_lr * w                                # decay_lr = weight_decay * lr
    v -= lr * g
    w += v                                           # the new velocity


def torch_sgd_step(w, b, grad, lr, momentum, weight_decay):
    """One step of PyTorch's SGD with momentum: returns (new w, new buffer)."""
    b = momentum * b + (grad + weight_decay * w)
    return w - lr * b, b
