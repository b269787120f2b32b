"""Time `diagnose` on real corpus runs the way the fit uses it: each log parsed once, then diagnosed
again and again (the fit diagnoses ~100,000 times per refit, and CI runs the fit).

    .venv/bin/python bench/corpus_diagnose_bench.py [--every 3] [--passes 3]

Every `--every`-th run of the corpus and of the extra training set is parsed, diagnosed once (imports,
caches), then diagnosed `--passes` times over; the best pass is printed with the time per diagnosis.
Run it at two commits in the same hour to compare them (machines here are noisy).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnostics import diagnose
from diagnostics.evaluate import read_labels, resolve_run_path
from diagnostics.split import CORPUS, EXTRA
from parsers import load_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--every", type=int, default=3, help="take every N-th labelled run")
    parser.add_argument("--passes", type=int, default=3, help="timed passes over all the runs")
    args = parser.parse_args(argv)
    logs = [
        load_paths([resolve_run_path(base, row.path)])
        for base in (CORPUS, EXTRA)
        for row in read_labels(base / "labels.csv")[:: args.every]
    ]
    for log in logs:
        diagnose(log)
    passes = []
    for _ in range(args.passes):
        start = time.perf_counter()
        for log in logs:
            diagnose(log)
        passes.append(time.perf_counter() - start)
    best = min(passes)
    shown = ", ".join(f"{p:.2f}" for p in passes)
    per_run = 1000 * best / len(logs)
    print(f"{len(logs)} runs: best pass {best:.2f} s ({per_run:.1f} ms per diagnosis; passes {shown})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
