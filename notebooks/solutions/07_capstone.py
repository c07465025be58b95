"""Solutions to the exercises of notebook 07_capstone. Try them first."""
import numpy as np


def train_epoch(net, opt, batches, loss_fn):
    """One pass over `batches`: returns (the mean loss, the running error) over its images."""
    loss_sum, wrong, seen = 0.0, 0, 0
    for x, y in batches:
        scores = net.forward(x, train=True)                 # training mode: dropout drops
        loss, dz = loss_fn(scores, y)
        net.backward(dz, input_grad=False)                  # no gradient of the images needed
        opt.step()
        loss_sum += float(loss) * len(y)                    # each batch by its size
        wrong += int((scores.argmax(axis=1) != y).sum())    # the scores the step came from
        seen += len(y)
    return loss_sum / seen, wrong / seen


def test_error(net, batches):
    """The fraction of the images in `batches` whose highest score is not their label."""
    wrong, seen = 0, 0
    for x, y in batches:
        wrong += int((net.forward(x, train=False).argmax(axis=1) != y).sum())
        seen += len(y)
    return wrong / seen
