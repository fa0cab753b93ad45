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
from typing import Any

from model_build.trajectory import CurveQuery, CurveSummaries
from woundcare_scoring.native import NativeModel

MISSING_CATEGORY = "__missing__"  # as model_build.survival.MISSING_CATEGORY


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
        self._codings = [(name, codes.get(name)) for name in self.feature_names]  # None: a numeric feature

    @classmethod
    def load(cls, bundle_dir: str | Path, verify: bool = True) -> CompiledHealingModel:
        return cls(NativeModel.load(bundle_dir, verify=verify))

    def encode(self, row: Mapping[str, Any]) -> list[float | None]:
        """One feature row (model values: floats/None, category strings/None) as the learner's numbers."""
        out: list[float | None] = []
        for name, coding in self._codings:
            value = row.get(name)
            if coding is None:
                out.append(None if value is None else float(value))
            else:
                levels, fallback = coding
                out.append(fallback if value is None else levels.get(value, fallback))
        return out

    def margins(self, rows: Sequence[Mapping[str, Any]]) -> list[list[float]]:
        """Logit of each interval's hazard for each row: shape [len(rows)][n_intervals], in one native call."""
        n_intervals, width = len(self._starts), len(self.feature_names) + 1
        design = array("d")
        for row in rows:
            block = array("d", [math.nan if v is None else v for v in self.encode(row)] + [0.0]) * n_intervals
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
