"""Compare censoring-aware learners on simulated data with known truth; prints the tables in survival-methods.md.

Run: .venv/bin/python docs/survival_methods.py [--quick] [--no-scale]
Truth: Weibull times whose scale has a nonlinear effect, an interaction and a categorical effect, and whose
shape differs by category (hazards cross, so proportional hazards is wrong on purpose). Times are in days.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, WeibullAFTFitter
from lifelines.utils import concordance_index
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestRegressor

from model_build.survival import DiscreteTimeSurvival

HORIZON = 364.0  # administrative end of follow-up: 52 weeks
WEEKS = np.arange(7.0, HORIZON + 1, 7.0)
DAYS = np.arange(0.0, HORIZON + 1)
CAL_DAY = 84.0  # P(event by 12 weeks), the calibration target of issue 3
IBS_END = 168.0  # integrate the Brier score over 24 weeks, where the censoring survival G stays usable
GROUP_LOG_SCALE = {"a": 0.0, "b": 0.5, "c": -0.4, "d": 0.2}
GROUP_SHAPE = {"a": 1.6, "b": 1.6, "c": 0.8, "d": 0.8}
SCENARIOS = {  # mean of the exponential dropout time; "x" = dropout depends on covariates
    "light": 3000.0,
    "heavy": 70.0,
    "heavy, covariate-dependent": "x",
}

SurvivalFn = Callable[[pd.DataFrame, np.ndarray], np.ndarray]


# ---- simulated data with known truth ------------------------------------------------------------------


def simulate(n: int, scenario: str, rng: np.random.Generator) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Features (with NaN and a string categorical), observed time/event and the true Weibull parameters."""
    x1, x3, x5, x6 = rng.normal(size=(4, n))
    x2 = rng.uniform(-2, 2, n)
    x4 = rng.random(n) < 0.4
    group = rng.choice(list(GROUP_LOG_SCALE), n)
    log_scale = (
        np.log(60.0)
        + 0.5 * x1
        + 0.4 * (x2**2 - 4 / 3)
        - 0.6 * x3 * x4
        + pd.Series(group).map(GROUP_LOG_SCALE).to_numpy()
    )
    scale, shape = np.exp(log_scale), pd.Series(group).map(GROUP_SHAPE).to_numpy()
    true_time = scale * (-np.log(rng.random(n))) ** (1 / shape)
    dropout_mean = SCENARIOS[scenario]
    if dropout_mean == "x":  # those with high x3 (and group c) leave follow-up early
        dropout_mean = 70.0 * np.exp(-0.8 * x3 - 0.5 * (group == "c"))
    dropout = rng.exponential(dropout_mean, n)
    time_obs = np.minimum.reduce([true_time, dropout, np.full(n, HORIZON)])
    x1_seen = np.where(rng.random(n) < 0.1, np.nan, x1)  # the learner sees x1 with 10 % missing
    X = pd.DataFrame({"x1": x1_seen, "x2": x2, "x3": x3, "x4": x4, "x5": x5, "x6": x6, "group": group})
    truth = {"time": time_obs, "event": true_time <= time_obs, "scale": scale, "shape": shape}
    return X, truth


def true_survival(truth: dict[str, np.ndarray], times: np.ndarray) -> np.ndarray:
    return np.exp(-((times[None, :] / truth["scale"][:, None]) ** truth["shape"][:, None]))


# ---- methods: each fits and returns S(t | x) on a grid ------------------------------------------------


def fit_discrete_hgb(X, t, e, native: bool = True) -> SurvivalFn:
    model = DiscreteTimeSurvival(interval_edges=WEEKS, native_categorical=native, random_state=0).fit(X, t, e)
    return model.predict_survival


def _ordinal(X: pd.DataFrame) -> np.ndarray:
    out = X.copy()
    out["group"] = out["group"].map({g: i for i, g in enumerate(GROUP_LOG_SCALE)})
    return out.to_numpy(dtype=float)


def km(time: np.ndarray, event: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """Kaplan–Meier S(t) as a right-continuous step function."""
    uniq, inv = np.unique(time, return_inverse=True)
    d = np.bincount(inv, weights=event.astype(float))
    at_risk = len(time) - np.concatenate([[0], np.cumsum(np.bincount(inv))[:-1]])
    s = np.cumprod(1 - d / at_risk)
    return lambda q: np.concatenate([[1.0], s])[np.searchsorted(uniq, q, side="right")]


def fit_ipcw_forest(X, t, e) -> SurvivalFn:
    """Multi-output forest of 1{T_obs ≥ t_k}, divided by KM of censoring G(t_k-): valid only if C ⟂ X."""
    g = np.maximum(km(t, ~e)(WEEKS - 1e-9), 1e-12)  # left limits: follow-up ends exactly at the horizon
    forest = RandomForestRegressor(n_estimators=200, min_samples_leaf=20, max_features=0.5, n_jobs=2, random_state=0)
    forest.fit(_ordinal(X), (t[:, None] >= WEEKS[None, :]).astype(float))

    def survival(Xp: pd.DataFrame, times: np.ndarray) -> np.ndarray:
        s = np.minimum.accumulate(np.clip(forest.predict(_ordinal(Xp)) / g, 0, 1), axis=1)
        grid, s = np.concatenate([[0.0], WEEKS]), np.column_stack([np.ones(len(s)), s])
        k = np.clip(np.searchsorted(grid, times, side="right") - 1, 0, len(grid) - 2)
        frac = (times - grid[k]) / (grid[k + 1] - grid[k])
        return s[:, k] + frac * (s[:, k + 1] - s[:, k])

    return survival


def _lifelines_design(X: pd.DataFrame, fill: float) -> pd.DataFrame:
    out = pd.get_dummies(X, columns=["group"], drop_first=True, dtype=float).astype(float)
    out["x1_missing"] = out["x1"].isna().astype(float)
    out["x1"] = out["x1"].fillna(fill)
    return out


def fit_lifelines(fitter_cls, X, t, e) -> SurvivalFn:
    fill = float(X["x1"].median())
    df = _lifelines_design(X, fill).assign(T=t, E=e.astype(int))
    fitter = fitter_cls(penalizer=0.01).fit(df, duration_col="T", event_col="E")
    return lambda Xp, times: fitter.predict_survival_function(_lifelines_design(Xp, fill), times=times).T.to_numpy()


METHODS: dict[str, Callable[..., SurvivalFn]] = {
    "discrete-time hazard, HGB (chosen)": fit_discrete_hgb,
    "discrete-time hazard, HGB, ordinal codes": lambda X, t, e: fit_discrete_hgb(X, t, e, native=False),
    "IPCW multi-output random forest": fit_ipcw_forest,
    "Cox PH (lifelines)": lambda X, t, e: fit_lifelines(CoxPHFitter, X, t, e),
    "Weibull AFT (lifelines)": lambda X, t, e: fit_lifelines(WeibullAFTFitter, X, t, e),
}


# ---- metrics (censoring-aware; minimal, the full suite belongs to model_build.evaluate) ------------------


def integrated_brier_ipcw(s: np.ndarray, time: np.ndarray, event: np.ndarray, grid: np.ndarray) -> float:
    """Graf et al. 1999 Brier score with inverse-probability-of-censoring weights, averaged over `grid`."""
    g = km(time, ~event)
    g_at_t = np.maximum(g(time - 1e-9), 1e-12)  # G(T-)
    died = (time[:, None] <= grid[None, :]) & event[:, None]
    alive = time[:, None] > grid[None, :]
    brier = (s**2 * died / g_at_t[:, None] + (1 - s) ** 2 * alive / g(grid)[None, :]).mean(axis=0)
    return float(np.trapezoid(brier, grid) / (grid[-1] - grid[0]))


def calibration_error(p_event: np.ndarray, reference: np.ndarray) -> float:
    """Mean over deciles of predicted P(event by t) of |mean predicted − reference in that decile|."""
    decile = pd.qcut(p_event, 10, labels=False, duplicates="drop")
    frame = pd.DataFrame({"p": p_event, "ref": reference, "d": decile}).groupby("d").mean()
    return float((frame["p"] - frame["ref"]).abs().mean())


def calibration_error_km(p_event: np.ndarray, time: np.ndarray, event: np.ndarray, at: float) -> float:
    """As `calibration_error`, with each decile's observed P(event by `at`) from its Kaplan–Meier curve."""
    decile = pd.qcut(p_event, 10, labels=False, duplicates="drop")
    gaps = [
        abs(p_event[decile == k].mean() - (1 - km(time[decile == k], event[decile == k])(np.array([at]))[0]))
        for k in np.unique(decile)
    ]
    return float(np.mean(gaps))


def median_from_curve(s: np.ndarray) -> np.ndarray:
    """First day S ≤ 0.5 on the daily grid, capped at the horizon."""
    crossed = s <= 0.5
    return np.where(crossed.any(axis=1), DAYS[crossed.argmax(axis=1)], HORIZON)


def score(s_days: np.ndarray, X_truth: dict[str, np.ndarray]) -> dict[str, float]:
    """All metrics for one method's S on the daily grid over the test rows."""
    time_obs, event = X_truth["time"], X_truth["event"]
    true_s = true_survival(X_truth, DAYS)
    rmst = np.trapezoid(s_days, DAYS, axis=1)  # restricted mean survival time: the risk score for C
    on_ibs_grid = DAYS <= IBS_END
    cal = int(CAL_DAY)
    true_median = np.minimum(X_truth["scale"] * np.log(2) ** (1 / X_truth["shape"]), HORIZON)
    pred_median = median_from_curve(s_days)
    return {
        "C": concordance_index(time_obs, rmst, event),
        "IBS": integrated_brier_ipcw(s_days[:, on_ibs_grid], time_obs, event, DAYS[on_ibs_grid]),
        "cal12w truth": calibration_error(1 - s_days[:, cal], 1 - true_s[:, cal]),
        "cal12w KM": calibration_error_km(1 - s_days[:, cal], time_obs, event, CAL_DAY),
        "median MAE d": float(np.abs(pred_median - true_median).mean()),
        "median bias d": float((pred_median - true_median).mean()),
    }


def compare(n_train: int, n_test: int, seeds: list[int]) -> pd.DataFrame:
    rows = []
    for scenario in SCENARIOS:
        for seed in seeds:
            rng = np.random.default_rng(seed)
            X, tr = simulate(n_train, scenario, rng)
            Xt, tt = simulate(n_test, scenario, rng)
            key = {"scenario": scenario, "censored": 1 - tr["event"].mean()}
            rows.append({**key, "method": "oracle (true S)", **score(true_survival(tt, DAYS), tt)})
            for name, fit in METHODS.items():
                start = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    survival = fit(X, tr["time"], tr["event"])
                fit_s = time.perf_counter() - start
                s_days = survival(Xt, DAYS)
                rows.append({**key, "method": name, **score(s_days, tt), "fit s": fit_s})
    return pd.DataFrame(rows).groupby(["scenario", "method"], sort=False).mean()


# ---- Treelite parity for categoricals, and the cost at the target scale -------------------------------


def treelite_parity() -> pd.DataFrame:
    """Max |margin difference| sklearn vs TL2cgen: raw HGB with NaN in a categorical vs the learner's encoding."""
    import tl2cgen
    import treelite

    def compiled_margins(estimator, design: np.ndarray, folder: str) -> np.ndarray:
        lib = str(Path(folder) / f"m{id(estimator)}.so")
        tl2cgen.export_lib(treelite.sklearn.import_model(estimator), toolchain="gcc", libpath=lib, nthread=2)
        return tl2cgen.Predictor(lib).predict(tl2cgen.DMatrix(design, dtype="float64"), pred_margin=True).ravel()

    rng = np.random.default_rng(0)
    X, tr = simulate(4000, "heavy", rng)
    X.loc[rng.random(len(X)) < 0.1, "group"] = None
    Xq = X.iloc[:500].copy()
    Xq.loc[Xq.index[:25], "group"] = "unseen"
    model = DiscreteTimeSurvival(interval_edges=WEEKS, random_state=0).fit(X, tr["time"], tr["event"])
    raw = _ordinal(X)
    raw_y = tr["event"] & (tr["time"] <= CAL_DAY)
    raw_model = HistGradientBoostingClassifier(categorical_features=[6], random_state=0).fit(raw, raw_y)
    with tempfile.TemporaryDirectory() as folder:
        design = model.design_matrix(Xq, 11)
        ours = np.abs(compiled_margins(model.estimator_, design, folder) - model.hazard_margins(Xq)[:, 11]).max()
        raw_q = _ordinal(Xq)
        theirs = np.abs(compiled_margins(raw_model, raw_q, folder) - raw_model.decision_function(raw_q)).max()
    return pd.DataFrame(
        {"max |margin diff|": [theirs, ours]},
        index=["HGB native categorical, NaN in training", "DiscreteTimeSurvival encoding (missing level)"],
    )


def scale_cost(n: int, max_person_periods: int) -> dict[str, float]:
    """Fit cost on `n` rows × 40 features (35 numeric, 5 categorical), weekly intervals to 52 weeks."""
    rng = np.random.default_rng(0)
    X, tr = simulate(n, "heavy", rng)
    extra = pd.DataFrame(rng.normal(size=(n, 29)), columns=[f"z{i}" for i in range(29)])
    cats = pd.DataFrame({f"c{i}": rng.choice(list("abcdefgh"), n) for i in range(4)})
    X = pd.concat([X, extra, cats], axis=1)
    model = DiscreteTimeSurvival(interval_edges=WEEKS, max_person_periods=max_person_periods, random_state=0)
    start = time.perf_counter()
    model.fit(X, tr["time"], tr["event"])
    fit_s = time.perf_counter() - start
    start = time.perf_counter()
    model.predict_survival(X.iloc[:10_000], WEEKS)
    return {
        "rows": n,
        "features": X.shape[1],
        "person-periods before subsampling": int(np.minimum(np.ceil(tr["time"] / 7), 52).sum()),
        "person-periods trained": model.n_person_periods_,
        "boosting iterations": model.estimator_.n_iter_,
        "fit s": fit_s,
        "predict 10k rows × 52 weeks s": time.perf_counter() - start,
        "peak RSS GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
    }


def markdown(frame: pd.DataFrame, fmt: str) -> str:
    """A pipe table (the index becomes the leading columns), without a tabulate dependency."""
    flat = frame.reset_index()
    cells = [[f"{v:{fmt}}" if isinstance(v, float) else str(v) for v in row] for row in flat.to_numpy()]
    lines = [list(map(str, flat.columns)), ["---"] * flat.shape[1], *cells]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="one seed, smaller samples")
    parser.add_argument("--no-scale", action="store_true", help="skip the 500k-row cost run")
    args = parser.parse_args()
    n_train, n_test, seeds = (3000, 2000, [0]) if args.quick else (8000, 4000, [0, 1])
    pd.set_option("display.width", 200)
    table = compare(n_train, n_test, seeds)
    print(f"\n## Comparison (n_train={n_train}, n_test={n_test}, mean over seeds {seeds})\n")
    print(markdown(table, ".3f"))
    print("\n## Treelite/TL2cgen parity of categorical handling\n")
    print(markdown(treelite_parity(), ".2e"))
    if not args.no_scale:
        print("\n## Cost at scale\n")
        cost = scale_cost(500_000, 2_000_000)
        print(markdown(pd.Series(cost).to_frame("value"), ".1f"))


if __name__ == "__main__":
    main()
