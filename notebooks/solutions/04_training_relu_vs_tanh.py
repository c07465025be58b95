"""Solutions to the exercises of notebook 04_training_relu_vs_tanh. Try them first."""


def paper_sgd_step(w, v, grad, lr, momentum, weight_decay):
    """One step of section 5's rule: returns (new w, new v)."""
    v = momentum * v - weight_decay * lr * w - lr * grad
    return w + v, v


def torch_sgd_step(w, b, grad, lr, momentum, weight_decay):
    """One step of PyTorch's SGD with momentum: returns (new w, new buffer)."""
    b = momentum * b + (grad + weight_decay * w)
    return w - lr * b, b
