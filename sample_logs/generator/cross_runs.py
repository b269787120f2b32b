"""Runs that share one data order (sample_logs/cross_run/): the same tiny GPT-style char model trained
with nanoGPT's loop on this CPU, with different init seeds and learning rates, on a batch stream that
holds corrupted batches at fixed positions, and the same runs on the clean stream.

    /work/train-venv/bin/python sample_logs/generator/cross_runs.py [--only NAME ...]

A data problem repeats where the data repeats: every run that reads the stream in the same order meets
the bad batches at the same iterations, whatever its seed or lr, while an optimiser's spikes fall where
that run's own dynamics put them. The bad batches stand for a corrupted shard whose targets were
written from a garbage buffer: at iterations `BAD_ITERS` the inputs are ordinary text but every target
of the batch, in both of its micro-batches, is a random character among the text's rarest. The stream
is `llm_runs.text_data` sampled by a generator seeded with `DATA_SEED` in every run (evaluation batches
included, so the order stays the same); the model's init seed and the lr differ. nanoGPT's loop as in
`llm_runs.nanogpt` (AdamW, betas (0.9, 0.95), warm-up then cosine decay, clipping 1.0), logging every
iteration (`log_interval = 1`). One run reads the same order in a Megatron-style loop whose global batch
ramps up from 8 to 48 (`--rampup-batch-size 8 8 4000`) and logs Megatron's `training_log` lines: its
iteration is not its position in the order, which only its `consumed samples` counter says.

The labels live in sample_logs/cross_run/labels.csv (not part of the fitted set). Only timings change
between runs of this script.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from llm_runs import BLOCK, TinyGPT, batch, cosine_lr, text_data
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "cross_run"
DATA_SEED, EVAL_SEED = 2024, 7
# Corrupted shards as [first, end) positions in the shared sample order: 48 sequences each, met at
# iterations 300-301 and 480-481 at 24 sequences an iteration, at 150 and 240 at 48.
BAD_SAMPLES = ((7200, 7248), (11520, 11568))
RARE_CHARS = 6  # the garbage is drawn from this many of the text's least frequent characters
ITERS, WARMUP, EVAL_INTERVAL, EVAL_ITERS = 600, 50, 100, 20


# Megatron's `--rampup-batch-size 8 8 4000` with `--global-batch-size 48`: the batch starts at 8 and grows
# by 8 every 4000 / 5 = 800 samples read until it is 48, so an iteration's position in the order is not
# iteration x batch; the run reads as many samples as the nanoGPT runs do.
RAMPUP_START, RAMPUP_INCREMENT, RAMPUP_SAMPLES = 8, 8, 4000
SAMPLES_READ = (ITERS + 1) * 24


@dataclass(frozen=True)
class Run:
    path: str
    seed: int
    lr: float
    batch: int  # sequences per iteration (gradient_accumulation_steps = 1); the last, when ramped up
    corrupted: bool
    symptom: str
    description: str
    megatron: bool = False  # Megatron's loop and lines, with the batch ramped up to `batch`

    def reads(self) -> list[tuple[int, int, int]]:
        """(iteration, first sample, samples) of every iteration, as the loop numbers its iterations."""
        if not self.megatron:
            return [(it, it * self.batch, self.batch) for it in range(ITERS + 1)]
        out, consumed, it = [], 0, 0
        every = RAMPUP_SAMPLES // ((self.batch - RAMPUP_START) // RAMPUP_INCREMENT)
        while consumed < SAMPLES_READ:
            it += 1
            size = min(self.batch, RAMPUP_START + RAMPUP_INCREMENT * (consumed // every))
            out.append((it, consumed, size))
            consumed += size
        return out

    def bad_iters(self) -> list[int]:
        """The iterations that read a corrupted sample."""
        if not self.corrupted:
            return []
        return [
            it
            for it, first, size in self.reads()
            if any(lo < first + size and first < hi for lo, hi in BAD_SAMPLES)
        ]


def sample_order(train_ids: torch.Tensor, count: int) -> torch.Tensor:
    """Start offsets of the training sequences in the order every run reads them (its data loader)."""
    return torch.randint(
        len(train_ids) - BLOCK - 1, (count,), generator=torch.Generator().manual_seed(DATA_SEED)
    )


def read(train_ids: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.stack([train_ids[s : s + BLOCK] for s in starts])
    y = torch.stack([train_ids[s + 1 : s + BLOCK + 1] for s in starts])
    return x, y


def corrupt(y: torch.Tensor, first: int, rare: torch.Tensor) -> torch.Tensor:
    """The targets of the samples at positions `first`, `first + 1`, ... with the corrupted ones replaced by
    garbage: random characters among the rarest of the text, the same for a sample in every run."""
    y = y.clone()
    for row in range(len(y)):
        position = first + row
        if any(lo <= position < hi for lo, hi in BAD_SAMPLES):
            noise = torch.Generator().manual_seed(position)
            y[row] = rare[torch.randint(len(rare), y[row].shape, generator=noise)]
    return y


def train(run: Run) -> None:
    torch.manual_seed(run.seed)
    train_ids, val_ids, vocab = text_data()
    model = TinyGPT(vocab)
    rare = torch.bincount(train_ids, minlength=vocab).argsort()[:RARE_CHARS]
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.95), weight_decay=0.1)
    order = sample_order(train_ids, (ITERS + 1) * run.batch)
    evaluation = torch.Generator().manual_seed(EVAL_SEED)  # apart from the training order
    with (OUT / run.path).open("w", encoding="utf-8") as log:
        # nanoGPT's configurator echoes the config file it was given
        log.write("Overriding config with config/train_char_cross_run.py:\n")
        log.write(f"batch_size = {run.batch}\ngradient_accumulation_steps = 1\nblock_size = {BLOCK}\n")
        log.write(f"learning_rate = {run.lr:g}\nmax_iters = {ITERS}\nwarmup_iters = {WARMUP}\n\n")
        log.write(f"tokens per iteration will be: {run.batch * BLOCK:,}\n")
        log.write(f"number of parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M\n")
        running_mfu, t0 = -1.0, time.perf_counter()
        for it in range(ITERS + 1):
            for group in opt.param_groups:
                group["lr"] = cosine_lr(it, run.lr, WARMUP, ITERS, run.lr / 10)
            if it % EVAL_INTERVAL == 0:
                model.eval()
                with torch.no_grad():
                    losses = {
                        split: torch.stack(
                            [model(*batch(ids, 24, evaluation)) for _ in range(EVAL_ITERS)]
                        ).mean()
                        for split, ids in (("train", train_ids), ("val", val_ids))
                    }
                model.train()
                log.write(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}\n")
                if it > 0:
                    log.write("saving checkpoint to out-cross-run\n")
            first = it * run.batch
            x, y = read(train_ids, order[first : first + run.batch])
            if run.corrupted:
                y = corrupt(y, first, rare)
            loss = model(x, y)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            t1 = time.perf_counter()
            dt, t0 = t1 - t0, t1
            if it >= 5:
                mfu = model.flops_per_iter(run.batch * BLOCK) / dt / 312e12
                running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
            log.write(
                f"iter {it}: loss {loss.item():.4f}, time {dt * 1000:.2f}ms, mfu {running_mfu * 100:.2f}%\n"
            )


def train_megatron(run: Run) -> None:
    """The same model and shared order in a Megatron-style loop (bf16-like: fp32 here, so the loss scale
    prints 1.0), its batch ramped up, one `training_log` line an iteration with `consumed samples`."""
    torch.manual_seed(run.seed)
    train_ids, val_ids, vocab = text_data()
    model = TinyGPT(vocab)
    rare = torch.bincount(train_ids, minlength=vocab).argsort()[:RARE_CHARS]
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.95), weight_decay=0.1)
    reads = run.reads()
    order = sample_order(train_ids, SAMPLES_READ + run.batch)
    evaluation = torch.Generator().manual_seed(EVAL_SEED)
    total = len(reads)
    with (OUT / run.path).open("w", encoding="utf-8") as log:
        log.write(f"using rampup batch size: start {RAMPUP_START}, increment {RAMPUP_INCREMENT}, ")
        log.write(f"ramp-up samples {RAMPUP_SAMPLES}\ntraining ...\n")
        t0 = time.perf_counter()
        for it, first, size in reads:
            lr = cosine_lr(it - 1, run.lr, WARMUP, total, run.lr / 10)
            for group in opt.param_groups:
                group["lr"] = lr
            x, y = read(train_ids, order[first : first + size])
            if run.corrupted:
                y = corrupt(y, first, rare)
            loss = model(x, y)
            loss.backward()
            grad_norm = float(nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            opt.step()
            opt.zero_grad(set_to_none=True)
            t1 = time.perf_counter()
            dt, t0 = t1 - t0, t1
            log.write(
                f" iteration {it:8d}/{total:8d} | consumed samples: {first + size:12d} | "
                f"elapsed time per iteration (ms): {dt * 1000:.1f} | learning rate: {lr:.6E} | "
                f"global batch size: {size:5d} | lm loss: {loss.item():.6E} | loss scale: 1.0 | "
                f"grad norm: {grad_norm:.3f} | number of skipped iterations:   0 | "
                f"number of nan iterations:   0 |\n"
            )
            if it % EVAL_INTERVAL == 0:
                model.eval()
                with torch.no_grad():
                    value = torch.stack(
                        [model(*batch(val_ids, 24, evaluation)) for _ in range(EVAL_ITERS)]
                    ).mean()
                model.train()
                log.write(
                    f" validation loss at iteration {it} | lm loss value: {value:.6E} | "
                    f"lm loss PPL: {math.exp(value):.6E} | \n"
                )


def _bad(path: str, seed: int, lr: float, batch: int, jumps: tuple[str, str], val: float, **kw) -> Run:
    """A run on the corrupted order, with the jumps its loss made at the shards (read off its log)."""
    run = Run(path, seed, lr, batch, True, "spiky", "", **kw)
    starts = [it for it in run.bad_iters() if it - 1 not in run.bad_iters()]
    ramp = " ramped up from 8 (Megatron's lines)" if run.megatron else ""
    text = (
        f"seed {seed}, lr {lr:g}, batch {batch}{ramp}, corrupted samples 7200-7247 and 11520-11567 of the "
        f"shared order: the loss jumps {jumps[0]} and {jumps[1]} over its recent level at iterations "
        f"{starts[0]} and {starts[1]}, back after the shard; val loss {val} at the end."
    )
    return dataclasses.replace(run, description=text)


def _runs() -> list[Run]:
    """Every run and what its curve really did (read off the numbers after generating)."""
    clean = "the clean order: the loss falls from 3.3 to {} (val {}) with no spike"
    return [
        _bad("bad_data_seed1_lr1e-3.log", 1, 1e-3, 24, ("2.7x", "3.4x"), 1.46),
        _bad("bad_data_seed2_lr6e-4.log", 2, 6e-4, 24, ("2.3x", "2.7x"), 1.70),
        _bad("bad_data_seed3_lr2e-3.log", 3, 2e-3, 24, ("4.1x", "6.3x"), 0.96),
        _bad("bad_data_seed4_batch48.log", 4, 1e-3, 48, ("2.2x", "2.8x"), 1.28),
        _bad("bad_data_seed5_rampup_megatron.log", 5, 1e-3, 48, ("2.0x", "2.2x"), 1.70, megatron=True),
        Run("clean_seed1_lr1e-3.log", 1, 1e-3, 24, False, "healthy",
            f"seed 1, lr 1e-3, batch 24, {clean.format(1.42, 1.45)}."),
        Run("clean_seed2_lr6e-4.log", 2, 6e-4, 24, False, "healthy",
            f"seed 2, lr 6e-4, batch 24, {clean.format(1.67, 1.69)}."),
    ]  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="run names (or a part of them)")
    only = parser.parse_args(argv).only
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for run in (r for r in _runs() if not only or any(part in r.path for part in only)):
        start = time.perf_counter()
        (train_megatron if run.megatron else train)(run)
        print(f"{run.path}: {time.perf_counter() - start:.1f}s", flush=True)
    with (OUT / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "seed", "lr", "batch", "corrupted_iters", "symptom", "description"])
        for run in _runs():
            bad = " ".join(map(str, run.bad_iters()))
            writer.writerow([run.path, run.seed, f"{run.lr:g}", run.batch, bad, run.symptom, run.description])
    return 0


if __name__ == "__main__":
    sys.exit(main())
