"""Interval hazard margins of the compiled healing model for feature rows (dicts): the serving twin of
`model_build.healing.HealingModel.margins`, on the stdlib and model_build's pure modules (no numpy).

A row's categorical values are coded as the learner coded them in training (position of the level; a missing or
unseen value takes the learned missing level if there is one, else counts as missing), then the row is scored once
per interval with that interval's start appended, as the learner's design matrix has it.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

from model_build.trajectory import CurveQuery, CurveSummaries
from woundcare_scoring.native import NativeModel

MISSING_CATEGORY = "__missing__"  # as model_build.survival.MISSING_CATEGORY
_Missing = TypeVar("_Missing", float, None)


class CompiledHealingModel:
    """A compiled healing-model bundle with the serving metadata recorded at registration."""

    def __init__(self, native: NativeModel) -> None:
        meta = native.metadata
        self.native = native
        self.meta = meta
        self.feature_names: list[str] = list(meta["feature_names"])
        self.edges: list[float] = list(meta["interval_edges_days"])
        self._starts = array("d", self.edges[:-1])
        codes = {
            name: ({level: float(i) for i, level in enumerate(levels)}, _fallback(levels))
            for name, levels in meta["categories"].items()
        }
        # per feature: its levels' codes and the code of a missing or unseen level (both None: a numeric feature)
        self._codings = [(name, *codes.get(name, (None, None))) for name in self.feature_names]

    @classmethod
    def load(cls, bundle_dir: str | Path, verify: bool = True) -> CompiledHealingModel:
        return cls(NativeModel.load(bundle_dir, verify=verify))

    def encode(self, row: Mapping[str, Any]) -> list[float | None]:
        """One feature row (model values: floats/None, category strings/None) as the learner's numbers."""
        return self._encoded(row, None)

    def _encoded(self, row: Mapping[str, Any], missing: _Missing) -> list[float | _Missing]:
        """`encode` with `missing` for a missing value (None, or NaN as the design matrix has it)."""
        out: list[float | _Missing] = []
        for name, levels, fallback in self._codings:
            value = row.get(name)
            if levels is None:
                out.append(missing if value is None else float(value))
            else:
                code = fallback if value is None else levels.get(value, fallback)
                out.append(missing if code is None else code)
        return out

    def margins(self, rows: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        """Logit of each interval's hazard for each row: shape [len(rows)][n_intervals], in one native call."""
        n_intervals, width = len(self._starts), len(self.feature_names) + 1
        design = array("d")
        for row in rows:
            block = array("d", [*self._encoded(row, math.nan), 0.0]) * n_intervals
            block[width - 1 :: width] = self._starts  # the row once per interval, that interval's start last
            design.extend(block)
        flat = self.native.predict_batch(design, len(rows) * n_intervals, raw_margin=True)
        return [flat[i : i + n_intervals] for i in range(0, len(flat), n_intervals)]

    def summarise(
        self, edges: Sequence[float], margins: Sequence[float], shifts: Sequence[float], query: CurveQuery
    ) -> CurveSummaries:
        """`model_build.trajectory.summarise_curves` in one native call (the library's woundcare_curve_summaries)."""
        survival, quantile_days, areas = self.native.curve_summaries(edges, margins, shifts, *query)
        return CurveSummaries(survival, [None if day != day else day for day in quantile_days], areas)  # NaN: None


def _fallback(levels: Sequence[str]) -> float | None:
    return float(levels.index(MISSING_CATEGORY)) if MISSING_CATEGORY in levels else None
