"""The model card: one self-contained HTML page a clinical lead reads before approving a model.

Built from the evaluation (`model_build.evaluate.evaluate_predictions` output), the fitted model and a sample of
held-out landmarks: headline metrics, calibration plot, example trajectories, subgroup table, feature importance
(permutation, on held-out rows), the progress weights and the treatment effects the options contrast plans with.
Plots are inline PNGs, so the page travels alone.
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from model_build.evaluate import harrell_c
from model_build.features_table import Landmarks
from model_build.healing import HealingModel, as_model_frame
from model_build.trajectory import trajectory

HEADLINE = ("n", "events", "harrell_c", "uno_c", "auc_12w", "ibs", "calibration_mace", "mae_weeks")
TWELVE_WEEKS_DAYS = 84.0


def render_model_card(card: Mapping[str, Any], model: HealingModel, test: Landmarks, seed: int = 0) -> str:
    """The card as HTML: `card` holds version, lineage and `evaluation` (overall + `by` subgroups)."""
    evaluation = card["evaluation"]
    sample = _sample(test, 600, seed)
    sections = [
        _header(card),
        _section(
            "Headline metrics (held-out patients, every visit as a landmark)",
            _metrics_table({"overall": evaluation["overall"]}),
        ),
        _section("Clinical baselines on the same rows", _metrics_table(card.get("baselines") or {})),
        _section("Calibration of P(healed by 12 weeks)", _img(_calibration_plot(evaluation["overall"]))),
        _section("Example trajectories", _img(_trajectory_plot(model, sample))),
        _section(
            "Subgroups",
            "".join(
                f"<h3>{html.escape(name)}</h3>" + _metrics_table(levels) for name, levels in evaluation["by"].items()
            ),
        ),
        _section(
            "What the model leans on (drop in C-index when a feature is shuffled)",
            _importance_table(permutation_importance(model, sample, seed)),
        ),
        _section(
            "Progress score weights (per standard deviation of change since the first visit)",
            _weights_table(model.progress.weights),
        ),
        _section(
            "Treatment effects used to compare plans (severity-adjusted, first visits; odds ratio of the weekly "
            "healing hazard against the reference, 95 % interval)",
            _effects_table(model.treatment_effects),
        ),
        _section(
            "Intended use",
            "<p>Decision support for wound-care clinicians: a healing-time estimate, its "
            "trajectory and cost-aware options. It never replaces clinical judgement; shadow until approved.</p>",
        ),
    ]
    title = html.escape(f"woundcare model card — {card.get('model_version', '')}")
    style = (
        "body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}"
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{style}</style></head>"
        f"<body><h1>{title}</h1>{''.join(sections)}</body></html>"
    )


def permutation_importance(model: HealingModel, sample: Landmarks, seed: int = 0, top: int = 15) -> list[tuple]:
    """(feature, drop in Harrell's C) for the `top` features, on the risk of healing by 12 weeks."""
    X = as_model_frame(sample.X)
    base = _risk(model, X)
    reference = harrell_c(sample.time_days, sample.event, base)
    rng = np.random.default_rng(seed)
    drops = []
    for name in X.columns:
        shuffled = X.copy()
        shuffled[name] = rng.permutation(shuffled[name].to_numpy())
        c = harrell_c(sample.time_days, sample.event, _risk(model, shuffled))
        drops.append((name, (reference or 0.0) - (c or 0.0)))
    return sorted(drops, key=lambda kv: -kv[1])[:top]


def _risk(model: HealingModel, X) -> np.ndarray:
    return 1.0 - model.survival.predict_survival(X, [TWELVE_WEEKS_DAYS])[:, 0]


def _sample(test: Landmarks, n: int, seed: int) -> Landmarks:
    rows = np.sort(np.random.default_rng(seed).permutation(len(test.time_days))[:n])
    return Landmarks(test.ids.iloc[rows].reset_index(drop=True), test.X.iloc[rows].reset_index(drop=True),
                     test.time_days[rows], test.event[rows])  # fmt: skip


def _header(card: Mapping[str, Any]) -> str:
    rows = {k: card.get(k) for k in ("model_version", "run_id", "dataset_version", "status") if card.get(k)}
    rows |= {f"{k} rows": v for k, v in card.get("rows", {}).items()}
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows.items())
    return f"<table>{body}</table>"


def _section(title: str, body: str) -> str:
    return f"<h2>{html.escape(title)}</h2>{body}"


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:.3f}" if isinstance(value, float) else html.escape(str(value))


def _metrics_table(groups: Mapping[str, Mapping[str, Any]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("group", *HEADLINE))
    body = "".join(
        f"<tr><td>{html.escape(str(g))}</td>{''.join(f'<td>{_fmt(m.get(h))}</td>' for h in HEADLINE)}</tr>"
        for g, m in groups.items()
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _importance_table(drops: list[tuple]) -> str:
    body = "".join(f"<tr><td>{html.escape(n)}</td><td>{d:.4f}</td></tr>" for n, d in drops)
    return f"<table><tr><th>feature</th><th>C-index drop</th></tr>{body}</table>"


def _weights_table(weights: Mapping[str, float]) -> str:
    body = "".join(f"<tr><td>{html.escape(n)}</td><td>{w:+.3f}</td></tr>" for n, w in weights.items())
    return f"<table><tr><th>change in</th><th>weight</th></tr>{body}</table>"


def _effects_table(effects: Mapping[str, Any]) -> str:
    errors, exposed = effects["standard_errors"], effects["exposed_wounds"]
    rows = []
    for component, by_type in effects["effects"].items():
        for wound_type, tau in by_type.items():
            se = errors[component][wound_type]
            interval = f"{np.exp(tau - 1.96 * se):.2f}–{np.exp(tau + 1.96 * se):.2f}"
            cells = (
                f"{component} ({wound_type})",
                f"{np.exp(tau):.2f}",
                interval,
                exposed.get(component, {}).get(wound_type, ""),
            )
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    references = html.escape(", ".join(f"{k}: {v}" for k, v in effects["references"].items()))
    note = f"<p>References — {references}; {effects['n_wounds']} wounds, {effects['n_events']} healed.</p>"
    head = "".join(
        f"<th>{h}</th>" for h in ("component (wound type; * = pooled)", "odds ratio", "95 % interval", "wounds exposed")
    )
    return f"{note}<table><tr>{head}</tr>{''.join(rows)}</table>"


def _img(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return f"<img alt='plot' src='data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}'>"


def _calibration_plot(overall: Mapping[str, Any]):
    figure, ax = plt.subplots(figsize=(4.5, 4.5))
    deciles = overall.get("calibration") or []
    predicted = [d["predicted"] for d in deciles]
    observed = [d["observed"] for d in deciles]
    ax.plot([0, 1], [0, 1], color="#999", linestyle="--", label="perfect")
    ax.plot(predicted, observed, marker="o", label="deciles (Kaplan–Meier observed)")
    ax.set_xlabel("predicted P(healed by 12 weeks)")
    ax.set_ylabel("observed")
    ax.legend(loc="upper left")
    return figure


def _trajectory_plot(model: HealingModel, sample: Landmarks, n: int = 4):
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    rows = sample.X.iloc[:n]
    margins = model.survival.hazard_margins(as_model_frame(rows))
    edges = tuple(float(e) for e in model.survival.interval_edges_)
    for i in range(len(rows)):
        path = trajectory(edges, margins[i], float(rows["area_cm2"].iloc[i]), model.area_shape)
        weekly = path["weekly"]
        weeks = weekly["week"]
        label = f"{rows['wound_type'].iloc[i]} ({rows['area_cm2'].iloc[i]:.1f} cm²)"
        axes[0].plot(weeks, weekly["p_healed"], label=label)
        line = axes[1].plot(weeks, weekly["area_cm2"])
        low, high = weekly["area_low_cm2"], weekly["area_high_cm2"]
        axes[1].fill_between(weeks, low, high, alpha=0.15, color=line[0].get_color())
    axes[0].set(xlabel="weeks from the visit", ylabel="P(healed)", ylim=(0, 1))
    axes[1].set(xlabel="weeks from the visit", ylabel="area cm² (median, 80 % band)")
    axes[0].legend(fontsize=8)
    return figure
