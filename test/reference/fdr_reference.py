"""Reference q-values for server/engine/fdr.ts.

statsmodels is not installed here, so this reimplements
`statsmodels.stats.multitest.multipletests(p, method='fdr_bh')` line by line in numpy
(statsmodels 0.14, `fdrcorrection(..., is_sorted=False)`), with NaN p-values dropped from
the family as `fdr.ts` documents. Run with /usr/bin/python3 from the repo root:

    /usr/bin/python3 test/reference/fdr_reference.py > test/reference/fdr_reference.json
"""
import json
import numpy as np


def fdr_bh(pvals, alpha=0.05):
    pvals = np.asarray(pvals, dtype=float)
    out_q = np.full(pvals.shape, np.nan)
    out_r = np.zeros(pvals.shape, dtype=bool)
    ok = ~np.isnan(pvals)
    p = pvals[ok]
    if p.size == 0:
        return out_q, out_r
    # --- statsmodels fdrcorrection, method 'indep' ---
    order = np.argsort(p)
    ps = np.take(p, order)
    nobs = len(ps)
    ecdffactor = np.arange(1, nobs + 1) / float(nobs)
    reject = ps <= ecdffactor * alpha
    if reject.any():
        rejectmax = max(np.nonzero(reject)[0])
        reject[:rejectmax] = True
    corrected_raw = ps / ecdffactor
    corrected = np.minimum.accumulate(corrected_raw[::-1])[::-1]
    corrected[corrected > 1] = 1
    q = np.empty_like(corrected)
    q[order] = corrected
    r = np.empty_like(reject)
    r[order] = reject
    # ---
    out_q[ok] = q
    out_r[ok] = r
    return out_q, out_r


def case(name, p, alpha=0.05):
    q, r = fdr_bh(p, alpha)
    enc = lambda a: [None if np.isnan(x) else float(x) for x in a]
    return {"name": name, "alpha": alpha, "p": enc(np.asarray(p, float)), "q": enc(q),
            "reject": [bool(x) for x in r]}


rng = np.random.default_rng(20261126)
uniform = rng.uniform(size=200)
mixed = np.concatenate([rng.uniform(0, 1e-3, size=30), rng.uniform(size=170)])
rng.shuffle(mixed)
with_nan = rng.uniform(0, 0.2, size=40)
with_nan[[3, 7, 19, 33]] = np.nan
ties = np.array([0.01, 0.02, 0.02, 0.02, 0.04, 0.5, 0.01, 1.0, 0.0, 0.03])
cases = [
    case("uniform200", uniform),
    case("mixed200", mixed),
    case("mixed200_alpha0.1", mixed, 0.1),
    case("with_nan40", with_nan),
    case("ties10", ties),
    case("single", [0.3]),
    case("all_nan", [np.nan, np.nan]),
    case("all_one", [1.0, 1.0, 1.0]),
]
print(json.dumps({"generator": "test/reference/fdr_reference.py", "cases": cases}, indent=None))
