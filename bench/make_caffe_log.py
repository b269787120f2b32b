"""Write a format-exact BVLC Caffe glog training log of a given size, deterministically.

    .venv/bin/python bench/make_caffe_log.py OUT.log --mb 100

What Caffe 1.0 prints for a LeNet-style solver: the glog header, the solver and net prototxt
echoes, `Iteration N (R iter/s, Ts/10 iters), loss = X` every `display` iterations with two train
outputs and an `lr = ` line, a test pass every `test_interval` iterations (`Testing net (#0)` and
two test outputs), data-layer noise lines and snapshots. The loss decays with noise, so the values
look like a run; the numbers are not a training run (the benchmark only measures parsing).
"""

from __future__ import annotations

import argparse
import math
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

DISPLAY = 10
TEST_INTERVAL = 1000
SNAPSHOT = 10_000
SECONDS_PER_ITER = 0.0128
START = datetime(2016, 12, 31, 22, 0, 0)  # crosses New Year: glog prints no year

SOLVER = """net: "examples/mnist/lenet_train_test.prototxt"
test_iter: 100
test_interval: 1000
base_lr: 0.01
display: 10
max_iter: {max_iter}
lr_policy: "inv"
gamma: 0.0001
power: 0.75
momentum: 0.9
weight_decay: 0.0005
snapshot: 10000
snapshot_prefix: "examples/mnist/lenet"
solver_mode: GPU
"""

NET = """name: "LeNet"
state {{
  phase: {phase}
}}
layer {{
  name: "mnist"
  type: "Data"
  top: "data"
  top: "label"
  transform_param {{
    scale: 0.00390625
  }}
  data_param {{
    source: "examples/mnist/mnist_{split}_lmdb"
    batch_size: {batch}
    backend: LMDB
  }}
}}
layer {{
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param {{
    num_output: 20
    kernel_size: 5
    stride: 1
    weight_filler {{
      type: "xavier"
    }}
  }}
}}
layer {{
  name: "ip2"
  type: "InnerProduct"
  bottom: "conv1"
  top: "ip2"
  inner_product_param {{
    num_output: 10
    weight_filler {{
      type: "xavier"
    }}
  }}
}}
layer {{
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "ip2"
  bottom: "label"
  top: "loss"
}}
"""


class GlogWriter:
    """Formats glog prefixes (`I1231 22:00:00.000000  4242 file.cpp:123] `) on a running clock."""

    def __init__(self, out, start: datetime, pid: int = 4242) -> None:
        self.out = out
        self.now = start
        self.pid = pid

    def line(self, where: str, text: str, level: str = "I") -> None:
        stamp = self.now.strftime("%m%d %H:%M:%S.%f")
        self.out.write(f"{level}{stamp} {self.pid:5d} {where}] {text}\n")

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def write_log(path: Path, megabytes: float, seed: int = 1) -> int:
    """Write until the file reaches `megabytes` (10^6 bytes); return the iterations written."""
    rng = np.random.default_rng(seed)
    target = int(megabytes * 1e6)
    max_iter = 10**9
    with path.open("w", encoding="ascii", buffering=1 << 20) as out:
        log = GlogWriter(out, START)
        log.line("caffe.cpp:218", "Using GPUs 0")
        log.line("caffe.cpp:223", "GPU 0: GeForce GTX TITAN X")
        log.line("solver.cpp:44", "Initializing solver from parameters: ")
        out.write(SOLVER.format(max_iter=max_iter))
        log.line(
            "solver.cpp:87", "Creating training net from net file: examples/mnist/lenet_train_test.prototxt"
        )
        log.line("net.cpp:51", "Initializing net from parameters: ")
        out.write(NET.format(phase="TRAIN", split="train", batch=64))
        log.line("net.cpp:51", "Initializing net from parameters: ")
        out.write(NET.format(phase="TEST", split="test", batch=100))
        log.line("solver.cpp:56", "Solver scaffolding done.")
        log.line("caffe.cpp:248", "Starting Optimization")
        log.line("solver.cpp:272", "Solving LeNet")
        log.line("solver.cpp:273", "Learning Rate Policy: inv")
        it = 0
        smoothed = 2.3
        while out.tell() < target:
            if it % TEST_INTERVAL == 0:
                log.line("solver.cpp:330", f"Iteration {it}, Testing net (#0)")
                log.line("data_layer.cpp:73", "Restarting data prefetching from start.")
                log.advance(0.9)
                test_loss = 0.05 + 2.25 * math.exp(-it / 4000) + 0.01 * rng.random()
                log.line("solver.cpp:397", f"    Test net output #0: accuracy = {1 - test_loss / 2.4:.6g}")
                log.line(
                    "solver.cpp:397",
                    f"    Test net output #1: loss = {test_loss:.6g} (* 1 = {test_loss:.6g} loss)",
                )
            raw = 0.05 + 2.25 * math.exp(-it / 4000) + 0.05 * rng.standard_normal() ** 2
            smoothed = 0.9 * smoothed + 0.1 * raw
            rate = 1 / SECONDS_PER_ITER
            log.line(
                "solver.cpp:218",
                f"Iteration {it} ({rate:.6g} iter/s, {DISPLAY * SECONDS_PER_ITER:.6g}s/{DISPLAY} iters), "
                f"loss = {smoothed:.6g}",
            )
            log.line("solver.cpp:237", f"    Train net output #0: loss = {raw:.6g} (* 1 = {raw:.6g} loss)")
            log.line("solver.cpp:237", f"    Train net output #1: accuracy = {1 - raw / 2.4:.6g}")
            lr = 0.01 * (1 + 0.0001 * it) ** -0.75
            log.line("sgd_solver.cpp:105", f"Iteration {it}, lr = {lr:.6g}")
            if rng.random() < 0.02:
                log.line("data_layer.cpp:73", "Restarting data prefetching from start.", level="I")
            if it and it % SNAPSHOT == 0:
                log.line(
                    "solver.cpp:454",
                    f"Snapshotting to binary proto file examples/mnist/lenet_iter_{it}.caffemodel",
                )
                log.line(
                    "sgd_solver.cpp:273",
                    f"Snapshotting solver state to binary proto file lenet_iter_{it}.solverstate",
                )
            it += DISPLAY
            log.advance(DISPLAY * SECONDS_PER_ITER)
    return it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--mb", type=float, default=100.0, help="size in 10^6 bytes")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    iters = write_log(args.out, args.mb, args.seed)
    print(f"{args.out}: {args.out.stat().st_size:,} bytes, {iters:,} iterations")


if __name__ == "__main__":
    main()
