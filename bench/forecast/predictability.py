"""Is there an honest, past-only signal that beats the naive last-value forecast one step ahead?

Reads real price series only:
  * GoldSilver (Debian r-cran-aer), the CSV that scripts/setup.sh exports to
    $HONE_DATA_DIR/goldsilver.csv (default ~/.cache/hone/data): daily, 1977-12-30 .. 2012-12-31,
    columns gold, silver (price indices; exchange holidays carried forward as a repeated price).
  * The PyPI package `arch` (arch/data/, located with importlib, never downloaded at run time):
      wti/wti.csv.gz     daily WTI spot (FRED DCOILWTICO), 1986-01-02 .. 2019-01-03, "." on holidays
      crude/crude.csv.gz MONTHLY averages of Brent and WTI (FRED), 1987-05 .. 2020-01
    arch ships no daily Brent, so a daily Brent/WTI lead-lag cannot be measured from it.

Protocol, the same as hone's make_forecasting_data (src/data/commodity.cpp): log-returns
r[j] = log(p[j+1]/p[j]); sample s sees r[s .. s+W-1] and predicts r[s+W], i.e. price p[s+W+1] from
p[s+W]; samples split 70/15/15 in time order. Every model is linear least squares (ridge optional)
on past-only features, fitted on train, chosen on validation, and scored once on test as RMSE in
price units over the naive forecast's RMSE (the ratio hone's BENCHMARKS table reports). The row
"oracle" picks the configuration by its *test* score: not a result, an upper bound showing how much
any model in the family could possibly gain.

Usage: python bench/forecast/predictability.py [--bootstrap 2000] [--block 20] [--seed 0]
"""
import argparse
import csv
import datetime as dt
import gzip
import importlib.util
import math
import os
import sys

import numpy as np

LAGS = (1, 2, 5, 10, 20)
RIDGE = (0.0, 1e2, 1e3, 1e4)


# ----------------------------------------------------------------------------- data


def hone_data_dir():
    if os.environ.get("HONE_DATA_DIR"):
        return os.environ["HONE_DATA_DIR"]
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "hone", "data")


def arch_data_dir():
    spec = importlib.util.find_spec("arch")
    if spec is None:
        sys.exit("the PyPI package `arch` is not installed in this environment (pip install arch)")
    return os.path.join(os.path.dirname(spec.origin), "data")


def load_goldsilver():
    path = os.path.join(hone_data_dir(), "goldsilver.csv")
    if not os.path.isfile(path):
        sys.exit(f"{path} not found: run `make setup` (it exports GoldSilver from r-cran-aer)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    dates = [dt.date.fromisoformat(r["date"]) for r in rows]
    prices = np.array([[float(r["gold"]), float(r["silver"])] for r in rows])
    return path, dates, prices


def load_arch_csv(relative, date_format):
    """arch's .csv.gz files: CRLF or BOM, "." for a missing value. Rows with any missing dropped."""
    path = os.path.join(arch_data_dir(), relative)
    with gzip.open(path, "rt", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    kept = [r for r in body if all(v.strip() not in ("", ".") for v in r[1:])]
    dates = [dt.datetime.strptime(r[0], date_format).date() for r in kept]
    prices = np.array([[float(v) for v in r[1:]] for r in kept])
    return path, header[1:], dates, prices, len(body) - len(kept)


# ----------------------------------------------------------------------------- features


class Series:
    """One target series (column 0 of `prices`) with optional auxiliary columns, hone's windows."""

    def __init__(self, name, dates, prices, window, daily):
        self.name, self.dates, self.window, self.daily = name, dates, window, daily
        self.prices = prices
        self.returns = np.diff(np.log(prices), axis=0)
        days = prices.shape[0]
        self.n = days - 1 - window
        self.n_train = self.n * 70 // 100
        self.n_val = self.n * 15 // 100
        s = np.arange(self.n)
        self.t = s + window - 1  # index of the last known return
        self.y = self.returns[s + window, 0]
        self.last = prices[s + window, 0]
        self.truth = prices[s + window + 1, 0]
        self.parts = {
            "train": slice(0, self.n_train),
            "val": slice(self.n_train, self.n_train + self.n_val),
            "test": slice(self.n_train + self.n_val, self.n),
        }

    def first_last_target_day(self, part):
        sl = self.parts[part]
        return self.dates[sl.start + self.window + 1], self.dates[sl.stop - 1 + self.window + 1]

    def lags(self, column, p):
        return np.stack([self.returns[self.t - i, column] for i in range(p)], axis=1)

    def rolling(self, k, fn):
        k = min(k, self.window)
        block = np.stack([self.returns[self.t - i, 0] for i in range(k)], axis=1)
        return fn(block)

    def volatility(self):
        sd = self.rolling(20, lambda b: b.std(axis=1))
        return np.stack([sd, np.abs(self.returns[self.t, 0]), self.returns[self.t, 0] / np.maximum(sd, 1e-12)], axis=1)

    def momentum(self):
        return np.stack([self.rolling(5, lambda b: b.sum(axis=1)), self.rolling(20, lambda b: b.sum(axis=1))], axis=1)

    def calendar(self):
        """Weekday of the forecast day and the calendar gap to it: both known in advance."""
        target_days = [self.dates[i + self.window + 1] for i in range(self.n)]
        last_days = [self.dates[i + self.window] for i in range(self.n)]
        weekday = np.array([d.weekday() for d in target_days])
        dummies = np.stack([(weekday == k).astype(float) for k in range(4)], axis=1)
        gap = np.array([(a - b).days for a, b in zip(target_days, last_days)], dtype=float)
        return np.concatenate([dummies, gap[:, None]], axis=1)


def candidates(series):
    """(family, configuration name, feature matrix) for every model tried; `mean` is drift only."""
    has_aux = series.prices.shape[1] > 1
    out = [("drift", "mean", np.zeros((series.n, 0)))]
    extra = {"vol": series.volatility(), "mom": series.momentum()}
    if series.daily:
        extra["dow"] = series.calendar()
    for p in (q for q in LAGS if q <= series.window):
        own = series.lags(0, p)
        out.append(("AR", f"ar{p}", own))
        if has_aux:
            aux = np.concatenate([series.lags(c, p) for c in range(1, series.prices.shape[1])], axis=1)
            out.append(("VAR", f"var{p}", np.concatenate([own, aux], axis=1)))
        for key, feats in extra.items():
            out.append((f"AR+{key}", f"ar{p}+{key}", np.concatenate([own, feats], axis=1)))
        everything = [own] + ([aux] if has_aux else []) + list(extra.values())
        out.append(("all", f"{'var' if has_aux else 'ar'}{p}+" + "+".join(extra), np.concatenate(everything, axis=1)))
    return out


def fit_predict(series, features, ridge):
    """Least squares on standardized features (statistics from train only), intercept unpenalized."""
    tr = series.parts["train"]
    mu = features[tr].mean(axis=0)
    sd = np.maximum(features[tr].std(axis=0), 1e-12)
    x = np.concatenate([np.ones((series.n, 1)), (features - mu) / sd], axis=1)
    # Ridge as extra rows; lstsq (minimum norm) because calendar features can be collinear
    # (in a weekday-only series the gap is 1 + 2 * Monday).
    penalty = math.sqrt(ridge) * np.eye(x.shape[1])[1:]
    a = np.concatenate([x[tr], penalty])
    b = np.concatenate([series.y[tr], np.zeros(len(penalty))])
    beta = np.linalg.lstsq(a, b, rcond=None)[0]
    return series.last * np.exp(x @ beta)


# ----------------------------------------------------------------------------- statistics


def rmse(e):
    return float(np.sqrt(np.mean(e**2)))


def chi2_sf_even(x, df):
    """Survival function of chi-square with an even number of degrees of freedom (closed form)."""
    k = df // 2
    return math.exp(-x / 2) * sum((x / 2) ** i / math.factorial(i) for i in range(k))


def acf(x, lag):
    x = x - x.mean()
    return float(np.dot(x[lag:], x[:-lag]) / np.dot(x, x))


def cross(target, lead, lag):
    """corr(target[t], lead[t - lag])."""
    a, b = target[lag:] - target[lag:].mean(), lead[:-lag] - lead[:-lag].mean()
    return float(np.dot(a, b) / math.sqrt(np.dot(a, a) * np.dot(b, b)))


def ljung_box_p(x, lags=10):
    n = len(x)
    q = n * (n + 2) * sum(acf(x, k) ** 2 / (n - k) for k in range(1, lags + 1))
    return chi2_sf_even(q, lags)


def diebold_mariano(e_model, e_naive, hac_lags=5):
    """DM statistic on squared-error differences, Newey-West variance; negative = model better."""
    d = e_model**2 - e_naive**2
    n = len(d)
    dc = d - d.mean()
    var = np.dot(dc, dc) / n
    for k in range(1, hac_lags + 1):
        var += 2 * (1 - k / (hac_lags + 1)) * np.dot(dc[k:], dc[:-k]) / n
    stat = d.mean() / math.sqrt(var / n)
    return stat, 0.5 * math.erfc(-stat / math.sqrt(2))  # one-sided p for "model better"


def block_bootstrap_ratio(e_model, e_naive, resamples, block, rng):
    n = len(e_model)
    starts = rng.integers(0, n - block + 1, size=(resamples, -(-n // block)))
    idx = (starts[:, :, None] + np.arange(block)).reshape(resamples, -1)[:, :n]
    ratio = np.sqrt((e_model[idx] ** 2).sum(axis=1) / (e_naive[idx] ** 2).sum(axis=1))
    return np.percentile(ratio, [2.5, 97.5])


# ----------------------------------------------------------------------------- study


def study(series, args, rng):
    parts = series.parts
    naive = series.truth - series.last
    naive_rmse = {k: rmse(naive[v]) for k, v in parts.items()}
    results = []
    for family, name, feats in candidates(series):
        for ridge in RIDGE if feats.shape[1] else (0.0,):
            err = series.truth - fit_predict(series, feats, ridge)
            ratio = {k: rmse(err[v]) / naive_rmse[k] for k, v in parts.items()}
            results.append({"family": family, "name": name + (f" ridge {ridge:g}" if ridge else ""), "ratio": ratio, "err": err})

    best = min(results, key=lambda r: r["ratio"]["val"])
    oracle = min(results, key=lambda r: r["ratio"]["test"])
    te = parts["test"]
    dm, p = diebold_mariano(best["err"][te], naive[te])
    lo, hi = block_bootstrap_ratio(best["err"][te], naive[te], args.bootstrap, args.block, rng)

    r_train = series.returns[: series.n_train + series.window, 0]
    r_test = series.returns[series.n_train + series.n_val + series.window :, 0]
    diag = {
        "acf_train": [acf(r_train, k) for k in range(1, 6)],
        "acf_test": [acf(r_test, k) for k in range(1, 6)],
        "band_train": 1.96 / math.sqrt(len(r_train)),
        "lb_train": ljung_box_p(r_train),
        "lb_test": ljung_box_p(r_test),
        "cross_train": [cross(r_train, series.returns[: len(r_train), c], 1) for c in range(1, series.prices.shape[1])],
        "cross_test": [cross(r_test, series.returns[-len(r_test) :, c], 1) for c in range(1, series.prices.shape[1])],
    }
    families = {}
    for r in results:
        if r["family"] not in families or r["ratio"]["val"] < families[r["family"]]["ratio"]["val"]:
            families[r["family"]] = r
    return {
        "naive": naive_rmse,
        "best": best,
        "oracle": oracle,
        "dm": (dm, p),
        "ci": (lo, hi),
        "diag": diag,
        "families": families,
        "tried": len(results),
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bootstrap", type=int, default=2000, help="moving-block bootstrap resamples")
    ap.add_argument("--block", type=int, default=20, help="bootstrap block length (steps)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    gs_path, gs_dates, gs = load_goldsilver()
    wti_path, _, wti_dates, wti, wti_missing = load_arch_csv("wti/wti.csv.gz", "%m/%d/%Y")
    cr_path, cr_cols, cr_dates, crude, _ = load_arch_csv("crude/crude.csv.gz", "%Y-%m-%d")
    b, w = cr_cols.index("Brent"), cr_cols.index("WTI")
    print(f"# sources\n  {gs_path}: {len(gs_dates)} days {gs_dates[0]} .. {gs_dates[-1]}")
    print(f"  {wti_path}: {len(wti_dates)} days {wti_dates[0]} .. {wti_dates[-1]} ({wti_missing} '.' rows dropped)")
    print(f"  {cr_path}: {len(cr_dates)} months {cr_dates[0]} .. {cr_dates[-1]} (monthly averages)")

    all_series = [
        Series("gold (+silver) daily", gs_dates, gs[:, [0, 1]], 30, True),
        Series("silver (+gold) daily", gs_dates, gs[:, [1, 0]], 30, True),
        Series("WTI daily (arch)", wti_dates, wti[:, [0]], 30, True),
        Series("Brent (+WTI) monthly avg", cr_dates, crude[:, [b, w]], 12, False),
        Series("WTI (+Brent) monthly avg", cr_dates, crude[:, [w, b]], 12, False),
    ]
    studies = [(s, study(s, args, rng)) for s in all_series]

    print("\n# diagnostics on log-returns of the target (train period | test period)")
    print("| series | acf lag 1..5, train (±band) | acf lag 1..5, test | Ljung-Box Q(10) p train / test | aux lag-1 → target, train / test |")
    print("| --- | --- | --- | --- | --- |")
    for s, r in studies:
        d = r["diag"]
        fmt = lambda v: " ".join(f"{x:+.3f}" for x in v)  # noqa: E731
        cross_txt = " ".join(f"{a:+.3f} / {b:+.3f}" for a, b in zip(d["cross_train"], d["cross_test"])) or "-"
        print(f"| {s.name} | {fmt(d['acf_train'])} (±{d['band_train']:.3f}) | {fmt(d['acf_test'])} | "
              f"{d['lb_train']:.3g} / {d['lb_test']:.3g} | {cross_txt} |")

    print("\n# chosen on validation, scored once on test (RMSE in price units / naive)")
    print("| series | samples train/val/test | test days | naive test RMSE | chosen (of N) | val ratio | **test ratio** | 95% block-bootstrap CI | DM stat (p, model better) | oracle on test |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for s, r in studies:
        first, last = s.first_last_target_day("test")
        bst, orc = r["best"], r["oracle"]
        print(f"| {s.name} | {s.n_train}/{s.n_val}/{s.n - s.n_train - s.n_val} | {first} .. {last} | "
              f"{r['naive']['test']:.4f} | {bst['name']} ({r['tried']}) | {bst['ratio']['val']:.4f} | "
              f"**{bst['ratio']['test']:.4f}** | {r['ci'][0]:.4f} .. {r['ci'][1]:.4f} | "
              f"{r['dm'][0]:+.2f} ({r['dm'][1]:.3f}) | {orc['ratio']['test']:.4f} ({orc['name']}) |")

    print("\n# per feature family: its configuration chosen on validation (val ratio → test ratio)")
    fams = ["drift", "AR", "VAR", "AR+dow", "AR+vol", "AR+mom", "all"]
    print("| series | " + " | ".join(fams) + " |")
    print("| --- |" + " --- |" * len(fams))
    for s, r in studies:
        cells = []
        for f in fams:
            x = r["families"].get(f)
            cells.append(f"{x['ratio']['val']:.4f} → {x['ratio']['test']:.4f}" if x else "-")
        print(f"| {s.name} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
