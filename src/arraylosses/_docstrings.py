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
        NaN there (its gradient is the elementwise loss's own times 0, so keep
        masked-out inputs finite if you differentiate). Converted to the
        predictions' dtype.""",
    "reduction": """\
reduction : {'mean', 'sum', 'none'}, default 'mean'
        'mean' is Spotlight's: the mean of the elementwise loss, or with a mask
        ``sum(L * mask) / sum(mask)``, the mask counted at its broadcast shape
        (0, with zero gradients, when the mask is all zero). 'sum' is
        ``sum(L * mask)``; 'none' returns ``L * mask`` itself.""",
    "returns": """\
Returns
    -------
    loss : array
        0-d (or the elementwise loss's shape with ``reduction='none'``), of the
        predictions' floating dtype, in their namespace and on their device.
        Half precision is computed in float32 and returned in half precision. On
        NumPy a 0-d result is a NumPy scalar, as NumPy's own reductions return.""",
    "raises": """\
Raises
    ------
    TypeError
        If the arrays come from two libraries, an argument is not an array, or
        its dtype is not one it accepts.
    ValueError
        If the arrays are on two devices, their shapes do not broadcast or
        broadcast into an outer product, the mask does not broadcast to the
        loss's shape, or ``reduction`` is unknown.""",
}


def shared_sections(function: F) -> F:
    """Fill ``{mask}``, ``{reduction}``, ``{returns}`` and ``{raises}`` in a docstring."""
    doc = function.__doc__ or ""
    for name, text in _SECTIONS.items():
        # replace(), not format(): the math in docstrings has braces of its own
        doc = doc.replace("{" + name + "}", text)
    function.__doc__ = doc
    return function
