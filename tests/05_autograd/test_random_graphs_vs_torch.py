"""Random graphs against PyTorch, with an in-place change between forward and backward:
a few random ops on three float64 leaves (some requiring gradients), then one random
tensor of the graph multiplied by 1.5 in place under no_grad, then backward. For each
seed, both raise, or neither does and every leaf gets PyTorch's gradient."""
import random

import numpy as np
import pytest

from tinytorch.core.activations import ReLU, Sigmoid, Tanh
from tinytorch.core.autograd import no_grad
from tinytorch.core.tensor import Tensor

UNARY = {   # name -> (tinytorch, torch)
    "exp": (lambda t: (t * 0.3).exp(), lambda t: (t * 0.3).exp()),
    "sigmoid": (lambda t: Sigmoid()(t), lambda t: t.sigmoid()),
    "tanh": (lambda t: Tanh()(t), lambda t: t.tanh()),
    "relu": (lambda t: ReLU()(t), lambda t: t.relu()),
    "square": (lambda t: t * t, lambda t: t * t),
    "cube": (lambda t: t ** 3, lambda t: t ** 3),
    "transpose": (lambda t: t.T, lambda t: t.T),
    "sum": (lambda t: t.sum(axis=0, keepdims=True), lambda t: t.sum(0, keepdim=True)),
    "max": (lambda t: t.max(axis=1, keepdims=True), lambda t: t.amax(1, keepdim=True)),
    "abs": (lambda t: t.abs(), lambda t: t.abs()),
    "neg": (lambda t: -t, lambda t: -t),
    "slice": (lambda t: t[1:], lambda t: t[1:]),
    "half": (lambda t: t / 2, lambda t: t / 2),
    "sqrt": (lambda t: (t.abs() + 1).sqrt(), lambda t: (t.abs() + 1).sqrt()),
}
BINARY = {"add": lambda a, b: a + b, "sub": lambda a, b: a - b, "mul": lambda a, b: a * b,
          "div": lambda a, b: a / (b * b + 1), "matmul": lambda a, b: a @ b.T}


def run(seed, torch=None):
    """The seed's graph in TinyTorch (torch=None) or PyTorch: ("raise",), ("skip",) or
    ("ok", leaf gradients)."""
    rng, data = random.Random(seed), np.random.default_rng(seed)
    arrays = [data.standard_normal((3, 3)) for _ in range(3)]
    needs = [rng.random() < 0.7 for _ in range(3)]
    if torch:
        leaves = [torch.tensor(a, requires_grad=r) for a, r in zip(arrays, needs)]
        make, grad_off = torch.tensor, torch.no_grad
    else:
        leaves = [Tensor(a, dtype=np.float64, requires_grad=r) for a, r in zip(arrays, needs)]
        make, grad_off = (lambda a: Tensor(a, dtype=np.float64)), no_grad
    nodes = list(leaves)
    for _ in range(rng.randint(2, 6)):
        if rng.random() < 0.5:
            name, x = rng.choice(sorted(UNARY)), rng.choice(nodes)
            nodes.append(UNARY[name][1 if torch else 0](x))
        else:
            name, a, b = rng.choice(sorted(BINARY)), rng.choice(nodes), rng.choice(nodes)
            if tuple(a.shape) != tuple(b.shape):
                return ("skip",)
            nodes.append(BINARY[name](a, b))
    out = nodes[-1]
    if not out.requires_grad:
        return ("skip",)
    loss = (out * make(data.standard_normal(tuple(out.shape)))).sum()
    with grad_off():
        rng.choice(nodes[:-1]).mul_(1.5)
    try:
        loss.backward()
    except RuntimeError as error:
        assert "modified by an inplace operation" in str(error)
        return ("raise",)
    grads = [None if t.grad is None else (t.grad.numpy() if torch else t.grad.data)
             for t in leaves]
    return ("ok", grads)


@pytest.mark.parametrize("first", range(0, 600, 100))
def test_random_graphs_with_an_in_place_change_match_pytorch(torch, first):
    outcomes = {"raise": 0, "ok": 0, "skip": 0}
    for seed in range(first, first + 100):
        ours, theirs = run(seed), run(seed, torch)
        assert ours[0] == theirs[0], f"seed {seed}: TinyTorch {ours[0]}, PyTorch {theirs[0]}"
        outcomes[ours[0]] += 1
        if ours[0] == "ok":
            for mine, expected in zip(ours[1], theirs[1]):
                if expected is None or mine is None:
                    assert mine is None or not mine.any(), f"seed {seed}"
                    assert expected is None or not expected.any(), f"seed {seed}"
                else:
                    np.testing.assert_allclose(mine, expected, rtol=1e-9, atol=1e-12,
                                               err_msg=f"seed {seed}")
    assert outcomes["raise"] >= 5 and outcomes["ok"] >= 5     # both stories are exercised
