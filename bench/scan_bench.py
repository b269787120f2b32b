"""Fleet scan speed and memory: `python -m diagnostics scan` over 1,000 runs of mixed formats.

    .venv/bin/python bench/scan_bench.py [--runs 1000] [--jobs 1,2] [--repeat 1] [--keep]

The tree is built from the corpus (`sample_logs/corpus/runs`, 489 runs in 6 formats: Caffe glog with its
prototxts, print-style logs, HF trainer_state.json, Lightning metrics.csv + hparams.yaml, Keras CSV,
TensorBoard events), each run copied into its own folder and decompressed, cycling through the corpus
until `--runs` folders exist. Each `--jobs` value runs the whole command in a fresh process (start-up and
imports included), alternately when `--repeat` > 1; the first value is the baseline of the ratio. Peak
memory: the largest single process (os.wait4) and the sum of PSS over the process and its workers,
sampled every half second from /proc (cheap enough not to slow the scan).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(BENCH))

from parse_bench import _descendants, _pss_bytes, machine_facts  # noqa: E402

SAMPLE_SECONDS = 0.5


def corpus_by_format() -> list[tuple[Path, str]]:
    """The corpus runs with their format, the formats interleaved (a prefix of the list mixes them)."""
    with (REPO / "sample_logs" / "corpus" / "labels.csv").open() as fh:
        rows = [(REPO / "sample_logs" / "corpus" / row["path"], row["format"]) for row in csv.DictReader(fh)]
    queues: dict[str, list[tuple[Path, str]]] = {}
    for run in rows:
        queues.setdefault(run[1], []).append(run)
    mixed = []
    while any(queues.values()):
        mixed += [queue.pop(0) for queue in queues.values() if queue]
    return mixed


def build_tree(root: Path, runs: int) -> dict[str, int]:
    """`runs` run folders, corpus runs in turn, gzip members decompressed; returns folders per format."""
    corpus = corpus_by_format()
    formats: dict[str, int] = {}
    for index in range(runs):
        source, fmt = corpus[index % len(corpus)]
        formats[fmt] = formats.get(fmt, 0) + 1
        target = root / f"{index:04d}_{source.name}"
        target.mkdir()
        for member in source.iterdir():
            if member.suffix == ".gz":
                (target / member.stem).write_bytes(gzip.decompress(member.read_bytes()))
            else:
                shutil.copy(member, target / member.name)
    return formats


def timed_scan(root: Path, jobs: int) -> dict[str, float | str]:
    """One fresh `python -m diagnostics scan` process: wall and CPU seconds, peak memory, rows."""
    argv = [sys.executable, "-m", "diagnostics", "scan", str(root), "--jobs", str(jobs)]
    peak = [0.0]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        process = subprocess.Popen(argv, cwd=REPO, stdout=out, stderr=err)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(SAMPLE_SECONDS):
                peak[0] = max(peak[0], sum(map(_pss_bytes, _descendants(process.pid))))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        stop.set()
        sampler.join()
        if os.waitstatus_to_exitcode(status) not in (0, 1):
            err.seek(0)
            raise SystemExit(f"scan exited with {status}:\n{err.read()[-3000:].decode()}")
        out.seek(0)
        rows = list(csv.DictReader(io.TextIOWrapper(out, encoding="utf-8")))
    return {
        "seconds": seconds,
        "cpu": usage.ru_utime + usage.ru_stime,
        "largest": usage.ru_maxrss * 1024.0,
        "tree": peak[0],
        "rows": len(rows),
        "unreadable": sum(1 for row in rows if row["error"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument(
        "--jobs", default="1,2", help="comma-separated worker counts; the first is the baseline"
    )
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the generated tree (printed)")
    args = parser.parse_args()
    jobs = [int(j) for j in args.jobs.split(",")]
    facts = machine_facts()
    print(
        f"machine: {facts['cpu']}, {facts['cores']} cores, Python {facts['python']}, commit {facts['commit']}"
    )
    print(f"load average before: {facts['load_before']}")
    root = Path(tempfile.mkdtemp(prefix="scan_bench_"))
    try:
        formats = build_tree(root, args.runs)
        size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        print(f"tree: {args.runs} run folders, {size / 1024**2:.0f} MB, by family: {formats}")
        results: dict[int, list[dict]] = {j: [] for j in jobs}
        for _ in range(args.repeat):
            for j in jobs:
                results[j].append(timed_scan(root, j))
                print(f"  --jobs {j}: {results[j][-1]['seconds']:.1f} s", flush=True)
        base = statistics.median(r["seconds"] for r in results[jobs[0]])
        print()
        print(
            "| --jobs | rows (unreadable) | wall s | runs/s | CPU s | peak PSS, all processes "
            f"| largest process | × --jobs {jobs[0]} |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for j in jobs:
            runs = results[j]
            seconds = statistics.median(r["seconds"] for r in runs)
            rows, cpu = runs[0]["rows"], statistics.median(r["cpu"] for r in runs)
            tree, largest = max(r["tree"] for r in runs) / 1024**2, max(r["largest"] for r in runs) / 1024**2
            print(
                f"| {j} | {rows} ({runs[0]['unreadable']}) | {seconds:.1f} | {rows / seconds:.1f} "
                f"| {cpu:.1f} | {tree:.0f} MiB | {largest:.0f} MiB | {base / seconds:.2f} |"
            )
        print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    finally:
        if args.keep:
            print(f"tree kept in {root}")
        else:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()
