"""Caffe log parsing speed and memory: our parser and CLI against a parse_log.py-style baseline.

    .venv/bin/python bench/parse_bench.py [--sizes 100,1000] [--repeat 3] [--out bench/out] [--json]

Logs come from bench/make_caffe_log.py and are cached in --out. Every figure is a whole process (start-up
and imports included, warm page cache after one unrecorded run that also checks the counts) started
fresh, so each has its own peak RSS (from os.wait4). The methods run alternately (A B C A B C ...) and the
speed-up is the median of the per-round ratios baseline seconds / method seconds: the machine is shared
and noisy, so ratios taken side by side mean more than MB/s. MB = 10^6 bytes, MiB = 2^20.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
COUNT_KEYS = ("train_loss", "train_outputs", "test_outputs", "lr")
# Timed children do their work and nothing else (counting rows is done in the untimed warm-up run).
READ = "import sys\nwith open(sys.argv[1], 'rb') as f:\n    f.read()"
BASELINE = "import sys\nsys.path.insert(0, 'bench')\nfrom baseline_parse_log import parse\nparse(sys.argv[1])"
PARSER = "import sys\nfrom parsers import load_paths\nload_paths([sys.argv[1]])"
METHODS = {
    "read() only (floor)": ["-c", READ],
    "baseline (parse_log.py way)": ["-c", BASELINE],
    "parsers.load_paths": ["-c", PARSER],
    "CLI -m diagnostics --json": ["-m", "diagnostics"],
}
READ_NAME, BASELINE_NAME, PARSER_NAME, CLI_NAME = METHODS
TARGETS = {  # (method, size MB, figure, comparison, threshold) from issue 2
    "parser >= 150 MB/s at 100 MB": (PARSER_NAME, 100, "mb_per_s", ">=", 150.0),
    "parser >= 6x baseline at 100 MB": (PARSER_NAME, 100, "speedup", ">=", 6.0),
    "CLI < 2 s at 100 MB": (CLI_NAME, 100, "seconds", "<", 2.0),
    "parser peak RSS < 1.5x file at 1 GB": (PARSER_NAME, 1000, "rss_ratio", "<", 1.5),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100,1000", help="log sizes in MB, comma-separated")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per method and size")
    parser.add_argument("--out", type=Path, default=BENCH / "out", help="log cache and JSON output")
    parser.add_argument(
        "--baseline-1g",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="run the baseline on logs of 1000 MB and more (about 60 s a run; skipped by default)",
    )
    parser.add_argument("--cli-max-mb", type=float, default=100, help="time the CLI on logs up to this size")
    parser.add_argument("--json", action="store_true", help="also write the figures to OUT/parse_bench.json")
    parser.add_argument("--child-counts", nargs=2, metavar=("METHOD", "LOG"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_counts:
        print(json.dumps(child_counts(*args.child_counts)))
        return

    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_facts()
    print(
        f"Machine: {machine['cpu']}, {machine['cores']} cores, Python {machine['python']}, "
        f"numpy {machine['numpy']}, pandas {machine['pandas']}; load average {machine['load_before']}"
    )
    print(f"Code: {machine['commit']}; {args.repeat} timed runs per figure (median), warm cache")
    results: list[dict[str, Any]] = []
    for size in [float(s) for s in args.sizes.split(",")]:
        log, facts = cached_log(args.out, size)
        methods = [name for name in METHODS if include(name, size, args)]
        results += bench_size(log, facts, methods, args.repeat)
    machine["load_after"] = load_average()
    print()
    print_table(results)
    print(f"(load average before {machine['load_before']}, after {machine['load_after']})")
    print_counts(results)
    verdicts = check_targets(results)
    if args.json:
        path = args.out / "parse_bench.json"
        payload = {"machine": machine, "results": results, "targets": verdicts}
        path.write_text(json.dumps(payload, indent=1))
        print(f"\nwrote {path}")


def include(method: str, size: float, args: argparse.Namespace) -> bool:
    if method == BASELINE_NAME:
        return size < 1000 or args.baseline_1g
    if method == CLI_NAME:
        return size <= args.cli_max_mb
    return True


def machine_facts() -> dict[str, Any]:
    from importlib.metadata import version

    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    commit = git("rev-parse", "--short", "HEAD")
    dirty = git("status", "--porcelain", "--", "parsers", "diagnostics")
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "pandas": version("pandas"),
        "commit": commit + (" + uncommitted changes in parsers/ or diagnostics/" if dirty else ""),
        "load_before": load_average(),
    }


def git(*argv: str) -> str:
    done = subprocess.run(["git", *argv], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def cached_log(out: Path, size_mb: float) -> tuple[Path, dict[str, Any]]:
    """The generated log of `size_mb` MB; regenerated when missing, cut short or from an older
    generator (the sidecar JSON is written last and records the generator's hash)."""
    generator = BENCH / "make_caffe_log.py"
    digest = hashlib.sha256(generator.read_bytes()).hexdigest()[:16]
    log = out / f"caffe_{size_mb:g}MB.log"
    sidecar = log.with_suffix(".json")
    if sidecar.exists() and log.exists():
        facts = json.loads(sidecar.read_text())
        if facts.get("generator") == digest and facts.get("bytes") == log.stat().st_size:
            return log, facts
    sys.path.insert(0, str(BENCH))
    from make_caffe_log import write_log

    print(f"generating {log} ({size_mb:g} MB) ...", flush=True)
    start = time.perf_counter()
    iterations = write_log(log, size_mb, seed=1)
    lines = 0
    with log.open("rb") as f:
        while block := f.read(1 << 24):
            lines += block.count(b"\n")
    facts = {"generator": digest, "bytes": log.stat().st_size, "lines": lines, "iterations": iterations}
    sidecar.write_text(json.dumps(facts))
    print(f"  {facts['bytes']:,} bytes, {lines:,} lines in {time.perf_counter() - start:.0f} s", flush=True)
    return log, facts


def command(method: str, log: Path) -> list[str]:
    return [sys.executable, *METHODS[method], str(log)] + (["--json"] if method == CLI_NAME else [])


def timed_run(argv: list[str]) -> tuple[float, float, float]:
    """Whole-process wall seconds, peak RSS in bytes (Linux ru_maxrss is in KiB) and CPU seconds (user +
    system: less sensitive than wall time to other workers on the machine, but not immune)."""
    with open(os.devnull, "wb") as devnull:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, stdout=devnull, stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 1):  # the CLI exits 1 when it diagnosed a problem
        raise SystemExit(f"{' '.join(argv[:3])} ... exited with {process.returncode}")
    return seconds, usage.ru_maxrss * 1024.0, usage.ru_utime + usage.ru_stime


def warm_up(method: str, log: Path) -> dict[str, int] | None:
    """One unrecorded run (fills the page cache) that also returns what the method found."""
    if method == CLI_NAME:
        done = subprocess.run(command(method, log), cwd=REPO, capture_output=True, check=False)
        if done.returncode not in (0, 1):
            raise SystemExit(f"CLI failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
        curves = json.loads(done.stdout)["parsed"]["curves"]
        return counts_from_curves({(c["split"], c["metric"]): c["points"] for c in curves})
    if method == READ_NAME:
        timed_run(command(method, log))
        return None
    argv = [sys.executable, str(Path(__file__)), "--child-counts", method, str(log)]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{method} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout)


def child_counts(method: str, log: str) -> dict[str, int]:
    if method == BASELINE_NAME:
        sys.path.insert(0, str(BENCH))
        import baseline_parse_log

        return baseline_parse_log.counts(*baseline_parse_log.parse(log))
    sys.path.insert(0, str(REPO))
    from parsers import load_paths

    metrics = load_paths([log]).metrics
    points = metrics.groupby(["split", "metric"], observed=True).size()
    return counts_from_curves({(str(s), str(m)): int(n) for (s, m), n in points.items()})


def counts_from_curves(points: dict[tuple[str, str], int]) -> dict[str, int]:
    """Our parser's curves in the baseline's categories: Caffe's train `loss` is the smoothed display
    loss; every other train curve but lr is a `Train net output` (its `loss` becomes `loss_raw`)."""
    return {
        "train_loss": points.get(("train", "loss"), 0),
        "train_outputs": sum(n for (s, m), n in points.items() if s == "train" and m not in ("loss", "lr")),
        "test_outputs": sum(n for (s, _), n in points.items() if s in ("test", "val")),
        "lr": points.get(("train", "lr"), 0),
    }


def bench_size(log: Path, facts: dict[str, Any], methods: list[str], repeat: int) -> list[dict[str, Any]]:
    size_mb = facts["bytes"] / 1e6
    print(f"\n{log.name}: {size_mb:.1f} MB, {facts['lines']:,} lines", flush=True)
    found = {method: warm_up(method, log) for method in methods}
    runs: dict[str, list[tuple[float, float, float]]] = {method: [] for method in methods}
    for round_ in range(repeat):
        for method in methods:
            runs[method].append(timed_run(command(method, log)))
        figures = ", ".join(f"{m.split()[0]} {runs[m][-1][0]:.2f} s" for m in methods)
        print(f"  round {round_ + 1}/{repeat}: {figures} (load {load_average()})", flush=True)
    baseline = runs.get(BASELINE_NAME, [])
    results = []
    for method in methods:
        seconds = [run[0] for run in runs[method]]
        rss = statistics.median(run[1] for run in runs[method])
        median = statistics.median(seconds)
        results.append(
            {
                "method": method,
                "size_mb": round(size_mb, 1),
                "bytes": facts["bytes"],
                "lines": facts["lines"],
                "seconds": median,
                "seconds_all": seconds,
                "cpu_seconds": statistics.median(run[2] for run in runs[method]),
                "mb_per_s": size_mb / median,
                "lines_per_s": facts["lines"] / median,
                "peak_rss_mib": rss / 2**20,
                "rss_ratio": rss / facts["bytes"],
                "speedup": paired_ratio(baseline, runs[method], 0),
                "cpu_speedup": paired_ratio(baseline, runs[method], 2),
                "counts": found[method],
            }
        )
    return results


def paired_ratio(
    baseline: list[tuple[float, float, float]], runs: list[tuple[float, float, float]], field: int
) -> float | None:
    """Median over rounds of baseline / method (field 0: wall seconds, 2: CPU seconds)."""
    if not baseline:
        return None
    return statistics.median(b[field] / r[field] for b, r in zip(baseline, runs, strict=True))


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        "method",
        "size MB",
        "seconds",
        "CPU s",
        "MB/s",
        "lines/s",
        "peak RSS MiB",
        "RSS/file",
        "x baseline",
        "x base CPU",
        *COUNT_KEYS,
    )
    rows = []
    for r in results:
        counts = r["counts"]
        rows.append(
            (
                r["method"],
                f"{r['size_mb']:g}",
                f"{r['seconds']:.2f}",
                f"{r['cpu_seconds']:.2f}",
                f"{r['mb_per_s']:.1f}",
                f"{r['lines_per_s'] / 1e3:,.0f} k",
                f"{r['peak_rss_mib']:,.0f}",
                f"{r['rss_ratio']:.2f}",
                *(f"{r[k]:.2f}" if r[k] is not None else "-" for k in ("speedup", "cpu_speedup")),
                *(f"{counts[k]:,}" if counts else "-" for k in COUNT_KEYS),
            )
        )
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        print("| " + " | ".join(cells) + " |")


def print_counts(results: list[dict[str, Any]]) -> None:
    """The parsers must find the same values: flag any category where they differ."""
    for size in sorted({r["size_mb"] for r in results}):
        found = {r["method"]: r["counts"] for r in results if r["size_mb"] == size and r["counts"]}
        differing = [k for k in COUNT_KEYS if len({c[k] for c in found.values()}) > 1]
        if differing:
            detail = "; ".join(
                f"{m}: " + ", ".join(f"{k} {c[k]:,}" for k in differing) for m, c in found.items()
            )
            print(f"MISMATCH at {size:g} MB in {', '.join(differing)}: {detail}")
        elif len(found) > 1:
            print(f"rows at {size:g} MB: all {len(found)} parsing methods found the same counts")


def check_targets(results: list[dict[str, Any]]) -> dict[str, Any]:
    print("\nTargets (issue 2):")
    verdicts: dict[str, Any] = {}
    for label, (method, size, figure, comparison, threshold) in TARGETS.items():
        match = [r for r in results if r["method"] == method and round(r["size_mb"] / size, 1) == 1.0]
        value = match[0][figure] if match else None
        if value is None:
            print(f"  {label}: not measured in this run")
            verdicts[label] = None
            continue
        passed = value >= threshold if comparison == ">=" else value < threshold
        print(f"  {label}: {value:.2f} -> {'PASS' if passed else 'FAIL'}")
        verdicts[label] = {"value": value, "pass": passed}
    return verdicts


if __name__ == "__main__":
    main()
