"""The losses at scale on Dask: lazy graphs, tree reductions and chunking, on irregular
chunkings and on a ``dask.distributed`` cluster (issue 6, item 1).

Every loss and ``value_and_grad`` of every loss, on chunked ``dask.array`` inputs:

- builds a task graph and computes nothing while doing so (``TestIrregularChunks``:
  each call runs under a Dask scheduler that raises if anything is computed);
- reduces with tree reductions, so that no task ever holds a whole input, and keeps
  the input's chunking with ``reduction='none'`` and in the gradients
  (``TestTreeReductions``: proved from the task graph and from the tasks' results);
- gives on a ``LocalCluster`` of two worker processes on loopback what it gives on
  NumPy (``TestDistributed``).

These tests are about Dask alone, so they take no ``xp`` fixture, and the module
skips where ``dask.array`` does not import (the cluster tests where ``distributed``
does not). With no ``xp`` fixture the conftest's ``lazy_xp_function`` patching never
runs, so nothing is tagged here: the functions are called as attributes of the
module (``al.bpr_loss``) and laziness is checked by the refusing scheduler instead.

Expected values, as each test says:

- "NumPy path": the package's own result on the same values as NumPy arrays. This
  is a consistency check of the Dask path against the NumPy path, not a reference;
  the NumPy path itself is checked against Spotlight's formulas in test_implicit.py,
  test_explicit.py and test_value_and_grad.py.
- "Spotlight's formula": the float64 references of support.py (``support.ref_*``,
  reduced by ``support.ref_reduce``), for every loss value of ``TestIrregularChunks``.
"""

from __future__ import annotations

import importlib.util
from collections import Counter
from collections.abc import Iterator
from typing import Any, NamedTuple

import array_api_compat
import numpy as np
import pytest
import support

import arraylosses as al

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")
dask_callbacks = pytest.importorskip("dask.callbacks")
dask_core = pytest.importorskip("dask.core")
highlevelgraph = pytest.importorskip("dask.highlevelgraph")

XP = array_api_compat.array_namespace(da.zeros(1))  # array-api-compat's dask.array
REDUCTIONS = ("mean", "sum", "none")
K = 4  # negatives stacked on adaptive hinge's leading axis (irregular layouts)

# dask's reductions combine at most `split_every` blocks in one task; unset, as here,
# dask uses 4 (dask/array/_reductions_generic.py: `split_every or
# config.get("split_every", 4)`). A reduction over two axes splits each by
# max(int(4 ** (1 / 2)), 2) = 2, so 2 x 2 = 4 blocks per task as well.
SPLIT_EVERY = dask.config.get("split_every", 4)


# --- the losses ----------------------------------------------------------------------


Case = support.Case
CASES = support.CASES
CASE_IDS = support.CASE_IDS


def _draw(case: Case, rng: np.random.Generator, first_shape, second_shape):
    """Float64 values for ``case``: ``second_shape`` includes the negatives axis."""
    if case.id in {"regression", "poisson", "poisson-log"}:
        first = rng.integers(0, 5, first_shape).astype(np.float64)
    elif case.id == "logistic":
        first = rng.choice([-1.0, 1.0], first_shape)
    else:
        first = rng.normal(0.0, 2.0, first_shape)
    if case.id == "poisson":
        second = rng.uniform(0.1, 4.0, second_shape)  # rates well above 0
    else:
        second = rng.normal(0.0, 2.0, second_shape)
    return first, second


# --- chunked inputs ------------------------------------------------------------------


class Layout(NamedTuple):
    """Shapes and chunkings of one call's inputs (chunks as dask takes them)."""

    id: str
    first_shape: tuple[int, ...]
    first_chunks: Any
    loss_shape: tuple[int, ...]  # also the shape of the second argument
    second_chunks: Any
    negatives_chunks: Any  # the second argument of adaptive hinge, (k, *loss_shape)
    k: int
    mask_chunks: Any  # a mask of the loss's shape
    broadcast_mask_shape: tuple[int, ...]
    broadcast_mask_chunks: Any


# Each argument chunked differently from the others: dask aligns them itself.
IRREGULAR = (
    Layout(
        "1d",
        (20,),
        ((3, 7, 1, 9),),
        (20,),
        ((5, 5, 5, 5),),
        ((1, 3), (2, 8, 10)),  # negatives chunked along k too
        K,
        ((6, 6, 8),),
        (1,),
        ((1,),),
    ),
    Layout(
        "2d",
        (8, 10),
        ((2, 5, 1), (4, 3, 3)),
        (8, 10),
        ((3, 5), (5, 5)),
        ((3, 1), (2, 5, 1), (4, 3, 3)),
        K,
        ((8,), (1, 9)),
        (8, 1),
        ((3, 5), (1,)),
    ),
    Layout(
        "broadcast-B1-BT",  # the first argument (B, 1) against the second (B, T)
        (8, 1),
        ((2, 5, 1), (1,)),
        (8, 10),
        ((2, 5, 1), (4, 3, 3)),
        ((2, 2), (4, 4), (10,)),
        K,
        ((4, 4), (5, 5)),
        (8, 1),
        ((1, 7), (1,)),
    ),
)

# Many regular chunks, the same for every argument: 64 chunks of a full-shape input.
MANY_CHUNKS = (
    Layout(
        "1d-64-chunks",
        (256,),
        ((4,) * 64,),
        (256,),
        ((4,) * 64,),
        ((2, 2), (4,) * 64),  # 4 negatives in 2 chunks: max combines across k
        4,
        ((4,) * 64,),
        (1,),
        ((1,),),
    ),
    Layout(
        "2d-broadcast-64-chunks",  # (4, 1) against (4, 256) in 2 x 32 chunks
        (4, 1),
        ((2, 2), (1,)),
        (4, 256),
        ((2, 2), (8,) * 32),
        ((2, 2), (2, 2), (8,) * 32),
        4,
        ((2, 2), (8,) * 32),
        (4, 1),
        ((2, 2), (1,)),
    ),
)

MASKS = ("no-mask", "bool", "float", "broadcast")


class Inputs(NamedTuple):
    numpy: tuple[Any, Any, Any]  # first, second, mask (or None), float64 NumPy
    dask: tuple[Any, Any, Any]  # the same values as dask arrays


def _inputs(case: Case, layout: Layout, mask_kind: str, seed: int) -> Inputs:
    rng = np.random.default_rng(seed)
    second_shape = layout.loss_shape
    second_chunks = layout.second_chunks
    if case.negatives_axis:
        second_shape = (layout.k, *layout.loss_shape)
        second_chunks = layout.negatives_chunks
    first, second = _draw(case, rng, layout.first_shape, second_shape)
    if mask_kind == "no-mask":
        mask, mask_chunks = None, None
    elif mask_kind == "bool":
        mask, mask_chunks = rng.random(layout.loss_shape) < 0.6, layout.mask_chunks
    elif mask_kind == "float":  # weights, a quarter of them 0
        mask = rng.uniform(0.0, 2.0, layout.loss_shape)
        mask[rng.random(layout.loss_shape) < 0.25] = 0.0
        mask_chunks = layout.mask_chunks
    else:  # broadcast: (B, 1) weights against the (B, T) loss, one of them 0
        mask = rng.uniform(0.5, 2.0, layout.broadcast_mask_shape)
        mask.flat[0] = 0.0
        mask_chunks = layout.broadcast_mask_chunks
    return Inputs(
        (first, second, mask),
        (
            da.from_array(first, chunks=layout.first_chunks),
            da.from_array(second, chunks=second_chunks),
            None if mask is None else da.from_array(mask, chunks=mask_chunks),
        ),
    )


# --- laziness ------------------------------------------------------------------------


def _elementwise_chunks(case: Case, first, second, mask):
    """The chunks dask's own broadcasting gives the elementwise loss of these inputs
    (the common refinement of their chunks): built lazily, never computed."""
    trailing = second[0] if case.negatives_axis else second
    combined = first + trailing
    if mask is not None:
        combined = combined + mask
    return combined.chunks


# --- the graph -----------------------------------------------------------------------


def _graph(*collections):
    """The merged, unoptimised high-level graph of ``collections``."""
    return highlevelgraph.HighLevelGraph.merge(
        *(collection.__dask_graph__() for collection in collections)
    )


def _keys(collection) -> set[Any]:
    return set(dask_core.flatten(collection.__dask_keys__()))


def _ancestors(dependencies: dict[Any, set[Any]], keys) -> set[Any]:
    """Every key that ``keys`` depend on, directly or not."""
    seen: set[Any] = set()
    stack = list(keys)
    while stack:
        for dependency in dependencies[stack.pop()]:
            if dependency not in seen:
                seen.add(dependency)
                stack.append(dependency)
    return seen


def _elements(result: Any) -> int:
    """How many array elements a task's result holds (containers: all of them)."""
    if isinstance(result, dict):
        return sum(_elements(value) for value in result.values())
    if isinstance(result, list | tuple):
        return sum(_elements(value) for value in result)
    return int(getattr(result, "size", 1))


def _compute_recording_sizes(*collections) -> tuple[tuple[Any, ...], dict[Any, int]]:
    """Compute ``collections`` on the synchronous scheduler, and record how many
    elements each task's result holds."""
    sizes: dict[Any, int] = {}
    # only the collections' own tasks: dask.compute adds a task per collection that
    # concatenates its blocks into the NumPy result it hands back
    own = set(_graph(*collections).keys())

    def record(key, result, dsk, state, worker_id):  # noqa: ARG001 - dask's signature
        if key in own:
            sizes[key] = _elements(result)

    with dask_callbacks.Callback(posttask=record):
        # unoptimised: the tasks that run are those of the graph checked above, not
        # fused ones (fusion joins elementwise tasks of one block, never across blocks)
        values = dask.compute(*collections, scheduler="sync", optimize_graph=False)
    return values, sizes


def _assert_tree_reduced(outputs, inputs, *, reduced_to_scalar) -> tuple[Any, ...]:
    """No task of ``outputs``' graph holds a whole input; reductions are trees.

    The criterion, from the graph and not by eye:

    1. every task depends directly on at most SPLIT_EVERY (4) others. An elementwise
       task takes one block of each operand (at most 3: ``where(c, x, y)``), and a
       reduction task combines at most SPLIT_EVERY blocks, so no task can read all the
       64 (or more) chunks of an input at once;
    2. yet each scalar in ``reduced_to_scalar`` depends, through the graph, on every
       chunk of every input. With a fan-in of at most 4, reaching 64 chunks takes at
       least log_4(64) = 3 levels of combining tasks: the reduction is a tree;
    3. run on the synchronous scheduler, no task's result holds more elements than
       the largest chunk of the inputs (a 64th of a full-shape input or less), so no
       task ever holds a whole input, not even one assembled in several steps (a
       multi-stage rechunk would pass 1 and 2 but fail here).
    """
    dependencies = _graph(*outputs).get_all_dependencies()
    fan_in = {key: len(deps) for key, deps in dependencies.items()}
    widest = max(fan_in, key=fan_in.__getitem__)
    assert fan_in[widest] <= SPLIT_EVERY, (
        f"task {widest} depends directly on {fan_in[widest]} tasks, more than "
        f"split_every={SPLIT_EVERY}"
    )
    input_keys = [_keys(array) for array in inputs]
    for keys in input_keys:
        assert len(keys) >= 64
        assert not any(keys <= deps for deps in dependencies.values())
    for scalar in reduced_to_scalar:
        assert scalar.shape == ()
        reached = _ancestors(dependencies, _keys(scalar))
        for keys in input_keys:
            assert keys <= reached  # the tree reads every chunk

    values, sizes = _compute_recording_sizes(*outputs)
    largest_chunk = max(
        int(np.prod([max(axis) for axis in array.chunks])) for array in inputs
    )
    smallest_input = min(int(np.prod(array.shape)) for array in inputs)
    assert largest_chunk * 32 <= smallest_input  # the bound below means something
    biggest = max(sizes, key=sizes.__getitem__)
    assert sizes[biggest] <= largest_chunk, (
        f"task {biggest} holds {sizes[biggest]} elements; the largest input chunk "
        f"has {largest_chunk}"
    )
    return values


# --- the tests -----------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _synchronous_scheduler() -> Iterator[None]:
    # ``.compute()`` here runs in this thread: on graphs of a few hundred tiny tasks
    # the threaded scheduler's hand-offs cost more than the tasks (the cluster tests
    # below compute through their client, which this setting does not affect)
    with dask.config.set(scheduler="sync"):
        yield


def test_the_refusing_scheduler_refuses():
    # the laziness checks below could fail: a compute under it raises
    rng = np.random.default_rng(1)
    values = rng.normal(size=20)
    p = da.from_array(values, chunks=((3, 7, 1, 9),))
    with support.computing_nothing():
        result = al.bpr_loss(p, p[::-1])
        with pytest.raises(AssertionError, match="computed part"):
            result.compute()
        with pytest.raises(AssertionError, match="computed part"):
            float(result)
    # by hand: n - p reversed, sigmoid(n - p) + sigmoid(p - n) = 1 pairwise, so 0.5
    support.assert_close(result, 0.5, xp=XP, like=p)


class TestIrregularChunks:
    """Irregular chunkings, each argument chunked differently (negatives along k too,
    masks unlike the predictions, (B, 1) against (B, T)): every loss, reduction and
    mask builds its graph without computing, and computes what the NumPy path and
    Spotlight's formula give."""

    @pytest.mark.parametrize("mask_kind", MASKS)
    @pytest.mark.parametrize("layout", IRREGULAR, ids=lambda layout: layout.id)
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_loss(self, case, layout, mask_kind):
        # the three reductions of one call in one test: they share their
        # elementwise tasks, computed once (a failure's locals show `reduction`)
        inputs = _inputs(case, layout, mask_kind, seed=11)
        first, second, mask = inputs.numpy
        # from_array chunks view these buffers: a task writing in place would show
        copies = [None if a is None else a.copy() for a in inputs.numpy]
        first_d, second_d, mask_d = inputs.dask
        with support.computing_nothing():
            results = [
                case.loss(first_d, second_d, mask_d, reduction=r, **case.kwargs)
                for r in REDUCTIONS
            ]
            chunks = _elementwise_chunks(case, first_d, second_d, mask_d)
        # the elementwise loss keeps the chunks dask's broadcasting gives its
        # inputs: the package adds no rechunk of its own
        assert results[-1].chunks == chunks
        # computed here, once; unoptimised, as fusing the elementwise tasks of each
        # block costs more than it saves on blocks this small (the cluster tests
        # below compute optimised graphs)
        results = dask.persist(*results, optimize_graph=False)
        for reduction, result in zip(REDUCTIONS, results, strict=True):
            assert isinstance(result, da.Array)
            shape = layout.loss_shape if reduction == "none" else ()
            # expected: the NumPy path (the package on the same values as NumPy
            # arrays)
            on_numpy = case.loss(
                first, second, mask, reduction=reduction, **case.kwargs
            )
            support.assert_close(result, on_numpy, xp=XP, like=second_d, shape=shape)
            # expected: Spotlight's formula in float64 (support.ref_*, ref_reduce)
            expected = support.ref_reduce(
                case.reference(first, second, **case.kwargs), mask, reduction
            )
            support.assert_close(result, expected, xp=XP, like=second_d, shape=shape)
        # the inputs are untouched
        for values, copy in zip(inputs.numpy, copies, strict=True):
            np.testing.assert_array_equal(values, copy)

    @pytest.mark.parametrize(
        ("reduction", "mask_kind"),
        # every mask with the mean; the sum's weights act on the gradients as the
        # mean's do, without the divisor
        [*(("mean", mask_kind) for mask_kind in MASKS), ("sum", "broadcast")],
    )
    @pytest.mark.parametrize("layout", IRREGULAR, ids=lambda layout: layout.id)
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_value_and_grad(self, case, layout, reduction, mask_kind):
        inputs = _inputs(case, layout, mask_kind, seed=13)
        first, second, mask = inputs.numpy
        first_d, second_d, mask_d = inputs.dask
        function = al.value_and_grad(case.loss)
        with support.computing_nothing():
            value, gradients = function(
                first_d, second_d, mask_d, reduction=reduction, **case.kwargs
            )
        # computed here, once, unoptimised (as in test_loss)
        value, gradients = dask.persist(value, gradients, optimize_graph=False)
        # expected: the NumPy path (the package on the same values as NumPy arrays)
        value_np, gradients_np = function(
            first, second, mask, reduction=reduction, **case.kwargs
        )
        support.assert_close(value, value_np, xp=XP, like=second_d)
        if case.implicit:
            pairs = zip(gradients, gradients_np, (first_d, second_d), strict=True)
        else:
            pairs = ((gradients, gradients_np, second_d),)
        for gradient, gradient_np, argument in pairs:
            assert isinstance(gradient, da.Array)
            support.assert_close(
                gradient, gradient_np, xp=XP, like=argument, shape=argument.shape
            )


class TestTreeReductions:
    """Inputs of 64 chunks (128 for the stacked negatives): the reductions are trees
    over chunks (criterion in ``_assert_tree_reduced``), 'none' returns the input's
    chunks exactly, and every gradient has its argument's chunks."""

    @pytest.mark.parametrize(
        ("reduction", "mask_kind"),
        [("mean", "float"), ("sum", "broadcast"), ("none", "float")],
    )
    @pytest.mark.parametrize("layout", MANY_CHUNKS, ids=lambda layout: layout.id)
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_loss(self, case, layout, reduction, mask_kind):
        inputs = _inputs(case, layout, mask_kind, seed=19)
        first_d, second_d, mask_d = inputs.dask
        with support.computing_nothing():
            result = case.loss(
                first_d, second_d, mask_d, reduction=reduction, **case.kwargs
            )
        full_shape = [first_d, second_d, mask_d]
        full_shape = [a for a in full_shape if a is not None and a.size >= 256]
        if reduction == "none":
            # the input's chunks exactly (every argument has the same ones here)
            assert result.chunks == (
                second_d.chunks[1:] if case.negatives_axis else second_d.chunks
            )
        (value,) = _assert_tree_reduced(
            [result],
            full_shape,
            reduced_to_scalar=[] if reduction == "none" else [result],
        )
        # expected: the NumPy path (the package on the same values as NumPy arrays)
        first, second, mask = inputs.numpy
        on_numpy = case.loss(first, second, mask, reduction=reduction, **case.kwargs)
        np.testing.assert_allclose(value, on_numpy, rtol=1e-12, atol=1e-13)

    @pytest.mark.parametrize(
        ("layout", "reduction", "mask_kind"),
        [(MANY_CHUNKS[0], "mean", "float"), (MANY_CHUNKS[1], "sum", "broadcast")],
        ids=lambda x: getattr(x, "id", x),
    )
    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_value_and_grad(self, case, layout, reduction, mask_kind):
        inputs = _inputs(case, layout, mask_kind, seed=23)
        first_d, second_d, mask_d = inputs.dask
        function = al.value_and_grad(case.loss)
        with support.computing_nothing():
            value, gradients = function(
                first_d, second_d, mask_d, reduction=reduction, **case.kwargs
            )
        arguments = (first_d, second_d) if case.implicit else (second_d,)
        gradients = gradients if case.implicit else (gradients,)
        for gradient, argument in zip(gradients, arguments, strict=True):
            assert gradient.chunks == argument.chunks
        if case.implicit and first_d.shape != second_d.shape[-first_d.ndim :]:
            # (B, 1) against (B, T): each block of d_first sums the 32 chunks of its
            # rows, through a tree (the fan-in bound below holds for these tasks too)
            dependencies = _graph(*gradients).get_all_dependencies()
            for key in _keys(gradients[0]):  # (name, row block, 0)
                # the blocks of loss-shaped layers in its row block that it reads
                row_blocks = Counter(
                    ancestor[0]
                    for ancestor in _ancestors(dependencies, [key])
                    if isinstance(ancestor, tuple)
                    and len(ancestor) == 3
                    and ancestor[1] == key[1]
                )
                assert max(row_blocks.values()) == len(second_d.chunks[-1]) == 32
        full_shape = [first_d, second_d, mask_d]
        full_shape = [a for a in full_shape if a is not None and a.size >= 256]
        computed = _assert_tree_reduced(
            [value, *gradients], full_shape, reduced_to_scalar=[value]
        )
        # expected: the NumPy path (the package on the same values as NumPy arrays)
        first, second, mask = inputs.numpy
        value_np, gradients_np = function(
            first, second, mask, reduction=reduction, **case.kwargs
        )
        gradients_np = gradients_np if case.implicit else (gradients_np,)
        for actual, expected in zip(computed, (value_np, *gradients_np), strict=True):
            np.testing.assert_allclose(actual, expected, rtol=1e-12, atol=1e-13)


# --- a dask.distributed cluster --------------------------------------------------------


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a LocalCluster of two single-threaded worker processes, all on
    loopback, for this module; closed, with its processes, after its last test."""
    distributed = pytest.importorskip(
        "distributed", reason="the cluster tests need dask.distributed installed"
    )
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,  # no dashboard (and no bokeh needed)
            # the scheduler serves its health and metrics routes over HTTP even with
            # no dashboard, by default on port 8787, and warns when that port is taken
            # (by any other cluster on this machine): any free port on loopback
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
            worker_dashboard_address=None,
            memory_limit="1GiB",
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as client,
    ):
        # the workers unpickle the graphs' functions by reference: they need the
        # package (PYTHONPATH=src in development, installed in nox)
        specs = client.run(importlib.util.find_spec, "arraylosses")
        missing = sorted(worker for worker, spec in specs.items() if spec is None)
        if missing:
            pytest.fail(f"arraylosses does not import in the workers {missing}")
        yield client


def _on_cluster(client, *collections):
    """Compute ``collections`` on the cluster's workers, checking that they ran there."""
    distributed = pytest.importorskip("distributed")
    with distributed.get_task_stream(client) as stream:
        values = client.compute(list(collections), sync=True)
    workers = {task["worker"] for task in stream.data}
    assert workers, "no task ran on the cluster"
    assert workers <= set(client.scheduler_info()["workers"])
    return values


# On the cluster: (B, 1) predictions against (B, T) ones, the masks chunked unlike
# them, in few chunks (each task costs a message to a worker and back).
CLUSTER = Layout(
    "cluster",
    (8, 1),
    ((3, 5), (1,)),
    (8, 10),
    ((3, 5), (10,)),
    ((2, 2), (3, 5), (10,)),  # negatives chunked along k too
    K,
    ((8,), (4, 6)),
    (8, 1),
    ((8,), (1,)),
)
# (reduction, mask) of each call: every reduction, every kind of mask
ON_CLUSTER = (("mean", "float"), ("sum", "broadcast"), ("none", "bool"))


class TestDistributed:
    """Every loss (each reduction, with masks) and value_and_grad, built lazily here
    and computed by the two worker processes: what the NumPy path gives."""

    @pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
    def test_losses_and_gradients(self, client, case):
        lazy, expected = [], []
        for reduction, mask_kind in ON_CLUSTER:
            # one seed: the same predictions each time (their chunks, named by
            # content, are one set of tasks), only the mask changes
            inputs = _inputs(case, CLUSTER, mask_kind, seed=29)
            with (
                support.computing_nothing()
            ):  # nothing computed in this process, either
                lazy.append(case.loss(*inputs.dask, reduction=reduction, **case.kwargs))
            # expected: the NumPy path (the package on the same values as NumPy arrays)
            expected.append(
                case.loss(*inputs.numpy, reduction=reduction, **case.kwargs)
            )
        inputs = _inputs(case, CLUSTER, "float", seed=29)
        function = al.value_and_grad(case.loss)
        with support.computing_nothing():
            value, gradients = function(*inputs.dask, **case.kwargs)
        # expected: the NumPy path, as above
        value_np, gradients_np = function(*inputs.numpy, **case.kwargs)
        if not case.implicit:
            gradients, gradients_np = (gradients,), (gradients_np,)
        lazy += [value, *gradients]
        expected += [value_np, *gradients_np]

        with support.computing_nothing():
            computed = _on_cluster(client, *lazy)
        assert len(computed) == len(lazy) == (6 if case.implicit else 5)
        for actual, array, reference in zip(computed, lazy, expected, strict=True):
            assert actual.dtype == array.dtype == np.float64
            assert actual.shape == array.shape == np.shape(reference)
            np.testing.assert_allclose(actual, reference, rtol=1e-12, atol=1e-13)
