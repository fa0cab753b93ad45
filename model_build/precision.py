"""The precision the API states its numbers to: what a clinician reads, not a float's seventeen digits.

Computation keeps full precision (features, ranking, captures); each part of the answer rounds its numbers once,
where it is built. A rounded value is the double nearest its decimal, so JSON writes it short.
"""

from __future__ import annotations

from collections.abc import Iterable

PROBABILITY = 3  # 0.1 percentage point; a probability strictly between 0 and 1 never shows as 0 or 1
WEEKS = 1
AREA_CM2 = 2  # lengths are measured to 0.1 cm
VOLUME_CM3 = 3
PERCENT = 1
RATE_CM2_PER_WEEK = 2
SCORE = 3  # the progress score, in standardised units
USD = 2


def rounded(value: float | None, decimals: int) -> float | None:
    """`value` to `decimals` places; None stays None."""
    if value is None:
        return None
    scale = 10.0**decimals
    return round(value * scale) / scale


def rounded_all(values: Iterable[float], decimals: int) -> list[float]:
    """`rounded` for many values."""
    scale = 10.0**decimals
    return [round(value * scale) / scale for value in values]


def probability(value: float | None) -> float | None:
    """A probability to PROBABILITY decimals, never rounded to certainty (None stays None)."""
    return None if value is None else probabilities((value,))[0]


def probabilities(values: Iterable[float]) -> list[float]:
    """Probabilities to PROBABILITY decimals; one strictly between 0 and 1 is shown within [0.001, 0.999]: a model
    is never certain, and a clinician reads 1.0 as certainty."""
    scale = 10**PROBABILITY
    return [min(max(round(p * scale), 1), scale - 1) / scale if 0.0 < p < 1.0 else p for p in values]
