"""The LLM divergence replay set (sample_logs/llm/replay/, held-out test data for the early warnings) and its
training twin (sample_logs/llm/train/, which the early warnings are fitted on).

    /work/train-venv/bin/python sample_logs/generator/llm_replay.py [--set replay|train] [--only NAME ...]
        [--jobs N]

Tiny GPT-style char models (2 pre-LayerNorm blocks of width 32, 32-character context) trained on this
CPU with the loops of `llm_runs.py` (nanoGPT's, the same loop printing torchtitan's lines, the
Megatron-format fp16 loop with DeepSpeed's loss-scaler arithmetic), logging every iteration. About half
diverge or turn NaN through what practitioners meet: a peak lr too high once warm-up reaches it, a
warm-up too short, no gradient clipping with a high lr, Adam's beta2 0.999 with a high lr, continued
training re-warmed to too high an lr, an fp16 loss scale that collapses. The other half are healthy and
hard: warm-up bumps, long cosine tails, beta2 0.999 spikes that recover, poisoned stretches of data whose
spike recovers, fp16 runs whose scaler overflows and recovers. (A poisoned stretch that brings a run to a
blow-up was not found with these models: see the set's README.) Each family draws its severity (peak lr,
warm-up length, poisoned stretch, re-warm) from a range with its own fixed seed, so some runs diverge
late and some early.

A diverging/NaN run's job is killed 30 logged iterations after its loss is NaN or 100x its first (as
someone watching would), so the logs end there. The label is read off the run's own logged numbers
(`outcome`), never taken from the family's intent: NaN (a non-finite loss, NaN iterations counted, or
the scaler's fatal minimum), diverging (a loss >= 100x the first), healthy (finite, never 100x, the
last tenth's mean <= 0.85x the first loss); a run that is none of these is dropped. The training set is
drawn from the same families with another seed (other peak lrs, warm-ups, poisoned stretches and model
seeds): the early warnings are fitted on it and on the corpus's training split, and the replay set is
scored as held out (`bench/early_warning.py`).
"""

from __future__ import annotations

import argparse
import csv
import gzip
import math
import re
import shutil
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from llm_runs import Variant, megatron, nanogpt

# each set: where it is written and the seed its families draw from
SETS = {
    "replay": (Path(__file__).resolve().parents[1] / "llm" / "replay", 20261203),
    "train": (Path(__file__).resolve().parents[1] / "llm" / "train", 20261204),
}
BLOWUP = 100.0  # the benchmark's blow-up: a loss this many times its first
HEALTHY_END = 0.85  # a healthy run's last tenth averages at most this share of its first loss
BASE = Variant(dim=32, block=32, batch_size=8, log_interval=1, eval_interval=250, stop_after=30)


@dataclass(frozen=True)
class Run:
    name: str
    loop: str  # nanogpt, torchtitan or megatron
    intent: str  # diverging or healthy: what the family was set up for (the label is the outcome)
    mechanism: str
    peak_lr: float
    warmup: int
    clip: float
    iters: int
    variant: Variant

    @property
    def file(self) -> str:
        return f"{self.name}.log.gz"

    def settings(self) -> str:
        v = self.variant
        text = (
            f"peak lr {self.peak_lr:.3g}, warm-up {self.warmup}, clip {self.clip or 'none'}, "
            f"beta2 {v.beta2}, weight decay {v.weight_decay}, {self.iters} iterations, seed {v.seed}"
        )
        if v.poison:
            text += f", iterations {v.poison[0]}-{v.poison[1] - 1} all one character"
        if v.rewarm:
            start, length, peak = v.rewarm
            text += f", re-warmed from iteration {start} over {length} iterations to lr {peak:.3g}"
        if self.loop == "megatron":
            text += f", fp16 scale window {v.scale_window}"
        return text


@dataclass(frozen=True)
class Family:
    """Runs set up alike; each draws its peak lr (log-uniform), warm-up and poisoned stretch."""

    prefix: str
    loop: str
    intent: str
    mechanism: str
    count: int
    lr: tuple[float, float]
    warmup: tuple[int, int]
    clip: float
    iters_after_warmup: int
    variant: Variant = BASE
    # a stretch of poisoned batches: (start range, length range), drawn per run
    poison: tuple[tuple[int, int], tuple[int, int]] | None = None
    # continued training re-warmed to a higher lr: (start range, length range, peak lr range)
    rewarm: tuple[tuple[int, int], tuple[int, int], tuple[float, float]] | None = None

    def runs(self, rng: np.random.Generator) -> list[Run]:
        out = []
        for i in range(self.count):
            peak = float(math.exp(rng.uniform(math.log(self.lr[0]), math.log(self.lr[1]))))
            warmup = int(rng.integers(self.warmup[0], self.warmup[1] + 1))
            poison = None
            if self.poison is not None:
                first = int(rng.integers(*self.poison[0]))
                poison = (first, first + int(rng.integers(*self.poison[1])))
            rewarm = None
            if self.rewarm is not None:
                starts, lengths, peaks = self.rewarm
                rewarm = (int(rng.integers(*starts)), int(rng.integers(*lengths)), float(rng.uniform(*peaks)))
            variant = replace(
                self.variant,
                seed=int(rng.integers(1, 10_000)),
                poison=poison,
                rewarm=rewarm,
                torchtitan=self.loop == "torchtitan",
            )
            name = f"{self.loop}_{self.prefix}_{i + 1}"
            iters = warmup + self.iters_after_warmup
            out.append(
                Run(name, self.loop, self.intent, self.mechanism, peak, warmup, self.clip, iters, variant)
            )
        return out


NO_DECAY = replace(BASE, weight_decay=0.0)
FAMILIES = (
    # meant to diverge or NaN
    Family("peak_lr_after_warmup", "nanogpt", "diverging",
           "peak lr too high for the model once warm-up reaches it",
           5, (2.0, 5.0), (150, 600), 1.0, 500, NO_DECAY),
    Family("short_warmup", "nanogpt", "diverging", "warm-up far too short for the peak lr",
           3, (1.5, 3.0), (0, 20), 1.0, 500, NO_DECAY),
    Family("no_clip_high_lr", "torchtitan", "diverging", "no gradient clipping with a high lr",
           4, (2.5, 6.0), (100, 400), 0.0, 500, NO_DECAY),
    Family("beta2_0999_high_lr", "torchtitan", "diverging", "Adam beta2 0.999 with a high lr",
           4, (2.0, 4.0), (100, 400), 1.0, 600, replace(NO_DECAY, beta2=0.999)),
    Family("fp16_scale_collapse", "megatron", "diverging",
           "fp16 with a high lr: the forward overflows and the loss scale collapses",
           4, (1.0, 2.5), (50, 300), 0.0, 400),
    # meant to stay healthy, and be hard to tell from the above
    Family("cosine_tail", "nanogpt", "healthy", "a long cosine tail at a modest lr",
           3, (1e-3, 3e-2), (50, 200), 1.0, 1200),
    Family("warmup_bump", "nanogpt", "healthy", "a bump at the end of warm-up that recovers",
           3, (0.3, 0.8), (50, 200), 1.0, 1000),
    Family("beta2_0999_spiky", "torchtitan", "healthy",
           "beta2 0.999 at a moderate lr: spiky, recovering",
           3, (0.05, 0.3), (50, 200), 1.0, 1000, replace(BASE, beta2=0.999)),
    Family("poisoned_recovers", "torchtitan", "healthy",
           "a poisoned stretch of data at a modest lr: a spike that recovers",
           2, (0.01, 0.05), (50, 150), 1.0, 1000, BASE, ((300, 600), (20, 60))),
    Family("fp16_overflow_recovers", "megatron", "healthy",
           "fp16 whose scaler grows, overflows and halves again and again",
           3, (1e-3, 1e-2), (50, 150), 1.0, 600, replace(BASE, scale_window=50)),
    Family("fp16_poisoned_recovers", "megatron", "healthy",
           "fp16, a high lr, a poisoned stretch of data: the loss spikes, the scaler overflows, both recover",
           2, (0.2, 0.4), (80, 150), 0.0, 600, BASE, ((250, 400), (80, 200))),
    # meant to diverge after training well: appended here so that the families above keep their draws
    Family("rewarm_too_high", "torchtitan", "diverging",
           "continued training re-warmed to a peak lr far too high, after training well at a low one",
           3, (0.02, 0.04), (80, 120), 1.0, 1400, NO_DECAY, rewarm=((400, 700), (200, 400), (2.0, 4.0))),
    Family("rewarm_too_high", "nanogpt", "diverging",
           "continued training re-warmed to a peak lr far too high, after training well at a low one",
           2, (0.02, 0.04), (80, 120), 1.0, 1400, NO_DECAY, rewarm=((400, 700), (200, 400), (2.0, 4.0))),
)  # fmt: skip


def plan(seed: int) -> list[Run]:
    """Every run of a set; each family draws from its own fixed seed (changing one leaves the others)."""
    return [run for i, family in enumerate(FAMILIES) for run in family.runs(np.random.default_rng([seed, i]))]


# --- the outcome, read off the logged numbers -------------------------------------------------------------

_LOSS = {
    "nanogpt": re.compile(r"^iter (\d+): loss (\S+),"),
    "torchtitan": re.compile(r" - step:\s*(\d+)\s+loss:\s*(\S+)"),
    "megatron": re.compile(r"\] iteration\s+(\d+)/"),
}
_MEGATRON_LOSS = re.compile(r"\| lm loss: (\S+) \|")
_MEGATRON_NAN = re.compile(r"number of nan iterations:\s*(\d+)")


@dataclass(frozen=True)
class Outcome:
    label: str  # nan, diverging, healthy or "" (none of these: dropped)
    onset: int | None  # the first NaN iteration or loss >= 100x the first
    points: int
    first: float
    peak: float  # the highest finite loss
    end: float  # the mean of the last tenth (finite points)


def outcome(loop: str, text: str) -> Outcome:
    """Read the training loss (and Megatron's NaN counters, the scaler's fatal error) off the log."""
    steps, losses, nan_steps = [], [], []
    for line in text.splitlines():
        found = _LOSS[loop].search(line)
        if found is None:
            continue
        step = int(found.group(1))
        if loop == "megatron":
            if int(_MEGATRON_NAN.search(line).group(1)) > 0:
                nan_steps.append(step)
            value = _MEGATRON_LOSS.search(line)
            if value is None:
                continue
            loss = float(value.group(1))
        else:
            loss = float(found.group(2))
        steps.append(step)
        losses.append(loss)
    values = np.array(losses)
    finite = values[np.isfinite(values)]
    first = float(finite[0])
    bad = [s for s, v in zip(steps, values, strict=True) if not np.isfinite(v)] + nan_steps
    if "Current loss scale already at minimum" in text and not bad:
        bad = [steps[-1] + 1]
    blown = [s for s, v in zip(steps, values, strict=True) if np.isfinite(v) and v >= BLOWUP * first]
    tail = finite[-max(1, len(finite) // 10) :]
    end = float(tail.mean())
    if bad:
        label = "nan"
    elif blown:
        label = "diverging"
    elif end <= HEALTHY_END * first:
        label = "healthy"
    else:
        label = ""
    onset = min(bad + blown, default=None)
    return Outcome(label, onset, len(steps), first, float(finite.max()), end)


def mechanism_of(run: Run, result: Outcome) -> str:
    """The setup's mechanism, unless the outcome shows another: a run that blew up before its poisoned
    stretch began was brought down by its lr, not by the data."""
    poison = run.variant.poison
    if poison and result.onset is not None and result.onset < poison[0]:
        return f"peak lr too high: it blew up before its poisoned stretch (set up as: {run.mechanism})"
    return run.mechanism


def cause_of(label: str) -> str:
    """The catalogue's cause for an outcome of this set: every blow-up here is driven by the lr (a peak
    too high, a warm-up too short, no clipping, beta2 0.999 or a re-warm under a high lr), and the NaN runs
    are fp16 loss-scale collapses under a high lr; a healthy run has none."""
    return {"diverging": "lr_too_high", "nan": "fp16_overflow;lr_too_high"}.get(label, "")


def train(run: Run, out: Path) -> tuple[Run, Outcome, float]:
    """Train one run into a temporary log, read its outcome, compress it into `out`."""
    torch.set_num_threads(1)
    start = time.perf_counter()
    raw = out / f"{run.name}.log"
    loop, clip_name = (megatron, "clip") if run.loop == "megatron" else (nanogpt, "grad_clip")
    loop(raw, peak_lr=run.peak_lr, warmup=run.warmup, decay_lr=True, iters=run.iters, variant=run.variant,
         **{clip_name: run.clip})  # fmt: skip
    result = outcome(run.loop, raw.read_text(encoding="utf-8"))
    with raw.open("rb") as src, gzip.GzipFile(out / run.file, "wb", mtime=0) as dst:
        shutil.copyfileobj(src, dst)
    raw.unlink()
    return run, result, time.perf_counter() - start


LABEL_FIELDS = [
    "path",
    "format",
    "symptom",
    "cause",
    "mechanism",
    "intent",
    "onset_step",
    "points",
    "settings",
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="run names (or a part of them): the others keep their rows")
    parser.add_argument("--jobs", type=int, default=1, help="processes (each trains on one thread)")
    parser.add_argument("--set", choices=sorted(SETS), default="replay", help="which set to write")
    args = parser.parse_args(argv)
    out, seed = SETS[args.set]
    out.mkdir(parents=True, exist_ok=True)
    everything = plan(seed)
    runs = [r for r in everything if not args.only or any(part in r.name for part in args.only)]
    labels = out / "labels.csv"
    rows: dict[str, list] = {}
    if args.only and labels.exists():
        with labels.open(newline="", encoding="utf-8") as fh:
            rows = {row[0]: row for row in list(csv.reader(fh))[1:]}
    started = time.perf_counter()
    with ProcessPoolExecutor(args.jobs) as pool:
        results = list(pool.map(train, runs, [out] * len(runs)))
    for run, result, seconds in results:
        print(
            f"{run.name}: {result.label or 'DROPPED'} (meant {run.intent}), onset {result.onset}, "
            f"{result.points} points, first {result.first:.2f} peak {result.peak:.1f} end {result.end:.2f}, "
            f"{seconds:.1f}s",
            flush=True,
        )
        rows.pop(run.file, None)
        if result.label == "":
            (out / run.file).unlink()
            continue
        rows[run.file] = [run.file, run.loop, result.label, cause_of(result.label), mechanism_of(run, result),
                          run.intent, result.onset or "", result.points, run.settings()]  # fmt: skip
    print(f"total {time.perf_counter() - started:.0f} s", flush=True)
    with labels.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(LABEL_FIELDS)
        writer.writerows(rows[r.file] for r in everything if r.file in rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
