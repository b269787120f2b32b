"""What one refresh of the live watch costs on a large log: `python bench/watch_bench.py [--mb 50]`.

A Caffe log of the given size (bench/make_caffe_log.py) is written to 90 % and then grows by
`--appends` pieces of 0.5 %. After each piece it times, in the same process and alternately:

* the watch: `Watcher.poll()` (stat, read only the appended bytes) + `Watcher.diagnose()` (parse
  the kept bytes from memory, diagnose, early warnings);
* the baseline, what a loop of `python -m diagnostics LOG` would do: read the whole file from disk,
  parse, diagnose, early warnings.

It prints the median seconds of each, the bytes each read per refresh, and the ratio; and the share
of the time the watch spends parsing with the default throttle (`Watcher.due`).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.make_caffe_log import write_log
from diagnostics import diagnose
from diagnostics.early_warning import early_warnings
from diagnostics.watch import Watcher
from parsers import load_paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=50.0)
    parser.add_argument("--appends", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        full = Path(tmp) / "full.log"
        write_log(full, args.mb)
        data = full.read_bytes()
        path = Path(tmp) / "train.log"
        start = int(len(data) * 0.9)
        path.write_bytes(data[:start])
        watcher = Watcher(path)
        watcher.poll()
        watcher.diagnose()
        piece = len(data) // 200
        watch_s, base_s, read = [], [], []
        for i in range(args.appends):
            with path.open("ab") as fh:
                fh.write(data[start + i * piece : start + (i + 1) * piece])
            began = time.perf_counter()
            before = watcher.bytes_read
            watcher.poll()
            state = watcher.diagnose()
            watch_s.append(time.perf_counter() - began)
            read.append(watcher.bytes_read - before)
            began = time.perf_counter()
            log = load_paths([path])
            baseline = diagnose(log)
            early_warnings(log)
            base_s.append(time.perf_counter() - began)
            assert baseline.symptom.symptom == state.diagnosis.symptom.symptom
        size = path.stat().st_size
    w, b = statistics.median(watch_s), statistics.median(base_s)
    appends = f"{args.appends} appends of {piece / 1e6:.2f} MB"
    print(f"log {size / 1e6:.1f} MB, {appends} (median seconds per refresh)")
    print("| method | seconds | bytes read from disk per refresh | x baseline |")
    print("|---|---|---|---|")
    print(f"| baseline: read the whole file, parse, diagnose | {b:.2f} | {size:,} | 1.00 |")
    method = "watch: poll (appended bytes) + parse from memory, diagnose"
    print(f"| {method} | {w:.2f} | {statistics.median(read):,.0f} | {b / w:.2f} |")
    gap = watcher.min_gap_factor
    print(f"with the throttle (a parse at most every {gap:g}x its duration) the watch parses")
    print(f"<= {1 / (1 + gap):.0%} of the time: one refresh of this log every >= {w * (1 + gap):.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
