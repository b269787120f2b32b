"""Parsing speed of the line-based text formats (print_style and the others that share `_textlog.py`) on
large logs grown from real ones.

    .venv/bin/python bench/text_bench.py [--mb 100] [--repeat 3] [--only print_style] [--out bench/out]

Each input is a real log (`../shared/real_logs`) or a sample log grown to --mb MB: its head (banners and
config echo, up to the first line with a counter) once, then the rest repeated with its counters (`epoch`,
`step`, `iter`, `batch` followed by a number) shifted by the largest counter + 1 at each repetition, so
that steps keep increasing as in one long run; cached in --out. For every
log two methods run alternately (A B A B ...), each in a fresh process timed inside after its imports:

  - floor: read the file, decode it and split it into lines (what any line reader does first);
  - parse: `parsers.load_paths([log])` (format detection, decoding, settings echoes, the format's parse).

Printed: MB/s and lines/s of the parse (wall time, median of --repeat), its CPU time (which moves less
than wall time when other jobs share the cores), the floor's MB/s and the parse's time as a multiple of the
floor's (median of the per-round ratios), with the values found. The load average is printed before and
after. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import inspect
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL_LOGS = REPO / "../shared/real_logs"
# (name, seed log, format it must be read as)
INPUTS = [
    ("print_t5_logging", REAL_LOGS / "print_style/t5_finetune_batchloss_bleu.log", "print_style"),
    ("print_epoch_step", REPO / "sample_logs/torch_mlp_sgd_healthy.log", "print_style"),
    ("print_gpt2_lora", REAL_LOGS / "print_style/gpt2_lora_alpaca.log", "print_style"),
    ("print_vit_ctime", REAL_LOGS / "print_style/vit_cifar10_patch4_appended_runs.txt", "print_style"),
    ("print_numpy_mlp", REAL_LOGS / "print_style/numpy_mlp_mnist.log", "print_style"),
    ("hf_stdout", REAL_LOGS / "hf_stdout/gemma2_lmsys_cls_stdout.log", "hf_stdout"),
    ("mmdet_text", REAL_LOGS / "mmdet_text/faster_rcnn_carafed_coco_1x.log", "mmdet_text"),
    (
        "detectron2_text",
        REAL_LOGS / "other/detectron2_text_frcnn_semisup_stage_lr0.04.txt",
        "detectron2_text",
    ),
    ("keras_stdout", REAL_LOGS / "other/keras_stdout_autotrainer.out", "keras_stdout"),
    ("mxnet_log", REAL_LOGS / "other/mxnet_ssd_resumed.log", "mxnet_log"),
]
_COUNTER = re.compile(rb"(?i)\b(epoch|step|iter(?:ation)?|batch)(\s*[:=#]?\s*\[?\s*)(\d+)")
# Each child prints its wall and CPU seconds (CPU time moves less with the other jobs of a shared machine).
FLOOR = (
    "import sys, time\nstart, cpu = time.perf_counter(), time.process_time()\n"
    "with open(sys.argv[1], 'rb') as f:\n    f.read().decode('utf-8', errors='replace').split('\\n')\n"
    "print(time.perf_counter() - start, time.process_time() - cpu)"
)
PARSE = (
    "import sys, time\nfrom parsers import load_paths\n"
    "start, cpu = time.perf_counter(), time.process_time()\nlog = load_paths([sys.argv[1]])\n"
    "print(time.perf_counter() - start, time.process_time() - cpu, log.meta.format, len(log.metrics))"
)


def grown(seed: bytes, size: int) -> bytes:
    """`seed` grown to at least `size` bytes: its head (up to the first line with a counter: banners,
    the config echo) once, then its body repeated with the counters shifted at each repetition."""
    seed = seed if seed.endswith(b"\n") else seed + b"\n"
    first = _COUNTER.search(seed)
    cut = seed.rfind(b"\n", 0, first.start()) + 1 if first else 0
    head, body = seed[:cut], seed[cut:]
    shift = max((int(found[3]) for found in _COUNTER.finditer(body)), default=0) + 1
    pieces, total, repetition = [head], len(head), 0
    while total < size:
        piece = _COUNTER.sub(
            lambda m, by=repetition * shift: m[1] + m[2] + str(int(m[3]) + by).encode(), body
        )
        pieces.append(piece)
        total += len(piece)
        repetition += 1
    return b"".join(pieces)


def cached_log(out: Path, name: str, seed: Path, megabytes: float) -> Path:
    """The grown log, regenerated when its seed or `grown` changed."""
    recipe = inspect.getsource(grown).encode() + _COUNTER.pattern
    digest = hashlib.sha256(seed.read_bytes() + recipe).hexdigest()[:12]
    log = out / f"text_{name}_{megabytes:g}MB_{digest}.log"
    if not log.exists():
        for old in out.glob(f"text_{name}_{megabytes:g}MB_*.log"):
            old.unlink()
        print(f"generating {log.name} ...", flush=True)
        log.write_bytes(grown(seed.read_bytes(), int(megabytes * 1e6)))
    return log


def timed(code: str, log: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", code, str(log)], cwd=REPO, capture_output=True, text=True, check=False
    )
    if done.returncode:
        raise SystemExit(f"failed on {log}:\n{done.stderr[-3000:]}")
    return done.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=float, default=100, help="size of each grown log in MB")
    parser.add_argument("--repeat", type=int, default=3, help="timed rounds per log")
    parser.add_argument("--only", default="", help="comma-separated input names or formats")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    parser.add_argument("--json", action="store_true", help="also write OUT/text_bench.json")
    args = parser.parse_args()
    if not REAL_LOGS.exists():
        raise SystemExit(f"the real logs are not at {REAL_LOGS.resolve()}")
    args.out.mkdir(parents=True, exist_ok=True)
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)
    wanted = {w for w in args.only.split(",") if w}
    results = []
    for name, seed, fmt in INPUTS:
        if wanted and name not in wanted and fmt not in wanted:
            continue
        log = cached_log(args.out, name, seed, args.mb)
        data = log.read_bytes()
        size, lines = len(data), data.count(b"\n")
        del data
        _, _, found, rows = timed(PARSE, log)  # warm-up (page cache), unrecorded
        if found != fmt:
            raise SystemExit(f"{log.name} was read as {found}, not {fmt}")
        floors, parses, cpus = [], [], []
        for _ in range(args.repeat):
            floors.append(float(timed(FLOOR, log)[0]))
            wall, cpu = map(float, timed(PARSE, log)[:2])
            parses.append(wall)
            cpus.append(cpu)
        parse, floor, cpu = statistics.median(parses), statistics.median(floors), statistics.median(cpus)
        ratio = statistics.median(p / f for p, f in zip(parses, floors, strict=True))
        result = {
            "log": name,
            "format": fmt,
            "mb": size / 1e6,
            "lines": lines,
            "values": int(rows),
            "parse_s": parse,
            "parse_mb_s": size / 1e6 / parse,
            "parse_cpu_s": cpu,
            "cpu_mb_s": size / 1e6 / cpu,
            "lines_per_s": lines / parse,
            "floor_mb_s": size / 1e6 / floor,
            "x_floor": ratio,
        }
        results.append(result)
        print(
            f"{name:18s} {fmt:16s} {result['mb']:6.1f} MB {lines:>10,} lines {int(rows):>10,} values  "
            f"parse {parse:5.2f} s = {result['parse_mb_s']:5.1f} MB/s "
            f"({result['lines_per_s'] / 1e6:.2f} M lines/s), "
            f"CPU {cpu:5.2f} s = {result['cpu_mb_s']:5.1f} MB/s; floor {result['floor_mb_s']:4.0f} MB/s, "
            f"parse = {ratio:4.1f} x floor",
            flush=True,
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        (args.out / "text_bench.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
