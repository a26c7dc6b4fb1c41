"""Drop-in parity in real use: the same training, with the reference losses and with ours.

A small factorization model is trained in PyTorch, float32, from one seed, for a
few hundred steps of plain SGD on fixed batches: once with the loss written
from the reference formulas (references.py, on torch tensors), once with the
arraylosses function. The two runs differ only in how the loss rounds, so they
must end with the same parameters to float32 tolerance
(tolerances.TRAINING_ATOL). Plain SGD rather than Adam on purpose: Adam divides
each step by the gradient's running magnitude, which turns a last-ulp difference
in a gradient component near 0 into a full-size step; SGD adds the differences
up instead.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import cases, references
from .report import Row
from .tolerances import TRAINING_ATOL

__all__ = ["training_rows"]

USERS, ITEMS, DIM, BATCH, STEPS = 50, 40, 8, 32, 300
NEGATIVES = 3  # for the adaptive hinge; the other implicit losses take the first
LIKED = 4  # explicit ratings from 4 up are the positives of the logistic loss


def _reference_loss(loss: cases.Loss) -> Callable[..., Any]:
    ops = references.torch_ops()
    return lambda first, second: references.evaluate(
        loss.name, first, second, None, "mean", loss.kwargs, ops
    )


def _ours(loss: cases.Loss) -> Callable[..., Any]:
    import arraylosses  # noqa: PLC0415

    function = getattr(arraylosses, loss.name)
    return lambda first, second: function(first, second, **loss.kwargs)


def _data(seed: int, explicit: bool) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([seed, 7, int(explicit)])
    data = {
        "users": rng.integers(0, USERS, (STEPS, BATCH)),
        "items": rng.integers(0, ITEMS, (STEPS, BATCH)),
        "negatives": rng.integers(0, ITEMS, (STEPS, NEGATIVES, BATCH)),
        "user_factors": rng.normal(0.0, 0.1, (USERS, DIM)),
        "item_factors": rng.normal(0.0, 0.1, (ITEMS, DIM)),
        "item_biases": np.zeros(ITEMS),
    }
    # explicit ratings 1..5 from a hidden low-rank taste plus noise
    taste = rng.normal(size=(USERS, 2)) @ rng.normal(size=(2, ITEMS))
    data["ratings"] = np.clip(
        np.rint(3 + taste + rng.normal(0, 0.5, taste.shape)), 1, 5
    )
    return data


def _train(
    torch: Any,
    loss: cases.Loss,
    function: Callable[..., Any],
    data: dict[str, np.ndarray],
    device: str,
) -> tuple[list[Any], float]:
    params = [
        torch.tensor(data[name], dtype=torch.float32, device=device, requires_grad=True)
        for name in ("user_factors", "item_factors", "item_biases")
    ]
    user_factors, item_factors, item_biases = params
    explicit = loss.family == "explicit"
    optimizer = torch.optim.SGD(params, lr=0.5 if explicit else 2.0)
    ratings = torch.tensor(data["ratings"], dtype=torch.float32, device=device)
    value = torch.zeros(())
    for step in range(STEPS):
        users = torch.as_tensor(data["users"][step], device=device)
        items = torch.as_tensor(data["items"][step], device=device)
        user = user_factors[users]
        score = (user * item_factors[items]).sum(-1) + item_biases[items]
        if explicit:
            observed = ratings[users, items]
            if loss.name == "regression_loss":
                value = function(observed, score + 3.0)
            elif loss.name == "poisson_loss":
                counts = observed - 1.0
                rate_or_log = (
                    score if loss.kwargs.get("log_input") else torch.exp(score)
                )
                value = function(counts, rate_or_log)
            else:
                value = function(torch.where(observed >= LIKED, 1.0, -1.0), score)
        else:
            negatives = torch.as_tensor(data["negatives"][step], device=device)
            negative = (user[None] * item_factors[negatives]).sum(-1) + item_biases[
                negatives
            ]
            if loss.family == "adaptive":
                value = function(score, negative)
            else:
                value = function(score, negative[0])
        optimizer.zero_grad()
        value.backward()
        optimizer.step()
    return [p.detach().cpu().numpy().astype(np.float64) for p in params], float(
        value.detach()
    )


def training_rows(seed: int, device: str = "cpu") -> tuple[list[Row], list[str]]:
    """One row per loss (with options), or a note where torch can't run on ``device``."""
    try:
        import torch  # noqa: PLC0415 - optional
    except Exception as error:  # noqa: BLE001
        return [], [f"training parity skipped: cannot import torch ({error})"]
    if device == "cuda" and not torch.cuda.is_available():
        return [], ["training parity skipped: torch sees no CUDA device"]
    torch.manual_seed(seed)
    rows = []
    for loss in cases.LOSSES:
        data = _data(seed, loss.family == "explicit")
        try:
            ours, ours_loss = _train(torch, loss, _ours(loss), data, device)
        except Exception as error:  # noqa: BLE001 - a failing run is a failing row
            ours, ours_loss, failure = (
                None,
                float("nan"),
                f"{type(error).__name__}: {error}",
            )
        else:
            failure = ""
        reference, reference_loss = _train(
            torch, loss, _reference_loss(loss), data, device
        )
        initial = [data[n] for n in ("user_factors", "item_factors", "item_biases")]
        moved = max(
            float(np.max(np.abs(r - i)))
            for r, i in zip(reference, initial, strict=True)
        )
        if ours is None:
            error, scale = float("inf"), 1.0
        else:
            error = max(
                float(np.max(np.abs(o - r)))
                for o, r in zip(ours, reference, strict=True)
            )
            scale = max(1.0, *(float(np.max(np.abs(r))) for r in reference))
        model = "explicit MF" if loss.family == "explicit" else "implicit MF"
        rows.append(
            Row(
                backend="torch (training)"
                if device == "cpu"
                else f"torch:{device} (training)",
                loss=loss.name,
                options=", ".join(f"{k}={v}" for k, v in loss.options),
                dtype="float32",
                shape=f"{model} {USERS}x{ITEMS} d={DIM}, {STEPS} SGD steps",
                mask="none",
                reduction="mean",
                kind="training",
                reference_name="the same training with the reference loss",
                ours=f"{ours_loss:.6g}",
                reference=f"{reference_loss:.6g}",
                error=error,
                tol=TRAINING_ATOL * scale,
                passed=error <= TRAINING_ATOL * scale and moved > 1e-2,  # noqa: PLR2004
                note=failure or f"parameters moved by up to {moved:.3g}",
            )
        )
    return rows, []
