"""The boundary every loss shares: namespaces, devices, imports and purity."""

from __future__ import annotations

import doctest
import math
import pickle
import subprocess
import sys
import textwrap
import warnings

import array_api_compat
import numpy as np
import pytest
from array_api_extra.testing import lazy_xp_function
from support import (
    ATOL,
    CASE_IDS,
    CASES,
    RTOL,
    asarray,
    backend_of,
    child_environment,
    computing_nothing,
    ref_bpr,
    ref_hinge,
    ref_logistic,
    ref_reduce,
    to_numpy,
)

import arraylosses
from arraylosses import (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
)

# PyTorch's forward mode (torch.func.jvp, and hessian through it) scripts its own
# decompositions on first use, which warns of torch.jit.script's deprecation (or,
# on Python 3.14, that it is not supported)
_FORWARD_MODE_SCRIPTS = pytest.mark.filterwarnings(
    "ignore:`torch.jit.script` is (deprecated|not supported):DeprecationWarning"
)
IMPLICIT = (pointwise_loss, bpr_loss, hinge_loss, adaptive_hinge_loss)
EXPLICIT = (regression_loss, poisson_loss, logistic_loss)
# the fewest elements with which PyTorch's logistic loss runs in place, where autograd
# is not watching (checked against the package's own threshold below)
IN_PLACE = 2**15
# from this many elements, PyTorch's masked mean under autograd takes a backward of
# its own (_torch._MaskedTotal)
OWN_MASKED_TOTAL = 2**14
# from this many elements of the negatives, PyTorch's adaptive hinge under autograd
# takes the maximum with a backward of its own (_torch._MaximumSplittingTies)
OWN_MAXIMUM_BACKWARD = 2**14
for _loss in IMPLICIT + EXPLICIT:
    lazy_xp_function(_loss)


def _printed_by_a_fresh_interpreter(script: str) -> list[str]:
    """The lines ``script`` (indented as a test writes it) prints in a new Python that
    imports this arraylosses: for what a process's first call, or its environment,
    decides."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        check=True,
        env=child_environment(),
    )
    return result.stdout.splitlines()


@pytest.fixture(params=[f.__name__ for f in IMPLICIT + EXPLICIT])
def loss(request, xp):  # noqa: ARG001 - requested so its patch comes first
    """Each loss as this module's globals hold it during the test: jitted on JAX,
    compute-refusing on Dask (``xp`` first, so its patch is in place)."""
    return globals()[request.param]


def _arguments(loss, xp, dtype):
    """Valid arguments of ``loss`` in ``xp`` (positive rates suit every explicit loss)."""
    rng = np.random.default_rng(7)
    first = rng.uniform(0.5, 2.0, size=4)
    stacked = loss.__name__ == "adaptive_hinge_loss"
    second = rng.uniform(0.5, 2.0, size=(3, 4) if stacked else 4)
    if loss.__name__ in {f.__name__ for f in EXPLICIT}:
        first = np.round(first)
    return asarray(xp, first, dtype), asarray(xp, second, dtype)


def _each_gradient(gradients):
    """value_and_grad's gradients as a tuple: a pair for the implicit losses, one
    array for the explicit ones."""
    return gradients if isinstance(gradients, tuple) else (gradients,)


def test_public_names():
    # the seven of Spotlight's module and their closed-form gradients, nothing else
    assert sorted(arraylosses.__all__) == sorted(
        [*(f.__name__ for f in IMPLICIT + EXPLICIT), "value_and_grad"]
    )


class TestEveryLoss:
    def test_result_in_the_inputs_namespace_dtype_and_device(self, loss, xp):
        first, second = _arguments(loss, xp, xp.float32)
        result = loss(first, second)
        assert backend_of(
            arraylosses._namespace.array_api_compat.array_namespace(result)
        ) == (backend_of(xp))
        assert result.dtype == xp.float32
        assert tuple(result.shape) == ()
        assert array_api_compat.device(result) == array_api_compat.device(first)
        assert np.isfinite(to_numpy(result))

    def test_computes_on_the_inputs_device(self, loss, xp):
        # off the default device, every result and gradient stays on the inputs'
        # device: a constant made without it (the count's 1, a margin) raises there,
        # as it would on a GPU. array-api-strict's other devices stand in for one.
        # expected: the same call on its default device, to the bit
        if backend_of(xp) != "array_api_strict":
            pytest.skip("array-api-strict is the CPU backend with several devices")
        device = xp.Device("device1")
        first, second = _arguments(loss, xp, xp.float32)
        masks = (
            None,
            asarray(xp, [True, False, True, True], xp.bool),
            asarray(xp, [1.0, 0.0, 2.0, 0.5], xp.float32),
            asarray(xp, [False] * 4, xp.bool),
        )
        with_gradients = arraylosses.value_and_grad(getattr(arraylosses, loss.__name__))
        for mask in masks:
            moved = [
                a if a is None else a.to_device(device) for a in (first, second, mask)
            ]
            for reduction in ("mean", "sum", "none"):
                result = loss(*moved, reduction=reduction)
                assert result.device == device
                expected = loss(first, second, mask, reduction=reduction)
                np.testing.assert_array_equal(to_numpy(result), to_numpy(expected))
            value, gradients = with_gradients(*moved)
            expected_value, expected_gradients = with_gradients(first, second, mask)
            pairs = [
                (value, expected_value),
                *zip(
                    _each_gradient(gradients),
                    _each_gradient(expected_gradients),
                    strict=True,
                ),
            ]
            for actual, expected in pairs:
                assert actual.device == device
                np.testing.assert_array_equal(to_numpy(actual), to_numpy(expected))

    def test_inputs_are_not_modified(self, loss, xp):
        first, second = _arguments(loss, xp, xp.float64)
        mask = asarray(xp, [1.0, 0.0, 2.0, 1.0], xp.float64)
        before = [to_numpy(a).copy() for a in (first, second, mask)]
        for reduction in ("mean", "sum", "none"):
            loss(first, second, mask, reduction=reduction)
        for array, copy in zip((first, second, mask), before, strict=True):
            np.testing.assert_array_equal(to_numpy(array), copy)

    @pytest.mark.parametrize("dtype_name", ["float32", "float64"])
    def test_a_masked_out_nan_changes_no_bit(self, loss, xp, dtype_name):
        # NumPy and PyTorch mask by multiplying the loss's bits by 0 or 1: a NaN under
        # the mask must leave every reduction as it was, and 'none' must hold +0.0 there
        dtype = getattr(xp, dtype_name)
        first, second = _arguments(loss, xp, dtype)
        mask = asarray(xp, [True, False, True, True], xp.bool)
        poisoned = to_numpy(first).copy()
        poisoned[1] = np.nan  # so L is NaN at the masked-out element
        poisoned = asarray(xp, poisoned, dtype)
        for reduction in ("mean", "sum", "none"):
            clean = to_numpy(loss(first, second, mask, reduction=reduction))
            dirty = to_numpy(loss(poisoned, second, mask, reduction=reduction))
            assert np.all(np.isfinite(dirty))
            np.testing.assert_array_equal(dirty, clean)
        assert dirty[1] == 0.0
        assert not np.signbit(dirty[1])

    def test_positional_options_are_refused(self, loss, xp):
        first, second = _arguments(loss, xp, xp.float32)
        with pytest.raises(TypeError, match="positional argument"):
            loss(first, second, None, "sum")
        if backend_of(xp) == "jax":
            return  # jax.jit refuses a str argument itself
        # Spotlight's losses take the mask third, as these do: a reduction passed
        # there is told where it goes
        with pytest.raises(
            TypeError,
            match=r"mask must be an array or None, got str 'sum'; reduction is "
            r"keyword-only: pass reduction='sum'",
        ):
            loss(first, second, "sum")

    def test_arrays_of_two_libraries_are_refused(self, loss, xp):
        if backend_of(xp) == "numpy":
            pytest.skip("the other library here is NumPy itself")
        first, second = _arguments(loss, xp, xp.float32)
        with pytest.raises(
            TypeError, match=r"is a numpy\.ndarray; pass arrays of one library"
        ):
            loss(first, np.asarray(to_numpy(second), dtype=np.float32))

    def test_a_mask_of_another_library_is_refused(self, loss, xp):
        if backend_of(xp) == "numpy":
            pytest.skip("the other library here is NumPy itself")
        first, second = _arguments(loss, xp, xp.float32)
        with pytest.raises(TypeError, match=r"mask is a numpy\.ndarray"):
            loss(first, second, np.ones(4, dtype=bool))

    def test_arrays_on_two_devices_are_refused(self, loss, xp):
        if backend_of(xp) != "array_api_strict":
            pytest.skip("array-api-strict is the CPU backend with several devices")
        first, second = _arguments(loss, xp, xp.float32)
        second = xp.asarray(second, device=xp.Device("device1"))
        with pytest.raises(
            ValueError, match=r"is on device .*CPU_DEVICE.* but .* on device"
        ):
            loss(first, second)


def test_arrays_xp_makes_live_on_the_backends_device(xp, request):
    # torch_cuda and jax_cuda reach the GPU only through the xp fixture's
    # default-device context: were it lost, their tests would all pass on the CPU
    backend = request.node.callspec.params["xp"]
    device = array_api_compat.device(xp.asarray(np.zeros(1)))
    # torch names a device's kind `type`, JAX `platform` ("gpu"), CuPy neither
    described = (
        f"{getattr(device, 'type', '')} {getattr(device, 'platform', '')} {device}"
    ).lower()
    on_a_gpu = "cuda" in described or "gpu" in described
    assert on_a_gpu == (backend in {"cupy", "torch_cuda", "jax_cuda"}), described


def test_two_torch_devices_are_refused():
    torch = pytest.importorskip("torch")
    positive = torch.zeros(3)
    negative = torch.zeros(3, device="meta")  # a second device without a GPU
    with pytest.raises(ValueError, match=r"positive_predictions is on device cpu but "):
        bpr_loss(positive, negative)
    mask = torch.ones(3, dtype=torch.bool, device="meta")
    with pytest.raises(ValueError, match=r"cpu but mask is on device meta"):
        bpr_loss(positive, positive, mask)


def test_jax_arrays_on_one_set_of_devices_mix_as_jax_mixes_them():
    # a sharded array's device is its sharding: two shardings over one set of
    # devices, or an uncommitted array beside a committed one, are what JAX computes
    # with eagerly; arrays committed to different devices are what it refuses, even
    # beside an uncommitted one, and so are two meshes of one set of devices in two
    # orders.
    # expected: the first two accepted with the value of unsharded inputs (by hand:
    # bpr of 1 against 0 is σ(-1)), the others refused naming both placements. Two
    # CPU devices exist only if XLA_FLAGS says so before JAX starts: a subprocess
    pytest.importorskip("jax")
    printed = _printed_by_a_fresh_interpreter(
        """
        import os
        os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
        os.environ["JAX_PLATFORMS"] = "cpu"  # a GPU would be JAX's default device
        import jax, jax.numpy as jnp, numpy as np
        from jax.sharding import Mesh, NamedSharding, PartitionSpec
        from arraylosses import bpr_loss
        first, second = jax.devices()
        mesh = Mesh(np.array([first, second]), ("batch",))
        def put(values, spec):
            return jax.device_put(values, NamedSharding(mesh, spec))
        ones, zeros = np.ones(8, np.float32), np.zeros(8, np.float32)
        positive, negative = put(ones, PartitionSpec("batch")), put(zeros, PartitionSpec("batch"))
        calls = {
            "replicated mask": (positive, negative, put(ones > 0, PartitionSpec())),
            "uncommitted mask": (positive, negative, jnp.ones(8, dtype=bool)),
            "uncommitted beside committed": (jnp.ones(8), jax.device_put(zeros, second), None),
            "mask on one device": (positive, negative, jax.device_put(ones > 0, first)),
            "two devices": (jax.device_put(ones, first), jax.device_put(zeros, second), None),
            "two devices beside an uncommitted one": (
                jnp.ones(8), jax.device_put(zeros, first), jax.device_put(ones > 0, second)
            ),
            "one set of devices in two orders": (
                positive,
                jax.device_put(
                    zeros,
                    NamedSharding(Mesh(np.array([second, first]), ("batch",)), PartitionSpec("batch")),
                ),
                None,
            ),
        }
        for name, arguments in calls.items():
            try:
                print(f"{name}: {float(bpr_loss(*arguments)):.6f}")
            except ValueError as error:
                print(f"{name}: {error}")
        """
    )
    expected = f"{1 / (1 + math.exp(1)):.6f}"
    assert printed == [
        f"replicated mask: {expected}",
        f"uncommitted mask: {expected}",
        f"uncommitted beside committed: {expected}",
        (
            "mask on one device: positive_predictions is on devices cpu:0, cpu:1 "
            "but mask is on device cpu:0; move them to one device"
        ),
        (
            "two devices: positive_predictions is on device cpu:0 but "
            "negative_predictions is on device cpu:1; move them to one device"
        ),
        (
            "two devices beside an uncommitted one: negative_predictions is on "
            "device cpu:0 but mask is on device cpu:1; move them to one device"
        ),
        (
            "one set of devices in two orders: positive_predictions is on devices "
            "cpu:0, cpu:1 but negative_predictions is on devices cpu:1, cpu:0; shard "
            "them over one mesh: JAX computes with one order of devices"
        ),
    ]


@pytest.mark.parametrize("dtype_name", ["float16", "float32"])
def test_a_weak_typed_jax_scalar_takes_the_predictions_dtype(xp, dtype_name):
    # a Python float under jax.jit, or jnp.asarray(0.0), is weak-typed: JAX's own
    # arithmetic gives it the other operand's dtype (the tests run JAX with x64, so
    # unpromoted it would be float64). expected: JAX's own promotion of the two
    if backend_of(xp) not in {"jax", "jax_cuda"}:
        pytest.skip("weak types are JAX's")
    import jax

    scores = xp.asarray([2.0, 0.5, -1.0], dtype=getattr(xp, dtype_name))
    zero = xp.asarray(0.0)
    assert zero.weak_type
    expected = (scores - zero).dtype
    assert expected == scores.dtype
    assert hinge_loss(scores, zero).dtype == expected
    assert adaptive_hinge_loss(zero, xp.stack([scores, scores])).dtype == expected
    assert jax.jit(bpr_loss)(scores, 0.0).dtype == expected
    value, _ = arraylosses.value_and_grad(arraylosses.pointwise_loss)(scores, zero)
    assert value.dtype == expected


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_torch_masks_alike_with_and_without_autograd(reduction):
    # without autograd a mask multiplies the loss's bits; with it, masked_fill selects
    torch = pytest.importorskip("torch")
    first = torch.tensor([0.5, float("nan"), -1.0, 2.0], dtype=torch.float64)
    second = torch.tensor([1.0, 0.5, float("inf"), -0.5], dtype=torch.float64)
    mask = torch.tensor([True, False, False, True])
    # expected: Spotlight's formula in float64 (support.ref_bpr), masked by hand
    elementwise = ref_bpr(
        np.array([0.5, 0.0, 0.0, 2.0]), np.array([1.0, 0.0, 0.0, -0.5])
    )
    elementwise[1:3] = 0.0
    expected = {"mean": elementwise.sum() / 2, "sum": elementwise.sum()}
    plain = bpr_loss(first, second, mask, reduction=reduction)
    with_grad = bpr_loss(
        first.clone().requires_grad_(), second, mask, reduction=reduction
    )
    assert with_grad.requires_grad
    torch.testing.assert_close(with_grad.detach(), plain, rtol=0, atol=0)
    np.testing.assert_allclose(
        plain.numpy(),
        expected.get(reduction, elementwise),
        rtol=1e-14,  # ulps
    )


def _masked_autograd_arguments(loss, torch, dtype, shape=(6, 5)):
    """The two arguments of ``loss``, of ``shape`` (the negatives (3, *shape)), with
    inf (a Poisson rate of 0) and NaN in the masked-out column 1; a bool mask, and
    float weights that are 0 where it is False."""
    generator = torch.Generator().manual_seed(7)
    second_shape = (3, *shape) if loss is adaptive_hinge_loss else shape
    if loss in EXPLICIT:
        first = torch.randint(-1, 6, shape, generator=generator).to(dtype)
        second = 3 * torch.rand(shape, generator=generator, dtype=dtype) + 0.1
    else:
        first = torch.randn(shape, generator=generator, dtype=dtype)
        second = torch.randn(second_shape, generator=generator, dtype=dtype)
    second[..., 0, 1] = 0.0 if loss is poisson_loss else math.inf
    second[..., 1, 1] = math.nan
    mask = torch.ones(shape, dtype=torch.bool)
    mask[:, 1] = False
    mask[2, 3] = False
    weights = torch.rand(shape, generator=generator, dtype=dtype) * mask
    return first, second, mask, weights


@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("weighting", ["mask", "weights"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_masks_under_autograd_as_a_select_does(
    loss, reduction, weighting, dtype_name
):
    # under autograd a mask selects with masked_fill. expected: the bits of the loss
    # selected by torch.where(mask, L, 0) and reduced by hand, and of its gradients
    # and their own gradients (create_graph), where finite: the elementwise
    # derivative × 0 is NaN where that derivative is not, as the mask's
    # documentation says
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    first, second, mask, weights = _masked_autograd_arguments(loss, torch, dtype)
    given = mask if weighting == "mask" else weights

    def selected(*arguments):
        terms = torch.where(mask, loss(*arguments, reduction="none"), 0.0)
        if weighting == "weights":
            terms = terms * weights
        if reduction == "mean":
            return terms.sum() / given.sum()
        return terms.sum() if reduction == "sum" else terms

    # the implicit losses differentiate both arguments; the explicit, the predictions
    arguments = [first.clone(), second.clone()]
    differentiated = arguments if loss in IMPLICIT else arguments[1:]
    for argument in differentiated:
        argument.requires_grad_()
    actual = loss(*arguments, given, reduction=reduction)
    expected = selected(*arguments)
    assert actual.requires_grad
    assert actual.dtype == dtype
    assert bool(torch.isfinite(actual).all()), actual
    assert torch.equal(actual, expected)
    # an elementwise result's incoming gradient inf where masked out (a square root
    # of a row of zeros has one): a select passes back 0 there
    upstream = torch.where(mask, 1.0, math.inf) if actual.ndim else torch.ones(())
    upstream = upstream.to(dtype)
    gradients = [
        torch.autograd.grad(value, differentiated, upstream, create_graph=True)
        for value in (actual, expected)
    ]
    for actual_grad, expected_grad in zip(*gradients, strict=True):
        finite = torch.isfinite(expected_grad)
        assert torch.equal(torch.isfinite(actual_grad), finite)
        assert torch.equal(actual_grad[finite], expected_grad[finite])
    # the second derivatives of the sum of the finite first ones
    finite_sums = [
        sum(torch.where(torch.isfinite(g), g, 0.0).sum() for g in grads)
        for grads in gradients
    ]
    second_gradients = [
        torch.autograd.grad(total, differentiated, allow_unused=True)
        for total in finite_sums
    ]
    for actual_second, expected_second in zip(*second_gradients, strict=True):
        if expected_second is None:
            assert actual_second is None
            continue
        finite = torch.isfinite(expected_second)
        assert torch.equal(actual_second[finite], expected_second[finite])


def _graph_names(tensor):
    """The names of the autograd nodes ``tensor`` was computed through."""
    names, stack = set(), [tensor.grad_fn]
    while stack:
        node = stack.pop()
        if node is not None and node.name() not in names:
            names.add(node.name())
            stack.extend(next_node for next_node, _ in node.next_functions)
    return names


def _through_masked_fill(monkeypatch, torch, compute):
    """``compute()``, once as it runs and once with the masked mean's own backward
    turned off (masked_fill's, tested against a select above)."""
    from arraylosses import _torch

    torch.manual_seed(5)
    actual = compute()
    with monkeypatch.context() as patch:
        patch.setattr(_torch, "_OWN_MASKED_TOTAL_FROM", 2**62)
        torch.manual_seed(5)
        expected = compute()
    return actual, expected


def _assert_same_bits(torch, actual, expected):
    """Each pair of floating tensors alike in type, dtype, shape and bits, signed
    zeros included, where a NaN's own bits may differ between two kernels that make
    one."""
    for actual_part, expected_part in zip(actual, expected, strict=True):
        assert type(actual_part) is type(expected_part)
        assert actual_part.dtype == expected_part.dtype
        assert actual_part.shape == expected_part.shape
        assert torch.equal(actual_part.isnan(), expected_part.isnan())
        integers = getattr(torch, f"int{actual_part.element_size() * 8}")
        assert torch.equal(
            torch.where(actual_part.isnan(), 0, actual_part.view(integers)),
            torch.where(expected_part.isnan(), 0, expected_part.view(integers)),
        )


@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
@pytest.mark.parametrize("dtype_name", ["float16", "float32", "float64"])
def test_torch_large_masked_mean_under_autograd_has_masked_fills_bits(
    monkeypatch, loss, dtype_name
):
    # from OWN_MASKED_TOTAL elements, the masked mean under autograd multiplies the
    # bits of the loss and of its incoming gradient by the mask (half precision's
    # loss is computed in float32). expected: the bits of the value and gradients
    # through masked_fill, with inf and NaN masked out, and an incoming gradient of
    # inf (a square root's at 0)
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    shape = (OWN_MASKED_TOTAL // 8, 8)
    first, second, mask, _ = _masked_autograd_arguments(loss, torch, dtype, shape)

    def compute():
        arguments = [first.clone(), second.clone()]
        differentiated = arguments if loss in IMPLICIT else arguments[1:]
        for argument in differentiated:
            argument.requires_grad_()
        value = loss(*arguments, mask)
        names = _graph_names(value)
        gradients = torch.autograd.grad(value, differentiated, torch.tensor(math.inf))
        return names, (value.detach(), *gradients)

    (names, actual), (_, expected) = _through_masked_fill(monkeypatch, torch, compute)
    assert "_MaskedTotalBackward" in names, names
    _assert_same_bits(torch, actual, expected)


def _masked_hinge_step(torch, mode):
    """The gradients of a masked mean hinge over OWN_MASKED_TOTAL elements, taken in
    one of autograd's ways."""
    from torch._dynamo import compiled_autograd
    from torch.autograd import forward_ad

    torch._dynamo.reset()
    shape = (OWN_MASKED_TOTAL,)
    positive = torch.randn(shape, requires_grad=True)
    negative = torch.randn(shape, requires_grad=True)
    mask = torch.rand(shape) > 0.3
    if mode == "jacobian(vectorize=True)":
        return torch.autograd.functional.jacobian(
            lambda p, n: hinge_loss(p, n, mask), (positive, negative), vectorize=True
        )
    if mode == "hessian":
        return torch.autograd.functional.hessian(
            lambda p: torch.sigmoid(hinge_loss(p, negative, mask)), positive
        ).diagonal()
    value = hinge_loss(positive, negative, mask)
    if mode == "is_grads_batched":
        return torch.autograd.grad(
            value, (positive, negative), torch.randn(3), is_grads_batched=True
        )
    if mode == "torch.func.vmap":
        return torch.func.vmap(
            lambda g: torch.autograd.grad(
                value, (positive, negative), g, retain_graph=True
            )
        )(torch.randn(3))
    if mode == "forward-over-reverse":
        with forward_ad.dual_level():
            seed = forward_ad.make_dual(torch.tensor(1.0), torch.tensor(2.0))
            gradients = torch.autograd.grad(value, (positive, negative), seed)
            return [part for g in gradients for part in forward_ad.unpack_dual(g)]
    compiler = torch.compile(backend="eager", fullgraph=True)
    with compiled_autograd._enable(compiler):
        value.backward()
    return positive.grad, negative.grad


@pytest.mark.parametrize(
    "mode",
    [
        "is_grads_batched",
        "torch.func.vmap",
        "jacobian(vectorize=True)",
        "hessian",
        "forward-over-reverse",
        "compiled-autograd-fullgraph",
    ],
)
@_FORWARD_MODE_SCRIPTS
# compiled autograd's tracing reads a non-leaf's .grad, and warns
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_large_masked_mean_in_autograds_other_modes(monkeypatch, mode):
    # the masked mean's own backward must take operations that a batch of
    # gradients, a recorded graph, a forward-mode tangent and compiled autograd
    # follow. expected: the bits of the same through masked_fill
    torch = pytest.importorskip("torch")
    actual, expected = _through_masked_fill(
        monkeypatch, torch, lambda: _masked_hinge_step(torch, mode)
    )
    _assert_same_bits(torch, actual, expected)


@pytest.mark.parametrize(
    "case", ["written-in-place", "written-through-numpy", "inference-mode", "subclass"]
)
def test_torch_large_masked_mean_keeps_the_mask_it_was_given(monkeypatch, case):
    # found by a review: the masked mean's own backward saved the caller's mask
    # itself, where masked_fill's path saves its negation, a new tensor. A mask
    # written into before the backward pass (a buffer reused for the next
    # micro-batch) raised, or, written through NumPy, changed the gradient; one
    # made under inference_mode could not be saved; a subclass's made the result a
    # subclass's view, which the mean's division in place refused. expected: the
    # bits through masked_fill, from the mask as it was at the call
    torch = pytest.importorskip("torch")

    class Tagged(torch.Tensor):  # as libraries of named or tagged tensors make them
        @classmethod
        def __torch_function__(cls, func, types, args=(), kwargs=None):
            return super().__torch_function__(func, types, args, kwargs or {})

    def compute():
        generator = torch.Generator().manual_seed(2)
        shape = (OWN_MASKED_TOTAL,)
        positive = torch.randn(shape, generator=generator).requires_grad_()
        negative = torch.randn(shape, generator=generator).requires_grad_()
        drawn = np.random.default_rng(0).random(shape) > 0.3
        if case == "inference-mode":
            with torch.inference_mode():
                mask = torch.from_numpy(drawn.copy())
        else:
            mask = torch.from_numpy(drawn.copy())
        if case == "subclass":
            mask = mask.as_subclass(Tagged)
        value = hinge_loss(positive, negative, mask)
        if case == "written-in-place":
            mask.fill_(True)
        elif case == "written-through-numpy":
            # the buffer torch.from_numpy shares: a write there bumps no version
            # counter autograd could check
            mask.numpy()[:] = np.random.default_rng(1).random(shape) > 0.5
        return (value.detach(), *torch.autograd.grad(value, (positive, negative)))

    actual, expected = _through_masked_fill(monkeypatch, torch, compute)
    _assert_same_bits(torch, actual, expected)


def test_torch_large_masked_mean_refuses_a_mask_unpacked_as_floats(monkeypatch):
    # found by a review: a hook on saved tensors that unpacks the bool mask as floats
    # made the bits' product floats, read back as a gradient of 10^9. expected: a
    # RuntimeError from both paths (masked_fill's and where()'s refusal of a mask
    # that is not bool)
    torch = pytest.importorskip("torch")

    def compute():
        loss = torch.randn(OWN_MASKED_TOTAL, requires_grad=True)
        mask = torch.ones(OWN_MASKED_TOTAL, dtype=torch.bool)
        unpack_as_floats = lambda tensor: tensor.to(torch.float32)
        with torch.autograd.graph.saved_tensors_hooks(lambda x: x, unpack_as_floats):
            value = hinge_loss(loss, torch.zeros(OWN_MASKED_TOTAL), mask)
        with pytest.raises(RuntimeError, match="bool"):
            torch.autograd.grad(value, loss)
        return ()

    _through_masked_fill(monkeypatch, torch, compute)


@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_all_padding_mean_passes_back_zeros_through_a_square_root(loss, framework):
    # the root of a masked mean over an all-padding batch (0, by the contract) has an
    # infinite derivative there. expected: zero gradients all the same, from
    # PyTorch's autograd and jax.grad, as a select passes back 0 whatever comes in (a
    # product with the mask would pass back inf · 0 = NaN, and poison the training
    # run the contract keeps clean)
    lib = pytest.importorskip(framework)
    generator = np.random.default_rng(3)
    shape = (4, 3)
    second_shape = (2, *shape) if loss is adaptive_hinge_loss else shape
    if loss in EXPLICIT:
        first = generator.integers(1, 6, shape)
    else:
        first = generator.standard_normal(shape)
    second = generator.uniform(0.5, 2.0, second_shape)
    if framework == "torch":
        first, second = lib.asarray(first), lib.asarray(second).requires_grad_()
        padding = lib.zeros(shape, dtype=lib.bool)
        root_mean = lib.sqrt(loss(first, second, padding))
        (gradient,) = lib.autograd.grad(root_mean, second)
        root_mean = root_mean.detach()
    else:
        import jax.numpy as jnp

        first, second = jnp.asarray(first), jnp.asarray(second)
        padding = jnp.zeros(shape, dtype=bool)
        root_mean = jnp.sqrt(loss(first, second, padding))
        gradient = lib.grad(lambda x: jnp.sqrt(loss(first, x, padding)))(second)
    assert float(root_mean) == 0.0
    assert gradient.shape == second_shape
    np.testing.assert_array_equal(np.asarray(gradient), np.zeros(second_shape))


def test_torch_adds_either_zero_margin_as_a_float_would():
    # PyTorch adds a margin from a cache of 0-d tensors, where 0.0 and -0.0 would be
    # one dictionary key; yet -0.0 + -0.0 is -0.0 and -0.0 + 0.0 is 0.0
    torch = pytest.importorskip("torch")
    positive = torch.zeros(2)
    negative = torch.tensor([-0.0, 1.0])
    for margin in (0.0, -0.0, 0.0):
        # expected: PyTorch's relu of the sum with the margin as a Python float
        expected = torch.relu(negative - positive + margin)
        actual = hinge_loss(positive, negative, reduction="none", margin=margin)
        assert torch.equal(torch.signbit(actual), torch.signbit(expected)), margin
        assert torch.equal(actual, expected)


def test_margins_stay_right_past_the_cache_of_them(xp):
    # NumPy and PyTorch keep each margin as a 0-d array, 64 at most, then start
    # afresh: a schedule of 100 margins goes past that. expected: Spotlight's
    # formula in float64 (support.ref_hinge) with each margin
    if backend_of(xp) not in {"numpy", "torch"}:
        pytest.skip("only NumPy and PyTorch keep margins")
    first, second = _arguments(hinge_loss, xp, xp.float64)
    first_np, second_np = to_numpy(first), to_numpy(second)
    for step in range(100):
        margin = step / 40
        np.testing.assert_allclose(
            to_numpy(hinge_loss(first, second, reduction="none", margin=margin)),
            ref_hinge(first_np, second_np, margin),
            rtol=1e-15,
        )


@pytest.mark.parametrize("loss", EXPLICIT, ids=lambda loss: loss.__name__)
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
@pytest.mark.parametrize("size", [7, 4096, IN_PLACE])
@pytest.mark.parametrize("grad", [False, True], ids=["plain", "autograd"])
def test_torch_explicit_losses_have_the_bits_of_spotlights_expressions(
    loss, reduction, dtype_name, size, grad
):
    # PyTorch computes these with ATen's own losses, in-place steps where autograd
    # allows and a cached count for the mean; expected: the same bits as Spotlight's
    # expression reduced by torch.mean or torch.sum, and autograd's gradient of it.
    # Poisson's expression is PyTorch's one-kernel spelling of Spotlight's, which may
    # round once where Spotlight's rounds twice (the next test bounds the difference)
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(size)
    observed = torch.randint(-1, 6, (size,), generator=generator).to(dtype)
    predicted = 4 * torch.rand(size, generator=generator, dtype=dtype) + 0.1
    predicted.requires_grad_(grad)
    reduce = {"mean": torch.mean, "sum": torch.sum, "none": lambda x: x}[reduction]
    # Spotlight's expressions in PyTorch (spotlight/losses.py), unreduced
    expression = {
        regression_loss: lambda y, y_hat: (y - y_hat) ** 2,
        poisson_loss: lambda y, y_hat: torch.addcmul(
            y_hat, y, torch.log(y_hat), value=-1
        ),
        logistic_loss: lambda y, x: (
            torch.nn.functional.binary_cross_entropy_with_logits(
                x, torch.clamp(y, 0, 1), reduction="none"
            )
        ),
    }[loss]
    expected = reduce(expression(observed, predicted))
    actual = loss(observed, predicted, reduction=reduction)
    assert actual.requires_grad == grad
    assert torch.equal(actual.detach(), expected.detach())
    if grad:
        (expected_grad,) = torch.autograd.grad(expected.sum(), predicted)
        (actual_grad,) = torch.autograd.grad(actual.sum(), predicted)
        assert torch.equal(actual_grad, expected_grad)


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_poisson_rounds_no_worse_than_spotlights_expression(dtype_name):
    # PyTorch's Poisson loss takes ŷ - y·log ŷ in one kernel, which rounds once where
    # the CPU fuses multiply-add. expected: each term differs from Spotlight's
    # expression by at most the two roundings the expression adds (an ulp of the
    # product and one of the term), and lies at least as close as it to the exact
    # ŷ - y·log ŷ of the same rounded log ŷ, taken in float64 (whose 53 bits hold the
    # product of two float32 exactly)
    torch = pytest.importorskip("torch")
    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(1)
    observed = torch.randint(0, 40, (10_000,), generator=generator).to(dtype)
    predicted = 8 * torch.rand(10_000, generator=generator, dtype=dtype) + 1e-3
    actual = poisson_loss(observed, predicted, reduction="none")
    log_rate = torch.log(predicted)
    product = observed * log_rate
    spotlights = predicted - product

    def ulp(x):  # the spacing above |x|, the wider of the two beside it
        magnitude = x.abs()
        return torch.nextafter(magnitude, torch.full_like(x, math.inf)) - magnitude

    assert bool(
        torch.all((actual - spotlights).abs() <= ulp(product) + ulp(spotlights))
    )
    if dtype == torch.float32:
        exact = predicted.double() - observed.double() * log_rate.double()
        actual_error = (actual.double() - exact).abs()
        assert bool(torch.all(actual_error <= (spotlights.double() - exact).abs()))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_torch_logistic_runs_in_place_from_in_place_elements(reduction):
    # the size the tests of the in-place loss take; expected: ATen's cross-entropy
    # one element below it, and from it the composition written into the clamp's
    # buffer (addcmul's out=), each as its ATen operations show
    torch = pytest.importorskip("torch")
    from torch.utils._python_dispatch import TorchDispatchMode

    operations: list[str] = []

    class Record(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            operations.append(str(func))
            return func(*args, **(kwargs or {}))

    for size, in_place in ((IN_PLACE - 1, False), (IN_PLACE, True)):
        operations.clear()
        observed, logit = torch.ones(size), torch.zeros(size)
        with Record():
            logistic_loss(observed, logit, reduction=reduction)
        assert ("aten.addcmul.out" in operations) is in_place, (size, operations)
        cross_entropy = "aten.binary_cross_entropy_with_logits.default"
        assert (cross_entropy in operations) is not in_place, (size, operations)


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_torch_logistic_in_place_stays_close_for_fractional_observations(reduction):
    # from IN_PLACE elements without autograd, PyTorch's logistic loss takes x - x·z
    # for ATen's (1 - z)·x, which differ by rounding where 0 < z < 1. expected:
    # Spotlight's formula in float64 (support.ref_logistic), to float32's tolerance
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(2)
    observed = 3 * torch.rand(IN_PLACE, generator=generator) - 1  # a third in (0, 1)
    logit = 20 * torch.rand(IN_PLACE, generator=generator) - 10
    actual = logistic_loss(observed, logit, reduction=reduction)
    expected = ref_reduce(
        ref_logistic(observed.double().numpy(), logit.double().numpy()), None, reduction
    )
    np.testing.assert_allclose(
        actual.numpy(), expected, rtol=RTOL["float32"], atol=ATOL["float32"]
    )


def test_torch_logistic_takes_observations_that_carry_gradients():
    # from IN_PLACE elements PyTorch's logistic loss runs in place where nothing carries
    # gradients; observations that do take ATen's loss. expected: the gradients of
    # Spotlight's expression (spotlight/losses.py) in PyTorch, to the bit
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(3)
    logit = torch.randn(IN_PLACE, generator=generator)
    observed = torch.rand(IN_PLACE, generator=generator).requires_grad_()
    expected_observed = observed.detach().clone().requires_grad_()
    actual = logistic_loss(observed, logit)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(
        logit, torch.clamp(expected_observed, 0, 1)
    )
    assert torch.equal(actual.detach(), expected.detach())
    actual.backward()
    expected.backward()
    assert torch.equal(observed.grad, expected_observed.grad)


def _ties_and_nans(torch, dtype, shape):
    """Negatives of ``shape`` whose columns' maxima tie among 1 to 3 rows, with a
    NaN, signed zeros and an infinity among them, and a gradient of the maxima's
    shape with 0, -0, inf and NaN among its values."""
    generator = torch.Generator().manual_seed(11)
    columns = math.prod(shape[1:])
    # integers in [-2, 2]: at 5 rows, most columns' maxima tie
    negatives = torch.randint(-2, 3, shape, generator=generator).to(dtype)
    flat = negatives.view(shape[0], columns)
    flat[:, 0] = -0.0
    flat[1, 1] = math.nan
    flat[2, 2] = math.inf
    gradient = torch.randn(shape[1:], generator=generator, dtype=dtype)
    gradient.view(columns)[3:7] = torch.tensor([0.0, -0.0, math.inf, math.nan])
    return negatives, gradient


@pytest.mark.parametrize("dtype_name", ["float16", "bfloat16", "float32", "float64"])
@pytest.mark.parametrize("create_graph", [False, True], ids=["backward", "double"])
def test_torch_maximum_over_negatives_has_the_gradient_bits_of_amax(
    dtype_name, create_graph
):
    # from OWN_MAXIMUM_BACKWARD elements of up to 256 negatives, under plain
    # autograd, the maximum takes a backward of its own, which ATen's amax would
    # convert a bool mask twice in. expected: the bits of the gradient of
    # torch.amax(x, 0) itself (the peer's function), at ties, a NaN column,
    # signed zeros and non-finite incoming gradients; and a second backward
    # (create_graph=True) through it, as through amax
    torch = pytest.importorskip("torch")
    from arraylosses import _torch

    dtype = getattr(torch, dtype_name)
    for shape, own in (
        ((5, OWN_MAXIMUM_BACKWARD // 5 + 1), True),
        ((4, 4, OWN_MAXIMUM_BACKWARD // 16), True),
        ((256, OWN_MAXIMUM_BACKWARD // 256), True),
        ((5, OWN_MAXIMUM_BACKWARD // 5 - 1), False),
        ((257, OWN_MAXIMUM_BACKWARD // 256), False),
    ):
        negatives, gradient = _ties_and_nans(torch, dtype, shape)
        gradient.requires_grad_(create_graph)
        ours_input = negatives.clone().requires_grad_()
        amax_input = negatives.clone().requires_grad_()
        highest = _torch.max_over_first_axis(ours_input)
        assert ("MaximumSplittingTies" in highest.grad_fn.name()) is own, shape
        expected_highest = torch.amax(amax_input, 0)
        assert torch.equal(highest.view(-1)[3:], expected_highest.view(-1)[3:])
        (actual,) = torch.autograd.grad(
            highest, ours_input, gradient, create_graph=create_graph
        )
        (expected,) = torch.autograd.grad(
            expected_highest, amax_input, gradient, create_graph=create_graph
        )
        _assert_same_bits(torch, (actual,), (expected,))
        assert int(expected.isnan().sum()) > 0
        if create_graph:
            weight = torch.randn(shape, generator=torch.Generator().manual_seed(1))
            (second,) = torch.autograd.grad(
                (actual.nan_to_num() * weight.to(dtype)).sum(), gradient
            )
            (expected_second,) = torch.autograd.grad(
                (expected.nan_to_num() * weight.to(dtype)).sum(), gradient
            )
            assert torch.equal(second.nan_to_num(), expected_second.nan_to_num()), shape


@pytest.mark.parametrize(
    "mapping", ["is_grads_batched", "torch.func.vmap", "jacobian(vectorize=True)"]
)
def test_torch_maximum_over_negatives_maps_batches_of_gradients(mapping):
    # a backward pass mapped over a batch of incoming gradients, by PyTorch's older
    # vmap (the first and last) or torch.func's, has no batching rule for out=,
    # which the maximum's own backward writes with. expected: the bits of the
    # same mapping over torch.amax(x, 0)'s backward
    torch = pytest.importorskip("torch")
    from arraylosses import _torch

    negatives, _ = _ties_and_nans(torch, torch.float32, (5, OWN_MAXIMUM_BACKWARD // 4))
    negatives.requires_grad_()
    gradients = torch.randn(3, OWN_MAXIMUM_BACKWARD // 4)

    def mapped(maximum):
        if mapping == "jacobian(vectorize=True)":
            return torch.autograd.functional.jacobian(
                lambda x: maximum(x)[:6], negatives.detach(), vectorize=True
            )
        highest = maximum(negatives)
        if mapping == "is_grads_batched":
            return torch.autograd.grad(
                highest, negatives, gradients, is_grads_batched=True
            )[0]
        return torch.func.vmap(
            lambda g: torch.autograd.grad(highest, negatives, g, retain_graph=True)[0]
        )(gradients)

    actual = mapped(_torch.max_over_first_axis)
    expected = mapped(lambda x: torch.amax(x, 0))
    _assert_same_bits(torch, (actual,), (expected,))


def _permuted_negatives_bias_gradient(torch, maximum):
    # negatives permuted from a (64, 64, 5) model output with a bias: the bias's
    # gradient sums the negatives' gradient, in the order of that gradient's layout
    generator = torch.Generator().manual_seed(1)
    scores = torch.randn(64, 64, 5, generator=generator)
    bias = torch.randn(64, 1, 1, generator=generator).requires_grad_()
    seed = torch.rand(64, 64, generator=generator)
    highest = maximum((scores + bias).permute(2, 1, 0))
    return torch.autograd.grad(highest, bias, seed)[0]


def _dual_seed_gradient(torch, maximum):
    from torch.autograd import forward_ad

    negatives = torch.randn(4, OWN_MAXIMUM_BACKWARD // 4, requires_grad=True)
    highest = maximum(negatives)
    with forward_ad.dual_level():
        seed = forward_ad.make_dual(
            torch.ones(highest.shape), torch.ones(highest.shape)
        )
        (gradient,) = torch.autograd.grad(highest, negatives, seed)
        return torch.stack(forward_ad.unpack_dual(gradient))


def _compiled_autograd_gradient(torch, maximum):
    from torch._dynamo import compiled_autograd

    torch._dynamo.reset()
    negatives = torch.randn(4, OWN_MAXIMUM_BACKWARD // 4, requires_grad=True)
    compiler = torch.compile(backend="eager", fullgraph=True)
    with compiled_autograd._enable(compiler):
        maximum(negatives).sum().backward()
    return negatives.grad


def _saved_in_half_precision_gradient(torch, maximum):
    negatives = torch.randn(4, OWN_MAXIMUM_BACKWARD // 4, requires_grad=True)
    pack = lambda tensor: tensor.to(torch.float16)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        highest = maximum(negatives)
    return torch.autograd.grad(highest, negatives, torch.randn(highest.shape))[0]


@pytest.mark.parametrize(
    "gradient",
    [
        _permuted_negatives_bias_gradient,
        _dual_seed_gradient,
        _compiled_autograd_gradient,
        _saved_in_half_precision_gradient,
    ],
    ids=[
        "permuted-negatives",
        "forward-over-reverse",
        "compiled-autograd-fullgraph",
        "saved-tensors-hooks-float16",
    ],
)
@_FORWARD_MODE_SCRIPTS
# compiled autograd's tracing reads a non-leaf's .grad, amax's as ours, and warns
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf")
def test_torch_maximum_over_negatives_in_autograds_other_modes(gradient):
    # found by a review: ATen's gradient of amax has the layout its kernels choose
    # (a permuted input's differs from the input's own, and a sum over it rounds
    # accordingly); a seed with a forward-mode tangent refuses out=; compiled
    # autograd under fullgraph traces the backward and refuses a C test Dynamo
    # cannot trace; a hook may unpack the saved input in another dtype than the
    # gradient's. expected: the bits of the same with torch.amax(x, 0)
    torch = pytest.importorskip("torch")
    from arraylosses import _torch

    torch.manual_seed(3)
    actual = gradient(torch, _torch.max_over_first_axis)
    torch.manual_seed(3)
    expected = gradient(torch, lambda x: torch.amax(x, 0))
    assert actual.stride() == expected.stride()
    _assert_same_bits(torch, (actual,), (expected,))


def test_torch_adaptive_hinge_under_autograd_splits_ties_as_amax_does():
    # the whole loss, weighted, at a size that takes the maximum's own backward, on
    # integer scores whose maxima often tie. expected: Spotlight's expression with
    # torch.amax for the maximum, whose autograd splits a tie's gradient evenly;
    # Spotlight's own torch.max(x, 0), which gives it all to one negative, differs
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(5)
    columns = OWN_MAXIMUM_BACKWARD // 4
    negatives = torch.randint(-3, 4, (5, columns), generator=generator).float()
    positive = torch.randint(-3, 4, (columns,), generator=generator).float()
    weights = torch.rand(columns, generator=generator)

    def gradients(maximum):
        inputs = [positive.clone().requires_grad_(), negatives.clone().requires_grad_()]
        if maximum is None:
            value = adaptive_hinge_loss(*inputs, weights, margin=0.5)
        else:
            hinge = torch.clamp(maximum(inputs[1]) - inputs[0] + 0.5, min=0)
            value = (hinge * weights).sum() / weights.sum()
        return value, torch.autograd.grad(value, inputs)

    value, actual = gradients(None)
    expected_value, expected = gradients(lambda x: torch.amax(x, 0))
    torch.testing.assert_close(value, expected_value, rtol=1e-6, atol=0)
    for actual_part, expected_part in zip(actual, expected, strict=True):
        torch.testing.assert_close(actual_part, expected_part, rtol=1e-6, atol=1e-12)
    _, spotlights = gradients(lambda x: torch.max(x, 0)[0])
    assert not torch.allclose(actual[1], spotlights[1])


@pytest.mark.parametrize("size", [6, IN_PLACE])
def test_torch_losses_map_over_a_batch_axis_with_torch_func_vmap(size):
    # torch.func.vmap has no batching rule for ATen's out= calls, which PyTorch's
    # Poisson loss and large logistic loss write in place. expected: the loss of each
    # row on its own (the same code, unbatched); vmap's own batched cross-entropy may
    # round the logistic mean differently, by an ulp
    torch = pytest.importorskip("torch")
    func = pytest.importorskip("torch.func")
    vmap, grad = func.vmap, func.grad
    generator = torch.Generator().manual_seed(size)
    first = torch.rand(3, size, generator=generator) + 0.1
    second = torch.rand(3, size, generator=generator) + 0.1
    for loss in (pointwise_loss, bpr_loss, hinge_loss, *EXPLICIT):
        mapped = vmap(loss)(first, second)
        rows = torch.stack([loss(a, b) for a, b in zip(first, second, strict=True)])
        torch.testing.assert_close(mapped, rows, rtol=1e-6, atol=0)
        # and its gradients, against autograd's of each row, to float32's rounding of
        # gradients of the size of 1 / size (the mean's), which vmap's batched
        # kernels round in an order of their own
        mapped = vmap(grad(loss, argnums=1))(first, second)
        rows = torch.stack(
            [
                _autograd_of_second(loss, a, b)
                for a, b in zip(first, second, strict=True)
            ]
        )
        torch.testing.assert_close(mapped, rows, rtol=1e-6, atol=1e-6 / size)


@pytest.mark.parametrize("size", [6, IN_PLACE])
def test_torch_func_transforms_of_the_losses_compile(size):
    # Dynamo traces out= calls under torch.func's transforms as errors no code can
    # catch, and hides requires_grad from the function grad() wraps: compiled, the
    # Poisson and logistic losses take their plain forms. expected: the same
    # transforms run eagerly (tested against autograd row by row above)
    torch = pytest.importorskip("torch")
    func = pytest.importorskip("torch.func")
    generator = torch.Generator().manual_seed(size)
    first = torch.rand(3, size, generator=generator) + 0.1
    second = torch.rand(3, size, generator=generator) + 0.1
    for transformed in (
        func.vmap(poisson_loss),
        func.vmap(logistic_loss),
        func.vmap(func.grad(logistic_loss, argnums=1)),
    ):
        compiled = torch.compile(transformed, fullgraph=True, backend="aot_eager")
        torch.testing.assert_close(
            compiled(first, second), transformed(first, second), rtol=1e-6, atol=0
        )


@_FORWARD_MODE_SCRIPTS
@pytest.mark.parametrize("size", [6, IN_PLACE])
@pytest.mark.parametrize("weights", ["none", "bool", "float"])
def test_torch_forward_mode_derivatives_are_reverse_modes(size, weights):
    # forward mode (torch.func.jvp) marks no tensor as requiring grad, and neither a
    # bit view of a mask's product nor x.mul_(x) carries its tangent. expected: the
    # directional derivative from reverse mode, grad · tangent
    torch = pytest.importorskip("torch")
    func = pytest.importorskip("torch.func")
    generator = torch.Generator().manual_seed(size)
    first = torch.rand(size, generator=generator, dtype=torch.float64) + 0.5
    second = torch.rand(size, generator=generator, dtype=torch.float64) + 0.5
    negatives = torch.stack([second, first.flip(0), second + 0.25])
    tangent = torch.randn(size, generator=generator, dtype=torch.float64)
    mask = {
        "none": None,
        "bool": torch.rand(size, generator=generator) > 0.4,
        "float": torch.rand(size, generator=generator, dtype=torch.float64),
    }[weights]
    for loss in IMPLICIT + EXPLICIT:
        other = negatives if loss is adaptive_hinge_loss else second
        for reduction in ("mean", "sum"):

            def of_first(x, loss=loss, other=other, reduction=reduction):
                return loss(x, other, mask, reduction=reduction)

            _, derivative = func.jvp(of_first, (first,), (tangent,))
            expected = torch.dot(func.grad(of_first)(first), tangent)
            torch.testing.assert_close(
                derivative, expected, rtol=1e-12, atol=0, msg=loss.__name__
            )


def test_torch_compiled_forward_mode_transforms():
    # torch.compile of a forward-mode transform of ATen's addcmul (the fused
    # ŷ - y·log ŷ of the Poisson loss) crashes the interpreter in PyTorch 2.13, so
    # the compiled loss must not call it: a fresh interpreter keeps a crash out of
    # this one. expected: the eager transforms' derivatives
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        """
        import torch
        from arraylosses import poisson_loss, regression_loss
        observed = torch.tensor([1.0, 0.0, 2.0, 3.0])
        rate = torch.tensor([0.5, 1.2, 2.0, 0.7])
        tangent = torch.tensor([1.0, -1.0, 0.5, 2.0])
        for loss in (poisson_loss, regression_loss):
            def of_rate(x, loss=loss):
                return loss(observed, x)
            def directional(x, of_rate=of_rate):
                return torch.func.jvp(of_rate, (x,), (tangent,))[1]
            for transform in (torch.func.jacfwd(of_rate), directional):
                compiled = torch.compile(transform, backend="aot_eager")
                print(torch.allclose(compiled(rate), transform(rate), atol=0))
        """
    )
    assert printed == ["True"] * 4


def test_torch_func_linearize_of_the_losses():
    # torch.func.linearize records forward mode with make_fx, where PyTorch 2.13
    # crashes the interpreter on addcmul's value=-1 (the Poisson loss's fused
    # ŷ - y·log ŷ): a fresh interpreter keeps a crash out of this one. expected: the
    # loss's own value (eager: torch.func.jvp's may differ in its last bit, as it does
    # for torch.nn.functional's cross-entropy) and jvp's directional derivative, to
    # the bit
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        """
        import warnings
        import torch
        import arraylosses
        generator = torch.Generator().manual_seed(5)
        first = torch.rand(6, generator=generator, dtype=torch.float64) + 0.5
        second = torch.rand(6, generator=generator, dtype=torch.float64) + 0.5
        tangent = torch.randn(6, generator=generator, dtype=torch.float64)
        for name in arraylosses.__all__:
            loss = getattr(arraylosses, name)
            if not name.endswith("_loss"):
                continue
            other = torch.stack([second, first]) if name == "adaptive_hinge_loss" else second
            def of_first(x, loss=loss, other=other):
                return loss(x, other)
            with warnings.catch_warnings():  # PyTorch's constant folding warns
                warnings.simplefilter("ignore", UserWarning)
                value, linear = torch.func.linearize(of_first, first)
                derivative = linear(tangent)
            expected = torch.func.jvp(of_first, (first,), (tangent,))[1]
            print(name, torch.equal(value, of_first(first)), torch.equal(derivative, expected))
        """
    )
    losses = [name for name in arraylosses.__all__ if name.endswith("_loss")]
    assert printed == [f"{name} True True" for name in losses]


@pytest.mark.parametrize("tracer", ["make_fx, symbolic", "torch.jit.trace"])
def test_torch_traced_losses_take_other_sizes(tracer):
    # tracers whose graphs serve other sizes: make_fx with symbolic sizes, and
    # torch.jit.trace, which records sizes as operations but plain tensors a call
    # makes as constants: a count made once for the mean would divide the sum of
    # every later size. expected: the graph traced with 8 elements, run on 12, gives
    # the eager loss of the 12 (the masked mean's count is the mask's)
    torch = pytest.importorskip("torch")
    from torch.fx.experimental.proxy_tensor import make_fx

    def inputs(size):
        generator = torch.Generator().manual_seed(size)
        first, second = torch.rand(2, size, generator=generator) + 0.5
        return first, second, torch.rand(size, generator=generator) > 0.3

    def with_mask(loss, **options):
        return lambda a, b, m: loss(a, b, m, **options)

    def without_mask(loss, **options):
        return lambda a, b, m: loss(a, b, **options)  # noqa: ARG005 - traced with three

    calls = [
        *(without_mask(loss) for loss in (pointwise_loss, bpr_loss, *EXPLICIT)),
        without_mask(hinge_loss, margin=0.5),
        lambda a, b, m: adaptive_hinge_loss(a, torch.stack([b, a - 0.25]), m),
        *(with_mask(loss) for loss in (bpr_loss, *EXPLICIT)),
    ]
    for call in calls:
        with warnings.catch_warnings():  # torch.jit.trace warns of Python values
            warnings.simplefilter("ignore")
            if tracer == "make_fx, symbolic":
                traced = make_fx(call, tracing_mode="symbolic")(*inputs(8))
            else:
                traced = torch.jit.trace(call, inputs(8), check_trace=False)
            actual = traced(*inputs(12))
        assert torch.equal(actual, call(*inputs(12)))


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
def test_torch_export_takes_any_batch_size(strict):
    # torch.export traces with a symbolic batch size, and any test of it in the
    # losses' Python (the logistic loss's in-place threshold was one) would bound
    # the sizes the program takes. expected: a program exported at 8 elements with
    # an unbounded batch dimension gives the eager loss at 2 * IN_PLACE elements
    # (the logistic loss to float32's rounding: eagerly it runs in place there)
    torch = pytest.importorskip("torch")

    def inputs(size):
        generator = torch.Generator().manual_seed(size)
        first, second = torch.rand(2, size, generator=generator) + 0.5
        negatives = torch.stack([second, first - 0.25])
        return first, second, negatives, torch.rand(size, generator=generator) > 0.3

    calls = {
        "bpr": lambda a, b, n, m: bpr_loss(a, b),  # noqa: ARG005
        "adaptive_hinge": lambda a, b, n, m: adaptive_hinge_loss(a, n, m),  # noqa: ARG005
        "regression": lambda a, b, n, m: regression_loss(a, b),  # noqa: ARG005
        "masked regression": lambda a, b, n, m: regression_loss(a, b, m),  # noqa: ARG005
        "logistic": lambda a, b, n, m: logistic_loss(a, b),  # noqa: ARG005
    }
    batch = torch.export.Dim("batch")
    shapes = ({0: batch}, {0: batch}, {1: batch}, {0: batch})
    for name, call in calls.items():

        class Loss(torch.nn.Module):
            def forward(self, a, b, n, m, call=call):
                return call(a, b, n, m)

        program = torch.export.export(
            Loss(), inputs(8), dynamic_shapes=shapes, strict=strict
        )
        larger = inputs(2 * IN_PLACE)
        torch.testing.assert_close(
            program.module()(*larger), call(*larger), rtol=1e-6, atol=0, msg=name
        )


@pytest.mark.parametrize("strict", [False, True], ids=["non-strict", "strict"])
@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
def test_torch_export_batch_dimension_beside_broadcast_arguments(loss, strict):
    # a (T,) first argument, mask or weights broadcast against (B, T) arguments with
    # a symbolic B: a shape compared item by item with one of another rank would
    # compare B with T, and non-strict tracing (torch.export's default) would then
    # specialise the program to B != T. expected: a program exported at B = 6 gives
    # the eager loss at B = T = 4 and at B = 9
    torch = pytest.importorskip("torch")
    width = 4

    def inputs(batch, broadcast):
        generator = torch.Generator().manual_seed(batch)
        first, second = torch.rand(2, batch, width, generator=generator) + 0.5
        if loss is adaptive_hinge_loss:
            second = torch.stack([second, first - 0.25])
        mask = None
        if broadcast == "first":
            first = first[0]
        elif broadcast == "bool mask":
            mask = torch.tensor([True, False, True, True])
        else:
            mask = torch.tensor([1.0, 0.0, 2.0, 0.5])
        return first, second, mask

    batch = torch.export.Dim("batch", min=2)
    second_dims = {1: batch} if loss is adaptive_hinge_loss else {0: batch}
    for broadcast in ("first", "bool mask", "weights"):
        first_dims = None if broadcast == "first" else {0: batch}
        for reduction in ("mean", "sum", "none"):

            class Loss(torch.nn.Module):
                def forward(self, first, second, mask, reduction=reduction):
                    return loss(first, second, mask, reduction=reduction)

            program = torch.export.export(
                Loss(),
                inputs(6, broadcast),
                dynamic_shapes=(first_dims, second_dims, None),
                strict=strict,
            )
            for size in (width, 9):
                arguments = inputs(size, broadcast)
                torch.testing.assert_close(
                    program.module()(*arguments),
                    loss(*arguments, reduction=reduction),
                    rtol=1e-6,
                    atol=0,
                    msg=f"{broadcast}, {reduction}, batch {size}",
                )


def test_torch_export_poisson_gradient_beside_a_broadcast_observation():
    # value_and_grad's Poisson rule tests the shapes for a broadcast too (see the
    # test above). expected: a program exported at B = 6 gives the eager value and
    # gradient at B = T = 4
    torch = pytest.importorskip("torch")
    function = arraylosses.value_and_grad(poisson_loss)

    class Loss(torch.nn.Module):
        def forward(self, observed, rate):
            return function(observed, rate)

    def inputs(batch):
        generator = torch.Generator().manual_seed(batch)
        return torch.rand(4, generator=generator), torch.rand(batch, 4) + 0.5

    batch = torch.export.Dim("batch", min=2)
    program = torch.export.export(Loss(), inputs(6), dynamic_shapes=(None, {0: batch}))
    arguments = inputs(4)
    torch.testing.assert_close(
        program.module()(*arguments), function(*arguments), rtol=1e-6, atol=0
    )


def _batch_of(loss, batch, mask):
    """Inputs of ``loss`` at shape (``batch``, 4), the adaptive hinge's negatives at (2,
    ``batch``, 4), with the mask named by ``mask``: None, 'bool', 'bool (B, 1)',
    'bool (T,)' or 'weights (T,)'."""
    import torch

    generator = torch.Generator().manual_seed(batch)
    first, second = torch.rand(2, batch, 4, generator=generator) + 0.5
    if loss is adaptive_hinge_loss:
        second = torch.stack([second, first - 0.25])
    masks = {
        None: None,
        "bool": torch.rand(batch, 4, generator=generator) > 0.3,
        "bool (B, 1)": torch.rand(batch, 1, generator=generator) > 0.3,
        "bool (T,)": torch.tensor([True, False, True, True]),
        "weights (T,)": torch.tensor([1.0, 0.0, 2.0, 0.5]),
    }
    return first, second, masks[mask]


@pytest.mark.parametrize("gradients", [False, True], ids=["loss", "value_and_grad"])
@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
def test_torch_export_mean_of_an_empty_batch_is_zero(loss, gradients):
    # a program exported (non-strict, the default) for a batch dimension from 0 up
    # runs on an empty batch as an eager call does, where the mean over no elements
    # is 0 (0 for the masked means too). torch.mean of nothing is NaN; a test of the
    # size in Python, or max(size, 1), is settled once by torch.export, which takes a
    # size to be at least 2; and a mask broadcast along the batch counts 0 times.
    # expected: the eager result, at batch 0 (0 by the package's contract, and each
    # gradient empty) and at batch 2
    torch = pytest.importorskip("torch")
    function = arraylosses.value_and_grad(loss) if gradients else loss
    batch = torch.export.Dim("batch", min=0)
    negatives_axis = 1 if loss is adaptive_hinge_loss else 0
    for mask in (None, "bool", "bool (B, 1)", "bool (T,)", "weights (T,)"):

        class Loss(torch.nn.Module):
            def forward(self, first, second, mask):
                return function(first, second, mask)

        mask_dims = {0: batch} if mask in ("bool", "bool (B, 1)") else None
        program = torch.export.export(
            Loss(),
            _batch_of(loss, 3, mask),
            dynamic_shapes=({0: batch}, {negatives_axis: batch}, mask_dims),
        )
        for size in (0, 2):
            arguments = _batch_of(loss, size, mask)
            actual, expected = program.module()(*arguments), function(*arguments)
            if size == 0:
                assert float(expected[0] if gradients else expected) == 0.0
            torch.testing.assert_close(
                actual, expected, rtol=1e-6, atol=0, msg=f"{mask}, batch {size}"
            )


def test_torch_export_of_a_vmap_over_rows_takes_any_row_length():
    # torch.func.vmap inside torch.export: the tensors it batches are plain tensors
    # to the package, whose cache of counts by size then met a symbolic size, and
    # raised (unhashable SymInt). expected: the eager vmap, at rows of 0 and 3
    torch = pytest.importorskip("torch")
    length = torch.export.Dim("length", min=0)
    for loss in (pointwise_loss, bpr_loss, hinge_loss, *EXPLICIT):

        class Rows(torch.nn.Module):
            def forward(self, first, second, loss=loss):
                return torch.func.vmap(loss)(first, second)

        def rows(size):
            generator = torch.Generator().manual_seed(size)
            return tuple(torch.rand(2, 3, size, generator=generator) + 0.5)

        program = torch.export.export(
            Rows(), rows(4), dynamic_shapes=({1: length}, {1: length})
        )
        for size in (0, 3):
            torch.testing.assert_close(
                program.module()(*rows(size)), Rows()(*rows(size)), rtol=1e-6, atol=0
            )


@pytest.mark.parametrize("tracer", ["export", "export (strict)", "jit.trace"])
@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
def test_traced_from_plain_tensors_differentiates_later(loss, tracer):
    # a program traced from tensors that do not require grad, then run on ones that
    # do: torch.export and torch.jit.trace keep neither a test of requires_grad nor
    # its answer, so whatever the loss chose for plain tensors must serve autograd
    # too. The bits of a masked loss read as integers dropped the gradient without
    # a word, and a sum written into a sigmoid's saved output failed the backward
    # pass. expected: the eager call's value and gradient, on the same tensors
    torch = pytest.importorskip("torch")
    if tracer == "jit.trace" and sys.version_info >= (3, 14):
        pytest.skip("torch.jit is not supported on Python 3.14")
    for mask in (None, "bool", "bool (B, 1)", "bool (T,)", "weights (T,)"):
        first, second, weights = _batch_of(loss, 3, mask)
        if tracer == "jit.trace":
            with warnings.catch_warnings():
                # torch.jit.trace itself is deprecated in PyTorch 2.13, and warns that
                # the branches on shapes it records are fixed for the traced sizes
                warnings.simplefilter("ignore")
                program = torch.jit.trace(
                    lambda a, b, m=weights: loss(a, b, m), (first, second)
                )
        else:

            class Loss(torch.nn.Module):
                def forward(self, first, second, m=weights):
                    return loss(first, second, m)

            exported = torch.export.export(
                Loss(), (first, second), strict=tracer == "export (strict)"
            )
            program = exported.module()
        tracked = first.clone().requires_grad_()
        value = program(tracked, second)
        (gradient,) = torch.autograd.grad(value, tracked)
        eager_tracked = first.clone().requires_grad_()
        eager_value = loss(eager_tracked, second, weights)
        (eager_gradient,) = torch.autograd.grad(eager_value, eager_tracked)
        torch.testing.assert_close(value, eager_value, msg=f"mask {mask}")
        torch.testing.assert_close(gradient, eager_gradient, msg=f"mask {mask}")


def test_make_fx_divides_a_broadcast_mask_by_an_empty_batch():
    # make_fx's symbolic mode keeps the program's size arithmetic as Python, and a
    # count of (B, T) over (B, 1) once divided the sizes: ZeroDivisionError at B = 0.
    # expected: the eager loss, 0 for an empty batch
    torch = pytest.importorskip("torch")
    from torch.fx.experimental.proxy_tensor import make_fx

    def positional(loss):
        # make_fx counts a default argument (reduction) among those it traces
        return lambda a, b, m: loss(a, b, m)  # noqa: PLW0108

    for loss in IMPLICIT + EXPLICIT:
        for mask in ("bool (B, 1)", "weights (T,)"):
            traced = make_fx(positional(loss), tracing_mode="symbolic")(
                *_batch_of(loss, 3, mask)
            )
            for size in (0, 2):
                arguments = _batch_of(loss, size, mask)
                torch.testing.assert_close(
                    traced(*arguments), loss(*arguments), rtol=1e-6, atol=0
                )


def test_torch_private_hooks_are_pytorchs_own():
    # the PyTorch internals the module reads, each with a fallback that keeps calls
    # right but slower (no cached constants, no in-place writes) should a version of
    # PyTorch drop it: this version must give the internals themselves
    torch = pytest.importorskip("torch")
    from torch.autograd import forward_ad

    from arraylosses import _torch

    assert _torch._JIT_TRACING is torch._C._is_tracing
    assert _torch._IN_TRANSFORM is torch._C._are_functorch_transforms_active
    assert _torch._OUTSIDE_TRANSFORMS is torch._C._DisableFuncTorch
    assert _torch._LEGACY_BATCHED is torch._C._functorch.is_legacy_batchedtensor
    assert _torch.MSE_LOSS is torch._C._nn.mse_loss
    assert isinstance(forward_ad._current_level, int)


@pytest.mark.parametrize(
    "tracing",
    ["FakeTensorMode", "FakeTensorMode, plain inputs", "fake", "symbolic", "aot"],
)
def test_torch_tracing_leaves_the_caches_of_constants_real(tracing):
    # a loss traced with fake or functional tensors must neither meet the real 0-d
    # tensors kept for later calls (the tracer refuses them) nor leave its own in
    # their place, even where the mode takes plain tensors in and so makes its own
    # constants. expected: the traced result is the eager one, and eager calls
    # after the trace give the same bits as before it
    torch = pytest.importorskip("torch")
    from torch.fx.experimental.proxy_tensor import make_fx

    from arraylosses import _torch

    generator = torch.Generator().manual_seed(11)
    first, second = torch.rand(2, 4, 6, generator=generator) + 0.5
    mask = torch.rand(4, 6, generator=generator) > 0.3

    def masked(loss, **options):
        return lambda a, b, m: loss(a, b, m, **options)

    def unmasked(loss):  # the fused calls of PyTorch's own losses
        return lambda a, b, m: loss(a, b)  # noqa: ARG005 - traced with three

    calls = [
        *(masked(loss) for loss in (pointwise_loss, bpr_loss, *EXPLICIT)),
        *(masked(loss, reduction="sum") for loss in EXPLICIT),
        lambda a, b, m: hinge_loss(a, b, m, margin=0.5),
        lambda a, b, m: adaptive_hinge_loss(a, torch.stack([b, a]), m, margin=0.25),
        *(unmasked(loss) for loss in (bpr_loss, hinge_loss, *EXPLICIT)),
    ]
    _torch._COUNTS.clear()
    _torch._MARGINS.clear()
    for call in calls:
        if tracing.startswith("FakeTensorMode"):
            from torch._subclasses.fake_tensor import FakeTensorMode

            plain_inputs = tracing.endswith("plain inputs")
            with FakeTensorMode(allow_non_fake_inputs=plain_inputs) as mode:
                inputs = (first, second, mask)
                if not plain_inputs:
                    inputs = tuple(mode.from_tensor(t) for t in inputs)
                assert call(*inputs).shape == ()
            continue
        if tracing == "aot":
            from functorch.compile import aot_function, nop

            traced = aot_function(call, fw_compiler=nop)
        else:
            traced = make_fx(call, tracing_mode=tracing)(first, second, mask)
        torch.testing.assert_close(
            traced(first, second, mask), call(first, second, mask), rtol=1e-6, atol=0
        )
    before = [call(first, second, mask) for call in calls]
    _torch._COUNTS.clear()
    _torch._MARGINS.clear()
    for call, expected in zip(calls, before, strict=True):
        assert torch.equal(call(first, second, mask), expected)


@pytest.mark.parametrize("dynamic", [False, True])
def test_torch_compile_keeps_the_message_of_a_shape_error(dynamic):
    # under fullgraph=True Dynamo turns any exception into its own, quoting the
    # original: the message must survive tracing with symbolic sizes too. expected:
    # the package's own messages, as eager calls raise them
    torch = pytest.importorskip("torch")
    from torch._dynamo.exc import Unsupported

    calls = [
        (bpr_loss, (torch.ones(3), torch.ones(4)), "with shape \\(4,\\) do not"),
        (
            bpr_loss,
            (torch.ones(3), torch.ones(3), torch.ones(4, dtype=torch.bool)),
            "mask with shape \\(4,\\) does not broadcast",
        ),
        (
            adaptive_hinge_loss,
            (torch.ones(3), torch.ones(0, 3)),
            "shape \\(0, 3\\) has no negatives",
        ),
    ]
    for loss, arguments, message in calls:
        torch._dynamo.reset()
        compiled = torch.compile(loss, fullgraph=True, dynamic=dynamic, backend="eager")
        with pytest.raises(Unsupported, match=message):
            compiled(*arguments)


def test_torch_compile_keeps_the_message_of_arrays_of_two_libraries():
    # under fullgraph=True Dynamo traced the resolution of a NumPy array's namespace,
    # and failed with an error of its own naming no argument. In a fresh interpreter,
    # where NumPy's namespace is not yet resolved; expected: the eager messages
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        """
        import numpy as np
        import torch
        from arraylosses import bpr_loss
        tensor = torch.ones(3)
        for arguments in [
            (tensor, tensor, np.ones(3, dtype=bool)),
            (tensor, np.ones(3, dtype=np.float32)),
        ]:
            torch._dynamo.reset()
            try:
                torch.compile(bpr_loss, fullgraph=True, backend="eager")(*arguments)
            except Exception as error:
                print(
                    type(error).__name__,
                    "is a torch.Tensor but mask is a numpy.ndarray; pass" in str(error),
                    "but negative_predictions is a numpy.ndarray; pass" in str(error),
                )
        """
    )
    assert printed == ["Unsupported True False", "Unsupported False True"]


def test_torch_compile_of_a_first_call_warns_of_nothing():
    # torch.compile traces the namespace's resolution on the first call of a process
    # on tensors, and warns of each lru_cache'd function it meets: an error where
    # warnings are errors, as in this suite. In a fresh interpreter, the first call
    # of all compiled with warnings as errors; expected: the eager call's value
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        """
        import warnings
        warnings.simplefilter("error")
        import torch
        from arraylosses import bpr_loss
        def loss(first, second, mask):
            return bpr_loss(first, second, mask)
        compiled = torch.compile(loss, fullgraph=True, backend="eager")
        arguments = torch.ones(3), torch.zeros(3), torch.tensor([True, False, True])
        print(float(compiled(*arguments)) == float(loss(*arguments)))
        """
    )
    assert printed == ["True"]


def test_torch_compiled_calls_compile_once_whatever_eager_calls_follow():
    # torch.compile guards a compiled call on every cache entry its trace read, and
    # compiles the caller's whole function again where one has changed: eager calls
    # made after it, of other dtypes, masks and ratings, must leave those entries as
    # the trace found them; and a first call on a parameter compiles in one graph. In a
    # fresh interpreter that imports torch first, as this package's guide asks (the
    # first call of all is compiled); expected: the compiled function runs again under
    # the stance that fails on a recompile
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        """
        import torch
        import arraylosses as al
        p, n = torch.randn(4), torch.randn(4)
        stacked = torch.randn(3, 4)
        ratings, rates = torch.tensor([1, 5, 3, 2]), torch.rand(4) + 0.5
        kept = torch.tensor([True, False, True, True])
        weights = torch.rand(4)
        parameter = torch.nn.Parameter(torch.randn(4))
        def step(p, n, stacked, ratings, rates, kept, weights, parameter):
            return (
                al.pointwise_loss(parameter, n, kept)
                + al.bpr_loss(p, n, weights)
                + al.hinge_loss(p, n, reduction="sum")
                + al.adaptive_hinge_loss(p, stacked, kept)
                + al.regression_loss(ratings, rates)
                + al.poisson_loss(ratings, rates, weights)
                + al.logistic_loss(ratings > 2, p)
            )
        arguments = p, n, stacked, ratings, rates, kept, weights, parameter
        compiled = torch.compile(step, fullgraph=True, backend="eager")
        first = compiled(*arguments)
        for dtype in (torch.float64, torch.float16, torch.bfloat16):
            for mask in (None, kept, kept.to(torch.uint8), weights.to(dtype)):
                for loss in (al.pointwise_loss, al.bpr_loss, al.hinge_loss):
                    loss(p.to(dtype), n.to(dtype), mask)
                al.adaptive_hinge_loss(p.to(dtype), stacked.to(dtype), mask)
                al.regression_loss(ratings.to(torch.int32), rates.to(dtype), mask)
                al.poisson_loss(ratings.to(dtype), rates.to(dtype), mask)
                al.logistic_loss(ratings.to(torch.int8), p.to(dtype), mask)
        torch.compiler.set_stance("fail_on_recompile")
        print(bool(compiled(*arguments) == first))
        """
    )
    assert printed == ["True"]


@pytest.mark.parametrize(
    "stand_in", ["lazily loaded", "mock", "without tensors", "still importing"]
)
def test_importing_beside_a_stand_in_for_torch_touches_it_not(stand_in):
    # the package caches PyTorch's Backend at its import where torch is imported: a
    # torch that a lazy loader has yet to import, a documentation build's mock of it,
    # a bare module of that name, or one that another thread is still importing (its
    # spec says so) is neither imported nor called. Expected: the import succeeds,
    # and the stand-in is still what it was, uncalled
    pytest.importorskip("torch")
    printed = _printed_by_a_fresh_interpreter(
        f"""
        import importlib.util, sys, types
        from unittest import mock
        called = []
        if {stand_in!r} == "lazily loaded":
            spec = importlib.util.find_spec("torch")
            spec.loader = importlib.util.LazyLoader(spec.loader)
            module = importlib.util.module_from_spec(spec)
            sys.modules["torch"] = module
            spec.loader.exec_module(module)
        elif {stand_in!r} == "mock":
            sys.modules["torch"] = mock.MagicMock()
        else:
            module = types.ModuleType("torch")
            if {stand_in!r} == "still importing":
                module.__spec__ = importlib.util.spec_from_loader("torch", None)
                module.__spec__._initializing = True
                module.empty = lambda *args, **kwargs: called.append(args)
            sys.modules["torch"] = module
        kind = type(sys.modules["torch"])
        import arraylosses
        print(type(sys.modules["torch"]) is kind, "torch._C" in sys.modules, called)
        """
    )
    assert printed == ["True False []"]


def _autograd_of_second(loss, first, second):
    import torch

    second = second.clone().requires_grad_()
    return torch.autograd.grad(loss(first, second), second)[0]


def test_torch_mask_counts_hold_any_loss_size():
    # a bool mask smaller than the loss counts its Trues, then scales the count by the
    # broadcast (_reduction); the count's integer type must hold any loss's size, so
    # it is int64 whatever the sizes. expected: int64, the count by hand, and the sum
    # of the kept columns selected by indexing
    torch = pytest.importorskip("torch")
    from arraylosses import _torch

    loss = torch.rand(8, 5)
    mask = torch.tensor([True, False, True, True, True])
    total, count = _torch.masked_total(loss.clone(), mask)
    assert count.dtype == torch.int64
    assert int(count) == 4
    torch.testing.assert_close(total, loss[:, mask].sum(), rtol=1e-6, atol=0)
    # count(), which the path with autograd takes, counts in int64 too: 8 rows of 4
    count = _torch.count(mask.expand(8, 5), None)
    assert count.dtype == torch.int64
    assert int(count) == 32


@pytest.mark.parametrize("dtype_name", ["float32", "float64"])
def test_torch_mean_has_the_bits_of_torch_mean(dtype_name):
    # on a CPU the package divides a sum by a cached count tensor, where torch.mean
    # converts the count on every call; expected: torch.mean's own bits and gradient,
    # at sizes whose count float32 rounds (2**24 + 1) and past the cache of counts
    torch = pytest.importorskip("torch")
    from arraylosses import _torch

    dtype = getattr(torch, dtype_name)
    generator = torch.Generator().manual_seed(0)
    for size in (1, 3, 256, 4097, 2**24 + 1, *range(100, 180)):
        x = torch.rand(size, generator=generator, dtype=dtype).requires_grad_()
        expected, actual = torch.mean(x), _torch.mean(x)
        assert actual.dtype == dtype
        assert torch.equal(actual.detach(), expected.detach()), size
        (expected_grad,) = torch.autograd.grad(expected, x)
        (actual_grad,) = torch.autograd.grad(actual, x)
        assert torch.equal(actual_grad, expected_grad), size


@_FORWARD_MODE_SCRIPTS
@pytest.mark.parametrize(
    "context", ["inference_mode", "meta_default_device", "nested_torch_func"]
)
def test_torch_caches_of_constants_serve_any_later_call(context):
    # PyTorch keeps mean counts and margins as tensors made on first use; made under
    # inference mode they could not be saved for a later gradient, made with a
    # default device of meta they would not be on the CPU, and made inside nested
    # torch.func transforms (a Hessian) they would be wrappers of a level gone by.
    # expected: the values and gradients (autograd's and torch.func's) of the same
    # calls with caches made in plain mode
    torch = pytest.importorskip("torch")
    func = pytest.importorskip("torch.func")
    from arraylosses import _torch

    generator = torch.Generator().manual_seed(5)
    first, second = torch.rand(2, 41, generator=generator, dtype=torch.float64) + 0.5
    margin = {"margin": 0.75}
    calls = [
        (pointwise_loss, second, {}),
        (bpr_loss, second, {}),
        (hinge_loss, second, margin),
        (adaptive_hinge_loss, torch.stack([second, first + 1]), margin),
        *((loss, second, {}) for loss in EXPLICIT),
    ]

    def values_and_gradients():
        results = []
        for loss, other, options in calls:
            tracked = first.clone().requires_grad_()
            value = loss(tracked, other, **options)
            (gradient,) = torch.autograd.grad(value, tracked)
            of_first = func.grad(
                lambda x, loss=loss, o=other, k=options: loss(x, o, **k)
            )
            results.append((value.detach(), gradient, of_first(first)))
        return results

    def empty_caches():
        _torch._COUNTS.clear()
        _torch._MARGINS.clear()

    empty_caches()
    expected = values_and_gradients()
    empty_caches()
    if context == "nested_torch_func":
        for loss, other, options in calls:
            hessian = func.hessian(lambda x, f=loss, o=other, k=options: f(x, o, **k))
            hessian(first)
    else:
        maker = torch.inference_mode() if context == "inference_mode" else None
        with maker or torch.device("meta"):
            for loss, other, options in calls:
                loss(first, other, **options)
    for actual, wanted in zip(values_and_gradients(), expected, strict=True):
        for actual_part, wanted_part in zip(actual, wanted, strict=True):
            assert torch.equal(actual_part, wanted_part)


def test_torch_eager_calls_ignore_another_threads_compilation(monkeypatch):
    # torch.compiler.is_compiling() reads a flag of the process, which torch.compile
    # and torch.export set for the whole of a compilation on whatever thread: an
    # eager call on another thread meanwhile once took the traced kernels, and the
    # Poisson loss's x - y·z came back rounded twice where addcmul rounds once (7,574
    # of 40,000 elements apart, found by a review of threads). The flag set by hand
    # stands in for the other thread's compilation; 40,000 elements reach the in-place
    # logistic loss, an ulp from ATen's for observations between 0 and 1. expected:
    # the bits of the same calls without the flag
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(7)
    size = 40_000
    observed = torch.poisson(torch.full((size,), 3.0), generator=generator)
    rate = torch.rand(size, generator=generator) * 5 + 0.1
    logit = torch.randn(size, generator=generator) * 3
    fractional = torch.rand(size, generator=generator)
    mask = torch.rand(size, generator=generator) > 0.3
    calls = [
        lambda: poisson_loss(observed, rate, reduction="none"),
        lambda: logistic_loss(fractional, logit, reduction="none"),
        lambda: pointwise_loss(logit, rate, mask, reduction="none"),
        lambda: hinge_loss(logit, rate, mask),
    ]
    expected = [call() for call in calls]
    monkeypatch.setattr(torch.compiler, "_is_compiling_flag", True)
    assert torch.compiler.is_compiling()
    actual = [call() for call in calls]
    monkeypatch.undo()

    for actual_result, expected_result in zip(actual, expected, strict=True):
        assert torch.equal(actual_result, expected_result)


def test_cupy_margins_meet_arrays_on_every_device():
    # CuPy once added a margin as a 0-d array made once, on the device current at
    # the first call: arrays of another device later met it (an error without peer
    # access). expected: by hand, max(n - p + 0.25, 0) of [0.5, 2] against [1, 0]
    cupy = pytest.importorskip("cupy")
    try:
        devices = cupy.cuda.runtime.getDeviceCount()
    except cupy.cuda.runtime.CUDARuntimeError:
        devices = 0
    if devices < 2:
        pytest.skip(f"needs two CUDA devices, found {devices}")
    for device in (1, 0):
        with cupy.cuda.Device(device):
            positive = cupy.asarray([0.5, 2.0], dtype=cupy.float32)
            negative = cupy.asarray([1.0, 0.0], dtype=cupy.float32)
            loss = hinge_loss(positive, negative, margin=0.25, reduction="none")
        assert loss.device.id == device
        np.testing.assert_array_equal(loss.get(), np.float32([0.75, 0.0]))


def test_add_float_in_place_writes_into_its_argument():
    # CuPy's margin primitive, run here on NumPy, whose ufuncs take the same
    # arguments. expected: x + value by hand, in x itself, in x's dtype; a 0-d x
    # (into which a ufunc can't write) gets a new result
    from arraylosses import _functional

    x = np.asarray([1.0, -2.5], dtype=np.float32)
    result = _functional.add_float_in_place(x, 0.5, xp=np)
    scalar = _functional.add_float_in_place(np.float32(1.0), 0.5, xp=np)

    assert result is x
    assert result.dtype == np.float32
    np.testing.assert_array_equal(result, np.float32([1.5, -2.0]))
    assert scalar == np.float32(1.5)
    assert scalar.dtype == np.float32


def test_the_backend_is_cached_per_array_type(xp):
    first, second = _arguments(bpr_loss, xp, xp.float32)
    # expected: Spotlight's formula in float64 (support.ref_bpr), twice through the cache
    expected = ref_reduce(ref_bpr(to_numpy(first), to_numpy(second)))
    for _ in range(2):
        np.testing.assert_allclose(
            to_numpy(bpr_loss(first, second)), expected, rtol=1e-5
        )
    cache = arraylosses._namespace.BACKENDS
    cached = any(backend.name == backend_of(xp) for backend in cache.values())
    # but array-api-strict's revision of the standard is a flag, read on every call
    assert cached == (backend_of(xp) != "array_api_strict")


def test_numpy_scalars_mix_with_numpy_arrays():
    positive = np.asarray([0.5, 1.0], dtype=np.float32)
    # expected: Spotlight's formula in float64 (support.ref_bpr), n broadcast from a scalar
    expected = ref_reduce(ref_bpr(np.asarray([0.5, 1.0]), np.asarray(0.25)))
    np.testing.assert_allclose(
        bpr_loss(positive, np.float32(0.25)), expected, rtol=1e-6
    )


def test_numpy_float64_scalars_are_0d_arrays_as_float32_ones_are():
    # NumPy's float64 scalar is a Python float too; both are 0-d NumPy arrays here.
    # expected: Spotlight's formula in float64 (support.ref_hinge), 0.5 - 1 + 1
    for scalar in (np.float32, np.float64):
        result = hinge_loss(scalar(1.0), scalar(0.5))
        assert result.dtype == np.dtype(scalar)
        np.testing.assert_allclose(result, ref_hinge(1.0, 0.5), rtol=1e-7)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("mask", [None, True, 2.0], ids=["no-mask", "bool", "weight"])
@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
def test_numpy_0d_results_are_numpy_scalars(loss, mask, reduction):
    # as the docstrings' Returns promise, whatever the reduction: NumPy's own
    # functions give a 0-d result as a scalar. 'none' on 0-d inputs once returned
    # the 0-d array that the in-place primitives write into, without a mask
    first = np.float32(1.5)
    second = np.full((2,) if loss is adaptive_hinge_loss else (), 0.5, np.float32)
    weights = None if mask is None else np.asarray(mask)
    result = loss(first, second, weights, reduction=reduction)
    assert isinstance(result, np.float32)


@pytest.mark.parametrize("layout", ["C", "F"])
@pytest.mark.parametrize("loss", IMPLICIT + EXPLICIT, ids=lambda loss: loss.__name__)
def test_numpy_masked_arrays_own_their_memory(loss, layout):
    # a masked 'none' result and value_and_grad's masked gradients come from the bits
    # of the loss times the mask; each must be a float array of its own, as NumPy's
    # own expressions give, not a view of the integers (whose base can't be resized).
    # expected: by hand, the loss's elements where the mask is True, 0 elsewhere
    first = np.asarray(np.full((3, 2), 1.5, np.float32), order=layout)
    second = np.full((2, 3, 2) if loss is adaptive_hinge_loss else (3, 2), 0.5)
    second = np.asarray(second.astype(np.float32), order=layout)
    mask = np.asarray([[True, False], [False, True], [True, True]], order=layout)
    kept = loss(first, second, mask, reduction="none")
    _, gradients = arraylosses.value_and_grad(loss)(
        first, second, mask, reduction="sum"
    )
    arrays = [kept, *_each_gradient(gradients)]

    assert all(array.flags.owndata and array.dtype == np.float32 for array in arrays)
    elementwise = loss(first, second, reduction="none")
    np.testing.assert_array_equal(kept, np.where(mask, elementwise, 0.0))
    kept.resize(6, refcheck=False)  # ValueError for a view


def test_numpy_dtypes_equal_but_not_identical_compute_alike():
    # an unpickled array's dtype equals float32 but is another object, which prepare's
    # test of one dtype object must not take for another dtype. expected: Spotlight's
    # formula in float64 (support.ref_hinge), in float32
    plain = np.asarray([1.0, -0.5, 2.0], dtype=np.float32)
    unpickled = pickle.loads(pickle.dumps(plain))
    assert unpickled.dtype is not plain.dtype
    expected = ref_reduce(ref_hinge(plain[::-1], plain))
    for first, second in ((unpickled, plain), (plain, unpickled), (plain, plain)):
        result = hinge_loss(first[::-1], second)
        assert result.dtype == np.float32
        np.testing.assert_allclose(result, expected, rtol=1e-6)
        # and the checked call holds the caller's arrays, neither cast nor copied
        call = arraylosses._call.prepare(
            first,
            second,
            None,
            "mean",
            names=("a", "b"),
            second_has_negatives_axis=False,
        )
        assert call.first is first
        assert call.second is second
        assert call.cast_to is None


@pytest.mark.parametrize("size", [5, 4096])  # either side of the sigmoid's two forms
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_numpy_losses_raise_nothing_but_underflow_on_finite_scores(size, dtype):
    # the error state the documentation recommends for catching NaN and inf: every
    # loss and its gradients on scores far past exp's range, rates near 0 and past
    # 1e30, log-rates whose exponential is finite (the loss then is), must neither
    # overflow, divide by 0 nor make a NaN. expected: no FloatingPointError, and
    # finite values
    scores = np.resize(np.asarray([3.0, 120.0, -120.0, 800.0, -800.0], dtype), size)
    zeros = np.zeros(size, dtype)
    signs = np.resize(np.asarray([1.0, -1.0, 1.0, -1.0, 1.0], dtype), size)
    rates = np.resize(np.asarray([1e-30, 5.0, 1e30], dtype), size)
    counts = np.resize(np.asarray([0.0, 3.0, 1.0], dtype), size)
    # log-rates from exp's underflow to just inside float32's range (e^80 = 5.5e34)
    log_rates = np.resize(np.asarray([-800.0, 3.0, 80.0], dtype), size)
    calls = [
        (pointwise_loss, (scores, zeros), {}),
        (bpr_loss, (scores, zeros), {}),
        (hinge_loss, (scores, zeros), {}),
        (adaptive_hinge_loss, (scores, np.stack([zeros, scores])), {}),
        (regression_loss, (signs, scores), {}),
        (poisson_loss, (counts, rates), {}),
        (poisson_loss, (counts, log_rates), {"log_input": True}),
        (logistic_loss, (signs, scores), {}),
    ]
    with np.errstate(all="raise", under="ignore"):
        for loss, args, options in calls:
            value, gradients = arraylosses.value_and_grad(loss)(*args, **options)
            assert math.isfinite(float(loss(*args, **options))), loss.__name__
            assert math.isfinite(float(value)), loss.__name__
            for gradient in _each_gradient(gradients):
                assert np.isfinite(gradient).all(), loss.__name__


@pytest.mark.parametrize("kind", ["masked array", "matrix"])
def test_numpy_subclasses_outside_the_array_api_are_refused(kind):
    # a masked array's mask would be ignored, a matrix's * is a matrix product;
    # expected: a TypeError naming the argument and the plain array to pass instead
    plain = np.asarray([[0.5, 1.0]], dtype=np.float32)
    if kind == "masked array":
        odd = np.ma.array(plain, mask=[[False, True]])
        refused = r"is a numpy\.ma\.MaskedArray, which arraylosses can't take: pass "

        def hint(name):
            if name == "mask":
                return r"numpy\.ma\.filled\(mask, 0\), which leaves its masked entries out$"
            hint = (
                rf"numpy\.ma\.getdata\({name}\) and carry its mask in mask=, which "
                r"is True where an element counts \(numpy\.ma's is True where one is "
                r"left out\)"
            )
            if name == "negative_predictions":
                hint += (
                    r"; the adaptive hinge's negatives, pass as "
                    r"numpy\.ma\.filled\(negative_predictions, -inf\), which leaves "
                    r"a masked-out negative out of the maximum"
                )
            return hint + "$"
    else:
        with warnings.catch_warnings():  # NumPy means to deprecate the matrix
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            odd = np.asmatrix(plain)
        refused = r"is a numpy\.matrix, which arraylosses can't take: pass "

        def hint(name):
            return rf"numpy\.asarray\({name}\)$"

    for name, args in (
        ("positive_predictions", (odd, plain)),
        ("negative_predictions", (plain, odd)),
        ("mask", (plain, plain, odd)),
    ):
        with pytest.raises(TypeError, match=f"^{name} {refused}{hint(name)}"):
            bpr_loss(*args)


def test_dask_arrays_of_masked_chunks_are_refused():
    # one Dask type holds plain and masked chunks alike, so the refusal is made of
    # each call's arrays. expected: a TypeError naming the argument and the plain
    # arrays to pass, raised while the call builds its graph, computing nothing
    da = pytest.importorskip("dask.array")
    plain = da.from_array(np.asarray([0.5, 1.0, 2.0, -1.0], dtype=np.float32), 2)
    masked = da.ma.masked_array(plain, mask=[False, True, False, True])
    refused = (
        r"is a dask\.array\.Array of NumPy masked arrays \(dask\.array\.ma\), which "
        r"arraylosses can't take: pass "
    )
    hints = {
        "mask": r"dask\.array\.ma\.filled\(mask, 0\), which leaves its masked "
        r"entries out$",
        "negative_predictions": r"dask\.array\.ma\.getdata\(negative_predictions\) "
        r"and carry its mask in mask=, which is True where an element counts "
        r"\(dask\.array\.ma's is True where one is left out\); the adaptive hinge's "
        r"negatives, pass as dask\.array\.ma\.filled\(negative_predictions, -inf\), "
        r"which leaves a masked-out negative out of the maximum$",
    }
    bool_mask = da.ma.masked_array(da.ones(4, dtype=bool, chunks=2), mask=[0, 0, 1, 0])
    with computing_nothing():
        with pytest.raises(TypeError, match=f"^positive_predictions {refused}"):
            bpr_loss(masked, plain)
        with pytest.raises(
            TypeError,
            match=f"^negative_predictions {refused}{hints['negative_predictions']}",
        ):
            bpr_loss(plain, masked, reduction="none")
        with pytest.raises(TypeError, match=f"^mask {refused}{hints['mask']}"):
            bpr_loss(plain, plain, bool_mask)
        with pytest.raises(TypeError, match=rf"^observed_ratings {refused}"):
            arraylosses.value_and_grad(regression_loss)(masked, plain)
    # the way out the message gives. expected: Spotlight's formula in float64 on
    # the elements left in, alone (Dask's chunked sum may round differently)
    data, kept = da.ma.getdata(masked), ~da.ma.getmaskarray(masked)
    zeros = da.zeros(4, dtype=np.float32, chunks=2)
    expected = ref_reduce(ref_bpr(np.asarray([0.5, 2.0]), np.zeros(2)), None, "mean")
    np.testing.assert_allclose(
        bpr_loss(data, zeros, kept).compute(), expected, rtol=RTOL["float32"]
    )


def test_numpy_masked_arrays_pass_as_the_guide_says():
    # the conversions of a refused masked array that its message and the guide
    # (masks-weights-reductions.md) give. expected: the loss of the elements left
    # in, alone (the masked-out ones hold values that would show)
    predictions = np.ma.array(
        np.asarray([0.5, 1.0, 2.0, -1.0], dtype=np.float32),
        mask=[False, True, False, True],
    )
    data, kept = np.ma.getdata(predictions), ~np.ma.getmaskarray(predictions)
    zeros = np.zeros(4, dtype=np.float32)
    assert float(bpr_loss(data, zeros, kept)) == float(
        bpr_loss(data[[0, 2]], zeros[:2])
    )
    # with a bool mask of the caller's, by &: it leaves the 2.0 out as well
    own = np.asarray([True, True, False, True])
    assert float(bpr_loss(data, zeros, kept & own)) == float(
        bpr_loss(data[:1], zeros[:1])
    )
    # with weights of the caller's, by a product: the masked entries weigh 0
    weights = np.asarray([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    assert float(bpr_loss(data, zeros, weights * kept)) == float(
        bpr_loss(data[[0, 2]], zeros[:2], weights[[0, 2]])
    )
    # weights as a masked array: its masked entries weigh 0, whatever they hold
    masked_weights = np.ma.array(weights, mask=[False, False, False, True])
    assert float(bpr_loss(data, zeros, np.ma.filled(masked_weights, 0))) == float(
        bpr_loss(data[:3], zeros[:3], weights[:3])
    )
    # a bool mask as a masked array: its masked entries are left out
    flags = np.ma.array(np.ones(4, dtype=bool), mask=[False, True, True, False])
    assert float(bpr_loss(data, zeros, np.ma.filled(flags, 0))) == float(
        bpr_loss(data[[0, 3]], zeros[:2])
    )
    # the adaptive hinge's negatives: a masked one filled with -inf is no maximum
    negatives = np.ma.array(
        np.asarray([[0.5, 3.0], [2.0, -1.0]], dtype=np.float32),
        mask=[[False, True], [False, False]],
    )
    positive = np.asarray([1.0, -0.5], dtype=np.float32)
    filled = np.ma.filled(negatives, -np.inf)
    without = np.asarray([[0.5, -1.0], [2.0, -1.0]], dtype=np.float32)
    assert float(adaptive_hinge_loss(positive, filled)) == float(
        adaptive_hinge_loss(positive, without)
    )


def _refused_in_every_position(loss, odd, plain, pattern):
    """``loss`` refuses ``odd`` as each argument, beside ``plain``, with a TypeError
    naming the argument, then ``pattern``."""
    with pytest.raises(TypeError, match=rf"positive_predictions {pattern}"):
        loss(odd, plain)
    with pytest.raises(TypeError, match=rf"negative_predictions {pattern}"):
        loss(plain, odd)
    with pytest.raises(TypeError, match=rf"mask {pattern}"):
        loss(plain, plain, odd)


def test_torch_masked_tensors_are_refused():
    # a MaskedTensor's mask held through some losses' operations and failed others
    # with PyTorch's dispatch error, which names no argument
    torch = pytest.importorskip("torch")
    plain = torch.tensor([0.5, 1.0])
    with warnings.catch_warnings():  # PyTorch calls MaskedTensor a prototype
        warnings.simplefilter("ignore", UserWarning)
        odd = torch.masked.masked_tensor(plain, torch.tensor([True, False]))
    pattern = (
        r"is a torch\.masked\.MaskedTensor, which arraylosses can't take: pass a plain "
        r"tensor \(a masked tensor's mask goes in mask=\)"
    )
    for loss in (bpr_loss, hinge_loss):
        _refused_in_every_position(loss, odd, plain, pattern)


def test_torch_nested_tensors_are_refused():
    # a strided nested tensor has no shape, and reading it raised PyTorch's "Internal
    # error"; a jagged one went through some losses and failed others in ATen
    torch = pytest.importorskip("torch")
    plain = torch.tensor([0.5, 1.0])
    pattern = r"is a nested tensor, which arraylosses can't take: pass the elements"
    for layout in (torch.strided, torch.jagged):
        with warnings.catch_warnings():  # PyTorch calls the strided layout a prototype
            warnings.simplefilter("ignore", UserWarning)
            odd = torch.nested.nested_tensor(
                [torch.ones(1), torch.ones(2)], layout=layout
            )
        for loss in (bpr_loss, hinge_loss):
            _refused_in_every_position(loss, odd, plain, pattern)


def test_torch_dtypes_torch_converts_to_no_other_are_refused_by_name():
    # PyTorch calls its pairs of 4-bit floats in a byte floating, but converts them to
    # no other dtype: the cast to float32 failed in ATen, naming no argument
    torch = pytest.importorskip("torch")
    packed = getattr(torch, "float4_e2m1fn_x2", None)
    if packed is None:
        pytest.skip("this PyTorch has no float4_e2m1fn_x2")
    plain = torch.tensor([0.5, 1.0])
    odd = torch.zeros(2, dtype=torch.uint8).view(packed)
    pattern = (
        r"has dtype torch\.float4_e2m1fn_x2, which torch can't convert to "
        r"torch\.float32, the dtype the loss computes in"
    )
    with pytest.raises(TypeError, match=rf"positive_predictions {pattern}"):
        bpr_loss(odd, odd)
    with pytest.raises(TypeError, match=rf"mask {pattern}"):
        bpr_loss(plain, plain, odd)
    with pytest.raises(TypeError, match=rf"observed_ratings {pattern}"):
        regression_loss(odd, plain)


def test_a_margin_that_is_no_number_gets_no_advice_to_convert_it():
    # the way out for a tensor or traced scalar ("float(margin) under torch.compile")
    # read as advice to convert a bool or a str
    plain = np.ones(3, dtype=np.float32)
    for margin in (np.True_, np.str_("1")):
        with pytest.raises(TypeError, match="margin must be a real number") as caught:
            hinge_loss(plain, plain, margin=margin)
        assert "float(margin)" not in str(caught.value)


def test_jax_float0_is_refused_without_advice_to_cast_it():
    # the dtype of JAX's tangents of integers names "float" but is no number
    jax = pytest.importorskip("jax")
    plain = np.ones(3, dtype=np.float32)
    zero = np.zeros(3, dtype=jax.dtypes.float0)
    with pytest.raises(
        TypeError, match=r"negative_predictions must have a real floating dtype"
    ) as caught:
        bpr_loss(plain, zero)
    assert "cast it" not in str(caught.value)


def test_numpy_dtypes_numpy_cannot_classify_are_refused_by_name():
    # ml_dtypes' bfloat16 (JAX's) lives in NumPy arrays, but np.isdtype refuses it
    ml_dtypes = pytest.importorskip("ml_dtypes")
    odd = np.asarray([0.5, 1.0], dtype=ml_dtypes.bfloat16)
    plain = np.asarray([0.5, 1.0], dtype=np.float32)
    # the message says what to do, where "got bfloat16" alone reads as a contradiction
    way_out = r"got bfloat16, a floating type from outside the library; cast it to"
    with pytest.raises(
        TypeError, match=rf"positive_predictions must have a real.*{way_out}"
    ):
        bpr_loss(odd, plain)
    with pytest.raises(
        TypeError, match=rf"observed_ratings must have a bool, integer.*{way_out}"
    ):
        regression_loss(odd, plain)
    with pytest.raises(TypeError, match=rf"mask must have a bool, integer.*{way_out}"):
        bpr_loss(plain, plain, odd)
    # a type that is not floating at all gets no such advice
    with pytest.raises(TypeError, match=r"got complex64$"):
        bpr_loss(plain.astype(np.complex64), plain)


@pytest.mark.parametrize(
    "mask",
    [None, ((), "bool"), ((1,), "float32"), ((65536, 1), "bool")],
    ids=["value_and_grad, no mask", "0-d bool mask", "(1,) weights", "(B, 1) mask"],
)
def test_jax_counts_beyond_int32_trace(mask):
    # 2**31 float32 elements (8 GiB an array: real on a GPU or a mesh). JAX without
    # x64 parses a Python int operand as an int32, so a mean's divisor or a broadcast
    # mask's repeats of 2**31 raised OverflowError while tracing. Traced abstractly
    # here, as jax.jit would, without x64 (JAX's default, which the xp fixture turns
    # on for the rest of the run); expected: the loss's own float32 scalar and
    # gradients
    jax = pytest.importorskip("jax")
    jnp = jax.numpy
    shape = (65536, 32768)
    p = n = jax.ShapeDtypeStruct(shape, jnp.float32)
    with jax.enable_x64(False):
        if mask is None:
            loss_and_grad = arraylosses.value_and_grad(bpr_loss)
            value, gradients = jax.eval_shape(loss_and_grad, p, n)
            assert [g.shape for g in gradients] == [shape, shape]
        else:
            weights = jax.ShapeDtypeStruct(mask[0], jnp.dtype(mask[1]))
            value = jax.eval_shape(hinge_loss, p, n, weights)
    assert value.shape == ()
    assert value.dtype == jnp.float32


def test_a_count_beyond_int32_is_scaled_exactly():
    # the count of a mask that broadcasts, scaled by its 2**31 repeats: in JAX's
    # float32 (a float operand; without x64, JAX's default, where an int operand
    # is an int32), and in PyTorch's int64 (the exact int, no float)
    jax = pytest.importorskip("jax")
    from arraylosses._namespace import backend_of
    from arraylosses._reduction import _count_at_broadcast_shape

    loss = jax.ShapeDtypeStruct((65536, 32768), jax.numpy.float32)
    weights = jax.ShapeDtypeStruct((1,), jax.numpy.bool_)
    with jax.enable_x64(False):
        count = jax.numpy.asarray(3.0, dtype=jax.numpy.float32)
        backend = backend_of(count, "count")
        scaled = _count_at_broadcast_shape(count, weights, loss, backend=backend)
    # expected: 3 · 2**31, exact in float32 (a power of two times 3)
    assert float(scaled) == 3 * 2**31
    assert scaled.dtype == jax.numpy.float32
    torch = pytest.importorskip("torch")
    count = torch.tensor(3, dtype=torch.int64)
    backend = backend_of(count, "count")
    weights = torch.empty((1,), dtype=torch.bool, device="meta")
    loss = torch.empty((65536, 32768), device="meta")
    scaled = _count_at_broadcast_shape(count, weights, loss, backend=backend)
    assert scaled.dtype == torch.int64
    assert int(scaled) == 3 * 2**31


def test_torch_dtypes_torch_does_not_promote_are_refused_by_name():
    # torch promotes none of its float8 types with another dtype: the error came
    # from inside the compat layer's result_type, naming neither argument
    torch = pytest.importorskip("torch")
    plain = torch.tensor([0.5, 1.0])
    eight = plain.to(torch.float8_e4m3fn)
    message = (
        r"positive_predictions has dtype torch.float32 and negative_predictions has "
        r"torch.float8_e4m3fn, which torch does not promote to one dtype"
    )
    with pytest.raises(TypeError, match=message):
        bpr_loss(plain, eight)
    # compiled, the same error: PyTorch's own came out of Dynamo as an internal one
    torch._dynamo.reset()
    with pytest.raises(TypeError, match=message):
        torch.compile(bpr_loss, backend="eager")(plain, eight)
    # one float8 type on both sides computes in float32, as half precision does:
    # by hand, σ(0) = 0.5, which float8_e4m3fn holds exactly
    result = bpr_loss(eight, eight)
    assert result.dtype == torch.float8_e4m3fn
    assert float(result) == 0.5


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_numpy_long_double_is_computed_in_its_own_dtype(case):
    # the sigmoid's cap on its exponent is the log of the dtype's largest value, which
    # a Python float can't hold for a long double. expected: Spotlight's formula in
    # float64 (support.CASES), to float64's tolerance: a long double is no less precise
    first, second = _arguments(case.loss, np, np.float64)
    expected = ref_reduce(case.reference(first, second, **case.kwargs))
    result = case.loss(
        first.astype(np.longdouble), second.astype(np.longdouble), **case.kwargs
    )
    assert result.dtype == np.longdouble
    np.testing.assert_allclose(
        result.astype(np.float64), expected, rtol=RTOL["float64"], atol=ATOL["float64"]
    )


def test_a_namespace_older_than_the_2024_standard_is_refused_by_name():
    # the standard-only math passes Python scalars to where() and the binary
    # functions, allowed from the 2024.12 revision; array-api-strict set to an
    # older one would fail deep inside with an AttributeError. Its revision is a
    # flag, set here after a first call at the default: each call must read it.
    # expected: the TypeError naming the argument and the revision, and by hand,
    # the calls around it σ(-1), bpr of 1 against 0
    xp = pytest.importorskip("array_api_strict")
    positive, negative = xp.asarray([1.0]), xp.asarray([0.0])
    before = float(bpr_loss(positive, negative))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # strict warns of any non-default version
        with (
            xp.ArrayAPIStrictFlags(api_version="2023.12"),
            pytest.raises(TypeError) as refusal,
        ):
            bpr_loss(positive, negative)
    after = float(bpr_loss(positive, negative))

    assert str(refusal.value) == (
        "positive_predictions is an array_api_strict.Array of the 2023.12 array "
        "API standard; arraylosses needs its 2024.12 revision or later (for "
        "array-api-strict: set_array_api_strict_flags(api_version='2024.12'))"
    )
    assert before == after == 1 / (1 + math.exp(1))


def test_array_api_strict_2_3_0_is_refused_by_name(monkeypatch):
    # array-api-strict 2.3.0's where() takes a Python float beside a float32 array
    # to float64, and float32 losses came back float64 (fixed in 2.3.1). Its
    # backend is resolved on every call, so the version reported here stands in
    # for the release (run by hand on a real 2.3: bpr_loss gave float64). expected:
    # the TypeError naming the argument, the version found and the one needed
    xp = pytest.importorskip("array_api_strict")
    monkeypatch.setattr(xp, "__version__", "2.3")
    with pytest.raises(TypeError) as refusal:
        bpr_loss(xp.asarray([1.0]), xp.asarray([0.0]))
    monkeypatch.undo()

    assert str(refusal.value) == (
        "positive_predictions is an array_api_strict.Array of array-api-strict 2.3, "
        "whose where() turns a float32 loss float64; arraylosses needs 2.3.1 or "
        "later: pip install 'array-api-strict>=2.3.1'"
    )
    assert float(bpr_loss(xp.asarray([1.0]), xp.asarray([0.0]))) == 1 / (
        1 + math.exp(1)
    )


def test_numpy_before_2_is_refused_by_name():
    # NumPy 1 promotes float32 against an integer scalar by value, to float64, so
    # every mean would come back float64. The version is read when NumPy's backend
    # is first resolved: a fresh interpreter that reports NumPy 1.26.4 stands in for
    # one that has it (run by hand on a real 1.26.4, the same message). expected:
    # the TypeError naming the argument, the version found and the one needed
    printed = _printed_by_a_fresh_interpreter(
        """
        import numpy as np
        np.__version__ = "1.26.4"
        from arraylosses import regression_loss
        try:
            regression_loss(np.ones(2), np.zeros(2, np.float32))
        except TypeError as error:
            print(error)
        """
    )
    assert printed == [
        (
            "observed_ratings is a numpy.ndarray of NumPy 1.26.4; arraylosses needs "
            "NumPy 2.0 or later, whose promotion rules keep a float32 loss float32: "
            "pip install 'numpy>=2'"
        )
    ]


def test_no_framework_is_imported_to_detect_one():
    # in a fresh interpreter: import the package, run every loss on NumPy, list imports
    printed = _printed_by_a_fresh_interpreter(
        """
        import sys
        import numpy as np
        import arraylosses as al
        p = np.asarray([0.5, 1.0], dtype=np.float32)
        n = np.asarray([[0.0, 2.0]], dtype=np.float32)
        for loss in (al.pointwise_loss, al.bpr_loss, al.hinge_loss, al.adaptive_hinge_loss):
            loss(p, n[0]) if loss is not al.adaptive_hinge_loss else loss(p, n)
        for loss in (al.regression_loss, al.poisson_loss, al.logistic_loss):
            loss(np.asarray([1, 0]), p)
        frameworks = ("torch", "jax", "dask", "cupy", "array_api_strict", "scipy")
        print(sorted(name for name in frameworks if name in sys.modules))
        """
    )
    assert printed == ["[]"]


@pytest.mark.parametrize(
    "module", [arraylosses.implicit, arraylosses.explicit, arraylosses._gradients]
)
def test_docstring_examples_run(module):
    failures, attempted = doctest.testmod(module, raise_on_error=False)
    assert attempted >= 3
    assert failures == 0
