"""Caffe log parsing speed and memory: our parser and CLI against a parse_log.py-style baseline.

    .venv/bin/python bench/parse_bench.py [--sizes 100,1000] [--repeat 3] [--out bench/out] [--json]

Logs come from bench/make_caffe_log.py and are cached in --out. Every figure is a whole process (start-up
and imports included, warm page cache after one unrecorded run that also counts the values found) started
fresh, so each has its own peak RSS (os.wait4: the largest single process). The parser may fork workers,
so the unrecorded run also samples the summed PSS of the process tree; memory/file uses the larger. The
methods run alternately (A B C A B C ...) and the speed-up is the median of the per-round ratios baseline
seconds / method seconds: the machine is shared and noisy, so ratios taken side by side mean more than
MB/s. MB = 10^6 bytes, MiB = 2^20.
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
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, NamedTuple

REPO = Path(__file__).resolve().parents[1]
BENCH = REPO / "bench"
COUNT_KEYS = ("train_loss", "train_outputs", "test_outputs", "lr")
# Timed children do their work and nothing else (counting rows is done in the untimed warm-up run).
READ = "import sys\nwith open(sys.argv[1], 'rb') as f:\n    f.read()"
BASELINE = "import sys\nsys.path.insert(0, 'bench')\nfrom baseline_parse_log import parse\nparse(sys.argv[1])"
PARSER = "import sys\nfrom parsers import load_paths\nload_paths([sys.argv[1]])"
# "Parsing alone": the same call timed inside the process, after interpreter start-up and imports.
PARSE_ONLY = (
    "import sys, time\nfrom parsers import load_paths\n"
    "start = time.perf_counter()\nload_paths([sys.argv[1]])\nprint(time.perf_counter() - start)"
)
METHODS = {
    "read() only (floor)": ["-c", READ],
    "baseline (parse_log.py way)": ["-c", BASELINE],
    "parsers.load_paths": ["-c", PARSER],
    "CLI -m diagnostics --json": ["-m", "diagnostics"],
    "parsing alone (imports excluded)": ["-c", PARSE_ONLY],
}
READ_NAME, BASELINE_NAME, PARSER_NAME, CLI_NAME, PARSE_ONLY_NAME = METHODS
TARGETS = {  # (method, size MB, figure, comparison, threshold) from issue 2
    "parsing alone >= 150 MB/s at 100 MB": (PARSE_ONLY_NAME, 100, "mb_per_s", ">=", 150.0),
    "parsing alone >= 6x baseline at 100 MB": (PARSE_ONLY_NAME, 100, "speedup", ">=", 6.0),
    "CLI < 2 s at 100 MB": (CLI_NAME, 100, "seconds", "<", 2.0),
    "parser peak memory < 1.5x file at 1 GB": (PARSER_NAME, 1000, "memory_ratio", "<", 1.5),
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
    if method == PARSE_ONLY_NAME:
        return size < 1000
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


class Run(NamedTuple):
    seconds: float  # whole-process wall time
    cpu: float  # user + system of the process and its workers: less sensitive to other load than wall time
    rss: float  # bytes: peak RSS of the largest single process (the process or one of its workers)
    tree: float  # bytes: sampled peak of PSS summed over the process and its children (0 when not sampled)
    stdout: bytes


def run(argv: list[str], sample_tree: bool = False) -> Run:
    """One fresh process. os.wait4 gives its peak RSS and CPU time (workers included once reaped), but
    not the memory of a process and its forked workers together: `sample_tree` polls their PSS (shared
    pages divided among the processes sharing them), which costs CPU, so timed runs do not sample."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err)
        sampler = _TreeSampler(process.pid) if sample_tree else None
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        tree = sampler.stop() if sampler else 0.0
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        errors = err.read()
        # the CLI exits 1 when it diagnosed a problem; Python exits 1 on an uncaught exception too
        cli_verdict = process.returncode == 1 and "diagnostics" in argv and b"Traceback" not in errors
        if process.returncode and not cli_verdict:
            raise SystemExit(f"{' '.join(argv)} exited with {process.returncode}:\n{errors[-3000:].decode()}")
        return Run(seconds, usage.ru_utime + usage.ru_stime, usage.ru_maxrss * 1024.0, tree, out.read())


class _TreeSampler(threading.Thread):
    """Peak of the summed PSS of a process and its descendants, read from /proc while it runs."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid, self.peak, self.done = pid, 0.0, threading.Event()
        self.start()

    def run(self) -> None:
        while not self.done.is_set():
            began = time.perf_counter()
            self.peak = max(self.peak, sum(map(_pss_bytes, _descendants(self.pid))))
            # reading PSS walks the page tables (~20 ms per GiB): keep the sampling cost near 1/4
            self.done.wait(max(0.02, 3 * (time.perf_counter() - began)))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return self.peak


def _descendants(pid: int) -> list[int]:
    pids = [pid]
    for parent in pids:
        try:
            for task in os.listdir(f"/proc/{parent}/task"):
                pids += map(int, Path(f"/proc/{parent}/task/{task}/children").read_text().split())
        except OSError:  # it has just exited
            continue
    return pids


def _pss_bytes(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 0.0


def warm_up(method: str, log: Path) -> tuple[Run, dict[str, int] | None]:
    """One unrecorded run (fills the page cache) that samples the memory of the process tree and
    returns what the method found (counting is left out of the timed runs)."""
    if method == READ_NAME:
        return run(command(method, log), sample_tree=True), None
    if method == PARSE_ONLY_NAME:
        method = PARSER_NAME  # the same parse: same values, same memory
    if method == CLI_NAME:
        done = run(command(method, log), sample_tree=True)
        curves = json.loads(done.stdout)["parsed"]["curves"]
        return done, counts_from_curves({(c["split"], c["metric"]): c["points"] for c in curves})
    done = run([sys.executable, str(Path(__file__)), "--child-counts", method, str(log)], sample_tree=True)
    return done, json.loads(done.stdout)


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
    warm = {method: warm_up(method, log) for method in methods}
    runs: dict[str, list[Run]] = {method: [] for method in methods}
    for round_ in range(repeat):
        for method in methods:
            done = run(command(method, log))
            if method == PARSE_ONLY_NAME:  # the child timed the parse itself
                done = done._replace(seconds=float(done.stdout))
            runs[method].append(done)
        figures = ", ".join(f"{m.split()[0]} {runs[m][-1].seconds:.2f} s" for m in methods)
        print(f"  round {round_ + 1}/{repeat}: {figures} (load {load_average()})", flush=True)
    baseline = runs.get(BASELINE_NAME, [])
    results = []
    for method in methods:
        seconds = [r.seconds for r in runs[method]]
        rss = statistics.median(r.rss for r in runs[method])
        # the tree's sampled PSS can miss a short peak, the largest process's RSS cannot
        memory = max(rss, warm[method][0].tree)
        median = statistics.median(seconds)
        results.append(
            {
                "method": method,
                "size_mb": round(size_mb, 1),
                "bytes": facts["bytes"],
                "lines": facts["lines"],
                "seconds": median,
                "seconds_all": seconds,
                "cpu_seconds": statistics.median(r.cpu for r in runs[method]),
                "mb_per_s": size_mb / median,
                "lines_per_s": facts["lines"] / median,
                "peak_rss_mib": rss / 2**20,
                "tree_pss_mib": warm[method][0].tree / 2**20,
                "memory_ratio": memory / facts["bytes"],
                "speedup": paired_ratio(baseline, runs[method], "seconds"),
                "cpu_speedup": paired_ratio(baseline, runs[method], "cpu"),
                "counts": warm[method][1],
            }
        )
    return results


def paired_ratio(baseline: list[Run], runs: list[Run], field: str) -> float | None:
    """Median over rounds of baseline / method (wall `seconds` or `cpu` seconds)."""
    if not baseline:
        return None
    return statistics.median(
        getattr(b, field) / getattr(r, field) for b, r in zip(baseline, runs, strict=True)
    )


def print_table(results: list[dict[str, Any]]) -> None:
    header = (
        "method",
        "size MB",
        "seconds",
        "CPU s",
        "MB/s",
        "lines/s",
        "peak RSS MiB",
        "tree PSS MiB",
        "memory/file",
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
                f"{r['tree_pss_mib']:,.0f}",
                f"{r['memory_ratio']:.2f}",
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
