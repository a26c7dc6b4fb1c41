"""The losses under program transformations: ``jax.jit``, ``jax.vmap``,
``jax.export``, ``torch.compile(fullgraph=True)`` and Dask's lazy graphs.

Each class applies to one backend and skips the others. The JAX and PyTorch tests
apply the transformation themselves, to the functions reached as attributes of the
module (``al.bpr_loss``), which the conftest's ``lazy_xp_function`` patching leaves
alone. The Dask tests call both those (under a scheduler that refuses to compute)
and the tagged globals (which the conftest's patch makes refuse to compute).

Expected values: Spotlight's formulas in float64 (the references in ``support.py``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import support
from array_api_extra.testing import lazy_xp_function

import arraylosses as al
from arraylosses import (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
)

for _loss in (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    pointwise_loss,
    poisson_loss,
    regression_loss,
):
    lazy_xp_function(_loss)

REDUCTIONS = ("mean", "sum", "none")


Case = support.Case
CASES = support.CASES
CASE_IDS = support.CASE_IDS


def _draw(case: Case, rng: np.random.Generator, shape, *, batch_axis: int = 0):
    """Inputs of ``shape`` for ``case``; adaptive hinge gets 3 negatives, stacked on
    the axis just after the first ``batch_axis`` axes."""
    if case.id in {"poisson", "poisson-log", "regression"}:
        first = rng.integers(0, 5, shape).astype(np.float64)
    elif case.id == "logistic":
        first = rng.choice([-1.0, 1.0], shape)
    else:
        first = rng.normal(0.0, 2.0, shape)
    if case.id == "poisson":
        second = rng.uniform(0.1, 4.0, shape)
    elif case.name == "adaptive_hinge_loss":
        stacked = (*shape[:batch_axis], 3, *shape[batch_axis:])
        second = rng.normal(0.0, 2.0, stacked)
    else:
        second = rng.normal(0.0, 2.0, shape)
    return first, second


def _expected(case: Case, first, second, mask, reduction):
    # expected: Spotlight's formula in float64 (support.ref_*), reduced by ref_reduce
    return support.ref_reduce(
        case.reference(first, second, **case.kwargs), mask, reduction
    )


def _skip_unless(xp, backend: str, what: str) -> None:
    name = support.backend_of(xp)
    if name != backend:
        pytest.skip(f"{what} applies to {backend} arrays only, not {name}")


def _mask_of_kind(xp, kind: str, rng: np.random.Generator, shape, dtype):
    """A mask of ``kind`` ('none', 'bool' or 'float', in ``dtype``) at ``shape``, or
    None; both masks are drawn whatever the kind, so later draws do not depend on it."""
    kept = rng.uniform(size=shape) < 0.6
    weights = rng.uniform(0.0, 2.0, shape)
    if kind == "none":
        return None
    if kind == "bool":
        return support.asarray(xp, kept, xp.bool)
    return support.asarray(xp, weights, dtype)


def _shape(reduction: str, shape) -> tuple[int, ...]:
    return tuple(shape) if reduction == "none" else ()


# --- JAX -----------------------------------------------------------------------------


class TestJaxJit:
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_explicit_jit_with_static_options(self, xp, case, reduction, masked):
        _skip_unless(xp, "jax", "jax.jit")
        import jax

        rng = np.random.default_rng(3)
        first, second = _draw(case, rng, (3, 4))
        mask = rng.uniform(0.0, 2.0, (3, 4)) if masked else None
        static = ("reduction", *case.kwargs)
        jitted = jax.jit(getattr(al, case.name), static_argnames=static)
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        mask_xp = None if mask is None else support.asarray(xp, mask, xp.float32)

        result = jitted(*args, mask_xp, reduction=reduction, **case.kwargs)

        support.assert_close(
            result,
            _expected(case, first, second, mask, reduction),
            xp=xp,
            like=args[1],
            shape=_shape(reduction, (3, 4)),
        )

    def test_the_options_must_be_static_under_jit(self, xp):
        # a traced reduction cannot choose a Python branch: the loss refuses one that
        # is not a str by name (jax.jit itself refuses a str argument that is not
        # static, before the loss runs); a static one serves. expected: the eager
        # call's value
        _skip_unless(xp, "jax", "jax.jit")
        import jax

        p = support.asarray(xp, [1.0, 2.0], xp.float32)
        n = support.asarray(xp, [0.5, 3.0], xp.float32)
        with pytest.raises(TypeError, match=r"reduction must be a str, one of"):
            jax.jit(lambda p, n, r: al.bpr_loss(p, n, reduction=r))(p, n, 0)
        static = jax.jit(al.bpr_loss, static_argnames="reduction")
        support.assert_close(
            static(p, n, reduction="sum"),
            support.to_numpy(al.bpr_loss(p, n, reduction="sum")),
            xp=xp,
            like=p,
        )
        # a traced margin is refused with the way out that jit has
        with pytest.raises(
            TypeError,
            match=r"margin must be a real number.*under jax\.jit close over the "
            r"margin or mark it static",
        ):
            jax.jit(lambda p, n, m: al.hinge_loss(p, n, margin=m))(p, p, 0.5)


class TestJaxVmap:
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("masked", [False, True], ids=["no-mask", "mask"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_vmap_over_a_leading_batch_axis(self, xp, case, reduction, masked):
        _skip_unless(xp, "jax", "jax.vmap")
        import jax

        batch, width = 4, 5
        rng = np.random.default_rng(17)
        # adaptive hinge: negatives (B, k, T), so that each row's are (k, T)
        first, second = _draw(case, rng, (batch, width), batch_axis=1)
        mask = rng.uniform(0.0, 2.0, (batch, width)) if masked else None
        if mask is not None:
            mask[1] = 0.0  # one row entirely masked: its mean is 0
        args = [support.asarray(xp, a, xp.float64) for a in (first, second)]
        mask_xp = None if mask is None else support.asarray(xp, mask, xp.float64)
        function = getattr(al, case.name)

        def per_row(f, s, m):
            return function(f, s, m, reduction=reduction, **case.kwargs)

        in_axes = (0, 0, None if mask is None else 0)
        result = jax.vmap(per_row, in_axes=in_axes)(*args, mask_xp)

        # expected: the reference applied row by row
        expected = np.stack(
            [
                _expected(
                    case,
                    first[b],
                    second[b],
                    None if mask is None else mask[b],
                    reduction,
                )
                for b in range(batch)
            ]
        )
        shape = (batch, width) if reduction == "none" else (batch,)
        support.assert_close(result, expected, xp=xp, like=args[1], shape=shape)


class TestJaxExport:
    @pytest.mark.parametrize(
        "mask_shape", [None, "(b, t)", "(b, 1)"], ids=["no-mask", "mask", "row-mask"]
    )
    @pytest.mark.parametrize("gradients", [False, True], ids=["loss", "value_and_grad"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_symbolic_shapes(self, xp, case, mask_shape, gradients):
        # exported with every size symbolic, the adaptive hinge's number of
        # negatives too, then called with 3 negatives of shape (3, 4). A mask that
        # broadcasts, and value_and_grad's mean, divide by a symbolic element count
        _skip_unless(xp, "jax", "jax.export")
        import jax
        from jax import export

        masked = mask_shape is not None

        negatives, batch, width = export.symbolic_shape("k, b, t")
        second = (batch, width)
        if case.name == "adaptive_hinge_loss":
            second = (negatives, batch, width)
        specs = [
            jax.ShapeDtypeStruct((batch, width), xp.float32),
            jax.ShapeDtypeStruct(second, xp.float32),
        ]
        if masked:
            rows = (batch, width) if mask_shape == "(b, t)" else (batch, 1)
            specs.append(jax.ShapeDtypeStruct(rows, xp.bool))
        function = getattr(al, case.name)
        if gradients:
            value_and_grad = al.value_and_grad(function)

            def function(*args, **kwargs):
                return value_and_grad(*args, **kwargs)[0]

        # export lowers for JAX's default backend, not for the test's default device
        # (the CPU for `jax` on a GPU machine); a CUDA device's platform reads "gpu"
        (device,) = xp.asarray(0.0).devices()
        platform = {"gpu": "cuda"}.get(device.platform, device.platform)
        exported = export.export(
            jax.jit(lambda *args: function(*args, **case.kwargs)), platforms=[platform]
        )(*specs)

        rng = np.random.default_rng(23)
        first, second = _draw(case, rng, (3, 4))
        mask_draw = (3, 4) if mask_shape == "(b, t)" else (3, 1)
        mask = rng.uniform(size=mask_draw) < 0.7 if masked else None
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        if masked:
            args.append(support.asarray(xp, mask))
        support.assert_close(
            exported.call(*args),
            _expected(case, first, second, mask, "mean"),
            xp=xp,
            like=args[1],
        )

    def test_a_shape_error_names_symbolic_sizes(self, xp):
        # a mask that does not broadcast against arguments of symbolic shape (b, t):
        # the package's own ValueError, with the sizes by name, not jax.export's
        # error at a symbolic size turned into an int for the message
        _skip_unless(xp, "jax", "jax.export")
        import jax
        from jax import export

        batch, width = export.symbolic_shape("b, t")
        arguments = jax.ShapeDtypeStruct((batch, width), xp.float32)
        mask = jax.ShapeDtypeStruct((3,), xp.bool)
        expected = (
            "mask with shape (3,) does not broadcast to the shape of the elementwise "
            "loss, (b, t)"
        )
        with pytest.raises(ValueError, match=re.escape(expected)):
            export.export(jax.jit(al.bpr_loss))(arguments, arguments, mask)


# --- PyTorch -------------------------------------------------------------------------

# The default (inductor) backend generates and compiles C++: slow, so only for two
# losses; aot_eager still traces through AOTAutograd with fullgraph=True for the rest.
COMPILED = [
    pytest.param(
        case,
        "inductor" if case.id in {"bpr", "regression"} else "aot_eager",
        id=case.id,
    )
    for case in CASES
]


MAPPED = {  # which of (first, second, mask) torch.func.vmap maps over its batch axis
    "all": (0, 0, 0),
    "mask-only": (None, None, 0),
    "second-only": (None, 0, 0),
}


def _mapped_pair(case: Case, mapped: str, rng: np.random.Generator, batch, width):
    """``in_dims`` for (first, second) as ``mapped`` names them, and inputs of shape
    (batch, width) for ``case``, an argument vmap does not map cut to its first row."""
    in_dims = {"all": (0, 0), "first-only": (0, None), "second-only": (None, 0)}[mapped]
    first, second = _draw(case, rng, (batch, width), batch_axis=1)
    first, second = (
        array if dim == 0 else array[0]
        for array, dim in zip((first, second), in_dims, strict=True)
    )
    return in_dims, first, second


class TestTorchVmap:
    """``torch.func.vmap`` over any subset of the arguments: an argument that is not
    mapped meets batched ones inside the loss, where in-place writes are refused."""

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask_kind", ["bool", "float"])
    @pytest.mark.parametrize("mapped", list(MAPPED))
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_vmap(self, xp, case, mapped, mask_kind, reduction):
        _skip_unless(xp, "torch", "torch.func.vmap")
        import torch

        batch, width = 3, 5
        in_dims = MAPPED[mapped]
        rng = np.random.default_rng(29)
        first, second = _draw(case, rng, (batch, width), batch_axis=1)
        if mask_kind == "bool":
            mask = rng.uniform(size=(batch, width)) < 0.6
            mask[1] = False  # one row entirely masked: its mean is 0
        else:
            mask = rng.uniform(0.0, 2.0, (batch, width))
        # an argument that is not mapped is the first row, shared by every call
        first, second = (
            array if dim == 0 else array[0]
            for array, dim in zip((first, second), in_dims[:2], strict=True)
        )
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        mask_dtype = xp.bool if mask_kind == "bool" else xp.float32
        mask_xp = support.asarray(xp, mask, mask_dtype)
        function = getattr(al, case.name)

        def per_row(f, s, m):
            return function(f, s, m, reduction=reduction, **case.kwargs)

        result = torch.func.vmap(per_row, in_dims=in_dims)(*args, mask_xp)

        # expected: the reference applied row by row
        rows = [
            [
                array[b] if dim == 0 else array
                for array, dim in zip((first, second), in_dims[:2], strict=True)
            ]
            for b in range(batch)
        ]
        expected = np.stack(
            [_expected(case, *row, mask[b], reduction) for b, row in enumerate(rows)]
        )
        shape = (batch, width) if reduction == "none" else (batch,)
        support.assert_close(result, expected, xp=xp, like=args[1], shape=shape)

    @pytest.mark.parametrize(
        ("mask_kind", "compiled"),
        [("none", False), ("bool", False), ("float", False), ("none", True)],
        ids=["no-mask", "bool", "float", "no-mask-compiled"],
    )
    @pytest.mark.parametrize("mapped", ["all", "first-only", "second-only"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_backward_through_vmap(self, xp, case, mapped, mask_kind, *, compiled):
        """Losses of each row under vmap, then autograd's backward pass: vmap hides
        ``requires_grad`` from the tensors it batches, so the loss must not write
        into what the backward pass reads back, and an argument that is not mapped
        gets the gradient summed over the rows."""
        _skip_unless(xp, "torch", "torch.func.vmap")
        import torch

        batch, width = 3, 5
        rng = np.random.default_rng(37)
        in_dims, first, second = _mapped_pair(case, mapped, rng, batch, width)
        masks = {
            "none": None,
            "bool": rng.uniform(size=(batch, width)) < 0.6,
            "float": rng.uniform(0.0, 2.0, (batch, width)),
        }
        mask = masks[mask_kind]
        mask_xp = None
        if mask is not None:
            mask_dtype = xp.bool if mask_kind == "bool" else xp.float32
            mask_xp = support.asarray(xp, mask, mask_dtype)
        function = getattr(al, case.name)
        leaves = [
            support.asarray(xp, a, xp.float32).requires_grad_() for a in (first, second)
        ]

        def per_row(f, s, m):
            return function(f, s, m, **case.kwargs)

        mask_dim = None if mask is None else 0
        mapped_rows = torch.func.vmap(per_row, in_dims=(*in_dims, mask_dim))
        if compiled:
            torch._dynamo.reset()
            mapped_rows = torch.compile(
                mapped_rows, fullgraph=True, backend="aot_eager"
            )
        mapped_rows(*leaves, mask_xp).sum().backward()

        # expected: autograd's gradient of the same losses computed row by row
        copies = [leaf.detach().clone().requires_grad_() for leaf in leaves]
        pairs = list(zip(copies, in_dims, strict=True))
        total = sum(
            per_row(
                *(copy[b] if dim == 0 else copy for copy, dim in pairs),
                None if mask_xp is None else mask_xp[b],
            )
            for b in range(batch)
        )
        total.backward()
        for leaf, copy in zip(leaves, copies, strict=True):
            expected = support.to_numpy(copy.grad)
            support.assert_close(
                leaf.grad, expected, xp=xp, like=leaf, shape=expected.shape
            )

    @pytest.mark.filterwarnings(  # forward mode scripts its decompositions once
        "ignore:`torch.jit.script` is (deprecated|not supported):DeprecationWarning"
    )
    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
    @pytest.mark.parametrize("along", ["first", "second"])
    @pytest.mark.parametrize("mapped", ["all", "first-only", "second-only"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_forward_mode_under_vmap(
        self, xp, case, mapped, along, mask_kind, reduction
    ):
        """``vmap`` of ``jvp``, per-row directional derivatives (what jacfwd and
        hessian run under vmap), the tangent along one argument: where vmap maps
        only the other, a value is batched and its tangent is not, and forward mode
        writes a tangent in place wherever the loss writes a value in place, which
        vmap refuses for such a pair."""
        _skip_unless(xp, "torch", "torch.func.vmap of torch.func.jvp")
        import torch

        batch, width = 3, 5
        rng = np.random.default_rng(41)
        in_dims, first, second = _mapped_pair(case, mapped, rng, batch, width)
        mask_xp = _mask_of_kind(xp, mask_kind, rng, width, xp.float64)
        args = [support.asarray(xp, a, xp.float64) for a in (first, second)]
        index = 0 if along == "first" else 1
        tangent_shape = tuple(args[index].shape)[1 if in_dims[index] == 0 else 0 :]
        tangent = support.asarray(xp, rng.normal(size=tangent_shape), xp.float64)
        function = getattr(al, case.name)

        def directional(f, s):
            def along_one(x):
                pair = (x, s) if index == 0 else (f, x)
                return function(*pair, mask_xp, reduction=reduction, **case.kwargs)

            return torch.func.jvp(along_one, (f, s)[index : index + 1], (tangent,))[1]

        result = torch.func.vmap(directional, in_dims=in_dims)(*args)

        # expected: jvp of the same loss row by row, without vmap (whose directional
        # derivatives test_dispatch checks against reverse mode's)
        rows = [
            [
                arg[b] if dim == 0 else arg
                for arg, dim in zip(args, in_dims, strict=True)
            ]
            for b in range(batch)
        ]
        expected = np.stack([support.to_numpy(directional(*row)) for row in rows])
        support.assert_close(
            result, expected, xp=xp, like=args[1], shape=expected.shape, rtol=1e-12
        )

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_compiled_vmap_over_masks_alone(self, xp, case):
        _skip_unless(xp, "torch", "torch.compile of torch.func.vmap")
        import torch

        rng = np.random.default_rng(31)
        first, second = _draw(case, rng, (4,))
        masks = rng.uniform(size=(2, 4)) < 0.6
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        function = getattr(al, case.name)

        def of_mask(mask):
            return function(*args, mask, **case.kwargs)

        torch._dynamo.reset()
        compiled = torch.compile(
            torch.func.vmap(of_mask), fullgraph=True, backend="aot_eager"
        )
        result = compiled(support.asarray(xp, masks, xp.bool))

        # expected: the reference applied mask by mask
        expected = [_expected(case, first, second, mask, "mean") for mask in masks]
        support.assert_close(
            result, np.stack(expected), xp=xp, like=args[1], shape=(2,)
        )


class TestTorchCompile:
    @pytest.mark.parametrize(("case", "compiler"), COMPILED)
    def test_fullgraph_compile(self, xp, case, compiler):
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        rng = np.random.default_rng(23)
        first, second = _draw(case, rng, (3, 4))
        mask = rng.uniform(0.0, 2.0, (3, 4))
        mask[0] = 0.0
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        mask_xp = support.asarray(xp, mask, xp.float32)
        function = getattr(al, case.name)
        # one eager call first: the namespace of torch.Tensor is then known (see
        # test_compile_before_any_eager_call for the other order)
        function(*args, mask_xp, **case.kwargs)
        torch._dynamo.reset()
        compiled = torch.compile(function, fullgraph=True, backend=compiler)

        for reduction in ("mean", "none"):
            result = compiled(*args, mask_xp, reduction=reduction, **case.kwargs)
            support.assert_close(
                result,
                _expected(case, first, second, mask, reduction),
                xp=xp,
                like=args[1],
                shape=_shape(reduction, (3, 4)),
            )

    # the first dual tensor loads torch's own decompositions for forward mode, which
    # torch.jit.script compiles, and PyTorch 2.13 warns of its own call
    @pytest.mark.filterwarnings(
        "ignore:`torch.jit.script` is deprecated:DeprecationWarning:torch"
    )
    @pytest.mark.parametrize("mask_kind", ["none", "bool", "float"])
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_forward_mode_inside_a_compiled_function(self, xp, case, mask_kind):
        """Dual tensors of ``torch.autograd.forward_ad`` made inside the compiled
        function: forward mode marks no tensor as requiring grad, and a loss that
        took it for a plain call would lose the tangent (a bool mask's kept terms,
        read through their bits, drop it)."""
        _skip_unless(xp, "torch", "torch.compile")
        import torch
        from torch.autograd import forward_ad

        rng = np.random.default_rng(43)
        first, second = _draw(case, rng, (3, 4))
        mask_xp = _mask_of_kind(xp, mask_kind, rng, (3, 4), xp.float32)
        args = [support.asarray(xp, a, xp.float32) for a in (first, second)]
        tangent = support.asarray(xp, rng.normal(size=second.shape), xp.float32)
        function = getattr(al, case.name)

        def derivative_along_second(f, s):
            with forward_ad.dual_level():
                dual = forward_ad.make_dual(s, tangent)
                loss = function(f, dual, mask_xp, **case.kwargs)
                return forward_ad.unpack_dual(loss).tangent

        expected = derivative_along_second(*args)
        torch._dynamo.reset()
        compiled = torch.compile(derivative_along_second, backend="eager")
        result = compiled(*args)

        # expected: the same directional derivative eager (whose forward mode
        # test_dispatch checks against reverse mode's)
        assert result is not None
        support.assert_close(
            result, support.to_numpy(expected), xp=xp, like=args[1], shape=()
        )

    def test_all_false_bool_mask_compiled_gives_zero(self, xp):
        # the compiled masked mean counts the mask in the graph, at least 1, as the
        # eager one does. expected: by hand, nothing is kept, so the mean and the sum
        # are exactly 0 (0 / 0 = NaN without the floor of the count)
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        p = support.asarray(xp, [0.5, -1.0, 2.0], xp.float32)
        n = support.asarray(xp, [1.0, 0.0, -2.0], xp.float32)
        nothing = support.asarray(xp, [False, False, False], xp.bool)
        al.bpr_loss(p, n, nothing)  # eager first, as in test_fullgraph_compile
        torch._dynamo.reset()
        compiled = torch.compile(al.bpr_loss, fullgraph=True, backend="eager")
        for reduction in ("mean", "sum"):
            result = compiled(p, n, nothing, reduction=reduction)
            support.assert_close(result, 0.0, xp=xp, like=p, rtol=0, atol=0)

    def test_fullgraph_compile_of_two_dtypes(self, xp):
        # float16 with float32 promotes outside the standard's table of dtypes, where
        # the compat layer's result_type made tensors and broke the graph
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        p = support.asarray(xp, [0.5, -1.0, 2.0], xp.float16)
        n = support.asarray(xp, [1.0, 0.0, -2.0], xp.float32)
        al.bpr_loss(p, n)  # eager first, as in test_fullgraph_compile
        torch._dynamo.reset()
        compiled = torch.compile(al.bpr_loss, fullgraph=True, backend="eager")
        # by hand: n - p = (0.5, 1, -4), exact in both dtypes; the mean of σ of it,
        # in float32, the dtype the two promote to
        expected = np.mean(1.0 / (1.0 + np.exp(-np.asarray([0.5, 1.0, -4.0]))))
        support.assert_close(compiled(p, n), expected, xp=xp, like=n)

    def test_a_symbolic_size_against_a_static_one(self, xp):
        # Dynamo makes a size symbolic when it changes between calls, or where
        # maybe_mark_dynamic says so; here the mask's and the positives' sizes are,
        # the loss's are not. A shape check that asked `5 in (s, 1)` found a symbolic
        # s equal to 5 missing, and refused shapes that broadcast
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        rng = np.random.default_rng(37)
        p_column = rng.normal(size=(4, 1))
        p = rng.normal(size=(4, 5))
        n = rng.normal(size=(4, 5))
        row_mask = np.asarray([True, False, True, True, False])
        arrays = {
            "p_column": support.asarray(xp, p_column, xp.float32),
            "p": support.asarray(xp, p, xp.float32),
            "n": support.asarray(xp, n, xp.float32),
            "row_mask": support.asarray(xp, row_mask, xp.bool),
        }
        torch._dynamo.maybe_mark_dynamic(arrays["row_mask"], 0)
        torch._dynamo.maybe_mark_dynamic(arrays["p_column"], 0)
        torch._dynamo.reset()
        bpr = torch.compile(al.bpr_loss, fullgraph=True, backend="eager")
        hinge = torch.compile(al.hinge_loss, fullgraph=True, backend="eager")

        masked = bpr(arrays["p"], arrays["n"], arrays["row_mask"])
        broadcast = hinge(arrays["p_column"], arrays["n"])

        # expected: Spotlight's formulas in float64 (support.ref_*), reduced by ref_reduce
        support.assert_close(
            masked,
            support.ref_reduce(
                support.ref_bpr(p, n), np.broadcast_to(row_mask, (4, 5)), "mean"
            ),
            xp=xp,
            like=arrays["n"],
        )
        support.assert_close(
            broadcast,
            support.ref_reduce(support.ref_hinge(p_column, n), None, "mean"),
            xp=xp,
            like=arrays["n"],
        )

    def test_numpy_scalar_margin_is_refused_with_the_way_out(self, xp):
        # Dynamo makes an array of a NumPy scalar while it traces, which the hinges
        # refuse; eager calls take the scalar. The message must not read as if the
        # scalar itself were not a real number, and must say what to pass instead
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        p = support.asarray(xp, [2.0, 0.5, -1.0], xp.float32)
        n = support.asarray(xp, [-1.0, 0.0, 1.0], xp.float32)
        # expected: the eager call with the same margin, as a Python float
        expected = al.hinge_loss(p, n, margin=0.5)
        support.assert_close(
            al.hinge_loss(p, n, margin=np.float32(0.5)), expected, xp=xp, like=p
        )
        torch._dynamo.reset()
        compiled = torch.compile(al.hinge_loss, backend="eager")
        with pytest.raises(TypeError, match=r"float\(margin\) under torch\.compile"):
            compiled(p, n, margin=np.float32(0.5))
        support.assert_close(compiled(p, n, margin=0.5), expected, xp=xp, like=p)

    def test_int_margins_that_change_compile_into_one_graph(self, xp):
        # the second int margin makes Dynamo take it as a symbolic number, whose
        # finiteness test must trace as well (math.isfinite of it broke the graph)
        _skip_unless(xp, "torch", "torch.compile")
        import torch

        p = support.asarray(xp, [2.0, 0.5, -1.0], xp.float32)
        n = support.asarray(xp, [-1.0, 0.0, 1.0], xp.float32)
        torch._dynamo.reset()
        compiled = torch.compile(al.hinge_loss, fullgraph=True, backend="eager")
        for margin in (1, 2, 3):
            # expected: Spotlight's formula in float64 (support.ref_hinge), meaned
            expected = np.mean(
                support.ref_hinge(support.to_numpy(p), support.to_numpy(n), margin)
            )
            result = compiled(p, n, margin=margin)
            support.assert_close(result, expected, xp=xp, like=p, shape=())

    def test_no_graph_break_for_bpr_with_a_mask(self, xp):
        _skip_unless(xp, "torch", "torch._dynamo.explain")
        import torch

        p = support.asarray(xp, [[0.5, -1.0, 2.0], [0.0, 1.5, -0.5]], xp.float32)
        n = support.asarray(xp, [[1.0, 0.0, -2.0], [0.5, 0.5, 0.5]], xp.float32)
        for mask in (
            support.asarray(xp, [[1.0, 0.0, 2.0], [0.5, 1.0, 1.0]], xp.float32),
            support.asarray(xp, [[True, False, True], [True, True, False]], xp.bool),
        ):
            al.bpr_loss(p, n, mask)  # eager first, as in test_fullgraph_compile
            torch._dynamo.reset()
            explanation = torch._dynamo.explain(al.bpr_loss)(p, n, mask)
            assert explanation.graph_break_count == 0, explanation.break_reasons
            assert explanation.graph_count == 1

    def test_compile_before_any_eager_call(self, xp):
        # A program whose first call of a loss is a compiled one: dynamo then traces
        # the namespace lookup too. It must compile with fullgraph=True, without
        # warnings but Dynamo's note on lru_cache, and once: the next calls must pass
        # the guards the first set, which a cache filled while tracing would fail (a
        # fresh interpreter is the only way to be before the first call).
        _skip_unless(xp, "torch", "torch.compile")
        script = textwrap.dedent(
            """
            import json
            import warnings
            import torch
            import arraylosses
            warnings.simplefilter("error")
            # Dynamo traces array-api-compat's lru_cache'd type lookups while no eager
            # call has filled arraylosses' own cache, and says so, once per helper; it
            # traces through them correctly, with no graph break
            warnings.filterwarnings(
                "ignore", "Dynamo detected a call to a `functools.lru_cache`", UserWarning
            )
            p = torch.tensor([0.5, -1.0, 2.0])
            n = torch.tensor([1.0, 0.0, -2.0])
            weights = torch.tensor([1, 0, 1], dtype=torch.uint8)
            bpr = torch.compile(arraylosses.bpr_loss, fullgraph=True, backend="aot_eager")
            hinge = torch.compile(arraylosses.hinge_loss, fullgraph=True, backend="aot_eager")
            values = [
                float(bpr(p, n)),
                # dtypes no call has met before
                float(hinge(p.bfloat16(), n.bfloat16(), weights)),
            ]
            with torch.compiler.set_stance("fail_on_recompile"):
                values += [
                    float(bpr(n, p)),
                    float(hinge(n.bfloat16(), p.bfloat16(), weights)),
                ]
            print(json.dumps(values))
            """
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=False,
            env=support.child_environment(),
            timeout=300,
        )
        assert done.returncode == 0, done.stderr[-3000:]
        # expected: Spotlight's formula in float64 (support.ref_bpr), and by hand the
        # masked hinges: n - p + 1 = (1.5, 2, -3) and p - n + 1 = (0.5, 0, 5), means
        # of their first and last terms (exact in bfloat16)
        p, n = np.array([0.5, -1.0, 2.0]), np.array([1.0, 0.0, -2.0])
        expected = [
            support.ref_bpr(p, n).mean(),
            0.75,
            support.ref_bpr(n, p).mean(),
            2.75,
        ]
        np.testing.assert_allclose(json.loads(done.stdout), expected, rtol=1e-6)


# --- Dask ----------------------------------------------------------------------------


class TestDaskLaziness:
    def _inputs(self, xp, case):
        import dask.array as da

        rng = np.random.default_rng(29)
        first, second = _draw(case, rng, (4, 6))
        mask = rng.uniform(0.0, 2.0, (4, 6))
        mask[:, 0] = 0.0
        arrays = [xp.asarray(da.from_array(a, chunks=2)) for a in (first, second, mask)]
        return (first, second, mask), arrays

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_a_call_computes_nothing(self, xp, case):
        _skip_unless(xp, "dask", "dask laziness")

        (first, second, mask), (first_d, second_d, mask_d) = self._inputs(xp, case)
        function = getattr(al, case.name)
        results = {}
        with support.computing_nothing():
            for reduction in REDUCTIONS:
                for weights in (None, mask_d):
                    key = (reduction, weights is not None)
                    results[key] = function(
                        first_d, second_d, weights, reduction=reduction, **case.kwargs
                    )
            # the scheduler does refuse: this test could fail
            with pytest.raises(AssertionError, match="computed part"):
                results["mean", True].compute()

        for (reduction, masked), result in results.items():
            weights = mask if masked else None
            support.assert_close(
                result,  # computed here, with the default scheduler
                _expected(case, first, second, weights, reduction),
                xp=xp,
                like=second_d,
                shape=_shape(reduction, (4, 6)),
            )
            # and the package on the same values as NumPy arrays (backends agree)
            on_numpy = function(
                first, second, weights, reduction=reduction, **case.kwargs
            )
            np.testing.assert_allclose(
                support.to_numpy(result), on_numpy, rtol=1e-12, atol=1e-13
            )
            if reduction == "none":
                assert (
                    result.chunks == first_d.chunks
                )  # 'none' keeps the input chunking

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_tagged_call_computes_nothing(self, xp, case):
        # the tagged globals raise if they compute anything (lazy_xp_function's patch)
        _skip_unless(xp, "dask", "dask laziness")
        (first, second, mask), (first_d, second_d, mask_d) = self._inputs(xp, case)
        function = globals()[case.name]
        assert function is not getattr(
            al, case.name
        )  # the conftest's wrapper is in place
        for reduction in REDUCTIONS:
            result = function(
                first_d, second_d, mask_d, reduction=reduction, **case.kwargs
            )
            support.assert_close(
                result,
                _expected(case, first, second, mask, reduction),
                xp=xp,
                like=second_d,
                shape=_shape(reduction, (4, 6)),
            )
            if reduction == "none":
                assert result.chunks == first_d.chunks

    @pytest.mark.parametrize(
        "weights", ["none", "floats", "bools", "all-false"], ids=lambda w: w
    )
    @pytest.mark.parametrize("reduction", ["mean", "sum"])
    @pytest.mark.parametrize("kept", ["some", "none"], ids=["some-kept", "none-kept"])
    def test_unknown_chunk_sizes(self, xp, reduction, weights, kept):
        # boolean selection leaves Dask arrays whose length is unknown (NaN) until
        # computed; the checks must take such a dimension as fitting, not refuse it,
        # and a mean over a selection that turns out empty, or under a mask that is
        # all False, is 0 as for arrays of known size
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        rng = np.random.default_rng(37)
        p, n = rng.normal(size=12), rng.normal(size=12)
        w = {
            "none": None,
            "floats": rng.uniform(0.5, 2.0, 12),
            "bools": rng.uniform(size=12) > 0.3,
            "all-false": np.zeros(12, dtype=bool),
        }[weights]
        keep = p > -0.5 if kept == "some" else p > 100.0
        select = xp.asarray(da.from_array(keep, chunks=4))
        p_d, n_d = (xp.asarray(da.from_array(a, chunks=4))[select] for a in (p, n))
        w_d = None if w is None else xp.asarray(da.from_array(w, chunks=4))[select]
        assert np.isnan(p_d.shape[0])
        with support.computing_nothing():
            result = al.bpr_loss(p_d, n_d, w_d, reduction=reduction)
        # expected: Spotlight's formula in float64 (support.ref_bpr) on the kept
        # elements, with support.ref_reduce's 0 for no weight or no element
        expected = support.ref_reduce(
            support.ref_bpr(p[keep], n[keep]),
            None if w is None else w[keep],
            reduction,
        )
        support.assert_close(result, expected, xp=xp, like=p_d)

    @pytest.mark.parametrize(
        "kept", ["first-chunk-empty", "none", "some"], ids=lambda kept: kept
    )
    def test_adaptive_hinge_over_a_selection_that_empties_chunks(self, xp, kept):
        # the maximum over the negatives of (K, ?, 2) negatives, where a boolean
        # selection emptied chunks of the batch axis: Dask's own max reduction fails
        # to compute there (shapes that do not broadcast) and gets an empty one's
        # shape wrong. expected: Spotlight's formula in float64
        # (support.ref_adaptive_hinge) on the kept rows, 0 for none
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        rng = np.random.default_rng(41)
        p, n = rng.normal(size=(8, 2)), rng.normal(size=(3, 8, 2))
        keep = {
            "first-chunk-empty": np.arange(8) >= 4,
            "none": np.zeros(8, dtype=bool),
            "some": rng.uniform(size=8) > 0.4,
        }[kept]
        select = xp.asarray(da.from_array(keep, chunks=4))
        p_d = xp.asarray(da.from_array(p, chunks=(4, 2)))[select]
        n_d = xp.asarray(da.from_array(n, chunks=(3, 4, 2)))[:, select]
        assert np.isnan(p_d.shape[0])
        with support.computing_nothing():
            result = al.adaptive_hinge_loss(p_d, n_d)
            value, _ = al.value_and_grad(al.adaptive_hinge_loss)(p_d, n_d)
        expected = support.ref_reduce(
            support.ref_adaptive_hinge(p[keep], n[:, keep]), None, "mean"
        )
        for actual in (result, value):
            support.assert_close(actual, expected, xp=xp, like=p_d)

    def test_adaptive_hinge_over_chunks_known_to_hold_elements(self, xp):
        # the halvings that serve empty chunks cost a task graph 2.4 times the
        # formula's written with dask.array. expected: as many tasks as that formula
        # once both are optimised, and its value (support.ref_adaptive_hinge in
        # float64)
        _skip_unless(xp, "dask", "dask laziness")
        import dask
        import dask.array as da

        rng = np.random.default_rng(47)
        p, n = rng.normal(size=64), rng.normal(size=(4, 64))
        p_d = xp.asarray(da.from_array(p, chunks=8))
        n_d = xp.asarray(da.from_array(n, chunks=(4, 8)))
        with support.computing_nothing():
            result = al.adaptive_hinge_loss(p_d, n_d)
        by_hand = da.maximum(da.max(n_d, axis=0) - p_d + 1.0, 0.0).mean()
        (result_graph,), (by_hand_graph,) = (
            dask.optimize(result),
            dask.optimize(by_hand),
        )
        assert len(result_graph.__dask_graph__()) == len(by_hand_graph.__dask_graph__())
        expected = support.ref_reduce(support.ref_adaptive_hinge(p, n), None, "mean")
        support.assert_close(result, expected, xp=xp, like=p_d)

    @pytest.mark.parametrize(
        "empty", ["sizes-computed", "batch-chunk", "negatives-chunk"]
    )
    def test_adaptive_hinge_over_empty_chunks_of_known_size(self, xp, empty):
        # chunks known to be empty: a selection after compute_chunk_sizes(), which the
        # scaling guide recommends, or chunks made so. Dask's own max over the
        # negatives axis failed to compute there ("operands could not be broadcast
        # together"). expected: support.ref_adaptive_hinge in float64 on those rows
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        rng = np.random.default_rng(43)
        p, n = rng.normal(size=(8, 3)), rng.normal(size=(2, 8, 3))
        keep = np.arange(8) >= 4
        if empty == "sizes-computed":
            select = da.from_array(keep, chunks=4)
            p_d = xp.asarray(da.from_array(p, chunks=(4, 3)))[select]
            n_d = xp.asarray(da.from_array(n, chunks=(2, 4, 3)))[:, select]
            p_d.compute_chunk_sizes()
            n_d.compute_chunk_sizes()
            p, n = p[keep], n[:, keep]
        elif empty == "batch-chunk":
            p_d = xp.asarray(da.from_array(p, chunks=((4, 0, 4), (3,))))
            n_d = xp.asarray(da.from_array(n, chunks=((2,), (4, 0, 4), (3,))))
        else:
            p_d = xp.asarray(da.from_array(p, chunks=(4, 3)))
            n_d = xp.asarray(da.from_array(n, chunks=((0, 2), (4, 4), (3,))))
        with support.computing_nothing():
            result = al.adaptive_hinge_loss(p_d, n_d)
            value, _ = al.value_and_grad(al.adaptive_hinge_loss)(p_d, n_d)
            elementwise = al.adaptive_hinge_loss(p_d, n_d, reduction="none")
        expected = support.ref_adaptive_hinge(p, n)
        for actual in (result, value):
            support.assert_close(
                actual, support.ref_reduce(expected, None, "mean"), xp=xp, like=p_d
            )
        support.assert_close(
            elementwise,
            expected,
            xp=xp,
            like=p_d,
            shape=(4 if empty == "sizes-computed" else 8, 3),
        )

    def test_unknown_size_against_a_known_one_is_refused_by_name(self, xp):
        # Dask broadcasts an unknown length only against another unknown one or 1;
        # against any other length its own error names no argument. expected: our
        # ValueError naming both shapes, for a pair and for a mask, computing nothing;
        # and the shapes that do broadcast, accepted
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        values = np.arange(6, dtype=np.float32)
        unknown = xp.asarray(da.from_array(values, chunks=2))[
            xp.asarray(da.from_array(values > 2, chunks=2))
        ]
        known = xp.asarray(da.from_array(values[3:], chunks=3))
        message = "with shape \\(3,\\).*an unknown size \\(\\?\\) meets a known one"
        with support.computing_nothing():
            with pytest.raises(ValueError, match=f"positive_predictions {message}"):
                al.bpr_loss(known, unknown)
            with pytest.raises(ValueError, match=f"mask {message}"):
                al.bpr_loss(unknown, unknown, xp.ones(3, dtype=xp.bool))
            zero = xp.zeros(1, dtype=xp.float32)
            fitting = al.bpr_loss(unknown, zero, xp.ones(1, dtype=xp.bool))
        # expected by hand: the kept values 3, 4, 5 against 0, σ(-3), σ(-4), σ(-5)
        expected = np.mean(1 / (1 + np.exp(values[3:].astype(np.float64))))
        support.assert_close(fitting, expected, xp=xp, like=unknown)

    def test_two_unknown_sizes_are_paired_chunk_by_chunk_or_refused(self, xp):
        # two unknown lengths pass the shape checks as equal, and Dask pairs their
        # chunks: a chunk of 1 broadcast against a chunk of 3 gave a wrong loss without
        # a word, even for arrays of one length chunked apart. expected: the loss of
        # arrays selected alike, Spotlight's formula in float64 (support.ref_bpr and
        # support.ref_adaptive_hinge) on the kept elements; a ValueError naming both
        # arguments where chunks differ in length (when computed, whichever pair
        # comes first) or in number (at the call); and nothing computed by any call
        _skip_unless(xp, "dask", "dask laziness")
        import dask.array as da

        def selected(values, keep, chunks):
            array = xp.asarray(da.from_array(values, chunks=chunks))
            return array[..., xp.asarray(da.from_array(keep, chunks=chunks[-1]))]

        rng = np.random.default_rng(53)
        p, n, negatives = (
            rng.normal(size=6),
            rng.normal(size=6),
            rng.normal(size=(2, 6)),
        )
        keep = np.asarray([True, False, False, True, True, True])
        weights = np.asarray([True, True, False, True, True, True])
        with support.computing_nothing():
            p_d, n_d = selected(p, keep, (3,)), selected(n, keep, (3,))
            assert np.isnan(p_d.shape[0])
            paired = al.bpr_loss(p_d, n_d, selected(weights, keep, (3,)))
            hinged = al.adaptive_hinge_loss(p_d, selected(negatives, keep, (1, 3)))
            # (?,) against (2, ?), either way round: the wider array is checked
            rows = selected(negatives, keep, (1, 3))
            widened = (al.bpr_loss(p_d, rows), al.bpr_loss(rows, p_d))
            # 4 elements each, chunked 1 + 3 and 3 + 1
            apart = selected(n, np.asarray([True] * 4 + [False] * 2), (3,))
            unpaired = al.bpr_loss(p_d, apart)
            mask_apart = al.bpr_loss(
                p_d, n_d, selected(weights, np.ones(6, dtype=bool), (3,))
            )
            negatives_apart = al.adaptive_hinge_loss(
                p_d, selected(negatives, np.roll(keep, 1), (1, 3))
            )
            # a (2, ?) mask against the (2, ?) negatives, chunked 1 + 3 and 2 + 2
            wide_mask_apart = al.bpr_loss(
                p_d, rows, selected(np.ones((2, 6), bool), np.roll(keep, -2), (1, 3))
            )
            with pytest.raises(
                ValueError,
                match=r"^positive_predictions and negative_predictions have sizes "
                r"Dask does not know yet, and axis 0 is in 2 and 3 chunks",
            ):
                al.bpr_loss(p_d, selected(n, keep, (2,)))
        expected = support.ref_reduce(
            support.ref_bpr(p[keep], n[keep]), weights[keep], "mean"
        )
        support.assert_close(paired, expected, xp=xp, like=p_d)
        expected = support.ref_reduce(
            support.ref_adaptive_hinge(p[keep], negatives[:, keep]), None, "mean"
        )
        support.assert_close(hinged, expected, xp=xp, like=p_d)
        for loss, ordered in zip(
            widened, ((p, negatives), (negatives, p)), strict=True
        ):
            first, second = (values[..., keep] for values in ordered)
            expected = support.ref_reduce(support.ref_bpr(first, second), None, "mean")
            support.assert_close(loss, expected, xp=xp, like=p_d)
        for loss, names in (
            (unpaired, "positive_predictions and negative_predictions"),
            (mask_apart, "positive_predictions and mask"),
            (negatives_apart, "positive_predictions and negative_predictions"),
            (wide_mask_apart, "negative_predictions and mask"),
        ):
            with pytest.raises(
                ValueError,
                match=f"^{names}, of sizes Dask did not know, have chunks of "
                r"\d and \d elements along axis \d where the loss pairs them",
            ):
                loss.compute()
