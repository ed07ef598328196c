"""Optimizer steps are in-place changes: each bumps the parameter's version, so a graph
computed before the step cannot be differentiated after it (as in PyTorch), while the
step itself keeps the same Tensor objects and their dtype."""
import numpy as np
import pytest

from tinytorch.core.optimizers import SGD, Adam, AdamW
from tinytorch.core.tensor import Tensor

OPTIMIZERS = [(SGD, dict(lr=0.1)), (SGD, dict(lr=0.1, momentum=0.9, weight_decay=0.1)),
              (Adam, dict(lr=0.1)), (AdamW, dict(lr=0.1))]


@pytest.mark.parametrize("cls, settings", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_a_step_bumps_the_version_and_keeps_the_tensor(cls, settings):
    w = Tensor([1.0, -2.0], requires_grad=True)
    data = w.data
    optimizer = cls([w], **settings)
    (w * w).sum().backward()
    optimizer.step()
    assert w.data is data and w.dtype == np.float32 and w._version >= 1
    assert not np.array_equal(w.data, [1.0, -2.0])


@pytest.mark.parametrize("cls, settings", OPTIMIZERS, ids=lambda v: getattr(v, "__name__", ""))
def test_backward_of_a_graph_from_before_the_step_raises(cls, settings):
    w = Tensor([1.0, -2.0], requires_grad=True)
    optimizer = cls([w], **settings)
    (w * w).sum().backward()
    stale = (w * w).sum()
    optimizer.step()
    with pytest.raises(RuntimeError, match="backward of 'mul'.*modified by an inplace operation"):
        stale.backward()


def test_the_steps_match_pytorch_after_the_change_to_in_place_tensors(torch):
    start = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    w = Tensor(start, requires_grad=True)
    tw = torch.tensor(start, requires_grad=True)
    ours, theirs = AdamW([w], lr=0.05), torch.optim.AdamW([tw], lr=0.05)
    for _ in range(5):
        ours.zero_grad()
        theirs.zero_grad()
        (w * w * w).sum().backward()
        (tw * tw * tw).sum().backward()
        ours.step()
        theirs.step()
    np.testing.assert_allclose(w.data, tw.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_an_sgd_step_on_a_model_between_forward_and_backward_raises_as_in_pytorch(torch):
    from tinytorch.core.activations import ReLU
    from tinytorch.core.layers import Linear, Sequential
    x_np = np.array([[0.5, 1.5, 2.0], [1.0, 0.25, 3.0]], dtype=np.float32)
    model = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 1, seed=1))
    x = Tensor(x_np)
    model(x).sum().backward()
    stale = model(x).sum()                          # a graph on the current weights
    SGD(model.parameters(), lr=0.1).step()          # changes them in place
    with pytest.raises(RuntimeError, match="backward of 'matmul'.*inplace operation"):
        stale.backward()

    t_model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    tx = torch.tensor(x_np)
    t_model(tx).sum().backward()
    t_stale = t_model(tx).sum()
    torch.optim.SGD(t_model.parameters(), lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        t_stale.backward()
