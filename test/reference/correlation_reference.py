"""Reference values for server/analysis/correlation.ts (test/analysis/correlation.test.ts).

Pearson r and Spearman rho (ties: mid-ranks) from scipy.stats, and numpy's default
(linear) quantiles. Run with /usr/bin/python3 (numpy 1.24, scipy 1.10):
    /usr/bin/python3 test/reference/correlation_reference.py > test/reference/correlation_reference.json
"""
import json

import numpy as np
from scipy import stats

rng = np.random.default_rng(7)
cases = []
# Hand-made with a tie in x, then seeded random ones with ties in both.
xs = [[0.31, 0.12, 0.45, 0.45, 0.2, 0.05, 0.38]]
ys = [[0.71, 0.55, 0.80, 0.76, 0.60, 0.57, 0.69]]
for n in (3, 5, 12):
    xs.append([float(v) for v in rng.normal(size=n)])
    ys.append([float(v) for v in np.round(rng.normal(size=n), 1)])
for x, y in zip(xs, ys):
    cases.append({"x": x, "y": y, "pearson": float(stats.pearsonr(x, y)[0]), "spearman": float(stats.spearmanr(x, y)[0])})
values = [3.0, 1, 4, 1, 5, 9, 2, 6]
quantiles = {"values": values, "q": [0.025, 0.5, 0.975], "expected": [float(np.quantile(values, q)) for q in (0.025, 0.5, 0.975)]}
print(json.dumps({"cases": cases, "quantiles": quantiles}, indent=1))
