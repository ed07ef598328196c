"""Progressive integration: module 05 plugs into modules 01-04 through Tensor's hook and
changes nothing they compute. Checks that must not see this process's imports run in a
fresh interpreter."""
import json

import numpy as np
import pytest

from tinytorch.core import autograd
from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.autograd import gradcheck, no_grad
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss
from tinytorch.core.tensor import Tensor, autograd_hook


def test_import_loads_exactly_its_closure(loaded_modules):
    # autograd's exported code needs Tensor (01) and the stable sigmoid of 02; its tests
    # also use 03 and 04, which is why graph.toml lists them as deps.
    assert loaded_modules("tinytorch.core.autograd") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.autograd"}


def test_whole_closure_imports_together(loaded_modules):
    # the fixture runs `import sys, <these>` in a fresh interpreter
    assert loaded_modules("tinytorch.core.losses, tinytorch.core.autograd") == {
        "tinytorch.core.tensor", "tinytorch.core.activations", "tinytorch.core.layers",
        "tinytorch.core.losses", "tinytorch.core.autograd"}


# ---- no hidden global state that tests of earlier modules can observe ------------------------

# Forward results of modules 01-04, printed as JSON: exact bytes, dtype, shape, graph flags.
FORWARD_RESULTS = """
import json, sys
import numpy as np
if {import_autograd}:
    import tinytorch.core.autograd as autograd
from tinytorch.core.tensor import Tensor
from tinytorch.core.activations import GELU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from tinytorch.core.layers import Dropout, Linear, Sequential
from tinytorch.core.losses import BinaryCrossEntropyLoss, CrossEntropyLoss, MSELoss

if {use_autograd_first}:           # exercise the engine and grad mode, then compute
    w = Tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with autograd.no_grad():
        w * 3
    with autograd.enable_grad():
        w * 3

rng = np.random.default_rng(0)
x = Tensor(rng.standard_normal((4, 3)), requires_grad=True)
c = Tensor(rng.standard_normal((4, 3)))
model = Sequential(Linear(3, 5, seed=0), ReLU(), Dropout(0.3, seed=1), Linear(5, 2, seed=2))
results = {{
    "add": x + c, "mul_number": x * 2.5, "div": c / (x.abs() + 1), "pow": x ** 2,
    "matmul": x @ c.T, "sum": x.sum(axis=0), "mean": x.mean(), "max": x.max(axis=1, keepdims=True),
    "reshape_transpose": x.reshape(3, 4).transpose(), "getitem": x[[0, 0, 3], 1:],
    "mask": x[x > 0], "exp_log": (x.exp() + 1).log(), "sqrt_clip": x.abs().sqrt().clip(0.2, 1.0),
    "constant_only": c * 2 - 1, "detach": x.detach(), "compare": x > c,
    "relu": ReLU()(x), "sigmoid": Sigmoid()(x * 100), "tanh": Tanh()(x), "gelu": GELU()(x),
    "softmax": Softmax(dim=0)(x), "log_softmax": LogSoftmax()(x),
    "mlp": model(x), "mlp_eval": model.eval()(x),
    "mse": MSELoss()(x, c), "cross_entropy": CrossEntropyLoss()(x, np.array([0, 2, 1, 1])),
    "bce": BinaryCrossEntropyLoss()(x, (c > 0).data.astype(float)),
}}
print(json.dumps({{name: [t.data.tobytes().hex(), str(t.dtype), list(t.shape), t.requires_grad,
                         t._op, t.is_leaf, [p.shape for p in t._parents]]
                  for name, t in results.items()}}))
print(json.dumps(sorted(m for m in sys.modules if m.startswith("tinytorch.core."))))
"""


def forward_results(run_python, import_autograd, use_autograd_first=False):
    out = run_python(FORWARD_RESULTS.format(import_autograd=import_autograd,
                                            use_autograd_first=use_autograd_first))
    results, modules = (json.loads(line) for line in out.splitlines())
    assert ("tinytorch.core.autograd" in modules) == import_autograd
    return results


@pytest.mark.parametrize("use_autograd_first", [False, True], ids=["imported", "imported_and_used"])
def test_forward_results_of_01_to_04_are_bit_identical_with_autograd(run_python,
                                                                     use_autograd_first):
    without = forward_results(run_python, import_autograd=False)
    with_autograd = forward_results(run_python, import_autograd=True,
                                    use_autograd_first=use_autograd_first)
    assert len(without) == 27
    assert with_autograd == without
    assert without["mlp"][3] is True and without["constant_only"][3] is False   # flags compared


def test_backward_before_autograd_is_imported_says_what_to_import(run_python):
    out = run_python("""
        from tinytorch.core.tensor import Tensor, autograd_hook
        assert not autograd_hook.installed
        try:
            (Tensor([1.0], requires_grad=True) * 2).sum().backward()
        except RuntimeError as error:
            print(error)
    """)
    assert "import tinytorch.core.autograd" in out and "module 05" in out


def test_graph_recorded_before_the_import_can_be_differentiated_after_it(run_python):
    out = run_python("""
        import json
        from tinytorch.core.tensor import Tensor
        from tinytorch.core.layers import Linear
        from tinytorch.core.losses import MSELoss
        layer = Linear(2, 1, seed=0)
        x = Tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
        loss = MSELoss()(layer(x), Tensor([[1.0], [0.0]]))
        import tinytorch.core.autograd
        loss.backward()
        print(json.dumps([layer.weight.grad.data.tolist(), layer.bias.grad.data.tolist(),
                          x.grad.shape]))
    """)
    grad_w, grad_b, x_grad_shape = json.loads(out)
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    residual = x @ Linear(2, 1, seed=0).weight.data - np.array([[1.0], [0.0]])
    dpred = 2 * residual / 2                                     # d mean(r^2) / d pred
    np.testing.assert_allclose(grad_w, x.T @ dpred, rtol=1e-5)
    np.testing.assert_allclose(grad_b, dpred.sum(axis=0), rtol=1e-5)
    assert x_grad_shape == [2, 2]


@pytest.mark.export_import
def test_import_installs_the_engine_into_tensors_hook():
    assert autograd_hook.installed
    assert autograd_hook.backward is autograd.backward
    assert autograd_hook.is_grad_enabled is autograd.is_grad_enabled
    with no_grad():
        assert autograd_hook.is_grad_enabled() is False


@pytest.mark.export_import
def test_installing_or_importing_twice_changes_nothing(run_python):
    out = run_python("""
        import importlib, json
        import tinytorch.core.autograd as autograd
        from tinytorch.core.tensor import Tensor, autograd_hook
        from tinytorch.core.losses import CrossEntropyLoss

        def gradient():
            x = Tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], requires_grad=True)
            CrossEntropyLoss()((x * x).exp() / 3, [2, 0]).backward()
            return x.grad.data.tobytes().hex()

        first, rules = gradient(), sorted(autograd.BACKWARD_RULES)
        hook = (autograd_hook.backward, autograd_hook.is_grad_enabled)
        autograd.install()
        same_hook = hook == (autograd_hook.backward, autograd_hook.is_grad_enabled)
        second = gradient()
        import tinytorch.core.autograd                  # a second import is the cached module
        reloaded = importlib.reload(autograd)
        third = gradient()
        with reloaded.no_grad():
            recording_off = not (Tensor([1.0], requires_grad=True) * 2).requires_grad
        print(json.dumps({
            "same_hook": same_hook, "same_grads": first == second == third,
            "same_rules": rules == sorted(reloaded.BACKWARD_RULES),
            "hook_is_reloaded_engine": autograd_hook.backward is reloaded.backward,
            "recording_off": recording_off, "enabled_after": autograd.is_grad_enabled(),
        }))
    """)
    assert json.loads(out) == {"same_hook": True, "same_grads": True, "same_rules": True,
                               "hook_is_reloaded_engine": True, "recording_off": True,
                               "enabled_after": True}


# ---- modules 01-05 working together ------------------------------------------------------------


def test_every_module_of_the_closure_in_one_differentiable_chain(rng):
    # 01 (ops, indexing), 02 (activations), 03 (layers), 04 (loss), 05 (gradients)
    model = Sequential(Linear(4, 6, seed=0), GELU(), Dropout(0.2, seed=5), Linear(6, 3, seed=1))
    x = Tensor(rng.standard_normal((5, 4)), requires_grad=True)

    def loss(*_):
        model[2].rng = np.random.default_rng(5)     # same dropout mask on every call
        h = model(x)
        features = Tanh()(h[:, :2]) * Sigmoid()(h[:, 2:])
        probs = Softmax()(features.reshape(5, 2))
        return CrossEntropyLoss()(probs.log() * 3, np.array([0, 1, 1, 0, 1])) \
            + MSELoss()(LogSoftmax(dim=0)(h).mean(axis=1), Tensor(np.zeros(5))) \
            + BinaryCrossEntropyLoss()(h.T[0], Tensor([1.0, 0.0, 1.0, 1.0, 0.0]))

    params = [x] + model.parameters()
    assert gradcheck(loss, params) < 1e-6
    value = loss()
    value.backward()
    assert np.isfinite(value.item())
    for p in params:
        assert p.grad is not None and p.grad.shape == p.shape and np.abs(p.grad.data).sum() > 0


def test_grad_mode_changes_only_the_graph_not_the_values(rng):
    model = Sequential(Linear(3, 4, seed=0), ReLU(), Linear(4, 2, seed=1))
    x = Tensor(rng.standard_normal((6, 3)))
    recorded = CrossEntropyLoss()(model(x), np.array([0, 1, 1, 0, 1, 0]))
    with no_grad():
        unrecorded = CrossEntropyLoss()(model(x), np.array([0, 1, 1, 0, 1, 0]))
    assert recorded.data.tobytes() == unrecorded.data.tobytes()
    assert recorded.requires_grad and not unrecorded.requires_grad


def test_module_zero_grad_of_03_clears_what_05_accumulated(rng):
    model = Sequential(Linear(3, 2, seed=0))
    x = Tensor(rng.standard_normal((4, 3)))
    MSELoss()(model(x), Tensor(np.zeros((4, 2)))).backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())
