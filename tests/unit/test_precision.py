"""The answer's precision: short decimals, and no probability strictly between 0 and 1 shown as certain."""

from __future__ import annotations

import json

from model_build.precision import probabilities, probability, rounded, rounded_all


def test_rounded_values_are_the_short_decimals_json_writes():
    assert json.dumps(rounded_all([12.916666666666679, 2.4412500000000024, -0.0001], 1)) == "[12.9, 2.4, 0.0]"
    assert rounded(2370.880049419535, 2) == 2370.88 and rounded(None, 2) is None


def test_a_probability_is_never_rounded_to_certainty_but_0_and_1_stay():
    assert probabilities([0.0, 0.0004, 0.0126, 0.5, 0.9996, 0.9999999933, 1.0]) == [
        0.0, 0.001, 0.013, 0.5, 0.999, 0.999, 1.0,
    ]  # fmt: skip
    assert probability(None) is None and probability(0.25) == 0.25
