"""What a type checker tells a user of the public functions.

Not a test module: mypy reads it in the lint session (``files`` in
pyproject.toml). Strict mode reports a ``type: ignore`` that ignores nothing, so
each ignore below asserts that mypy reports that mistake, with that code.
"""

from __future__ import annotations

from typing import Any

from arraylosses import (
    adaptive_hinge_loss,
    bpr_loss,
    hinge_loss,
    logistic_loss,
    poisson_loss,
    value_and_grad,
)


def accepted(positive: Any, negatives: Any, mask: Any) -> None:
    bpr_loss(positive, negatives[0], mask, reduction="none")
    adaptive_hinge_loss(positive, negatives, margin=0.5, reduction="sum")
    poisson_loss(positive, positive, log_input=True)
    value_and_grad(hinge_loss)(
        positive, negatives[0], mask=mask, margin=2, reduction="sum"
    )


def refused(positive: Any, negative: Any) -> None:
    bpr_loss(positive, negative, reduction="avg")  # type: ignore[arg-type]
    bpr_loss(positive, negative, reductoin="sum")  # type: ignore[call-arg]
    bpr_loss(positive, negative, None, "sum")  # type: ignore[call-arg]
    hinge_loss(positive, negative, margin="big")  # type: ignore[arg-type]
    logistic_loss(positive, negative, reduction=None)  # type: ignore[arg-type]
    # value_and_grad's function takes its loss's parameters, checked the same way
    value_and_grad(bpr_loss)(positive, negative, reductoin="sum")  # type: ignore[call-arg]
    value_and_grad(bpr_loss)(positive, negative, reduction="avg")  # type: ignore[arg-type]
