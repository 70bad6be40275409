#!/usr/bin/env python3
"""Reference values for the seeds harness's statistics (Sources/NFMExperiments), from SciPy.

Pinned reference: scipy==1.17.1, numpy (any recent). Run from the repository root:

    python3 -m venv .venv-ref
    .venv-ref/bin/pip install numpy scipy==1.17.1
    .venv-ref/bin/python scripts/reference/make_statistics_fixtures.py

It rewrites Tests/NFMExperimentsTests/Fixtures/statistics.json:
- "t": Student-t CDF and 0.975/0.995 quantiles for several degrees of freedom and t values;
- "beta": the regularised incomplete beta I_x(a, b) at a few points;
- "samples": for fixed value lists, mean, sample std and the 95% t-interval of the mean;
- "paired": for fixed treatment/control lists, the paired difference's mean, 95% interval, t and
  the two-sided p-value of scipy.stats.ttest_rel.
"""
import json
import os

import numpy as np
from scipy import special, stats

out = {"t": [], "beta": [], "samples": [], "paired": []}
for df in [1, 2, 3, 4, 5, 9, 29, 100]:
    for t in [-3.5, -1.0, 0.0, 0.4, 1.96, 2.5, 12.0]:
        out["t"].append({"df": df, "t": t, "cdf": float(stats.t.cdf(t, df)), "two_sided_p": float(2 * stats.t.sf(abs(t), df))})
    out["t"].append({"df": df, "quantile_975": float(stats.t.ppf(0.975, df)), "quantile_995": float(stats.t.ppf(0.995, df))})
for a, b, x in [(0.5, 0.5, 0.3), (2.0, 0.5, 0.9), (14.5, 0.5, 0.95), (50.0, 0.5, 0.99), (1.0, 3.0, 0.2), (5.0, 7.0, 0.6)]:
    out["beta"].append({"a": a, "b": b, "x": x, "value": float(special.betainc(a, b, x))})

samples = [
    [0.5612, 0.5488, 0.5731, 0.5590, 0.5523],
    [171.5, 183.3, 160.2],
    [8.4, 10.2, 6.1, 9.9, 7.7, 8.8, 11.0, 5.5, 9.1, 10.4],
]
for values in samples:
    v = np.array(values)
    n = len(v)
    half = stats.t.ppf(0.975, n - 1) * v.std(ddof=1) / np.sqrt(n)
    out["samples"].append({"values": values, "mean": float(v.mean()), "std": float(v.std(ddof=1)),
                           "ci_low": float(v.mean() - half), "ci_high": float(v.mean() + half)})

pairs = [
    ([0.559, 0.571, 0.548, 0.566, 0.580], [0.549, 0.556, 0.550, 0.552, 0.561]),
    ([171.5, 165.0, 180.2], [183.3, 170.1, 179.9]),
    ([1.0, 2.0, 3.0, 4.0], [1.5, 1.0, 3.5, 3.0]),
]
for treatment, control in pairs:
    d = np.array(treatment) - np.array(control)
    n = len(d)
    half = stats.t.ppf(0.975, n - 1) * d.std(ddof=1) / np.sqrt(n)
    test = stats.ttest_rel(treatment, control)
    out["paired"].append({"treatment": treatment, "control": control, "mean": float(d.mean()),
                          "ci_low": float(d.mean() - half), "ci_high": float(d.mean() + half),
                          "t": float(test.statistic), "p": float(test.pvalue)})

path = os.path.join("Tests", "NFMExperimentsTests", "Fixtures", "statistics.json")
with open(path, "w") as f:
    json.dump(out, f, indent=1)
print("wrote", path)
