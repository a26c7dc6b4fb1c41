"""The tolerances of the suite, stated once, with the reasoning behind each.

Every comparison measures one number, the error of ``ours`` against the
reference ``ref`` (both in float64 once ours is upcast)::

    error = max |ours - ref| / max(max |ref|, floor)

the largest elementwise difference relative to the largest reference value (the
infinity-norm relative error, so the masked-out zeros of ``reduction="none"`` do
not need a tolerance of their own), and passes when ``error <= rtol[dtype]``.

``floor`` stops values near 0 from turning rounding noise into a large relative
error, and is sized by what the float32 (or half) computation actually rounds:

- values: ``floor = scale * weight``, where ``scale = max(1, margin, largest
  input magnitude)`` is the size of the terms the formula adds and subtracts (the
  constant 1 or the margin of the hinges and sigmoids, the inputs of ``n - p``,
  ``y * log(yhat)``, ``max(x, 0) - x * z``): a formula that cancels them down to a
  small value can only be right to ``rtol * scale`` in absolute terms. ``weight``
  is 1 for a mean, the total weight for a sum, the largest weight for "none"
  (so with an all-zero mask the floor is 0 and the expected 0 must be exact).
- gradients: ``floor`` = the weight one element carries (1/N or w_i / sum(w)
  for a mean, w_i for a sum, w_i times the cotangent for "none"): the gradient
  of each elementwise loss is of order 1 (sigmoid slopes, hinge steps of 1,
  ``sigma(x) - z``), so an element's error is of order ``eps`` times its weight.

A wrong formula changes values by 1e-2 or more; every tolerance below is smaller
than that by a factor of 5,000 or more at float32 and 1e11 at float64.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "FD_RTOL",
    "RTOL",
    "TRAINING_ATOL",
    "normwise_error",
]

RTOL: dict[str, float] = {
    # float64: ours and the reference agree to a few ulp (eps = 2.2e-16) per
    # operation: the worst error on any CPU backend, JAX's XLA included, was
    # 6.5e-16 (3 ulp; measured 2026-12-01). 1e-13 (450 ulp) leaves room for a
    # GPU's own exp, log and order of summation, and sees a bias of 1,000 ulp.
    "float64": 1e-13,
    # float32: eps = 1.19e-7. Each elementwise loss takes a handful of rounded
    # operations (a few ulp), and the mean of N <= 105 elements adds at most
    # ~log2(N) ulp with pairwise summation (NumPy, torch, XLA all sum pairwise
    # or in blocks): about 10 ulp in all, so 2e-6 (17 ulp) relative.
    "float32": 2e-6,
    # float16 and bfloat16 are computed in float32 (the backends guide) and the
    # result is rounded once to the half type: half an ulp, 2**-11 = 4.9e-4 for
    # float16 and 2**-8 = 3.9e-3 for bfloat16 (8 significant bits); the inputs'
    # own rounding is not counted, because the reference is evaluated on the same
    # rounded inputs. Two half-ulps each:
    "float16": 1e-3,
    "bfloat16": 8e-3,
}

# Central differences of the float64 reference against torch autograd of it:
# with a step h = 1e-6 (divided by the step as actually rounded into x), the
# truncation error is O(h**2) ~ 1e-12 and the rounding error O(eps / h) ~ 2e-10
# relative, so 1e-6 separates a wrong derivative from noise.
FD_RTOL = 1e-6

# Drop-in training (training.py): both runs are float32 and differ only in how
# the loss rounds (a few ulp of each gradient per step). Over a few hundred
# steps of plain SGD those differences add up, not multiply, to ~1e-6 at
# parameters of order 1; 1e-5 times max(1, |theta|) leaves ten times that.
TRAINING_ATOL = 1e-5


def normwise_error(ours: np.ndarray, ref: np.ndarray, floor: float) -> float:
    """``max |ours - ref| / max(max |ref|, floor)``; inf on NaN or a shape mismatch.

    Where the denominator is 0 (an expected exact 0 with no floor), the error is
    0 if ours is exactly 0 too, else inf.
    """
    ours = np.asarray(ours, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if ours.shape != ref.shape:
        return math.inf
    if ours.size == 0:
        return 0.0
    if not (np.all(np.isfinite(ours)) and np.all(np.isfinite(ref))):
        same = np.array_equal(ours, ref, equal_nan=True)
        return 0.0 if same else math.inf
    diff = float(np.max(np.abs(ours - ref)))
    denominator = max(float(np.max(np.abs(ref))), floor)
    if denominator == 0.0:
        return 0.0 if diff == 0.0 else math.inf
    return diff / denominator
