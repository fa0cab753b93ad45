"""The precision the API states its numbers to: what a clinician reads, not a float's seventeen digits.

Computation keeps full precision (features, the captured feature vector); each part of the answer rounds its
numbers once, where it is built, and the capture records the answer's numbers as stated. Options are ranked on the
figures shown (`model_build.recommend`). A rounded value is the
double nearest its decimal, so JSON writes it short.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import overload

PROBABILITY = 3  # 0.1 percentage point; a probability strictly between 0 and 1 never shows as 0 or 1
WEEKS = 1
AREA_CM2 = 2  # the trajectory's areas; a derived area is stated as derived (model_build.derive)
VOLUME_CM3 = 3
PERCENT = 1
RATE_CM2_PER_WEEK = 2
SCORE = 3  # the progress score, in standardised units
USD = 2
_PROBABILITY_SCALE = 10**PROBABILITY
# 1 - p as shown, for p strictly between 0 and 1, by the units of the last decimal it rounds to (0..scale): the
# units are kept within 1..scale - 1, so it never shows as certain
_SHOWN_COMPLEMENTS = tuple(
    min(k or 1, _PROBABILITY_SCALE - 1) / _PROBABILITY_SCALE for k in range(_PROBABILITY_SCALE + 1)
)


def statement() -> str:
    """The precision in words, for the API's documents."""
    return (
        f"weeks to {10.0**-WEEKS:g}, trajectory areas to {10.0**-AREA_CM2:g} cm², probabilities to "
        f"{10.0**-PROBABILITY:g} (never 0 or 1 unless exact), USD to {10.0**-USD:g}, progress scores to "
        f"{10.0**-SCORE:g}; counts are integers"
    )


@overload
def rounded(value: float, decimals: int) -> float: ...
@overload
def rounded(value: None, decimals: int) -> None: ...
@overload
def rounded(value: float | None, decimals: int) -> float | None: ...
def rounded(value: float | None, decimals: int) -> float | None:
    """`value` to `decimals` places; None stays None."""
    if value is None:
        return None
    scale = 10.0**decimals
    return round(value * scale) / scale


def rounded_all(values: Iterable[float], decimals: int) -> list[float]:
    """`rounded` for many values (inline: the weekly series make it hot)."""
    scale = 10.0**decimals
    return [round(value * scale) / scale for value in values]


def complement(p: float) -> float:
    """1 - p, a probability, as the answer shows it: see `complements`."""
    return complements((p,))[0]


def complements(values: Iterable[float]) -> list[float]:
    """1 - p for each probability p (P(healed) from P(still open)), to PROBABILITY decimals and never shown as
    certain unless p is exactly 0 or 1: within [0.001, 0.999] otherwise. Computed from p, because 1 - p is already
    1.0 in floating point for p below 1e-16."""
    shown, scale = _SHOWN_COMPLEMENTS, float(_PROBABILITY_SCALE)
    return [shown[round((1.0 - p) * scale)] if 0.0 < p < 1.0 else _certain_complement(p) for p in values]


def _certain_complement(p: float) -> float:
    return 1.0 if p <= 0.0 else 0.0 if p >= 1.0 else p  # a NaN (finite margins give none) is passed on, not hidden
