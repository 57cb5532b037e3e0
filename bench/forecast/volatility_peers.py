"""The peers a hone volatility forecaster must beat: realized-variance targets on real commodity prices.

Series (real data only, never downloaded at run time):
  * gold, silver: GoldSilver (Debian r-cran-aer), $HONE_DATA_DIR/goldsilver.csv (default
    ~/.cache/hone/data), daily 1977-12-30 .. 2012-12-31; exchange holidays repeat the price (zero return).
  * wti: daily WTI spot (FRED DCOILWTICO) bundled with the PyPI package `arch` (arch/data/wti),
    1986-01-02 .. 2019-01-03; "." rows (holidays) dropped, so a return can span a holiday.

Protocol (reproduced by hone's C++ side; docs/forecasting.md states it with the same symbols):
  prices p[0..D-1]; log-returns r[j] = log(p[j+1] / p[j]), j = 0..D-2; window W (30, hone's default).
  Sample s (0-based) is the forecast origin after price day s+W: it knows r[0..t] with t = s+W-1
  (the window r[s..t] is what hone's model sees) and predicts, for horizon h,
      RV[s, h] = (1/h) * sum_{i=1..h} r[t+i]^2      (= r[s+W .. s+W+h-1], price days s+W .. s+W+h)
  Samples N = D - W - h ("per-horizon", the default: at h = 1 exactly hone's days - 1 - window, so the
  RV1 target is the square of hone's return target on the same samples) or N = D - W - max(h) with
  --common-samples (every horizon on the same samples, for a model with one head per horizon).
  Split in time order as hone's make_forecasting_data: n_train = N*70//100, n_val = N*15//100,
  n_test = N - n_train - n_val; train s in [0, n_train), val [n_train, n_train+n_val), test the rest.
  Everything fitted (HAR coefficients, GARCH parameters, the forecast floor) uses train only.

Forecasts, each a function of r[0..t] only (the tests perturb prices after t and check):
  naive      r[t]^2, the last realized daily variance (the "last value"; the ratios' denominator)
  naive-h    (1/h) sum_{i=0..h-1} r[t-i]^2, the last realized variance over h days (= naive at h = 1)
  roll22     (1/22) sum_{i=0..21} r[t-i]^2
  HAR        b0 + b1*RV1(t) + b2*RV5(t) + b3*RV22(t), RVk(t) = (1/k) sum_{i=0..k-1} r[t-i]^2 (Corsi 2009),
             ordinary least squares of RV[s, h] on train samples (normal equations)
  GARCH      arch_model(100*r, mean='Zero', vol='GARCH', p=1, q=1, dist='normal', rescale=False), fitted
             on r[0 .. n_train+W-1] (every return a training window or its first target sees, hone's
             normalization span), then rolled over all samples with the parameters fixed: the mean
             of the 1..h-step variance forecasts made at t, divided by 100^2.
  GARCH-c    the same with mean='Constant': forecast of E[r^2] = mu^2 + mean sigma^2.
  Every forecast is floored at f_min = 0.01 * mean(RV[s, h] over train) (a variance must be positive;
  the floor binds for naive on zero-return days, and for a negative HAR forecast); counts reported.

Metrics per split: RMSE, MAE, QLIKE = mean(y/f - log(y/f) - 1) over samples with y > 0 (y = 0 occurs
when every return in the horizon is zero; those samples are left out of QLIKE and its DM test, counted),
RMSE / naive RMSE with a paired moving-block bootstrap 95 % percentile interval (block max(20, 2h),
2000 resamples), and the Diebold-Mariano test of each method against naive and HAR on squared-error and
QLIKE loss: d = L(method) - L(benchmark), Newey-West (Bartlett) long-run variance with h-1 lags,
Harvey-Leybourne-Newbold correction, t(n-1) reference; negative statistic = method better.

Usage: python bench/forecast/volatility_peers.py [--json out.json] [--forecasts out.csv] [--horizons 1,5,22]
                                                 [--common-samples] [--series gold,silver,wti]
  --forecasts writes every sample's origin date, split, target and the six forecasts (the floored values
  that the metrics use), so a hone model's forecasts can be tested against the peers sample by sample.
"""
import argparse
import datetime as dt
import json
import math
import os
import platform
import sys
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from predictability import load_arch_csv, load_goldsilver  # noqa: E402  (same directory, same readers)

WINDOW = 30
HORIZONS = (1, 5, 22)
FLOOR_FRACTION = 0.01
GARCH_SCALE = 100.0
METHODS = ("naive", "naive-h", "roll22", "HAR", "GARCH", "GARCH-c")
BENCHMARKS = ("naive", "HAR")


# ----------------------------------------------------------------------------- samples and targets


def log_returns(prices):
    prices = np.asarray(prices, dtype=np.float64)
    if prices.ndim != 1 or not np.all(np.isfinite(prices)) or not np.all(prices > 0):
        raise ValueError("prices must be a 1-D array of finite positive numbers")
    return np.diff(np.log(prices))


def sample_count(days, window, span):
    """Samples whose window and whole target fit: origins t = s+W-1 with t+span <= D-2."""
    return days - window - span


def split_bounds(n):
    """hone's chronological 70/15/15 split (integer division, the remainder goes to test)."""
    n_train = n * 70 // 100
    n_val = n * 15 // 100
    return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}


def origins(n, window):
    """Index t of the last known return of each sample."""
    return np.arange(n) + window - 1


def trailing_mean_square(r, t, k):
    """(1/k) sum_{i=0..k-1} r[t-i]^2 for every origin t (needs t >= k-1): the past k days only."""
    if np.any(t < k - 1):
        raise ValueError(f"an origin has fewer than {k} past returns")
    windows = np.lib.stride_tricks.sliding_window_view(r * r, k)  # windows[j] = r[j .. j+k-1]^2
    return windows[t - k + 1].mean(axis=1)


def realized_variance_target(r, t, h):
    """RV = (1/h) sum_{i=1..h} r[t+i]^2: the next h days after the origin."""
    if np.any(t + h > len(r) - 1):
        raise ValueError(f"a target runs past the last return (horizon {h})")
    windows = np.lib.stride_tricks.sliding_window_view(r * r, h)
    return windows[t + 1].mean(axis=1)


# ----------------------------------------------------------------------------- peers


def har_features(r, t):
    return np.stack([np.ones(len(t)), trailing_mean_square(r, t, 1), trailing_mean_square(r, t, 5),
                     trailing_mean_square(r, t, 22)], axis=1)


def har_fit(x, y):
    """OLS through the normal equations (X'X) b = X'y; the tests check it against lstsq."""
    return np.linalg.solve(x.T @ x, x.T @ y)


def garch_forecasts(r, fit_end, horizon, mean="Zero"):
    """GARCH(1,1) fitted on r[0:fit_end] (scaled by 100), rolled over every origin with fixed params.

    Returns (mean variance of r[t+1..t+k] for k = 1..horizon as an array [len(r), horizon] in
    unscaled units, with row t the forecast made at t; the parameters in the optimizer's units).
    For mean='Constant' the forecast is of E[r^2] = mu^2 + sigma^2, the quantity the target measures.
    """
    from arch import arch_model

    model = arch_model(r * GARCH_SCALE, mean=mean, vol="GARCH", p=1, q=1, dist="normal", rescale=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence chatter; the result's flag is recorded instead
        fit = model.fit(last_obs=fit_end, disp="off", options={"maxiter": 500})
    forecast = fit.forecast(horizon=horizon, start=0, reindex=False)
    variance = np.asarray(forecast.variance, dtype=np.float64)  # row t: sigma^2 of r[t+1 .. t+horizon]
    mu = float(fit.params["mu"]) if mean == "Constant" else 0.0
    steps = np.arange(1, horizon + 1)
    mean_variance = (np.cumsum(variance, axis=1) / steps + mu * mu) / GARCH_SCALE**2
    params = {k: float(v) for k, v in fit.params.items()}
    params["converged"] = int(fit.convergence_flag) == 0
    params["persistence"] = params["alpha[1]"] + params["beta[1]"]
    return mean_variance, params


# ----------------------------------------------------------------------------- statistics


def qlike(y, f):
    """mean(y/f - log(y/f) - 1) over y > 0; 0 for a perfect forecast, heavy on under-prediction."""
    keep = y > 0
    q = y[keep] / f[keep]
    return float(np.mean(q - np.log(q) - 1.0))


def qlike_loss(y, f):
    q = y / f
    return q - np.log(q) - 1.0


def newey_west_variance(d, lags):
    """Long-run variance of the mean's numerator: gamma0 + 2 sum_k (1 - k/(lags+1)) gamma_k."""
    n = len(d)
    dc = d - d.mean()
    var = float(np.dot(dc, dc)) / n
    for k in range(1, lags + 1):
        var += 2.0 * (1.0 - k / (lags + 1.0)) * float(np.dot(dc[k:], dc[:-k])) / n
    return var


def diebold_mariano(loss_method, loss_benchmark, h, lags=None):
    """DM with the HLN correction. d = L(method) - L(benchmark); negative stat = method better.

    Returns stat, two-sided p, one-sided p for "method better", mean d, n, lags used.
    """
    from scipy import stats

    d = np.asarray(loss_method, dtype=np.float64) - np.asarray(loss_benchmark, dtype=np.float64)
    n = len(d)
    lags = h - 1 if lags is None else lags
    var = newey_west_variance(d, lags)
    if not var > 0:
        return {"stat": None, "p_two_sided": None, "p_method_better": None, "mean_d": float(d.mean()), "n": n,
                "lags": lags}
    dm = d.mean() / math.sqrt(var / n)
    hln = math.sqrt((n + 1 - 2 * h + h * (h - 1) / n) / n)
    stat = dm * hln
    return {"stat": float(stat), "p_two_sided": float(2 * stats.t.sf(abs(stat), n - 1)),
            "p_method_better": float(stats.t.cdf(stat, n - 1)), "mean_d": float(d.mean()), "n": n, "lags": lags}


def block_bootstrap_rmse_ratio(e_method, e_naive, resamples, block, rng):
    """Paired moving-block bootstrap of RMSE(method)/RMSE(naive): 95 % percentile interval."""
    n = len(e_method)
    block = min(block, n)
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    ratio = np.sqrt((e_method[idx] ** 2).sum(axis=1) / (e_naive[idx] ** 2).sum(axis=1))
    lo, hi = np.percentile(ratio, [2.5, 97.5])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------- one series, one horizon


def forecasts_for_horizon(r, window, h, span, max_horizon=None, garch_cache=None):
    """Every method's forecast for every sample, the targets and the split (no metrics).

    span: the horizon that sets the sample count (h, or the longest horizon with common samples);
    garch_cache: a dict shared across horizons so that one GARCH fit serves them all.
    """
    n = sample_count(len(r) + 1, window, span)
    if n < 100:
        raise ValueError(f"{len(r) + 1} days is too short for window {window} and horizon {span}")
    bounds = split_bounds(n)
    t = origins(n, window)
    y = realized_variance_target(r, t, h)
    n_train = bounds["train"][1]
    tr = slice(0, n_train)

    x = har_features(r, t)
    beta = har_fit(x[tr], y[tr])
    raw = {
        "naive": x[:, 1],
        "naive-h": trailing_mean_square(r, t, h),
        "roll22": x[:, 3],
        "HAR": x @ beta,
    }
    fit_end = n_train + window  # r[0 : n_train+W]: the train windows and the first train target day
    horizon = max(h, max_horizon or h)
    cache = {} if garch_cache is None else garch_cache
    garch = {}
    for name, mean in (("GARCH", "Zero"), ("GARCH-c", "Constant")):
        key = (mean, fit_end, horizon)
        if key not in cache:
            cache[key] = garch_forecasts(r, fit_end, horizon, mean)
        mean_variance, params = cache[key]
        raw[name] = mean_variance[t, h - 1]
        garch[name] = params
    floor = FLOOR_FRACTION * float(y[tr].mean())
    forecasts = {m: np.maximum(raw[m], floor) for m in METHODS}
    return {"n": n, "bounds": bounds, "t": t, "y": y, "raw": raw, "forecasts": forecasts, "floor": floor,
            "har": {"b0": beta[0], "b_day": beta[1], "b_week": beta[2], "b_month": beta[3]}, "garch": garch,
            "garch_fit_returns": fit_end}


def evaluate(result, h, resamples, rng, dm_lags=None):
    y, f = result["y"], result["forecasts"]
    block = max(20, 2 * h)
    out = {}
    for part in ("train", "val", "test"):
        a, b = result["bounds"][part]
        ys = y[a:b]
        err = {m: f[m][a:b] - ys for m in METHODS}
        naive_rmse = math.sqrt(float(np.mean(err["naive"] ** 2)))
        positive = ys > 0
        per = {}
        for m in METHODS:
            rmse = math.sqrt(float(np.mean(err[m] ** 2)))
            row = {"rmse": rmse, "mae": float(np.mean(np.abs(err[m]))), "qlike": qlike(ys, f[m][a:b]),
                   "rmse_ratio_naive": rmse / naive_rmse,
                   "floored": int(np.sum(result["raw"][m][a:b] < result["floor"]))}
            if part != "train":
                row["rmse_ratio_naive_ci95"] = block_bootstrap_rmse_ratio(err[m], err["naive"], resamples, block, rng)
                row["dm"] = {}
                for bench in BENCHMARKS:
                    if bench == m:
                        continue
                    se = diebold_mariano(err[m] ** 2, err[bench] ** 2, h, dm_lags)
                    ql = diebold_mariano(qlike_loss(ys[positive], f[m][a:b][positive]),
                                         qlike_loss(ys[positive], f[bench][a:b][positive]), h, dm_lags)
                    row["dm"][bench] = {"squared_error": se, "qlike": ql}
            per[m] = row
        out[part] = {"samples": b - a, "first_sample": a, "zero_targets": int(np.sum(~positive)),
                     "target_mean": float(ys.mean()), "bootstrap_block": block, "methods": per}
    return out


def study_series(name, dates, prices, window, horizons, common, resamples, rng, forecast_rows=None, dm_lags=None):
    r = log_returns(prices)
    span_common = max(horizons)
    per_h = {}
    cache = {}
    for h in horizons:
        res = forecasts_for_horizon(r, window, h, span_common if common else h, max(horizons), cache)
        metrics = evaluate(res, h, resamples, rng, dm_lags)
        spans = {}
        for part, (a, b) in res["bounds"].items():
            # origin price day s+W; target price days s+W+1 .. s+W+h (returns r[s+W .. s+W+h-1])
            spans[part] = {"first_origin": str(dates[a + window]), "last_origin": str(dates[b - 1 + window]),
                           "last_target_day": str(dates[b - 1 + window + h])}
        if forecast_rows is not None:
            split_of = np.searchsorted([res["bounds"]["val"][0], res["bounds"]["test"][0]], np.arange(res["n"]),
                                       side="right")
            for i in range(res["n"]):
                forecast_rows.append([name, h, i, ("train", "val", "test")[split_of[i]], str(dates[i + window]),
                                      repr(float(res["y"][i]))] + [repr(float(res["forecasts"][m][i])) for m in METHODS])
        per_h[str(h)] = {"samples": res["n"], "split": {k: list(v) for k, v in res["bounds"].items()},
                         "dates": spans, "forecast_floor": res["floor"], "har": res["har"],
                         "garch": res["garch"], "garch_fit_returns": res["garch_fit_returns"], "metrics": metrics}
    return {"days": len(prices), "first_day": str(dates[0]), "last_day": str(dates[-1]),
            "zero_returns": int(np.sum(r == 0)), "horizons": per_h}


# ----------------------------------------------------------------------------- data and report


def load_series(names):
    out = {}
    if {"gold", "silver"} & set(names):
        path, dates, gs = load_goldsilver()
        for i, n in enumerate(("gold", "silver")):
            if n in names:
                out[n] = {"source": path, "package": "r-cran-aer (GoldSilver)", "dates": dates, "prices": gs[:, i]}
    if "wti" in names:
        path, _, dates, wti, missing = load_arch_csv("wti/wti.csv.gz", "%m/%d/%Y")
        out["wti"] = {"source": path, "package": "arch (PyPI), wti/wti.csv.gz", "dates": dates,
                      "prices": wti[:, 0], "dropped_rows": missing}
    return {n: out[n] for n in names}


def versions():
    import arch
    import scipy

    return {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__,
            "arch": arch.__version__}


def fmt_dm(row, bench, loss):
    d = row.get("dm", {}).get(bench)
    if d is None or d[loss]["stat"] is None:
        return "-"
    return f"{d[loss]['stat']:+.2f} ({d[loss]['p_two_sided']:.3f})"


def print_tables(report):
    for name, s in report["series"].items():
        print(f"\n# {name}: {s['days']} days {s['first_day']} .. {s['last_day']}, {s['zero_returns']} zero returns")
        for h, res in s["horizons"].items():
            test = res["metrics"]["test"]
            val = res["metrics"]["val"]
            d = res["dates"]["test"]
            print(f"\n## {name} h={h}: samples {res['samples']} (train/val/test "
                  f"{res['metrics']['train']['samples']}/{val['samples']}/{test['samples']}), test origins "
                  f"{d['first_origin']} .. {d['last_origin']}, naive test RMSE {test['methods']['naive']['rmse']:.3e}, "
                  f"{test['zero_targets']} zero targets, floor {res['forecast_floor']:.2e}")
            print("| method | val RMSE/naive | test RMSE/naive [95% CI] | test MAE | test QLIKE | floored | "
                  "DM SE vs naive | DM QLIKE vs naive | DM SE vs HAR | DM QLIKE vs HAR |")
            print("| --- |" + " --- |" * 9)
            for m in METHODS:
                t, v = test["methods"][m], val["methods"][m]
                lo, hi = t["rmse_ratio_naive_ci95"]
                print(f"| {m} | {v['rmse_ratio_naive']:.3f} | {t['rmse_ratio_naive']:.3f} [{lo:.3f}, {hi:.3f}] | "
                      f"{t['mae']:.3e} | {t['qlike']:.3f} | {t['floored']} | {fmt_dm(t, 'naive', 'squared_error')} | "
                      f"{fmt_dm(t, 'naive', 'qlike')} | {fmt_dm(t, 'HAR', 'squared_error')} | "
                      f"{fmt_dm(t, 'HAR', 'qlike')} |")


def hone_bar(test):
    """The issue's target for a hone model: RMSE/naive <= 0.85 and as good as the better peer on RMSE or QLIKE."""
    ratio = min(test["HAR"]["rmse_ratio_naive"], test["GARCH"]["rmse_ratio_naive"])
    ql = min(test["HAR"]["qlike"], test["GARCH"]["qlike"])
    return {"rmse_ratio_naive_at_most": min(0.85, ratio),
            "or_rmse_ratio_naive_at_most_0.85_with_qlike_at_most": ql}


def print_summary(report):
    print("\n# summary, test split: RMSE / naive (naive = r_t^2), QLIKE, DM two-sided p")
    print("| series | h | test origins | naive RMSE | naive-h | roll22 | HAR | GARCH | QLIKE roll22 / HAR / GARCH | "
          "DM p vs naive, SE: HAR / GARCH | GARCH vs HAR DM stat (p), SE / QLIKE | a hone model needs |")
    print("| --- |" + " --- |" * 11)
    for name, s in report["series"].items():
        for h, res in s["horizons"].items():
            t = res["metrics"]["test"]["methods"]
            d = res["dates"]["test"]
            bar = hone_bar(t)
            ratios = " | ".join(f"{t[m]['rmse_ratio_naive']:.3f}" for m in ("naive-h", "roll22", "HAR", "GARCH"))
            ql = " / ".join(f"{t[m]['qlike']:.3f}" for m in ("roll22", "HAR", "GARCH"))
            p = " / ".join(f"{t[m]['dm']['naive']['squared_error']['p_two_sided']:.3f}" for m in ("HAR", "GARCH"))
            print(f"| {name} | {h} | {d['first_origin']} .. {d['last_origin']} | {t['naive']['rmse']:.2e} | {ratios} | "
                  f"{ql} | {p} | {fmt_dm(t['GARCH'], 'HAR', 'squared_error')} / {fmt_dm(t['GARCH'], 'HAR', 'qlike')} | "
                  f"RMSE/naive ≤ {bar['rmse_ratio_naive_at_most']:.3f}, or ≤ 0.85 with QLIKE ≤ "
                  f"{bar['or_rmse_ratio_naive_at_most_0.85_with_qlike_at_most']:.3f} |")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    ap.add_argument("--json", metavar="PATH", help="write every number, the protocol and versions here")
    ap.add_argument("--forecasts", metavar="PATH",
                    help="write every sample's target and forecasts as CSV (for hone's DM against the peers)")
    ap.add_argument("--series", default="gold,silver,wti", help="comma list of gold, silver, wti")
    ap.add_argument("--horizons", default=",".join(map(str, HORIZONS)), help="comma list of h (days)")
    ap.add_argument("--window", type=int, default=WINDOW, help="days of returns per sample (hone's --window)")
    ap.add_argument("--common-samples", action="store_true",
                    help="all horizons on the samples of the longest one (N = D - W - max h)")
    ap.add_argument("--bootstrap", type=int, default=2000, help="moving-block bootstrap resamples")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dm-lags", type=int, default=None,
                    help="Newey-West lags of the DM test for every horizon (default h-1), a robustness check")
    args = ap.parse_args(argv)
    horizons = tuple(int(h) for h in args.horizons.split(","))
    if args.window < 22 or min(horizons) < 1:
        ap.error("--window must be at least 22 (HAR's monthly term) and horizons at least 1")
    names = [n.strip() for n in args.series.split(",") if n.strip()]
    if not names or any(n not in ("gold", "silver", "wti") for n in names):
        ap.error("--series takes gold, silver, wti")
    rng = np.random.default_rng(args.seed)

    data = load_series(names)
    report = {
        "date": dt.date.today().isoformat(),
        "command": "python bench/forecast/volatility_peers.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "versions": versions(),
        "protocol": {
            "description": __doc__.split("Protocol")[1].split("Usage:")[0].strip(),
            "window": args.window, "horizons": list(horizons),
            "samples": "common: D - W - max(h)" if args.common_samples else "per-horizon: D - W - h",
            "split": "n_train = N*70//100, n_val = N*15//100, n_test = N - n_train - n_val, in time order",
            "forecast_floor": f"{FLOOR_FRACTION} * mean train target", "garch_scale": GARCH_SCALE,
            "bootstrap": {"resamples": args.bootstrap, "block": "max(20, 2h)", "seed": args.seed},
            "dm": "Newey-West (Bartlett) variance with " + ("h-1" if args.dm_lags is None else str(args.dm_lags))
                  + " lags, HLN correction, t(n-1); stat < 0: method better",
        },
        "series": {},
    }
    rows = [] if args.forecasts else None
    for name, d in data.items():
        s = study_series(name, d["dates"], d["prices"], args.window, horizons, args.common_samples, args.bootstrap, rng,
                         rows, args.dm_lags)
        s.update({"source": d["source"], "package": d["package"]})
        if "dropped_rows" in d:
            s["dropped_rows"] = d["dropped_rows"]
        for h, res in s["horizons"].items():
            res["hone_target"] = hone_bar(res["metrics"]["test"]["methods"])
        report["series"][name] = s
    print_tables(report)
    print_summary(report)
    if args.json:
        tmp = args.json + ".tmp"
        with open(tmp, "w") as f:
            json.dump(report, f, indent=1)
        os.replace(tmp, args.json)
    if args.forecasts:
        tmp = args.forecasts + ".tmp"
        with open(tmp, "w") as f:
            f.write(",".join(["series", "h", "sample", "split", "origin_date", "target"] + list(METHODS)) + "\n")
            f.writelines(",".join(map(str, row)) + "\n" for row in rows)
        os.replace(tmp, args.forecasts)
    return report


if __name__ == "__main__":
    main()
