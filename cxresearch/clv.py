"""Customer lifetime value from a transaction log: RFM, buy-till-you-die models, CLV.

Models are fitted by maximum likelihood on the unique (frequency, recency, T) rows with their counts as
weights, so millions of customers fit in seconds:

* BG/NBD — Fader, Hardie & Lee (2005), "Counting your customers the easy way";
* Pareto/NBD — Schmittlein, Morrison & Colombo (1987), likelihood as in Fader & Hardie (2005), "A note on
  deriving the Pareto/NBD model" (Gaussian hypergeometric form);
* Gamma-Gamma spend — Fader, Hardie & Lee (2005), "RFM and CLV".

Standard errors come from the inverse numerical Hessian of the log-likelihood in log-parameter space,
mapped back by the delta method (Wald intervals are formed on the log scale, so they stay positive).
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from cxresearch import contracts
from cxresearch.io import Contract, Exclusion, Ledger, after, read_table

UNIT_DAYS = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12}
MODEL_KEYS = {"BG/NBD": "bgnbd", "Pareto/NBD": "pareto_nbd", "Gamma-Gamma": "gamma_gamma"}


# ---------------------------------------------------------------------------------------------
# data


def cdnow_csv(target: str | Path | None = None) -> Path:
    """The CDNOW 2,357-customer sample as a CSV (customer_id, date, amount), written once from the copy
    that ships inside the ``lifetimes`` package (no download)."""
    from cxresearch.paths import data_dir

    target = Path(target) if target else data_dir() / "cdnow" / "cdnow_sample.csv"
    if target.exists():
        return target
    spec = importlib.util.find_spec("lifetimes")  # locate only: importing lifetimes.datasets breaks
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("The CDNOW sample ships with the 'lifetimes' package; run `make install`.")
    raw = Path(spec.submodule_search_locations[0]) / "datasets" / "CDNOW_sample.txt"
    df = pd.read_csv(raw, sep=r"\s+", header=None, names=["master_id", "customer_id", "date", "cds", "amount"])
    df["timestamp"] = pd.to_datetime(df["date"].astype(str), format="%Y%m%d").dt.strftime("%Y-%m-%d")
    target.parent.mkdir(parents=True, exist_ok=True)
    df[["customer_id", "timestamp", "amount"]].to_csv(target, index=False, lineterminator="\n")
    return target


#: default periods of the built-in data sets
DATASETS = {
    "synthetic": {"calibration_end": "2023-06-30", "holdout_end": "2023-12-31"},
    "cdnow": {"calibration_end": "1997-09-30", "holdout_end": "1998-06-30"},
}


@dataclass
class ClvInputs:
    """Transactions and (for the synthetic world) customer attributes, survey and truth."""

    transactions: Transactions
    customers: pd.DataFrame | None
    survey: pd.DataFrame | None
    calibration_end: pd.Timestamp
    holdout_end: pd.Timestamp | None
    source: str
    truth: dict[str, Any] | None = None


def load_inputs(dataset: str = "synthetic", transactions_path: str | None = None, customers_path: str | None = None,
                survey_path: str | None = None, *, customer_col: str = "customer_id", date_col: str = "timestamp",
                amount_col: str = "amount", calibration_end: str | None = None, holdout_end: str | None = None,
                seed: int = 20240101, n_customers: int = 5000, effects: dict[str, Any] | None = None) -> ClvInputs:
    """Transactions from the user's file, the built-in CDNOW sample or the synthetic world.

    With the user's file and no ``calibration_end``, the whole log is calibration and there is no holdout.
    """
    from cxresearch.synth import resolve_inputs

    truth = customers = survey = None
    if transactions_path:
        path, source = Path(transactions_path), "the files given as parameters"
        extra = {k: Path(v) for k, v in (("customers", customers_path), ("survey_responses", survey_path)) if v}
        defaults: dict[str, str | None] = {"calibration_end": None, "holdout_end": None}
    elif dataset == "cdnow":
        path, source, extra = cdnow_csv(), "the CDNOW sample (2,357 customers, Fader, Hardie & Lee 2005)", {}
        defaults = DATASETS["cdnow"]
        customer_col, date_col, amount_col = "customer_id", "timestamp", "amount"
    elif dataset == "synthetic":
        paths, _, truth = resolve_inputs({"transactions": None, "customers": None, "survey_responses": None},
                                         seed, n_customers, effects)
        path, source = paths["transactions"], f"the built-in synthetic world ({n_customers:,} customers, seed {seed})"
        extra = {k: paths[k] for k in ("customers", "survey_responses")}
        defaults = DATASETS["synthetic"]
        customer_col, date_col, amount_col = "customer_id", "timestamp", "amount"
    else:
        raise ValueError(f"dataset must be 'synthetic' or 'cdnow', got {dataset!r}")
    cal = calibration_end or defaults["calibration_end"]
    hold = holdout_end or (defaults["holdout_end"] if not calibration_end else None)
    tx = load_transactions(path, customer_col, date_col, amount_col, observation_end=hold or cal)
    cal_ts = pd.Timestamp(cal) if cal else tx.daily["date"].max()
    if "customers" in extra:
        customers = read_table(extra["customers"], contracts.CUSTOMERS)
    if "survey_responses" in extra:
        survey = read_table(extra["survey_responses"], contracts.SURVEY_RESPONSES)
    return ClvInputs(tx, customers, survey, cal_ts, pd.Timestamp(hold) if hold else None, source, truth)


#: transactions for buy-till-you-die models: returns are excluded, zero-value purchases are purchases
PURCHASES = Contract(
    "transactions", contracts.TRANSACTIONS.columns,
    exclusions=(Exclusion("amount below zero (returns)", lambda d: d["amount"] < 0),),
)


@dataclass
class Transactions:
    """Purchases merged per customer and day, and what the clean-up did."""

    daily: pd.DataFrame  # customer_id, date, amount (one row per customer and day)
    notes: list[dict[str, Any]] = field(default_factory=list)


def load_transactions(path: str | Path, customer_col: str = "customer_id", date_col: str = "timestamp",
                      amount_col: str = "amount", observation_end: str | pd.Timestamp | None = None,
                      ledger: Ledger | None = None) -> Transactions:
    """Read a transaction log and merge purchases on the same day.

    Rules (each counted): amounts below zero (returns) and equal to zero are excluded; purchases after
    ``observation_end`` are excluded; purchases by one customer on the same day become one purchase
    with the summed amount.
    """
    rules: list[Exclusion] = [after("timestamp", observation_end)] if observation_end is not None else []
    df = read_table(path, PURCHASES,
                    columns={"customer_id": customer_col, "timestamp": date_col, "amount": amount_col},
                    exclusions=rules, ledger=ledger)
    df["date"] = df["timestamp"].dt.normalize()
    daily = merge_same_day(df)
    notes = [{"rule": "zero-value purchases kept: they count as purchases, not as spend", "rows": int((df["amount"] == 0).sum())},
             {"rule": "purchases by the same customer on the same day merged into one",
              "rows": int(len(df) - len(daily))}]
    return Transactions(daily, notes)


def merge_same_day(df: pd.DataFrame) -> pd.DataFrame:
    """One row per customer and day with the summed amount (sorted by customer, then date).

    Uses one integer key per (customer, day) and ``np.unique``: several times faster than a two-column
    groupby on large logs.
    """
    codes, names = pd.factorize(df["customer_id"], sort=True)
    day = df["date"].to_numpy("datetime64[D]").astype(np.int64)
    if len(day) == 0:
        return pd.DataFrame({"customer_id": [], "date": pd.to_datetime([]), "amount": []})
    first, span = day.min(), int(day.max() - day.min() + 1)
    key, inverse = np.unique(codes.astype(np.int64) * span + (day - first), return_inverse=True)
    amount = np.bincount(inverse, weights=df["amount"].to_numpy(float))
    return pd.DataFrame({"customer_id": np.asarray(names)[key // span],
                         "date": ((key % span) + first).astype("datetime64[D]").astype("datetime64[ns]"),
                         "amount": amount})


def rfm_summary(daily: pd.DataFrame, calibration_end: str | pd.Timestamp, holdout_end: str | pd.Timestamp | None = None,
                time_unit: str = "weeks") -> pd.DataFrame:
    """Frequency, recency, T, monetary value (and holdout purchases) per customer, vectorized.

    ``frequency`` = repeat purchase days in the calibration period, ``recency`` = time from the first to
    the last purchase, ``T`` = time from the first purchase to ``calibration_end``, ``monetary`` = mean
    value of the repeat purchases (0 without any), ``holdout`` = purchase days in (calibration_end,
    holdout_end]. Customers whose first purchase is after ``calibration_end`` are left out.
    """
    unit = UNIT_DAYS[time_unit]
    cal_end = pd.Timestamp(calibration_end)
    codes, names = pd.factorize(daily["customer_id"], sort=True)
    day = daily["date"].to_numpy("datetime64[D]").astype(np.int64)
    amount = daily["amount"].to_numpy(float)
    order = np.lexsort((day, codes))
    codes, day, amount = codes[order], day[order], amount[order]
    end_day = np.datetime64(cal_end.date(), "D").astype(np.int64)
    cal = day <= end_day
    c_codes, c_day, c_amount = codes[cal], day[cal], amount[cal]
    starts = np.flatnonzero(np.r_[True, c_codes[1:] != c_codes[:-1]]) if len(c_codes) else np.array([], int)
    ends = np.r_[starts[1:], len(c_codes)] - 1
    n_days = ends - starts + 1
    total = np.add.reduceat(c_amount, starts) if len(starts) else np.array([])
    first_day = c_day[starts]
    freq = n_days - 1
    idx = pd.Index(np.asarray(names)[c_codes[starts]], name="customer_id")
    out = pd.DataFrame({
        "frequency": freq,
        "recency": (c_day[ends] - first_day) / unit,
        "T": (end_day - first_day) / unit,
        "monetary": np.where(freq > 0, (total - c_amount[starts]) / np.maximum(freq, 1), 0.0),
        "revenue": total,
        "first_purchase": first_day.astype("datetime64[D]").astype("datetime64[ns]"),
    }, index=idx)
    if holdout_end is not None:
        hold_end = np.datetime64(pd.Timestamp(holdout_end).date(), "D").astype(np.int64)
        h = (day > end_day) & (day <= hold_end)
        pos = np.full(len(names), -1)
        pos[c_codes[starts]] = np.arange(len(starts))
        hp = pos[codes[h]]
        keep = hp >= 0  # holdout purchases of customers known in the calibration period
        out["holdout"] = np.bincount(hp[keep], minlength=len(out))
        out["holdout_revenue"] = np.bincount(hp[keep], weights=amount[h][keep], minlength=len(out))
    out.index.name = "customer_id"
    return out


def compress(summary: pd.DataFrame) -> pd.DataFrame:
    """Unique (frequency, recency, T) rows with their counts in ``weight``."""
    return summary.groupby(["frequency", "recency", "T"], sort=False).size().rename("weight").reset_index()


# ---------------------------------------------------------------------------------------------
# log-likelihoods (per row)


def bgnbd_ll(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, a, b = params
    a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4 = np.where(x > 0, np.log(a) - np.log(np.maximum(b + x - 1, 1e-300)) - (r + x) * np.log(alpha + tx), -np.inf)
    return a1 + a2 + np.logaddexp(a3, a4)


def _pnbd_log_a0_parts(params, x, tx, T):
    r, alpha, s, beta = params
    rsx = r + s + x
    if alpha >= beta:
        b1, base, diff = s + 1, alpha, alpha - beta
    else:
        b1, base, diff = r + x, beta, beta - alpha
    def part(t):  # noqa: E306
        return np.log(special.hyp2f1(rsx, b1, rsx + 1, diff / (base + t))) - rsx * np.log(base + t)
    return part(tx), part(T)


def pareto_nbd_ll(params: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> np.ndarray:
    r, alpha, s, beta = params
    head = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha) + s * np.log(beta)
    term1 = -(r + x) * np.log(alpha + T) - s * np.log(beta + T)
    p_tx, p_T = _pnbd_log_a0_parts(params, x, tx, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = p_tx + np.log1p(-np.exp(p_T - p_tx))
    term2 = np.log(s) - np.log(r + s + x) + log_a0
    term2 = np.where(tx < T, term2, -np.inf)
    return head + np.logaddexp(term1, term2)


def gamma_gamma_ll(params: np.ndarray, x: np.ndarray, m: np.ndarray) -> np.ndarray:
    p, q, v = params
    return (special.gammaln(p * x + q) - special.gammaln(p * x) - special.gammaln(q) + q * np.log(v)
            + (p * x - 1) * np.log(m) + p * x * np.log(x) - (p * x + q) * np.log(v + m * x))


# ---------------------------------------------------------------------------------------------
# fitting


@dataclass
class FitResult:
    """A fitted model: parameters, standard errors, log-likelihood, AIC."""

    model: str
    names: tuple[str, ...]
    params: np.ndarray
    se: np.ndarray
    loglik: float
    n: int

    @property
    def aic(self) -> float:
        return 2 * len(self.params) - 2 * self.loglik

    def as_dict(self) -> dict[str, float]:
        return dict(zip(self.names, self.params.tolist(), strict=True))

    def table(self) -> pd.DataFrame:
        z = 1.959964
        log_se = self.se / self.params
        return pd.DataFrame({"parameter": self.names, "estimate": self.params, "se": self.se,
                             "ci_low": self.params * np.exp(-z * log_se), "ci_high": self.params * np.exp(z * log_se)})


def _fit(model: str, names: tuple[str, ...], ll, data: tuple[np.ndarray, ...], weights: np.ndarray,
         start: np.ndarray) -> FitResult:
    from statsmodels.tools.numdiff import approx_hess3

    def neg(log_p: np.ndarray) -> float:
        val = -np.sum(weights * ll(np.exp(log_p), *data))
        return val if np.isfinite(val) else 1e300

    best = optimize.minimize(neg, np.log(start), method="L-BFGS-B", options={"maxiter": 2000, "ftol": 1e-15,
                                                                             "gtol": 1e-9})
    if not best.success:  # polish from where it stopped
        polished = optimize.minimize(neg, best.x, method="Nelder-Mead",
                                     options={"maxiter": 5000, "xatol": 1e-10, "fatol": 1e-10})
        best = polished if polished.fun <= best.fun else best
    log_p = best.x
    hess = approx_hess3(log_p, neg)
    try:
        cov_log = np.linalg.inv(hess)
        se_log = np.sqrt(np.clip(np.diag(cov_log), 0, None))
    except np.linalg.LinAlgError:
        se_log = np.full(len(log_p), np.nan)
    params = np.exp(log_p)
    return FitResult(model, names, params, params * se_log, -float(best.fun), int(weights.sum()))


def _bgnbd_value_grad(log_p: np.ndarray, x_idx: np.ndarray, xu: np.ndarray, tx: np.ndarray, T: np.ndarray,
                      w: np.ndarray) -> tuple[float, np.ndarray]:
    """Weighted BG/NBD log-likelihood and its gradient in log-parameter space.

    Terms that depend only on the purchase count x are computed once per distinct x (``xu``) and
    indexed by ``x_idx``; only the logs of (alpha + T) and (alpha + t_x) are per row.
    """
    r, alpha, a, b = np.exp(log_p)
    gl, dg = special.gammaln, special.digamma
    pos = xu > 0
    a1_x = gl(r + xu) - gl(r)
    a2_x = gl(a + b) + gl(b + xu) - gl(b) - gl(a + b + xu)
    with np.errstate(divide="ignore", invalid="ignore"):
        a4c_x = np.where(pos, np.log(a) - np.log(np.where(pos, b + xu - 1, 1.0)), -np.inf)
    rx = (r + xu)[x_idx]
    la_T, la_tx = np.log(alpha + T), np.log(alpha + tx)
    a3 = -rx * la_T
    a4 = a4c_x[x_idx] - rx * la_tx
    m = np.logaddexp(a3, a4)
    value = np.sum(w * (a1_x[x_idx] + r * np.log(alpha) + a2_x[x_idx] + m))
    w3 = np.exp(a3 - m)
    w4 = 1.0 - w3
    g_r = (dg(r + xu) - dg(r))[x_idx] + np.log(alpha) - w3 * la_T - w4 * la_tx
    g_alpha = r / alpha - rx * (w3 / (alpha + T) + w4 / (alpha + tx))
    g_a = (dg(a + b) - dg(a + b + xu))[x_idx] + w4 / a
    with np.errstate(divide="ignore", invalid="ignore"):
        inv_b = np.where(pos, 1.0 / np.where(pos, b + xu - 1, 1.0), 0.0)
    g_b = (dg(a + b) + dg(b + xu) - dg(b) - dg(a + b + xu))[x_idx] - w4 * inv_b[x_idx]
    grad = np.array([r * np.sum(w * g_r), alpha * np.sum(w * g_alpha), a * np.sum(w * g_a), b * np.sum(w * g_b)])
    return float(value), grad


def fit_bgnbd(summary: pd.DataFrame) -> FitResult:
    """BG/NBD by maximum likelihood on unique rows (weights = counts), with the analytic gradient."""
    c = compress(summary)
    xu, x_idx = np.unique(c["frequency"].to_numpy(float), return_inverse=True)
    args = (x_idx, xu, c["recency"].to_numpy(float), c["T"].to_numpy(float), c["weight"].to_numpy(float))

    def neg(log_p: np.ndarray) -> tuple[float, np.ndarray]:
        v, g = _bgnbd_value_grad(log_p, *args)
        return (-v, -g) if np.isfinite(v) else (1e300, np.zeros(4))

    start = np.log([0.5, max(1.0, summary["T"].mean() / 4), 1.0, 2.0])
    res = optimize.minimize(neg, start, jac=True, method="L-BFGS-B", options={"maxiter": 1000, "ftol": 1e-15,
                                                                                 "gtol": 1e-8})
    # Hessian by central differences of the analytic gradient (log-parameter space)
    h = 1e-5
    hess = np.array([(neg(res.x + h * e)[1] - neg(res.x - h * e)[1]) / (2 * h) for e in np.eye(4)])
    hess = (hess + hess.T) / 2
    try:
        se_log = np.sqrt(np.clip(np.diag(np.linalg.inv(hess)), 0, None))
    except np.linalg.LinAlgError:
        se_log = np.full(4, np.nan)
    params = np.exp(res.x)
    return FitResult("BG/NBD", ("r", "alpha", "a", "b"), params, params * se_log, -float(res.fun),
                     int(c["weight"].sum()))


def fit_pareto_nbd(summary: pd.DataFrame) -> FitResult:
    """Pareto/NBD by maximum likelihood on unique rows (weights = counts)."""
    c = compress(summary)
    t_scale = max(1.0, summary["T"].mean() / 4)
    return _fit("Pareto/NBD", ("r", "alpha", "s", "beta"), pareto_nbd_ll,
                (c["frequency"].to_numpy(float), c["recency"].to_numpy(float), c["T"].to_numpy(float)),
                c["weight"].to_numpy(float), np.array([0.5, t_scale, 0.5, t_scale]))


def fit_gamma_gamma(summary: pd.DataFrame) -> FitResult:
    """Gamma-Gamma spend model on repeat buyers (frequency > 0, monetary > 0)."""
    rep = summary[(summary["frequency"] > 0) & (summary["monetary"] > 0)]
    c = rep.groupby(["frequency", "monetary"], sort=False).size().rename("weight").reset_index()
    mean = float(rep["monetary"].mean())
    return _fit("Gamma-Gamma", ("p", "q", "v"), gamma_gamma_ll,
                (c["frequency"].to_numpy(float), c["monetary"].to_numpy(float)), c["weight"].to_numpy(float),
                np.array([2.0, 3.0, mean]))


# ---------------------------------------------------------------------------------------------
# predictions


def bgnbd_expected(params, t: np.ndarray | float) -> np.ndarray:
    """Unconditional expected repeat purchases of a new customer by time t (BG/NBD)."""
    r, alpha, a, b = params
    t = np.asarray(t, float)
    return (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + t)) ** r * special.hyp2f1(r, b, a + b - 1, t / (alpha + t)))


def pareto_nbd_expected(params, t: np.ndarray | float) -> np.ndarray:
    """Unconditional expected repeat purchases of a new customer by time t (Pareto/NBD)."""
    r, alpha, s, beta = params
    t = np.asarray(t, float)
    if abs(s - 1) < 1e-9:
        return r * beta / alpha * np.log1p(t / beta)
    return r * beta / (alpha * (s - 1)) * (1 - (beta / (beta + t)) ** (s - 1))


def p_alive(model: str, params, x, tx, T) -> np.ndarray:
    """Probability that a customer with history (x, t_x, T) is still active."""
    x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
    if model == "BG/NBD":
        r, alpha, a, b = params
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        return 1 / (1 + ratio)
    r, alpha, s, beta = params
    p_tx, p_T = _pnbd_log_a0_parts(params, x, tx, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_a0 = p_tx + np.log1p(-np.exp(p_T - p_tx))
        log_ratio = np.log(s) - np.log(r + s + x) + (r + x) * np.log(alpha + T) + s * np.log(beta + T) + log_a0
    log_ratio = np.where(tx < T, log_ratio, -np.inf)
    return 1 / (1 + np.exp(log_ratio))


def conditional_expected(model: str, params, t, x, tx, T) -> np.ndarray:
    """Expected purchases in (T, T + t] given the history (x, t_x, T)."""
    x, tx, T = (np.asarray(v, float) for v in (x, tx, T))
    t = np.asarray(t, float)
    if model == "BG/NBD":
        r, alpha, a, b = params
        hyp = special.hyp2f1(r + x, b + x, a + b + x - 1, t / (alpha + T + t))
        num = (a + b + x - 1) / (a - 1) * (1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp)
        with np.errstate(divide="ignore", invalid="ignore"):
            den = 1 + np.where(x > 0, a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x), 0.0)
        return num / den
    r, alpha, s, beta = params
    if abs(s - 1) < 1e-9:
        core = (r + x) * (beta + T) / (alpha + T) * np.log1p(t / (beta + T))
    else:
        core = (r + x) * (beta + T) / ((alpha + T) * (s - 1)) * (1 - ((beta + T) / (beta + T + t)) ** (s - 1))
    return core * p_alive(model, params, x, tx, T)


def expected_spend(params, x, m) -> np.ndarray:
    """Gamma-Gamma expected average purchase value given x repeat purchases averaging m (x = 0: mean)."""
    p, q, v = params
    x, m = np.asarray(x, float), np.asarray(m, float)
    return p * (v + x * m) / (p * x + q - 1)


def clv(model: str, params, gg_params, summary: pd.DataFrame, horizon: float, annual_discount: float,
        margin: float, time_unit: str = "weeks") -> pd.DataFrame:
    """Discounted value of each customer's purchases over the next ``horizon`` time units.

    Expected purchases per period come from differences of the conditional expectation, each discounted
    at the period rate implied by ``annual_discount``; value = purchases × expected spend × margin.
    Computed on unique (x, t_x, T) rows, then mapped back to customers.
    """
    c = compress(summary)
    periods = np.arange(1, int(math.ceil(horizon)) + 1, dtype=float)
    periods[-1] = horizon
    per_year = 365.25 / UNIT_DAYS[time_unit]
    disc = (1 + annual_discount) ** (-periods / per_year)
    x, tx, T = (c[k].to_numpy(float)[:, None] for k in ("frequency", "recency", "T"))
    cum = conditional_expected(model, params, periods[None, :], x, tx, T)
    step = np.diff(np.concatenate([np.zeros((len(c), 1)), cum], axis=1), axis=1)
    c["expected_purchases"] = cum[:, -1]
    c["discounted_purchases"] = step @ disc
    c["p_alive"] = p_alive(model, params, c["frequency"], c["recency"], c["T"])
    out = summary.reset_index().merge(c.drop(columns="weight"), on=["frequency", "recency", "T"], how="left")
    out["expected_spend"] = expected_spend(gg_params, out["frequency"], out["monetary"])
    out["clv"] = out["discounted_purchases"] * out["expected_spend"] * margin
    return out.set_index("customer_id")


def top_share(values: pd.Series, share: float) -> float:
    """Share of the total held by the top ``share`` of customers."""
    v = np.sort(values.to_numpy(float))[::-1]
    k = max(1, int(round(share * len(v))))
    return float(v[:k].sum() / v.sum()) if v.sum() > 0 else float("nan")


def bootstrap_top_share(values: pd.Series, share: float, n_boot: int = 500, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap 95% interval of :func:`top_share`."""
    rng = np.random.default_rng(seed)
    v = values.to_numpy(float)
    k = max(1, int(round(share * len(v))))
    draws = []
    for _ in range(n_boot):
        s = np.sort(rng.choice(v, len(v)))[::-1]
        draws.append(s[:k].sum() / s.sum())
    return float(np.quantile(draws, 0.025)), float(np.quantile(draws, 0.975))


# ---------------------------------------------------------------------------------------------
# holdout diagnostics, RFM segments, checks


def tracking(model: str, params, summary: pd.DataFrame, daily: pd.DataFrame, calibration_end, holdout_end,
             time_unit: str = "weeks") -> pd.DataFrame:
    """Repeat purchases per period, actual vs model, from the first purchase date to the holdout end."""
    unit = UNIT_DAYS[time_unit]
    start = summary["first_purchase"].min()
    end = pd.Timestamp(holdout_end)
    edges = pd.date_range(start, end + pd.Timedelta(days=unit), freq=pd.Timedelta(days=unit))
    first = summary["first_purchase"]
    d = daily[daily["customer_id"].isin(summary.index)]
    d = d[d["date"] > d["customer_id"].map(first)]  # repeat purchases only
    actual = np.histogram(d["date"].to_numpy("datetime64[ns]").astype("int64"),
                          bins=edges.to_numpy("datetime64[ns]").astype("int64"))[0]
    fn = bgnbd_expected if model == "BG/NBD" else pareto_nbd_expected
    cohorts = first.value_counts()
    cum = np.zeros(len(edges))
    for day, n in cohorts.items():
        age = np.clip((edges - day).days / unit, 0, None)
        cum += n * fn(params, age.to_numpy(float))
    predicted = np.diff(cum)
    out = pd.DataFrame({"period_start": edges[:-1], "actual": actual, "predicted": predicted})
    out["actual_cum"] = out["actual"].cumsum()
    out["predicted_cum"] = out["predicted"].cumsum()
    out["holdout"] = out["period_start"] > pd.Timestamp(calibration_end)
    return out


def conditional_expectations(model: str, params, summary: pd.DataFrame, holdout_length: float,
                             max_frequency: int = 7) -> pd.DataFrame:
    """Mean holdout purchases by calibration frequency: actual vs model (``7+`` pools the tail)."""
    pred = conditional_expected(model, params, holdout_length, summary["frequency"], summary["recency"], summary["T"])
    f = summary["frequency"].clip(upper=max_frequency)
    g = pd.DataFrame({"f": f, "actual": summary["holdout"], "predicted": pred}).groupby("f")
    out = g.agg(customers=("actual", "size"), actual=("actual", "mean"), predicted=("predicted", "mean")).reset_index()
    out["calibration purchases"] = out["f"].astype(int).astype(str).where(out["f"] < max_frequency, f"{max_frequency}+")
    return out[["calibration purchases", "customers", "actual", "predicted"]]


RFM_SEGMENTS = (  # first match wins: (name, R range, F range)
    ("champions", (4, 5), (4, 5)),
    ("loyal", (3, 5), (3, 5)),
    ("new customers", (5, 5), (1, 1)),
    ("potential loyalists", (4, 5), (1, 3)),
    ("can't lose them", (1, 1), (5, 5)),
    ("at risk", (1, 2), (3, 5)),
    ("need attention", (3, 3), (1, 2)),
    ("hibernating", (1, 2), (1, 2)),
)


def _score(values: pd.Series, higher_is_better: bool = True) -> pd.Series:
    """Quintile score 1-5 from average ranks (ties share a score)."""
    pct = values.rank(method="average", pct=True, ascending=higher_is_better)
    return np.ceil(pct * 5).clip(1, 5).astype(int)


def rfm_segments(summary: pd.DataFrame) -> pd.DataFrame:
    """R, F, M quintile scores and a named segment per customer."""
    out = pd.DataFrame(index=summary.index)
    out["R"] = _score(-(summary["T"] - summary["recency"]))  # recent purchase = high R
    out["F"] = _score(summary["frequency"].astype(float))
    out["M"] = _score(summary["revenue"] / (summary["frequency"] + 1))
    seg = pd.Series("other", index=summary.index)
    for name, (r0, r1), (f0, f1) in RFM_SEGMENTS[::-1]:  # reversed so the first rule wins
        hit = out["R"].between(r0, r1) & out["F"].between(f0, f1)
        seg[hit] = name
    out["segment"] = seg
    return out


def segment_table(segments: pd.DataFrame, value: pd.Series, min_n: int = 5) -> pd.DataFrame:
    """Customers and share of value per named segment (segments under ``min_n`` suppressed)."""
    g = pd.DataFrame({"segment": segments["segment"], "value": value}).groupby("segment")
    out = g.agg(customers=("value", "size"), value=("value", "sum")).reset_index()
    out["share of customers"] = out["customers"] / out["customers"].sum()
    out["share of value"] = out["value"] / out["value"].sum()
    out = out[out["customers"] >= min_n]
    return out.sort_values("share of value", ascending=False).reset_index(drop=True)


def frequency_spend_correlation(summary: pd.DataFrame) -> dict[str, float]:
    """Pearson correlation of frequency and average spend among repeat buyers (Fisher-z 95% CI)."""
    rep = summary[summary["frequency"] > 0]
    n = len(rep)
    if n < 4:
        return {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan, "p": math.nan, "n": n}
    r, p = stats.pearsonr(rep["frequency"], rep["monetary"])
    z, se = np.arctanh(r), 1 / math.sqrt(n - 3)
    return {"estimate": float(r), "ci_low": float(np.tanh(z - 1.959964 * se)),
            "ci_high": float(np.tanh(z + 1.959964 * se)), "p": float(p), "n": n}


def satisfaction_gap(values: pd.DataFrame, survey: pd.DataFrame, item: str, threshold: float,
                     columns: tuple[str, ...] = ("clv", "expected_purchases")) -> pd.DataFrame:
    """Mean of ``columns`` for satisfied (``item`` ≥ threshold) vs other linked customers, Welch 95% CI.

    A customer's satisfaction is the mean of their answers to ``item`` across waves.
    """
    sat = survey.groupby("customer_id")[item].mean()
    linked = values.join(sat.rename("_sat"), how="inner")
    happy = linked["_sat"] >= threshold
    rows = []
    for c in columns:
        a, b = linked.loc[happy, c], linked.loc[~happy, c]
        if len(a) < 2 or len(b) < 2:
            continue
        res = stats.ttest_ind(a, b, equal_var=False)
        ci = res.confidence_interval(0.95)
        rows.append({"measure": c, "satisfied": float(a.mean()), "others": float(b.mean()),
                     "n_satisfied": len(a), "n_others": len(b), "difference": float(a.mean() - b.mean()),
                     "ci_low": float(ci.low), "ci_high": float(ci.high), "p": float(res.pvalue)})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------
# plots


def plot_tracking(track: pd.DataFrame, model: str, cumulative: bool = True, ax: plt.Axes | None = None) -> plt.Axes:
    """Actual vs model repeat purchases per period (or cumulative); the holdout is shaded."""
    ax = ax or plt.subplots(figsize=(10, 4))[1]
    a, p = ("actual_cum", "predicted_cum") if cumulative else ("actual", "predicted")
    ax.plot(track["period_start"], track[a], color="#1f4e79", lw=2, label="actual")
    ax.plot(track["period_start"], track[p], color="#c0504d", lw=2, ls="--", label=model)
    hold = track[track["holdout"]]
    if len(hold):
        ax.axvspan(hold["period_start"].min(), hold["period_start"].max(), color="grey", alpha=0.12, label="holdout")
    ax.set_ylabel("repeat purchases" + (" (cumulative)" if cumulative else " per period"))
    ax.set_title(("Cumulative" if cumulative else "Weekly") + " repeat purchases: actual vs model")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_conditional(ce: pd.DataFrame, model: str, ax: plt.Axes | None = None) -> plt.Axes:
    """Holdout purchases by calibration purchases: actual vs model."""
    ax = ax or plt.subplots(figsize=(7, 4))[1]
    x = np.arange(len(ce))
    ax.plot(x, ce["actual"], "o-", color="#1f4e79", label="actual")
    ax.plot(x, ce["predicted"], "s--", color="#c0504d", label=model)
    ax.set_xticks(x, ce["calibration purchases"])
    ax.set_xlabel("repeat purchases in the calibration period")
    ax.set_ylabel("mean purchases in the holdout")
    ax.set_title("Do customers who bought more keep buying more?")
    ax.legend(frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_p_alive_matrix(model: str, params, T: float, max_frequency: int = 20, ax: plt.Axes | None = None) -> plt.Axes:
    """P(alive) for every (recency, frequency) at tenure T."""
    ax = ax or plt.subplots(figsize=(7, 5))[1]
    rec = np.linspace(0, T, 60)
    freq = np.arange(0, max_frequency + 1)
    f, r = np.meshgrid(freq, rec, indexing="ij")
    pa = p_alive(model, params, f, np.where(f > 0, r, 0), np.full_like(r, T))
    im = ax.imshow(pa, origin="lower", aspect="auto", extent=(0, T, -0.5, max_frequency + 0.5), cmap="RdYlGn",
                   vmin=0, vmax=1)
    ax.figure.colorbar(im, ax=ax, label="probability still active")
    ax.set_xlabel("recency (time from first to last purchase)")
    ax.set_ylabel("repeat purchases")
    ax.set_title(f"Who is still active? ({model}, tenure {T:.0f})")
    return ax


def plot_segments(table: pd.DataFrame, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of customers vs share of value per RFM segment."""
    ax = ax or plt.subplots(figsize=(8, 0.45 * len(table) + 1.2))[1]
    y = np.arange(len(table))[::-1]
    ax.barh(y + 0.2, table["share of customers"] * 100, height=0.4, color="#9bb7d4", label="share of customers")
    ax.barh(y - 0.2, table["share of value"] * 100, height=0.4, color="#1f4e79", label="share of value")
    ax.set_yticks(y, table["segment"])
    ax.set_xlabel("%")
    ax.set_title("RFM segments: how many customers, how much value")
    ax.legend(frameon=False)
    ax.grid(axis="x", alpha=0.3)
    return ax


def plot_lorenz(values: pd.Series, ax: plt.Axes | None = None) -> plt.Axes:
    """Share of total value held by the top x% of customers."""
    ax = ax or plt.subplots(figsize=(5.5, 5))[1]
    v = np.sort(values.to_numpy(float))[::-1]
    cum = np.concatenate([[0], np.cumsum(v) / v.sum()])
    share = np.linspace(0, 1, len(cum))
    ax.plot(share * 100, cum * 100, color="#1f4e79", lw=2)
    ax.plot([0, 100], [0, 100], color="grey", ls="--", lw=1)
    for s in (0.1, 0.2):
        k = int(round(s * len(v)))
        ax.scatter([s * 100], [cum[k] * 100], color="#c0504d", zorder=3)
        ax.annotate(f"top {s:.0%}: {cum[k]:.0%} of value", (s * 100, cum[k] * 100), xytext=(8, -12),
                    textcoords="offset points", fontsize=9)
    ax.set_xlabel("% of customers (most valuable first)")
    ax.set_ylabel("% of total lifetime value")
    ax.set_title("How concentrated is customer value?")
    ax.grid(alpha=0.3)
    return ax
