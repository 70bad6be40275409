"""Held-out-colour analysis of a Sort-of-CLEVR sweep (issue 11): for each seed and model, the accuracy on
questions about the held-out colours (red, green) in distribution and out of distribution, and the gap
between them, then per model the mean ± 95% Student-t interval and the paired NFM − baseline difference
with a two-sided paired t-test. The out-of-distribution set asks only about the held-out colours, so the
fair in-distribution comparison is those colours' questions, not all six (results/README.md).

    python3 scripts/results/by_color.py DIR      # DIR holds seed-S-MODEL.csv files written by
                                                 # `nfm-classify eval` (accuracy_by_question_and_color.csv)

Writes DIR/seeds.csv and DIR/summary.md. Needs numpy and scipy (the .venv-ref of scripts/reference).
"""
import csv
import glob
import os
import re
import statistics
import sys

from scipy import stats

KINDS = ["shape", "is_left", "is_top", "nearest_shape", "farthest_shape", "same_shape_count"]
HELD_OUT = ("red", "green")
OTHERS = ("blue", "orange", "gray", "yellow")
# metric name → (question kinds, colours, split)
METRICS = {
    "held-out colours, in distribution": (KINDS, HELD_OUT, "eval"),
    "held-out colours, out of distribution": (KINDS, HELD_OUT, "ood"),
    "held-out colours without shape questions, in distribution": (KINDS[1:], HELD_OUT, "eval"),
    "held-out colours without shape questions, out of distribution": (KINDS[1:], HELD_OUT, "ood"),
    "held-out colours, relational, in distribution": (KINDS[3:], HELD_OUT, "eval"),
    "held-out colours, relational, out of distribution": (KINDS[3:], HELD_OUT, "ood"),
    "other colours, in distribution": (KINDS, OTHERS, "eval"),
}
GAPS = {
    "gap (in − out of distribution), all questions": ("held-out colours, in distribution", "held-out colours, out of distribution"),
    "gap, without shape questions": ("held-out colours without shape questions, in distribution",
                                     "held-out colours without shape questions, out of distribution"),
    "gap, relational questions": ("held-out colours, relational, in distribution", "held-out colours, relational, out of distribution"),
}


def accuracy(table, kinds, colors, split):
    rows = [table[f"{kind} {color}"] for kind in kinds for color in colors]
    return sum(int(row[split + "_correct"]) for row in rows) / sum(int(row[split + "_total"]) for row in rows)


def interval(values):
    mean = statistics.mean(values)
    half = stats.t.ppf(0.975, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5
    return mean, half


def main(directory):
    runs = {}
    for path in sorted(glob.glob(os.path.join(directory, "seed-*-*.csv"))):
        seed, model = re.match(r"seed-(\d+)-(\w+)\.csv", os.path.basename(path)).groups()
        table = {row["category"]: row for row in csv.DictReader(open(path))}
        values = {name: accuracy(table, *spec) for name, spec in METRICS.items()}
        values.update({name: values[a] - values[b] for name, (a, b) in GAPS.items()})
        runs[(int(seed), model)] = values
    seeds = sorted({seed for seed, _ in runs if (seed, "baseline") in runs and (seed, "nfm") in runs})
    names = list(METRICS) + list(GAPS)
    with open(os.path.join(directory, "seeds.csv"), "w") as file:
        file.write("seed,model," + ",".join(f'"{name}"' for name in names) + "\n")
        for (seed, model), values in sorted(runs.items()):
            file.write(f"{seed},{model}," + ",".join(f"{values[name]:.6f}" for name in names) + "\n")
    lines = [f"Seeds: {', '.join(map(str, seeds))} (paired). Accuracy in percent, mean ± half-width of the 95% Student-t "
             "interval; the paired column is NFM − baseline on the same seed, with a two-sided paired t-test.", "",
             "| metric | baseline | NFM | NFM − baseline (paired) | p |", "| --- | ---: | ---: | ---: | ---: |"]
    for name in names:
        baseline = [runs[(seed, "baseline")][name] for seed in seeds]
        nfm = [runs[(seed, "nfm")][name] for seed in seeds]
        difference = [b - a for a, b in zip(baseline, nfm)]
        (bm, bh), (nm, nh), (dm, dh) = interval(baseline), interval(nfm), interval(difference)
        p = stats.ttest_rel(nfm, baseline).pvalue
        lines.append(f"| {name} | {100 * bm:.1f} ± {100 * bh:.1f} | {100 * nm:.1f} ± {100 * nh:.1f} | "
                     f"{100 * dm:+.1f} ± {100 * dh:.1f} points | {p:.2f} |")
    with open(os.path.join(directory, "summary.md"), "w") as file:
        file.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main(sys.argv[1])
