"""Docstring sections that every loss shares, written once."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable[..., object])

__all__ = ["shared_sections"]

_SECTIONS = {
    "mask": """\
mask : array, optional
        Weights of the elementwise loss, broadcasting to its shape: bool, integer
        or floating (non-negative; non-binary values weight each element). A
        masked-out element contributes exactly 0, even where the loss is inf or
        NaN there. Autograd gives it the elementwise loss's own derivative
        times 0, NaN where that is not finite, so keep masked-out inputs finite
        if you differentiate that way; :func:`~arraylosses.value_and_grad`
        gives it exactly 0. A weight of exactly 0 gets a gradient of 0 from its
        masked-out element, not the element's loss. A bool mask is used as it
        is; integer and floating weights are converted to the dtype the loss is
        computed in.""",
    "reduction": """\
reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' is Spotlight's: the mean of the elementwise loss, or with a mask
        ``sum(L * mask) / sum(mask)``, the mask counted at its broadcast shape
        (0, with zero gradients, when the mask is all zero or the loss has no
        elements; weights that sum to 0 without all being 0 divide by 1). 'sum' is
        ``sum(L * mask)``; 'none' returns ``L * mask`` itself.""",
    "returns": """\
Returns
    -------
    loss : array
        0-d (or the elementwise loss's shape with ``reduction='none'``), of the
        predictions' floating dtype, in their namespace and on their device.
        Half precision is computed in float32 and returned in half precision. On
        NumPy a 0-d result is a NumPy scalar, as NumPy's own reductions return.""",
    "spotlight_implicit": """\
Where it differs from Spotlight, it does so on purpose: an all-zero mask
    or an empty input gives 0 (Spotlight: NaN); a masked-out element
    contributes exactly 0 even where its loss is NaN or inf (Spotlight
    multiplies, and NaN leaks); a mask that broadcasts is counted at the loss's
    shape (Spotlight divides by the sum of the mask as given); shapes that
    broadcast into an outer product are refused (Spotlight broadcasts them);
    half precision is computed in float32.""",
    "spotlight_explicit": """\
Spotlight's version takes no mask and no reduction; without them the
    numbers are Spotlight's, except that an empty input gives 0 (Spotlight:
    NaN), shapes that broadcast into an outer product are refused (Spotlight's
    regression and Poisson losses broadcast them; its logistic loss refuses any
    two shapes that differ), and half precision is computed in float32. The
    observed ratings are converted to the dtype the loss computes in, not
    promoted (in Spotlight float64 ratings make a float64 loss of float32
    predictions). With a mask,
    an all-zero mask gives 0 and a masked-out element contributes exactly 0,
    even where its loss is NaN or inf.""",
    "raises": """\
Raises
    ------
    TypeError
        If the arrays come from two libraries, an argument is not an array, its
        dtype is not one it accepts, two floating dtypes do not promote to one
        (PyTorch's float8 types with any other), or ``reduction`` is not a str.
    ValueError
        If the arrays are on two devices, their shapes do not broadcast or
        broadcast into an outer product, the mask does not broadcast to the
        loss's shape, or ``reduction`` is unknown.""",
}


def shared_sections(function: F) -> F:
    """Fill ``{mask}``, ``{reduction}``, ``{returns}``, ``{raises}`` and the Spotlight
    notes ``{spotlight_implicit}`` and ``{spotlight_explicit}`` in a docstring."""
    doc = function.__doc__ or ""
    for name, text in _SECTIONS.items():
        # replace(), not format(): the math in docstrings has braces of its own
        doc = doc.replace("{" + name + "}", text)
    function.__doc__ = doc
    return function
