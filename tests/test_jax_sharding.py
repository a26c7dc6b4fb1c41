"""The losses on JAX arrays sharded over several devices, under ``jax.jit``.

Inputs sharded along their batch axis over a four-device mesh must give the values
of the same jitted loss on unsharded (single-device) inputs, and of Spotlight's
formulas in float64, for every loss, reduction and kind of mask; ``reduction="none"``
and the gradients of :func:`arraylosses.value_and_grad` must keep the batch
sharding; and the compiled program must reduce each device's shard locally before
one cross-device all-reduce combines the partial results, which the tests read
from the compiled HLO text.

Four CPU devices exist only if ``XLA_FLAGS=--xla_force_host_platform_device_count=4``
is set before JAX starts its backends, and the rest of the suite has started JAX
with one device in this process. So every sharded computation runs in ONE
subprocess per module (the module-scoped ``sharded_run`` fixture): the fixture
builds the inputs here, with a seeded generator, and writes them to an ``.npz``
file with a plan of what to compute; the subprocess (``_SCRIPT``) computes and
writes back, as JSON, every output with its dtype, shape, sharding and, for the
sharded programs, the compiled HLO text. Every check and its message lives in the
tests below, in this process. The subprocess runs JAX's default configuration
(float32, ``jax_enable_x64`` off), as a sharded training job would.

No tagged function is called in this process (nothing here calls a loss), so no
``lazy_xp_function`` tagging applies: the subprocess calls the losses under an
explicit ``jax.jit``. The tests take the ``xp`` fixture and skip every backend but
JAX, so that a session that does not test JAX does not start the subprocess.

Tolerances: the sharded and unsharded programs both compute in float32 and differ
in the order in which they add the 512 elementwise terms (four partial sums of 128,
then an all-reduce, against one sum of 512). For non-negative terms a reordered
float32 sum differs from the exact one by about sqrt(n)·eps ≈ 23·6e-8 ≈ 1.4e-6
relative in practice (in the worst case (n - 1)·eps, far from reached by random
inputs), and elementwise results (reduction "none", gradients) are the same float32
expressions on each element. So both comparisons, sharded against unsharded and
sharded against the float64 reference, use float32's tolerance of
``support.RTOL``/``support.ATOL`` (1e-5 relative: 80 ulps); exact equality is not
expected. (With jax 0.10.2 the reduced values differ by at most 2.7e-7 relative,
a few ulps, and the elementwise ones are equal.)
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, ClassVar

import array_api_compat.numpy as npx
import numpy as np
import pytest
import support

pytest.importorskip("jax", reason="sharding tests need jax")

DEVICES = 4
B, T, K = 64, 8, 5  # batch (sharded: 16 rows per device), sequence, negatives
MASKS = ("unmasked", "bool", "float", "broadcast")
REDUCTIONS = ("mean", "sum", "none")
SCALAR_REDUCTIONS = ("mean", "sum")
# value_and_grad: every mask with 'mean' (a masked mean divides by an all-reduced
# count), and 'sum' with weights; fewer cases than the losses, as each gradient
# program takes twice as long to compile
GRADIENT_CASES = (
    ("unmasked", "mean"),
    ("bool", "mean"),
    ("float", "mean"),
    ("broadcast", "mean"),
    ("float", "sum"),
)
SUBPROCESS_TIMEOUT_S = 600

Shape = tuple[int, ...]

# --- the subprocess -----------------------------------------------------------------

# Run as ``python -W error -c _SCRIPT PLAN ARRAYS OUT`` with four host devices. For
# each variant (a loss and its arrays) it jits two functions and compiles each for
# unsharded and for sharded inputs: the loss at every (mask, reduction) of the plan,
# returned as one dict, and its value_and_grad at every GRADIENT_CASES; the sharded
# programs also give their HLO text. Then, for the sharded inputs only, one small
# program per scalar reduction with the bool mask, whose HLO shows one masked
# reduction on its own. One function per variant, not per case: compiling costs
# about a tenth of a second per program, whatever its size, on top of its work.
_SCRIPT = r"""
import json
import sys

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding

import arraylosses

jax.config.update("jax_enable_x64", False)  # JAX's default: float32 throughout

plan_path, arrays_path, out_path = sys.argv[1:4]
with open(plan_path) as file:
    plan = json.load(file)
arrays = np.load(arrays_path)
devices = jax.devices()
mesh = Mesh(np.asarray(devices), ("batch",))
single = SingleDeviceSharding(devices[0])


def placed(names, sharded):
    return {
        name: jax.device_put(
            arrays[name],
            NamedSharding(mesh, PartitionSpec(*plan["partitions"][name]))
            if sharded
            else single,
        )
        for name in names
    }


def describe(array, argument=None):
    values = np.asarray(array)
    sharding = array.sharding
    out = {
        "dtype": str(values.dtype),
        "shape": list(values.shape),
        "values": values.ravel().tolist(),
        "sharding": repr(sharding),
        "devices": len(sharding.device_set),
        "shard_shapes": [list(shard.data.shape) for shard in array.addressable_shards],
    }
    if argument is not None:
        out["argument_sharding"] = repr(argument.sharding)
        out["same_sharding_as_argument"] = bool(
            sharding.is_equivalent_to(argument.sharding, array.ndim)
        )
    return out


def batched(function, cases):
    def run(first, second, masks):
        return {
            f"{mask}/{reduction}": function(
                first, second, masks.get(mask), reduction=reduction
            )
            for mask, reduction in cases
        }

    return jax.jit(run)


result = {"devices": [str(device) for device in devices], "variants": {}}
for variant in plan["variants"]:
    loss = getattr(arraylosses, variant["loss"])
    names = [variant["first"], variant["second"], *variant["masks"].values()]
    out = result["variants"][variant["id"]] = {}
    for sharded in (False, True):
        arrays_here = placed(names, sharded)
        first, second = arrays_here[variant["first"]], arrays_here[variant["second"]]
        masks = {kind: arrays_here[name] for kind, name in variant["masks"].items()}
        placement = "sharded" if sharded else "unsharded"
        if sharded:
            out["inputs"] = {name: describe(array) for name, array in arrays_here.items()}
        for kind, gradients in (("losses", False), ("gradients", True)):
            cases = [
                (mask, reduction)
                for mask, reduction in plan[kind]
                if mask == "unmasked" or mask in masks
            ]
            function = arraylosses.value_and_grad(loss) if gradients else loss
            compiled = batched(function, cases).lower(first, second, masks).compile()
            outputs = compiled(first, second, masks)
            entry = out.setdefault(kind, {})[placement] = {}
            if sharded:
                entry["hlo"] = compiled.as_text()
            for key, output in outputs.items():
                if not gradients:
                    like = first if variant["loss"] == "adaptive_hinge_loss" else second
                    none = key.endswith("/none")
                    entry[key] = [describe(output, like if none else None)]
                    continue
                value, grads = output
                grads = grads if isinstance(grads, tuple) else (grads,)
                wrt = (first, second) if len(grads) == 2 else (second,)
                entry[key] = [describe(value)] + [
                    describe(grad, argument) for grad, argument in zip(grads, wrt)
                ]
        if sharded:
            out["masked_programs"] = {
                reduction: jax.jit(
                    lambda f, s, m, r=reduction: loss(f, s, m, reduction=r)
                )
                .lower(first, second, masks["bool"])
                .compile()
                .as_text()
                for reduction in plan["masked_programs"]
            }

with open(out_path, "w") as file:
    json.dump(result, file)
"""


# --- the inputs, built here ---------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One loss and the arrays it is called with."""

    id: str
    loss: str
    first: str
    second: str
    masks: dict[str, str]  # mask kind -> array name
    reference: Callable[[np.ndarray, np.ndarray], np.ndarray]  # float64, elementwise
    implicit: bool  # gradients for both arguments, else for the second only


_MASKS_2D = {"bool": "mask_bool", "float": "mask_float", "broadcast": "mask_broadcast"}

VARIANTS = {
    variant.id: variant
    for variant in (
        Variant(
            "pointwise_loss",
            "pointwise_loss",
            "positive",
            "negative",
            _MASKS_2D,
            support.ref_pointwise,
            implicit=True,
        ),
        Variant(
            "bpr_loss",
            "bpr_loss",
            "positive",
            "negative",
            _MASKS_2D,
            support.ref_bpr,
            implicit=True,
        ),
        Variant(
            "hinge_loss",
            "hinge_loss",
            "positive",
            "negative",
            _MASKS_2D,
            support.ref_hinge,
            implicit=True,
        ),
        # negatives (k, B, T) against positives (B, T), sharded along B, not k
        Variant(
            "adaptive_hinge_loss_k_b_t",
            "adaptive_hinge_loss",
            "positive",
            "negatives_k_b_t",
            _MASKS_2D,
            support.ref_adaptive_hinge,
            implicit=True,
        ),
        # negatives (k, B) against positives (B,); a (B,) loss has no broadcast mask
        Variant(
            "adaptive_hinge_loss_k_b",
            "adaptive_hinge_loss",
            "positive_b",
            "negatives_k_b",
            {"bool": "mask_bool_b", "float": "mask_float_b"},
            support.ref_adaptive_hinge,
            implicit=True,
        ),
        Variant(
            "regression_loss",
            "regression_loss",
            "ratings",
            "predicted_ratings",
            _MASKS_2D,
            support.ref_regression,
            implicit=False,
        ),
        # observed counts as int32: the loss casts them to the predictions' float32
        Variant(
            "poisson_loss",
            "poisson_loss",
            "counts",
            "rates",
            _MASKS_2D,
            support.ref_poisson,
            implicit=False,
        ),
        Variant(
            "logistic_loss",
            "logistic_loss",
            "labels",
            "logits",
            _MASKS_2D,
            support.ref_logistic,
            implicit=False,
        ),
    )
}


def _arrays() -> dict[str, tuple[np.ndarray, tuple[str | None, ...]]]:
    """Every input: its values and its partition (which axis is the batch)."""
    rng = np.random.default_rng(20240611)
    batch_first: tuple[str | None, ...] = ("batch", None)

    def weights(shape: tuple[int, ...]) -> np.ndarray:
        # non-binary weights, a third of them exactly 0
        values = rng.uniform(0.5, 2.0, shape)
        return np.where(rng.random(shape) < 0.3, 0.0, values).astype(np.float32)

    return {
        "positive": (rng.normal(0, 2, (B, T)).astype(np.float32), batch_first),
        "negative": (rng.normal(0, 2, (B, T)).astype(np.float32), batch_first),
        "negatives_k_b_t": (
            rng.normal(0, 2, (K, B, T)).astype(np.float32),
            (None, "batch", None),
        ),
        "positive_b": (rng.normal(0, 2, (B,)).astype(np.float32), ("batch",)),
        "negatives_k_b": (rng.normal(0, 2, (K, B)).astype(np.float32), (None, "batch")),
        "ratings": (rng.integers(1, 6, (B, T)).astype(np.float32), batch_first),
        "predicted_ratings": (rng.normal(3, 1, (B, T)).astype(np.float32), batch_first),
        "counts": (rng.integers(0, 5, (B, T)).astype(np.int32), batch_first),
        "rates": (rng.uniform(0.2, 3.0, (B, T)).astype(np.float32), batch_first),
        "labels": (rng.choice([-1.0, 1.0], (B, T)).astype(np.float32), batch_first),
        "logits": (rng.normal(0, 2, (B, T)).astype(np.float32), batch_first),
        "mask_bool": (rng.random((B, T)) < 0.6, batch_first),
        "mask_float": (weights((B, T)), batch_first),
        "mask_broadcast": (rng.random((B, 1)) < 0.6, batch_first),
        "mask_bool_b": (rng.random(B) < 0.6, ("batch",)),
        "mask_float_b": (weights((B,)), ("batch",)),
    }


def _shard_shape(shape: Shape, partition: tuple[str | None, ...]) -> Shape:
    """One device's block of an array of ``shape`` split as ``partition`` says."""
    return tuple(
        size // DEVICES if axis == "batch" else size
        for size, axis in zip(shape, partition, strict=True)
    )


@dataclass
class ShardedRun:
    """The inputs given to the subprocess and everything it sent back."""

    arrays: dict[str, np.ndarray]
    partitions: dict[str, tuple[str | None, ...]]
    result: dict[str, Any] = field(repr=False)

    def __repr__(self) -> str:  # --showlocals prints this: keep the HLO text out
        return f"ShardedRun(devices={self.result['devices']})"

    def of(self, variant: Variant) -> dict[str, Any]:
        return self.result["variants"][variant.id]

    def shard_shape(self, name: str) -> Shape:
        return _shard_shape(self.arrays[name].shape, self.partitions[name])


@pytest.fixture(scope="module")
def sharded_run(tmp_path_factory: pytest.TempPathFactory) -> ShardedRun:
    """Every sharded and unsharded computation of this module, in one subprocess."""
    directory = tmp_path_factory.mktemp("jax_sharding")
    inputs = _arrays()
    arrays = {name: values for name, (values, _) in inputs.items()}
    partitions = {name: partition for name, (_, partition) in inputs.items()}
    np.savez(directory / "arrays.npz", **arrays)
    plan = {
        "partitions": partitions,
        "variants": [
            {
                "id": variant.id,
                "loss": variant.loss,
                "first": variant.first,
                "second": variant.second,
                "masks": variant.masks,
            }
            for variant in VARIANTS.values()
        ],
        "losses": [[mask, reduction] for mask in MASKS for reduction in REDUCTIONS],
        "gradients": [list(case) for case in GRADIENT_CASES],
        "masked_programs": list(SCALAR_REDUCTIONS),
    }
    (directory / "plan.json").write_text(json.dumps(plan))
    env = support.child_environment(
        JAX_PLATFORMS="cpu",
        XLA_FLAGS=(
            f"{os.environ.get('XLA_FLAGS', '')} "
            f"--xla_force_host_platform_device_count={DEVICES}"
        ).strip(),
    )
    out = directory / "result.json"
    command = [sys.executable, "-W", "error", "-c", _SCRIPT]
    files = [str(directory / "plan.json"), str(directory / "arrays.npz"), str(out)]
    completed = subprocess.run(
        [*command, *files],
        env=env,
        capture_output=True,
        text=True,
        timeout=SUBPROCESS_TIMEOUT_S,
        check=False,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"the sharded subprocess failed with exit status {completed.returncode}:\n"
            f"{completed.stderr[-6000:]}"
        )
    return ShardedRun(arrays, partitions, json.loads(out.read_text()))


def _run(xp: ModuleType, request: pytest.FixtureRequest) -> ShardedRun:
    """The subprocess's results; skips unless ``xp`` is JAX (asked for only then)."""
    if support.backend_of(xp) != "jax":
        pytest.skip("sharding over devices is a JAX test")
    run = request.getfixturevalue("sharded_run")
    assert isinstance(run, ShardedRun)
    return run


def _array(record: dict[str, Any]) -> np.ndarray:
    """An output of the subprocess as a NumPy array of its own dtype and shape."""
    return np.asarray(record["values"], dtype=record["dtype"]).reshape(record["shape"])


def _float64(run: ShardedRun, name: str) -> np.ndarray:
    return run.arrays[name].astype(np.float64)


# --- reading the compiled HLO -------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    name: str
    shapes: tuple[tuple[str, Shape], ...]  # (element type, dims) of each result
    opcode: str
    operands: tuple[str, ...]
    attributes: str
    position: int  # in its computation: the schedule, in a scheduled module

    @property
    def is_scalar(self) -> bool:
        return len(self.shapes) == 1 and self.shapes[0][1] == ()


@dataclass
class Computation:
    name: str
    entry: bool
    root: str = ""
    instructions: dict[str, Instruction] = field(default_factory=dict)


_COMMENT = re.compile(r"/\*.*?\*/")  # e.g. /*index=5*/ in long operand lists
_HEADER = re.compile(
    r"^(?P<entry>ENTRY\s+)?%?(?P<name>[\w.\-]+)\s+\(.*\)\s*->\s*.*\{\s*$"
)
_INSTRUCTION = re.compile(
    r"^\s*(?P<root>ROOT\s+)?%?(?P<name>[\w.\-]+)\s*=\s*"
    r"(?P<shape>\([^=]*?\)|\S+)\s+(?P<opcode>[a-z][\w\-]*)"
    r"\((?P<operands>[^)]*)\)(?P<attributes>.*)$"
)
_ARRAY_SHAPE = re.compile(r"\b(?P<type>[a-z][a-z0-9]*)\[(?P<dims>[0-9,]*)\]")
_CALLS = re.compile(r"\bcalls=%?([\w.\-]+)")
_TO_APPLY = re.compile(r"\bto_apply=%?([\w.\-]+)")
_INDEX = re.compile(r"\bindex=(\d+)")
_PARAMETER_NUMBER = re.compile(r"^\s*(\d+)\s*$")

# XLA's cross-device operations: only all-reduce may appear in these programs
_COLLECTIVE = re.compile(r"^(all-|collective-|reduce-scatter|ragged-|send|recv)")
_ALL_REDUCE = ("all-reduce", "all-reduce-start")


def _parse_hlo(text: str) -> dict[str, Computation]:
    """Every computation of an HLO module's text, by name."""
    computations: dict[str, Computation] = {}
    current: Computation | None = None
    for raw in text.splitlines():
        line = _COMMENT.sub("", raw)
        header = _HEADER.match(line)
        if header:
            current = Computation(header["name"], entry=bool(header["entry"]))
            computations[current.name] = current
            continue
        if line.startswith("}"):
            current = None
            continue
        instruction = current is not None and _INSTRUCTION.match(line)
        if not instruction:
            continue
        assert current is not None
        shapes = tuple(
            (
                shape["type"],
                tuple(int(size) for size in shape["dims"].split(",") if size),
            )
            for shape in _ARRAY_SHAPE.finditer(instruction["shape"])
        )
        operands = instruction["operands"]
        names = (
            re.findall(r"%([\w.\-]+)", operands)
            if "%" in operands
            else [token.split()[-1] for token in operands.split(",") if token.strip()]
        )
        parsed = Instruction(
            instruction["name"],
            shapes,
            instruction["opcode"],
            tuple(names),
            instruction["attributes"],
            len(current.instructions),
        )
        current.instructions[parsed.name] = parsed
        if instruction["root"]:
            current.root = parsed.name
    return computations


def _entry(module: dict[str, Computation]) -> Computation:
    (entry,) = (computation for computation in module.values() if computation.entry)
    return entry


def _sources(
    module: dict[str, Computation],
    computation: Computation,
    name: str,
    *,
    callers: tuple[tuple[Computation, Instruction], ...] = (),
    index: int | None = None,
) -> Iterator[tuple[Computation, Instruction]]:
    """The operations a scalar value is computed from, through scalar operations.

    Walks back from ``name`` through fusions (into the fused computation, and out
    again at its parameters), tuples and every operation whose result is a scalar;
    it stops at, and yields, each operation that is a reduce, a constant, an entry
    parameter or anything with a non-scalar result.
    """
    instruction = computation.instructions[name]
    opcode = instruction.opcode
    if opcode == "get-tuple-element":
        match = _INDEX.search(instruction.attributes)
        assert match, instruction
        yield from _sources(
            module,
            computation,
            instruction.operands[0],
            callers=callers,
            index=int(match[1]),
        )
    elif opcode == "tuple" and index is not None:
        yield from _sources(
            module, computation, instruction.operands[index], callers=callers
        )
    elif opcode in {"fusion", "call"}:
        match = _CALLS.search(instruction.attributes) or _TO_APPLY.search(
            instruction.attributes
        )
        assert match, instruction
        called = module[match[1]]
        yield from _sources(
            module,
            called,
            called.root,
            callers=(*callers, (computation, instruction)),
            index=index,
        )
    elif opcode == "parameter" and callers:
        (caller, call), number = callers[-1], _parameter_number(instruction)
        yield from _sources(
            module, caller, call.operands[number], callers=callers[:-1], index=index
        )
    elif opcode in {"reduce", "constant", "parameter"} or not instruction.is_scalar:
        yield computation, instruction
    else:  # scalar arithmetic, e.g. a divide of two partial sums
        for operand in instruction.operands:
            yield from _sources(module, computation, operand, callers=callers)


def _parameter_number(instruction: Instruction) -> int:
    (operand,) = instruction.operands or ("",)
    match = _PARAMETER_NUMBER.match(operand)
    assert match, instruction
    return int(match[1])


def assert_reduces_locally_before_combining(
    text: str, *, local_shapes: set[Shape], parameter_shapes: list[Shape]
) -> None:
    """Assert that a compiled SPMD program reduces each shard locally, then
    combines the per-device scalars with an all-reduce, and moves nothing else.

    The criterion, read from the compiled module (after SPMD partitioning,
    fusion and scheduling):

    1. the module is partitioned over ``DEVICES`` devices and each entry parameter
       has its per-device shape (``parameter_shapes``): each device holds only its
       block of each input;
    2. the only cross-device operations are all-reduces: no all-gather, all-to-all,
       collective-permute, reduce-scatter, send or recv, so no device ever sees
       another device's block of an input or of the elementwise loss;
    3. there is at least one all-reduce, it adds (its combiner is an add), and
       every value it combines is a scalar;
    4. each of those scalars is computed, through scalar operations only, from
       reduce operations whose operand has a per-device shape (``local_shapes``,
       e.g. f32[16,8] for a (64, 8) loss split four ways) and not from anything
       bigger: each device reduces its own block locally first;
    5. in the entry computation's schedule, the local reductions come before the
       all-reduce that consumes them.
    """
    module = _parse_hlo(text)
    assert f"num_partitions={DEVICES}" in text.split("\n", 1)[0], (
        f"not partitioned over {DEVICES} devices: {text.split(chr(10), 1)[0]}"
    )
    entry = _entry(module)
    parameters = sorted(
        instruction.shapes[0][1]
        for instruction in entry.instructions.values()
        if instruction.opcode == "parameter"
    )
    assert parameters == sorted(parameter_shapes), (
        f"entry parameters {parameters}, expected per-device blocks "
        f"{sorted(parameter_shapes)}"
    )
    instructions = [
        (computation, instruction)
        for computation in module.values()
        for instruction in computation.instructions.values()
    ]
    moves = sorted(
        f"{instruction.opcode} {instruction.shapes} in {computation.name}"
        for computation, instruction in instructions
        if _COLLECTIVE.match(instruction.opcode)
        and not instruction.opcode.startswith(_ALL_REDUCE)
    )
    assert not moves, f"cross-device operations other than all-reduce: {moves}"
    all_reduces = [
        instruction
        for computation, instruction in instructions
        if instruction.opcode in _ALL_REDUCE
    ]
    assert all_reduces, "no all-reduce: the partial results are never combined"
    for all_reduce in all_reduces:
        assert all_reduce.name in entry.instructions, (
            f"{all_reduce.name} is not in the entry computation"
        )
        to_apply = _TO_APPLY.search(all_reduce.attributes)
        assert to_apply, all_reduce
        combiner = module[to_apply[1]]
        assert combiner.instructions[combiner.root].opcode == "add", (
            f"{all_reduce.name} combines with "
            f"{combiner.instructions[combiner.root].opcode}, not add"
        )
        big = [shape for shape in all_reduce.shapes if np.prod(shape[1]) > 1]
        assert not big, f"{all_reduce.name} combines non-scalars {big}"
        for operand in all_reduce.operands:
            producer = entry.instructions[operand]
            assert producer.position < all_reduce.position, (
                f"{operand} is scheduled after {all_reduce.name}"
            )
            sources = list(_sources(module, entry, operand))
            reduces = [
                (computation.name, instruction.name)
                for computation, instruction in sources
                if instruction.opcode == "reduce"
                and instruction.is_scalar
                and computation.instructions[instruction.operands[0]].shapes[0][1]
                in local_shapes
            ]
            others = [
                (computation.name, instruction.opcode, instruction.shapes)
                for computation, instruction in sources
                if instruction.opcode != "constant"
                and (computation.name, instruction.name) not in reduces
            ]
            assert reduces, f"{all_reduce.name}'s operand {operand} reduces no shard"
            assert not others, (
                f"{all_reduce.name}'s operand {operand} is computed from {others}, "
                f"not only from local reductions of blocks shaped {local_shapes}"
            )


# --- the tests ----------------------------------------------------------------------


def test_subprocess_sees_four_cpu_devices(
    xp: ModuleType, request: pytest.FixtureRequest
) -> None:
    # by hand: --xla_force_host_platform_device_count=4 makes four CPU devices
    run = _run(xp, request)
    devices = run.result["devices"]
    assert len(devices) == DEVICES, devices
    assert all("cpu" in device.lower() for device in devices), devices


def test_inputs_are_sharded_along_the_batch(
    xp: ModuleType, request: pytest.FixtureRequest
) -> None:
    # by hand: a batch of 64 over 4 devices is 4 blocks of 16 rows
    run = _run(xp, request)
    for variant in VARIANTS.values():
        for name, placed in run.of(variant)["inputs"].items():
            expected = [list(run.shard_shape(name))] * DEVICES
            assert placed["devices"] == DEVICES, (variant.id, name, placed["sharding"])
            assert placed["shard_shapes"] == expected, (
                f"{variant.id}: {name} has blocks {placed['shard_shapes']}, "
                f"expected {expected}"
            )


class _ShardedContract:
    """What every loss must do on sharded inputs; each subclass names its variants."""

    VARIANTS: ClassVar[tuple[str, ...]]

    def _variants(self, mask: str) -> Iterator[Variant]:
        """The class's variants that take ``mask`` (1-d ones have no broadcast mask)."""
        chosen = [
            VARIANTS[key]
            for key in self.VARIANTS
            if mask == "unmasked" or mask in VARIANTS[key].masks
        ]
        assert chosen, f"no variant of {self.VARIANTS} takes a {mask} mask"
        yield from chosen

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask", MASKS)
    def test_sharded_equals_unsharded(
        self, xp: ModuleType, request: pytest.FixtureRequest, mask: str, reduction: str
    ) -> None:
        # expected: the same jitted loss on the unsharded inputs, in float32
        run = _run(xp, request)
        for variant in self._variants(mask):
            losses = run.of(variant)["losses"]
            key = f"{mask}/{reduction}"
            (sharded,), (unsharded,) = losses["sharded"][key], losses["unsharded"][key]
            like = run.arrays[variant.second]
            expected = _array(unsharded)
            assert expected.dtype == np.float32, (variant.id, expected.dtype)
            support.assert_close(
                _array(sharded), expected, xp=npx, like=like, shape=expected.shape
            )

    @pytest.mark.parametrize("reduction", REDUCTIONS)
    @pytest.mark.parametrize("mask", MASKS)
    def test_sharded_matches_float64_reference(
        self, xp: ModuleType, request: pytest.FixtureRequest, mask: str, reduction: str
    ) -> None:
        # expected: Spotlight's formula in float64 (support.ref_*), reduced by
        # support.ref_reduce
        run = _run(xp, request)
        for variant in self._variants(mask):
            (sharded,) = run.of(variant)["losses"]["sharded"][f"{mask}/{reduction}"]
            elementwise = variant.reference(
                _float64(run, variant.first), _float64(run, variant.second)
            )
            weights = None if mask == "unmasked" else run.arrays[variant.masks[mask]]
            expected = support.ref_reduce(elementwise, weights, reduction)
            shape = elementwise.shape if reduction == "none" else ()
            support.assert_close(
                _array(sharded),
                expected,
                xp=npx,
                like=run.arrays[variant.second],
                shape=shape,
            )

    @pytest.mark.parametrize("mask", MASKS)
    def test_none_keeps_the_batch_sharding(
        self, xp: ModuleType, request: pytest.FixtureRequest, mask: str
    ) -> None:
        # by hand: the elementwise loss of a (64, ...) batch split in 4 is split in 4
        run = _run(xp, request)
        for variant in self._variants(mask):
            (sharded,) = run.of(variant)["losses"]["sharded"][f"{mask}/none"]
            predictions = variant.first if variant.implicit else variant.second
            assert sharded["same_sharding_as_argument"], (
                f"{variant.id}: reduction='none' gives {sharded['sharding']}, "
                f"not the batch sharding {sharded['argument_sharding']}"
            )
            expected = [list(run.shard_shape(predictions))] * DEVICES
            assert sharded["shard_shapes"] == expected, (variant.id, sharded)

    @pytest.mark.parametrize(("mask", "reduction"), GRADIENT_CASES)
    def test_gradients_equal_unsharded(
        self, xp: ModuleType, request: pytest.FixtureRequest, mask: str, reduction: str
    ) -> None:
        # expected: value_and_grad of the same loss, jitted, on the unsharded inputs
        run = _run(xp, request)
        for variant in self._variants(mask):
            gradients = run.of(variant)["gradients"]
            key = f"{mask}/{reduction}"
            sharded, unsharded = gradients["sharded"][key], gradients["unsharded"][key]
            arguments = (
                (variant.first, variant.second)
                if variant.implicit
                else (variant.second,)
            )
            assert len(sharded) == len(unsharded) == 1 + len(arguments), variant.id
            like = run.arrays[variant.second]
            for name, actual, expected in zip(
                ("value", *arguments), sharded, unsharded, strict=True
            ):
                want = _array(expected)
                shape = () if name == "value" else run.arrays[name].shape
                assert want.shape == shape, (variant.id, name, want.shape)
                support.assert_close(
                    _array(actual), want, xp=npx, like=like, shape=shape
                )

    @pytest.mark.parametrize(("mask", "reduction"), GRADIENT_CASES)
    def test_gradients_keep_their_arguments_sharding(
        self, xp: ModuleType, request: pytest.FixtureRequest, mask: str, reduction: str
    ) -> None:
        # by hand: d(loss)/dx has x's shape, so x's blocks are its blocks
        run = _run(xp, request)
        for variant in self._variants(mask):
            _, *grads = run.of(variant)["gradients"]["sharded"][f"{mask}/{reduction}"]
            arguments = (
                (variant.first, variant.second)
                if variant.implicit
                else (variant.second,)
            )
            for name, grad in zip(arguments, grads, strict=True):
                assert grad["same_sharding_as_argument"], (
                    f"{variant.id}: the gradient for {name} is {grad['sharding']}, "
                    f"its argument {grad['argument_sharding']}"
                )
                expected = [list(run.shard_shape(name))] * DEVICES
                assert grad["shard_shapes"] == expected, (variant.id, name, grad)

    def _local_shapes(self, run: ShardedRun, variant: Variant) -> set[Shape]:
        """Per-device blocks of the inputs (the elementwise loss has the shape of
        one of them, the positives' for the adaptive hinge's (k, B, ...) negatives)."""
        names = (variant.first, variant.second, *variant.masks.values())
        return {run.shard_shape(name) for name in names}

    def _parameter_shapes(
        self, run: ShardedRun, variant: Variant, masks: Iterable[str]
    ) -> list[Shape]:
        names = (variant.first, variant.second, *masks)
        return [run.shard_shape(name) for name in names]

    @pytest.mark.parametrize("reduction", SCALAR_REDUCTIONS)
    def test_masked_program_reduces_locally_before_combining(
        self, xp: ModuleType, request: pytest.FixtureRequest, reduction: str
    ) -> None:
        # expected: the compiled HLO of loss(first, second, bool mask) alone; see
        # assert_reduces_locally_before_combining for the criterion
        run = _run(xp, request)
        for variant in self._variants("bool"):
            text = run.of(variant)["masked_programs"][reduction]
            assert_reduces_locally_before_combining(
                text,
                local_shapes=self._local_shapes(run, variant),
                parameter_shapes=self._parameter_shapes(
                    run, variant, [variant.masks["bool"]]
                ),
            )

    @pytest.mark.parametrize("kind", ["losses", "gradients"])
    def test_every_case_reduces_locally_before_combining(
        self, xp: ModuleType, request: pytest.FixtureRequest, kind: str
    ) -> None:
        # expected: the compiled HLO of every mask and reduction at once (of the
        # loss, or of value_and_grad); see assert_reduces_locally_before_combining
        run = _run(xp, request)
        for variant in self._variants("unmasked"):
            text = run.of(variant)[kind]["sharded"]["hlo"]
            assert_reduces_locally_before_combining(
                text,
                local_shapes=self._local_shapes(run, variant),
                parameter_shapes=self._parameter_shapes(
                    run, variant, variant.masks.values()
                ),
            )


class TestPointwiseLoss(_ShardedContract):
    VARIANTS = ("pointwise_loss",)


class TestBprLoss(_ShardedContract):
    VARIANTS = ("bpr_loss",)


class TestHingeLoss(_ShardedContract):
    VARIANTS = ("hinge_loss",)


class TestAdaptiveHingeLoss(_ShardedContract):
    VARIANTS = ("adaptive_hinge_loss_k_b_t", "adaptive_hinge_loss_k_b")


class TestRegressionLoss(_ShardedContract):
    VARIANTS = ("regression_loss",)


class TestPoissonLoss(_ShardedContract):
    VARIANTS = ("poisson_loss",)


class TestLogisticLoss(_ShardedContract):
    VARIANTS = ("logistic_loss",)


# Three wrong ways to compute a sum of a (64, 8) array split in four blocks of
# (16, 8): gather the blocks and reduce the whole; all-reduce the blocks padded to
# (64, 8) (a gather in disguise); reduce each block and never combine them.
_ADD = """
%add (x: f32[], y: f32[]) -> f32[] {
  %x = f32[] parameter(0)
  %y = f32[] parameter(1)
  ROOT %sum = f32[] add(%x, %y)
}
"""
_HEADER_LINE = (
    "HloModule wrong, entry_computation_layout={(f32[16,8]{1,0})->f32[]}, "
    "num_partitions=4\n"
)
_WRONG_PROGRAMS = {
    "all-gather": """
ENTRY %main (param: f32[16,8]) -> f32[] {
  %param = f32[16,8]{1,0} parameter(0), sharding={devices=[4,1]<=[4]}
  %all-gather = f32[64,8]{1,0} all-gather(%param), dimensions={0}
  %zero = f32[] constant(0)
  ROOT %reduce = f32[] reduce(%all-gather, %zero), dimensions={0,1}, to_apply=%add
}
""",
    "combines non-scalars": """
ENTRY %main (param: f32[16,8]) -> f32[] {
  %param = f32[16,8]{1,0} parameter(0), sharding={devices=[4,1]<=[4]}
  %zero = f32[] constant(0)
  %padded = f32[64,8]{1,0} pad(%param, %zero), padding=48_0x0_0
  %all-reduce = f32[64,8]{1,0} all-reduce(%padded), to_apply=%add
  ROOT %reduce = f32[] reduce(%all-reduce, %zero), dimensions={0,1}, to_apply=%add
}
""",
    "no all-reduce": """
ENTRY %main (param: f32[16,8]) -> f32[] {
  %param = f32[16,8]{1,0} parameter(0), sharding={devices=[4,1]<=[4]}
  %zero = f32[] constant(0)
  ROOT %reduce = f32[] reduce(%param, %zero), dimensions={0,1}, to_apply=%add
}
""",
}


@pytest.mark.parametrize("failure", list(_WRONG_PROGRAMS))
def test_criterion_rejects_programs_that_do_not_reduce_locally(failure: str) -> None:
    # by hand: each of these programs moves blocks or never combines them, so the
    # criterion must refuse it, or the tests above could not fail
    text = _HEADER_LINE + _ADD + _WRONG_PROGRAMS[failure]
    with pytest.raises(AssertionError, match=failure):
        assert_reduces_locally_before_combining(
            text, local_shapes={(16, 8)}, parameter_shapes=[(16, 8)]
        )
