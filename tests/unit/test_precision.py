"""The answer's precision: short decimals, and no probability strictly between 0 and 1 shown as certain."""

from __future__ import annotations

import json

from model_build.precision import complement, complements, rounded, rounded_all


def test_rounded_values_are_the_short_decimals_json_writes():
    assert json.dumps(rounded_all([12.916666666666679, 2.4412500000000024, -0.0001], 1)) == "[12.9, 2.4, 0.0]"
    assert rounded(2370.880049419535, 2) == 2370.88 and rounded(None, 2) is None


def test_p_healed_from_p_open_is_never_rounded_to_certainty_but_0_and_1_stay():
    open_ = [1.0, 0.9996, 0.9874, 0.5, 0.0004, 6.7e-9, 5.9e-18, 0.0]
    assert complements(open_) == [0.0, 0.001, 0.013, 0.5, 0.999, 0.999, 0.999, 1.0]
    assert 1.0 - 5.9e-18 == 1.0  # why it is computed from P(open): the subtraction alone says "certain"
    assert complement(0.75) == 0.25 and complements([-1e-17, 1.0000000002]) == [1.0, 0.0]  # float noise
