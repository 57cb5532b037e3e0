"""bench/forecast/volatility_peers.py, the protocol hone's volatility forecasts are judged by, on real data:
the realized-variance target against a hand computation on GoldSilver's gold prices; no look-ahead (prices
perturbed after an origin leave every input, fit and forecast up to it unchanged, and do change the first
one after it); HAR's normal-equation fit against numpy.linalg.lstsq; GARCH rolled forward with fixed
parameters against the GARCH(1,1) recursion; the Diebold-Mariano statistic, QLIKE and the bootstrap on
constructed cases.

Usage: python volatility_peers_test.py /path/to/bench/forecast/volatility_peers.py   (run by ctest; needs
$HONE_DATA_DIR/goldsilver.csv from `make setup` and the PyPI package arch in the venv)
"""
import importlib.util
import math
import sys

import numpy as np

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def close(a, b, rel):
    return abs(a - b) <= rel * max(abs(a), abs(b))


def load_module(path):
    spec = importlib.util.spec_from_file_location("volatility_peers", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_target_by_hand(vp, dates, gold):
    # goldsilver.csv rows 30..36 (0-based): the price days of sample 0's first target, with W = 30.
    slice_ = [("1978-02-10", 103.15), ("1978-02-13", 104.19), ("1978-02-14", 103.92), ("1978-02-15", 105.56),
              ("1978-02-16", 105.87), ("1978-02-17", 105.14), ("1978-02-20", 105.14)]
    check([(str(dates[30 + i]), float(gold[30 + i])) for i in range(7)] == slice_,
          "goldsilver.csv rows 30..36 are the gold prices this test was written against")
    p = [v for _, v in slice_]
    r = [math.log(p[i + 1] / p[i]) for i in range(6)]
    rv5 = (r[0] ** 2 + r[1] ** 2 + r[2] ** 2 + r[3] ** 2 + r[4] ** 2) / 5
    check(close(rv5, 8.180459815457157e-05, 1e-12), f"hand RV5 over 1978-02-10..02-17 = {rv5:.10e}")

    returns = vp.log_returns(gold)
    t = vp.origins(vp.sample_count(len(gold), 30, 5), 30)
    y5 = vp.realized_variance_target(returns, t, 5)
    check(t[0] == 29, f"sample 0's origin is return 29 (price day 30 known), got {t[0]}")
    check(close(y5[0], rv5, 1e-12), f"sample 0, h=5: RV {y5[0]:.10e} == hand {rv5:.10e}")
    y1 = vp.realized_variance_target(returns, vp.origins(vp.sample_count(len(gold), 30, 1), 30), 1)
    check(close(y1[0], r[0] ** 2, 1e-12), f"sample 0, h=1: RV {y1[0]:.10e} == r^2 {r[0] ** 2:.10e}")
    check(y1[5] == 0.0, "sample 5, h=1: the 1978-02-20 holiday repeats the price, RV exactly 0")
    check(close(vp.trailing_mean_square(returns, np.array([34]), 5)[0], rv5, 1e-12),
          "trailing RV5 at origin 34 is the same five returns looking back")

    # hone's split: samples = days - 1 - window at h = 1 (src/data/commodity.cpp), 70/15/15 by integer division.
    n1 = vp.sample_count(len(gold), 30, 1)
    check(n1 == len(gold) - 1 - 30 == 9101, f"h=1 samples {n1} == hone's days - 1 - window (9101)")
    check(vp.split_bounds(n1) == {"train": (0, 6370), "val": (6370, 7735), "test": (7735, 9101)},
          f"split of 9101 samples {vp.split_bounds(n1)}")
    check(vp.sample_count(len(gold), 30, 22) == 9080, "h=22 samples 9080 (the last 21 origins lack a full target)")
    try:
        vp.realized_variance_target(returns, np.array([len(returns) - 5]), 5)
        check(False, "a target running past the last return raises")
    except ValueError:
        check(True, "a target running past the last return raises")


def perturbed(prices, first_changed, seed):
    """Prices from index first_changed on multiplied by random factors (so returns from first_changed-1 on change)."""
    rng = np.random.default_rng(seed)
    out = prices.copy()
    out[first_changed:] *= np.exp(rng.normal(0.0, 0.05, len(prices) - first_changed))
    return out


def test_no_look_ahead(vp, gold):
    window = 30
    r = vp.log_returns(gold)
    for h in (1, 5, 22):
        base = vp.forecasts_for_horizon(r, window, h, h)
        n_train = base["bounds"]["train"][1]
        s_star = base["bounds"]["test"][0] + 100  # an origin inside test
        day_known = s_star + window  # the last price sample s_star knows
        r2 = vp.log_returns(perturbed(gold, day_known + 1, seed=h))
        check(np.array_equal(r2[: day_known], r[: day_known]) and r2[day_known] != r[day_known],
              f"h={h}: perturbing prices after day {day_known} changes returns from r[{day_known}] on only")
        new = vp.forecasts_for_horizon(r2, window, h, h)
        keep = slice(0, s_star + 1)
        for m in vp.METHODS:
            same = np.allclose(new["forecasts"][m][keep], base["forecasts"][m][keep], rtol=1e-13, atol=0)
            moved = new["forecasts"][m][s_star + 1] != base["forecasts"][m][s_star + 1]
            check(same and moved,
                  f"h={h} {m}: forecasts at samples <= {s_star} unchanged; at {s_star + 1} changed ({moved})")
        check(np.array_equal(vp.har_features(r2, base["t"][keep]), vp.har_features(r, base["t"][keep])),
              f"h={h}: HAR inputs up to sample {s_star} unchanged")
        check(base["y"][s_star] != new["y"][s_star], f"h={h}: the target at sample {s_star} does see the change")

        # The fits' exact reach: HAR's train targets end at r[n_train+W+h-2], GARCH fits r[0 : n_train+W].
        edge = n_train + window + h - 1  # price index whose change first moves r[n_train+W+h-2]
        untouched = vp.forecasts_for_horizon(vp.log_returns(perturbed(gold, edge + 1, seed=7)), window, h, h)
        touched = vp.forecasts_for_horizon(vp.log_returns(perturbed(gold, edge, seed=7)), window, h, h)
        check(untouched["har"] == base["har"] and untouched["garch"] == base["garch"],
              f"h={h}: prices after day {edge} leave the HAR fit and GARCH parameters unchanged")
        check(touched["har"] != base["har"], f"h={h}: a change at day {edge} (last train target) moves the HAR fit")


def test_har_closed_form(vp, gold):
    r = vp.log_returns(gold)
    for h in (1, 5, 22):
        res = vp.forecasts_for_horizon(r, 30, h, h)
        n_train = res["bounds"]["train"][1]
        x = vp.har_features(r, res["t"][:n_train])
        y = res["y"][:n_train]
        ours = np.array([res["har"][k] for k in ("b0", "b_day", "b_week", "b_month")])
        lstsq = np.linalg.lstsq(x, y, rcond=None)[0]
        error = np.max(np.abs(ours - lstsq) / np.abs(lstsq))
        check(error < 1e-8, f"h={h}: HAR coefficients {np.array2string(ours, precision=4)} vs lstsq, rel {error:.1e}")
        check(np.max(np.abs(x.T @ (y - x @ ours))) < 1e-10 * np.max(np.abs(x.T @ y)),
              f"h={h}: HAR residuals orthogonal to the train regressors")
        check(np.all(ours[1:] > 0) and 0.5 < ours[1:].sum() < 1.0,
              f"h={h}: HAR slopes positive, sum {ours[1:].sum():.3f} in (0.5, 1): persistent, mean-reverting")
        all_x = vp.har_features(r, res["t"])
        check(np.allclose(res["raw"]["HAR"], all_x @ lstsq, rtol=1e-8, atol=0), f"h={h}: HAR forecasts == X @ lstsq")


def test_garch_recursion(vp, prices, name):
    r = vp.log_returns(prices)
    res = vp.forecasts_for_horizon(r, 30, 22, 22)
    fit_end = res["garch_fit_returns"]
    variance, params = vp.garch_forecasts(r, fit_end, 22, "Zero")
    omega, alpha, beta = params["omega"], params["alpha[1]"], params["beta[1]"]
    check(params["converged"] and 0 < alpha < 1 and 0 < beta < 1, f"{name}: GARCH(1,1) converged, {params}")
    # One-step forecasts in the optimizer's units; sigma2[t] forecasts r[t+1]. Roll the recursion by hand
    # over the test span from the first test origin, with the train-fitted parameters.
    start = res["t"][res["bounds"]["test"][0]]
    one_step = variance[:, 0] * vp.GARCH_SCALE**2
    sigma2 = one_step[start]
    worst = 0.0
    for t in range(start + 1, len(r)):
        sigma2 = omega + alpha * (vp.GARCH_SCALE * r[t]) ** 2 + beta * sigma2
        worst = max(worst, abs(sigma2 - one_step[t]) / one_step[t])
    check(worst < 1e-9, f"{name}: arch's rolled one-step variances == the fixed-parameter recursion (rel {worst:.1e})")
    # Multi-step: E sigma2[t+k] = omega + (alpha+beta) E sigma2[t+k-1]; the forecast is their mean / 100^2.
    t = start + 250
    steps, e = [one_step[t]], one_step[t]
    for _ in range(21):
        e = omega + (alpha + beta) * e
        steps.append(e)
    for h in (1, 5, 22):
        want = np.mean(steps[:h]) / vp.GARCH_SCALE**2
        check(close(variance[t, h - 1], want, 1e-10), f"{name}: h={h} GARCH mean variance at t={t} by hand")
    constant, params_c = vp.garch_forecasts(r, fit_end, 22, "Constant")
    check("mu" in params_c and np.all(constant > (params_c["mu"] / vp.GARCH_SCALE) ** 2),
          f"{name}: GARCH-c forecasts E[r^2] = mu^2 + sigma^2 > mu^2")


def test_statistics(vp):
    # d = [1,3,2,4,3,5], h=2: mean 3; centred [-2,0,-1,1,0,2]; gamma0 = 10/6, gamma1 = -1/6;
    # Bartlett with 1 lag: 10/6 + 2*(1/2)*(-1/6) = 1.5; DM = 3/sqrt(1.5/6) = 6;
    # HLN = sqrt((6+1-4+2/6)/6) = sqrt(5/9); statistic 2*sqrt(5).
    base = np.array([0.7, 0.1, 2.0, 0.3, 1.1, 0.4])
    d = np.array([1.0, 3.0, 2.0, 4.0, 3.0, 5.0])
    dm = vp.diebold_mariano(base + d, base, h=2)
    check(close(dm["stat"], 2 * math.sqrt(5), 1e-12), f"DM constructed h=2: {dm['stat']:.12f} == 2*sqrt(5)")
    check(dm["lags"] == 1 and dm["n"] == 6 and close(dm["mean_d"], 3.0, 1e-12), "DM uses h-1 = 1 lag, n = 6")
    check(dm["p_method_better"] > 0.99 and 0.005 < dm["p_two_sided"] < 0.01,
          f"DM: the method is worse (one-sided p {dm['p_method_better']:.4f}), two-sided p {dm['p_two_sided']:.4f}")
    flipped = vp.diebold_mariano(base, base + d, h=2)
    check(close(flipped["stat"], -dm["stat"], 1e-12) and close(flipped["p_two_sided"], dm["p_two_sided"], 1e-12),
          "DM is antisymmetric in its arguments")
    # d = [1,2,3,4], h=1: gamma0 = 1.25, DM = 2.5/sqrt(1.25/4) = sqrt(20), HLN sqrt(3/4): sqrt(15).
    dm1 = vp.diebold_mariano(np.array([1.0, 2, 3, 4]), np.zeros(4), h=1)
    check(close(dm1["stat"], math.sqrt(15), 1e-12), f"DM constructed h=1: {dm1['stat']:.12f} == sqrt(15)")

    check(close(vp.qlike(np.array([2.0, 1.0, 0.0]), np.array([1.0, 1.0, 1.0])), (1 - math.log(2)) / 2, 1e-12),
          "QLIKE: y=2,f=1 -> 1 - log 2; y=f -> 0; y=0 left out")
    rng = np.random.default_rng(0)
    e = rng.normal(size=500)
    lo, hi = vp.block_bootstrap_rmse_ratio(0.5 * e, e, 200, 20, rng)
    check(close(lo, 0.5, 1e-12) and close(hi, 0.5, 1e-12), "bootstrap: errors halved everywhere -> interval [0.5, 0.5]")
    lo, hi = vp.block_bootstrap_rmse_ratio(rng.normal(size=500), e, 500, 20, rng)
    check(lo < 1.0 < hi and hi - lo > 0.05, f"bootstrap: two equal-scale noises -> interval [{lo:.3f}, {hi:.3f}] holds 1")


def main() -> int:
    vp = load_module(sys.argv[1])
    _, dates, gs = vp.load_goldsilver()
    gold = gs[:, 0]
    test_target_by_hand(vp, dates, gold)
    test_statistics(vp)
    test_har_closed_form(vp, gold)
    test_no_look_ahead(vp, gold)
    test_garch_recursion(vp, gs[:, 1], "silver")
    if failures:
        print(f"{len(failures)} check(s) failed:\n  " + "\n  ".join(failures))
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
