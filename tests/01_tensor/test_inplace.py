"""In-place changes: they keep the tensor, bump its version, and refuse what PyTorch
refuses (a result of another shape or a dtype that cannot hold it). Module 05's tests
check that backward() then refuses gradients of changed values."""
import numpy as np
import pytest

from tinytorch.core.tensor import Tensor


@pytest.mark.parametrize("change, expected", [
    (lambda t: t.add_(1), [2.0, 3.0]),
    (lambda t: t.sub_(Tensor([1.0, 1.0])), [0.0, 1.0]),
    (lambda t: t.mul_(np.array([2.0, 3.0])), [2.0, 6.0]),
    (lambda t: t.div_(2), [0.5, 1.0]),
    (lambda t: t.zero_(), [0.0, 0.0]),
    (lambda t: t.copy_([7.0, 8.0]), [7.0, 8.0]),
])
def test_in_place_methods_change_the_same_array_and_bump_the_version(change, expected):
    t = Tensor([1.0, 2.0])
    array = t.data
    assert change(t) is t
    assert t.data is array and t._version == 1 and t.dtype == np.float32
    np.testing.assert_array_equal(t.data, expected)


def test_operators_and_item_assignment_are_in_place_too():
    t = Tensor([1.0, 2.0, 3.0])
    alias = t
    t += 1
    t *= 2
    t -= 1
    t /= 3
    t[0] = 10
    assert t is alias and t._version == 5
    np.testing.assert_allclose(t.data, [10.0, 5 / 3, 7 / 3], rtol=1e-6)


def test_a_result_of_another_shape_is_refused():
    with pytest.raises(ValueError, match=r"add_: the result would have shape \(2, 2\)"):
        Tensor([1.0, 2.0]).add_(Tensor([[1.0], [2.0]]))


def test_a_float_result_cannot_be_stored_in_an_integer_tensor(torch):
    with pytest.raises(RuntimeError, match="can't be cast"):
        torch.tensor([1, 2]).add_(0.5)
    t = Tensor([1, 2])
    with pytest.raises(TypeError, match="add_: the result would be float32"):
        t += 0.5
    with pytest.raises(TypeError, match="div_"):
        t /= 2
    t += 2                                                   # int + int stays in place
    assert t.data.tolist() == [3, 4] and t._version == 1


def test_a_leaf_that_requires_grad_is_not_changed_in_place_while_recording(torch):
    with pytest.raises(RuntimeError, match="leaf Variable that requires grad"):
        torch.ones(2, requires_grad=True).add_(1)
    w = Tensor([1.0, 2.0], requires_grad=True)
    for change in (lambda: w.add_(1), lambda: w.__iadd__(1), lambda: w.__setitem__(0, 5.0)):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            change()
    assert w.data.tolist() == [1.0, 2.0] and w._version == 0


def test_operator_forms_on_a_recorded_result_rebind_and_mark_the_old_value():
    x = Tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    old = y
    y += 1                          # recorded: y is now a new "add" node on the old y
    assert y is not old and y._op == "add" and y._parents[0] is old
    assert old._version == 1 and old.data.tolist() == [2.0, 4.0]
    with pytest.raises(RuntimeError, match="not recorded"):
        y.add_(1)                   # a method cannot rebind the caller's name: refused


def test_recording_notes_the_versions_of_the_inputs():
    x, w = Tensor([1.0], requires_grad=True), Tensor([2.0])
    w += 1
    y = x * w
    assert y._versions == (0, 1)


def test_a_plain_tensor_plus_equals_a_recorded_result_joins_the_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    total = Tensor([0.0, 0.0])
    total += x * 3                  # as PyTorch: total now depends on x
    assert total.requires_grad and total._op == "add"
