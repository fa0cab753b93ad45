"""Reports people read: the drift report as one self-contained HTML page (plots inline as base64 PNG)."""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from model_build.drift import DriftResult, FeatureDrift, reference_profile

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.25rem 0.5rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.drifted { background: #fde2e1; }
.verdict { font-size: 1.2rem; font-weight: bold; }
figure { margin: 1rem 0; }
"""


def drift_report_html(result: DriftResult, reference: dict, current: pd.DataFrame | dict) -> str:
    """The drift report page: verdict and summary, every feature's test, overlay plots of the drifted features."""
    current_profile = current if isinstance(current, dict) else reference_profile(current)
    plots = "".join(_feature_figure(f, reference, current_profile) for f in result.features if f.drifted)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>woundcare drift report</title>'
        f"<style>{_STYLE}</style></head><body>"
        "<h1>Drift report</h1>"
        f"{_summary(result, reference, current_profile)}"
        "<h2>Features</h2>"
        f"{_feature_table(result)}"
        "<h2>Drifted features</h2>"
        f"{plots or '<p>No feature drifted.</p>'}"
        "</body></html>\n"
    )


def _summary(result: DriftResult, reference: dict, current: dict) -> str:
    th = result.thresholds
    reasons = ", ".join(result.retrain_reasons) or "no drift, too few new matured outcomes, not forced"
    rows = [
        ("drift detected", _yes(result.drift_detected)),
        ("share of tested features drifted", f"{result.share_drifted:.1%} (limit {th.max_drifted_share:.0%})"),
        ("key features drifted", ", ".join(result.key_features_drifted) or "none"),
        ("new matured outcomes", f"{_fmt(result.new_matured_outcomes)} (enough: {th.min_new_matured_outcomes})"),
        ("production model", _yes(result.has_production_model)),
        ("forced", _yes(result.force)),
    ]
    counts = [
        (label, _fmt(reference.get(key)), _fmt(current.get(key)))
        for label, key in (("visits", "rows"), ("patients", "patients"), ("wounds", "wounds"))
    ]
    return (
        f'<p class="verdict">{escape(result.decision)}: {escape(reasons)}</p>'
        + _table(("", "value"), [_row(r) for r in rows])
        + _table(("", "reference", "current"), [_row(r) for r in counts])
        + "<p>Tests: KS (continuous) or chi² (categorical and few-valued) at "
        f"α = {th.alpha:g}, counting patients; a feature drifts when its test is significant and its effect "
        f"reaches the floor (Wasserstein / std ≥ {th.wasserstein_min:g}, Jensen–Shannon distance ≥ "
        f"{th.js_distance_min:g}), or when its missing share moves by ≥ {th.missing_shift_min:g}. "
        "PSI: &lt; 0.1 stable, 0.1–0.25 moderate, ≥ 0.25 major.</p>"
    )


def _feature_table(result: DriftResult) -> str:
    header: tuple[str, ...] = ("feature", "kind", "method", "patients ref / cur", "missing ref / cur")
    header += ("statistic", "p", "effect", "PSI", "drifted")
    body = []
    for f in result.features:
        cells = (
            f.name,
            f.kind,
            f.method,
            f"{f.units_reference:.0f} / {f.units_current:.0f}",
            f"{f.missing_reference:.1%} / {f.missing_current:.1%}",
            _fmt(f.statistic),
            _fmt(f.p_value),
            _fmt(f.effect),
            f"{_fmt(f.psi)} ({f.psi_band})" if f.psi is not None else "—",
            _yes(f.drifted),
        )
        body.append(_row(cells, "drifted" if f.drifted else None))
    return _table(header, body)


def _feature_figure(feature: FeatureDrift, reference: dict, current: dict) -> str:
    """Reference and current shares per bin side by side; for continuous features also both CDFs."""
    continuous = feature.kind == "continuous"
    fig = Figure(figsize=(10 if continuous else 6, 3.2))
    FigureCanvasAgg(fig)
    bars = fig.add_subplot(1, 2 if continuous else 1, 1)
    x = np.arange(len(feature.bins))
    bars.bar(x - 0.2, feature.reference_shares, width=0.4, label="reference")
    bars.bar(x + 0.2, feature.current_shares, width=0.4, label="current")
    bars.set_xticks(x, feature.bins, rotation=45, ha="right", fontsize=7)
    bars.set_ylabel("share of patients")
    bars.legend(fontsize=8)
    if continuous:
        cdf = fig.add_subplot(1, 2, 2)
        for profile, label in ((reference, "reference"), (current, "current")):
            q = profile["features"][feature.name]["quantiles"]
            cdf.step(q, np.arange(1, len(q) + 1) / max(len(q), 1), where="post", label=label)
        cdf.set_xlabel(feature.name)
        cdf.set_ylabel("cumulative share")
        cdf.legend(fontsize=8)
    fig.suptitle(feature.name)
    fig.subplots_adjust(bottom=0.35, wspace=0.3)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=90)
    data = base64.b64encode(png.getvalue()).decode("ascii")
    alt = escape(f"{feature.name}: reference vs current")
    return f'<figure><img alt="{alt}" src="data:image/png;base64,{data}"></figure>'


def _table(header: tuple[str, ...], rows: list[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _row(cells, css_class: str | None = None) -> str:
    attr = f' class="{css_class}"' if css_class else ""
    return f"<tr{attr}>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"


def _fmt(value) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
