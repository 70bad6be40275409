"""Runs nfm-bench and its PyTorch / MinAtar counterparts side by side and prints every ratio of issues 7's
and 13's targets with PASS or FAIL. Called by compare.sh (which builds and sets up the venv); see that file.

The machine is shared, so the two sides are interleaved: for each configuration, ours then theirs (the
order alternates between rounds), each in a fresh process, and the figure kept for each side is the
median over rounds of each run's median. Ratios are ours / theirs for times and memory, ours / theirs
for rates (higher is better).
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPOSITORY = os.path.dirname(os.path.dirname(HERE))


def run_json_lines(command, environment=None):
    completed = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, env=environment)
    return [json.loads(line) for line in completed.stdout.splitlines() if line.startswith("{")]


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as file:
        for line in file:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as file:
        memory_kib = int(file.readline().split()[1])
    flags = open("/proc/cpuinfo").read()
    isa = "AVX-512" if " avx512f" in flags else ("AVX2" if " avx2" in flags else "SSE")
    return {
        "cpu": model, "isa": isa, "cores": os.cpu_count(), "memoryGiB": round(memory_kib / 2**20, 1),
        "loadAverage": [round(x, 2) for x in os.getloadavg()], "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "kernel": platform.release(),
    }


def median_of(results, path):
    values = []
    for result in results:
        value = result
        for key in path:
            value = value[key]
        values.append(value)
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ours", required=True, help="path to the release nfm-bench")
    parser.add_argument("--python", required=True, help="the venv's python")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved rounds per configuration")
    parser.add_argument("--iterations", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batches", default="32,64,128")
    parser.add_argument("--models", default="baseline,nfm")
    parser.add_argument("--sections", default="models,games,dqn,kernels")
    parser.add_argument("--json", default=None)
    parser.add_argument("--before", default=None, help="an older release nfm-bench, timed beside --ours (DQN section)")
    args = parser.parse_args()

    torch_bench = [args.python, os.path.join(HERE, "torch_bench.py")]
    counts = ["--iterations", str(args.iterations), "--warmup", str(args.warmup)]
    sections = set(args.sections.split(","))
    report = {"machine": machine(), "iterations": args.iterations, "warmup": args.warmup, "rounds": args.rounds,
              "models": [], "games": [], "dqn": None, "gemm": None, "attention": None}
    print(f"# {report['machine']['cpu']} ({report['machine']['isa']}), {report['machine']['cores']} cores, "
          f"{report['machine']['memoryGiB']} GiB, load {report['machine']['loadAverage']}, {report['machine']['date']}",
          flush=True)

    def interleave(ours_command, theirs_command):
        ours, theirs = [], []
        for round_index in range(args.rounds):
            first, second = (ours_command, theirs_command) if round_index % 2 == 0 else (theirs_command, ours_command)
            for command in (first, second):
                lines = run_json_lines(command)
                (ours if command is ours_command else theirs).append(lines)
        return ours, theirs

    if "kernels" in sections:
        report["gemm"] = run_json_lines([args.ours, "gemm"] + counts)[0]
        report["attention"] = run_json_lines([args.ours, "attention"] + counts)[0]
        gemm = report["gemm"]["gigaflopsPerSecond"]["median"]
        attention = report["attention"]
        print(f"gemm 2048³: {gemm:.1f} GFLOP/s; attention kernel (batch 64, 4 reads): forward "
              f"{attention['forward']['median']:.1f} ms, backward {attention['backward']['median']:.1f} ms", flush=True)

    if "models" in sections:
        for model in args.models.split(","):
            for batch in [int(b) for b in args.batches.split(",")]:
                configuration = ["--model", model, "--batch", str(batch)] + counts
                ours, theirs = interleave([args.ours, "model"] + configuration,
                                          torch_bench + ["model"] + configuration)
                ours = [lines[0] for lines in ours]
                theirs = [lines[0] for lines in theirs]
                row = {"model": model, "batch": batch, "ours": ours, "pytorch": theirs}
                for side, results in (("ours", ours), ("pytorch", theirs)):
                    row[side + "Train"] = median_of(results, ["trainStep", "median"])
                    row[side + "Inference"] = median_of(results, ["inference", "median"])
                    row[side + "PeakResident"] = median_of(results, ["peakResidentBytes"])
                if "trainFlops" in ours[0]:
                    row["trainFlops"] = ours[0]["trainFlops"]
                    if report["gemm"]:
                        # The share of the machine's measured GEMM throughput that our conv/matmul work reaches.
                        reached = row["trainFlops"] / (row["oursTrain"] / 1e3) / 1e9
                        row["gemmFraction"] = reached / report["gemm"]["gigaflopsPerSecond"]["median"]
                report["models"].append(row)
                print(f"{model:8} batch {batch:3}: train {row['oursTrain']:8.1f} ms vs {row['pytorchTrain']:8.1f} ms "
                      f"({row['oursTrain'] / row['pytorchTrain']:.2f}×), inference {row['oursInference']:7.1f} vs "
                      f"{row['pytorchInference']:7.1f} ms ({row['oursInference'] / row['pytorchInference']:.2f}×), "
                      f"peak RSS {row['oursPeakResident'] / 2**30:.2f} vs {row['pytorchPeakResident'] / 2**30:.2f} GiB "
                      f"({row['oursPeakResident'] / row['pytorchPeakResident']:.2f}×)"
                      + (f", {row['gemmFraction']:.0%} of gemm" if "gemmFraction" in row else ""), flush=True)

    if "games" in sections:
        ours, theirs = interleave([args.ours, "games", "--steps", "20000"] + counts,
                                  torch_bench + ["games", "--steps", "2000", "--iterations", str(args.iterations),
                                                 "--warmup", "1"])
        for index, game in enumerate(line["game"] for line in ours[0]):
            ours_rate = statistics.median(lines[index]["stepsPerSecond"]["median"] for lines in ours)
            theirs_rate = statistics.median(lines[index]["stepsPerSecond"]["median"] for lines in theirs)
            report["games"].append({"game": game, "ours": ours_rate, "minatar": theirs_rate})
            print(f"game {game:15}: {ours_rate:12,.0f} vs {theirs_rate:10,.0f} steps/s ({ours_rate / theirs_rate:.1f}×)",
                  flush=True)

    if "dqn" in sections:
        # Ours with each encoder on 1 thread (as nfm-rl trains), PyTorch's MinAtar network on 1 and 2 threads
        # (its best counts), and, with --before, the same runs of an older nfm-bench (the speed-ups of issue 13).
        report["dqn"] = {"ours": {}, "pytorch": {}, "before": {}}
        for encoder in ("baseline", "nfm"):
            frames = "100" if encoder == "baseline" else "20"
            command = ["dqn", "--encoder", encoder, "--frames", frames] + counts
            if args.before:
                ours, before = interleave([args.ours] + command, [args.before] + command)
                report["dqn"]["before"][encoder] = statistics.median(
                    lines[0]["framesPerSecond"]["median"] for lines in before)
            else:
                ours = [run_json_lines([args.ours] + command)]
            report["dqn"]["ours"][encoder] = statistics.median(lines[0]["framesPerSecond"]["median"] for lines in ours)
            report["dqn"]["flopsPerFrame_" + encoder] = ours[0][0]["flopsPerFrame"]
        for threads in (1, 2):
            theirs = [run_json_lines(torch_bench + ["dqn", "--frames", "100", "--threads", str(threads)] + counts)
                      for _ in range(args.rounds)]
            report["dqn"]["pytorch"][threads] = statistics.median(lines[0]["framesPerSecond"]["median"] for lines in theirs)
        best = max(report["dqn"]["pytorch"].values())
        for encoder, rate in report["dqn"]["ours"].items():
            work = report["dqn"]["flopsPerFrame_" + encoder]
            line = f"DQN breakout batch 32, {encoder} encoder: {rate:.0f} frames/s, {work / 1e6:.1f} MFLOP/frame = " \
                   f"{rate * work / 1e9:.1f} GFLOP/s"
            if encoder in report["dqn"]["before"]:
                line += f"; before {report['dqn']['before'][encoder]:.0f} ({rate / report['dqn']['before'][encoder]:.2f}×)"
            if encoder == "baseline":
                line += f"; PyTorch 1 thread {report['dqn']['pytorch'][1]:.0f}, 2 threads {report['dqn']['pytorch'][2]:.0f} " \
                        f"({rate / best:.2f}× its best)"
            print(line, flush=True)

    # The targets of issue 7, each as a ratio measured in this run.
    checks = []
    rows = {(row["model"], row["batch"]): row for row in report["models"]}
    if ("nfm", 64) in rows:
        row = rows[("nfm", 64)]
        checks.append(("NFM train step, batch 64 (ours / PyTorch)", row["oursTrain"] / row["pytorchTrain"], "≤ 0.5",
                       row["oursTrain"] / row["pytorchTrain"] <= 0.5))
        checks.append(("NFM peak RSS, batch 64 (ours / PyTorch)", row["oursPeakResident"] / row["pytorchPeakResident"],
                       "≤ 0.5", row["oursPeakResident"] / row["pytorchPeakResident"] <= 0.5))
    if ("baseline", 64) in rows:
        row = rows[("baseline", 64)]
        checks.append(("baseline train step, batch 64 (ours / PyTorch)", row["oursTrain"] / row["pytorchTrain"], "≤ 1.0",
                       row["oursTrain"] / row["pytorchTrain"] <= 1.0))
    for model in ("baseline", "nfm"):
        sizes = sorted(batch for (kind, batch) in rows if kind == model)
        if len(sizes) >= 2:
            small, large = rows[(model, sizes[0])], rows[(model, sizes[-1])]
            ours = (large["oursTrain"] / large["batch"]) / (small["oursTrain"] / small["batch"])
            theirs = (large["pytorchTrain"] / large["batch"]) / (small["pytorchTrain"] / small["batch"])
            checks.append((f"{model} train time per image, batch {sizes[-1]} / batch {sizes[0]} (PyTorch {theirs:.2f})",
                           ours, "≤ 1.15", ours <= 1.15))
    for game in report["games"]:
        ratio = game["ours"] / game["minatar"]
        checks.append((f"game {game['game']} steps/s (ours / MinAtar)", ratio, "≥ 10", ratio >= 10))
    if report["dqn"]:
        ours, best = report["dqn"]["ours"], max(report["dqn"]["pytorch"].values())
        checks.append(("DQN training frames/s, baseline network (ours / PyTorch's best thread count)",
                       ours["baseline"] / best, "≥ 6", ours["baseline"] / best >= 6))
        before = report["dqn"]["before"]
        for encoder, goal in (("baseline", 2), ("nfm", 4)):
            if encoder in before:
                ratio = ours[encoder] / before[encoder]
                checks.append((f"DQN training frames/s, {encoder} encoder (ours / before)", ratio, f"≥ {goal}", ratio >= goal))
    report["checks"] = [{"figure": name, "ratio": ratio, "target": target, "pass": passed}
                        for name, ratio, target, passed in checks]
    print("\n| target | ratio | goal | |\n| --- | ---: | --- | --- |")
    for name, ratio, target, passed in checks:
        print(f"| {name} | {ratio:.2f} | {target} | {'PASS' if passed else 'FAIL'} |")

    path = args.json or os.path.join(REPOSITORY, "runs", f"compare-{datetime.datetime.now():%Y%m%d-%H%M%S}.json")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as file:
        json.dump(report, file, indent=1, sort_keys=True)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    sys.exit(main())
