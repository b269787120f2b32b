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
iteration (`log_interval = 1`).

The labels live in sample_logs/cross_run/labels.csv (not part of the fitted set). Only timings change
between runs of this script.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from llm_runs import BLOCK, TinyGPT, batch, cosine_lr, text_data
from torch import nn

OUT = Path(__file__).resolve().parents[1] / "cross_run"
DATA_SEED = 2024
BAD_ITERS = (300, 480)  # positions of the corrupted batches in the shared data order
RARE_CHARS = 6  # the garbage is drawn from this many of the text's least frequent characters
ITERS, WARMUP, BATCH, ACCUMULATION, EVAL_INTERVAL, EVAL_ITERS = 600, 50, 12, 2, 100, 20


@dataclass(frozen=True)
class Run:
    path: str
    seed: int
    lr: float
    corrupted: bool
    symptom: str
    description: str


def corrupt(y: torch.Tensor, rare: torch.Tensor, position: int) -> torch.Tensor:
    """Targets from a garbage buffer: random characters among the rarest of the text, the same at a
    position in every run (drawn by their own generator, so the shared order is kept)."""
    return rare[torch.randint(len(rare), y.shape, generator=torch.Generator().manual_seed(position))]


def train(run: Run) -> None:
    torch.manual_seed(run.seed)
    train_ids, val_ids, vocab = text_data()
    model = TinyGPT(vocab)
    rare = torch.bincount(train_ids, minlength=vocab).argsort()[:RARE_CHARS]
    opt = torch.optim.AdamW(model.parameters(), lr=run.lr, betas=(0.9, 0.95), weight_decay=0.1)
    gen = torch.Generator().manual_seed(DATA_SEED)  # the data order every run shares
    with (OUT / run.path).open("w", encoding="utf-8") as log:
        log.write(f"tokens per iteration will be: {BATCH * ACCUMULATION * BLOCK:,}\n")
        log.write(f"number of parameters: {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M\n")
        running_mfu, t0 = -1.0, time.perf_counter()
        for it in range(ITERS + 1):
            for group in opt.param_groups:
                group["lr"] = cosine_lr(it, run.lr, WARMUP, ITERS, run.lr / 10)
            if it % EVAL_INTERVAL == 0:
                model.eval()
                with torch.no_grad():
                    losses = {
                        split: torch.stack([model(*batch(ids, BATCH, gen)) for _ in range(EVAL_ITERS)]).mean()
                        for split, ids in (("train", train_ids), ("val", val_ids))
                    }
                model.train()
                log.write(f"step {it}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}\n")
                if it > 0:
                    log.write("saving checkpoint to out-cross-run\n")
            for _ in range(ACCUMULATION):
                x, y = batch(train_ids, BATCH, gen)  # drawn in every run, so the order stays shared
                if run.corrupted and it in BAD_ITERS:
                    y = corrupt(y, rare, it)
                loss = model(x, y) / ACCUMULATION
                loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            t1 = time.perf_counter()
            dt, t0 = t1 - t0, t1
            if it >= 5:
                mfu = model.flops_per_iter(BATCH * ACCUMULATION * BLOCK) / dt / 312e12
                running_mfu = mfu if running_mfu == -1.0 else 0.9 * running_mfu + 0.1 * mfu
            log.write(
                f"iter {it}: loss {loss.item() * ACCUMULATION:.4f}, time {dt * 1000:.2f}ms, "
                f"mfu {running_mfu * 100:.2f}%\n"
            )


def _runs() -> list[Run]:
    """Every run and what its curve really did (read off the numbers after generating)."""
    bad = f"corrupted batches at iterations {' and '.join(map(str, BAD_ITERS))} of the shared data order"
    spikes = "the loss jumps to {} and {} its recent level at those iterations and is back the next one"
    clean = "the clean data order: the loss falls from 3.3 to {} (val {}) with no spike"
    return [
        Run(
            "bad_data_seed1_lr1e-3.log",
            1,
            1e-3,
            True,
            "spiky",
            f"seed 1, lr 1e-3, {bad}: {spikes.format('2.8x', '3.3x')}; val loss 1.48 at the end.",
        ),
        Run(
            "bad_data_seed2_lr6e-4.log",
            2,
            6e-4,
            True,
            "spiky",
            f"seed 2, lr 6e-4, {bad}: {spikes.format('2.4x', '2.7x')}; val loss 1.74 at the end.",
        ),
        Run(
            "bad_data_seed3_lr2e-3.log",
            3,
            2e-3,
            True,
            "spiky",
            f"seed 3, lr 2e-3, {bad}: {spikes.format('4.2x', '6.4x')}; val loss 0.97 at the end.",
        ),
        Run(
            "clean_seed1_lr1e-3.log",
            1,
            1e-3,
            False,
            "healthy",
            f"seed 1, lr 1e-3, {clean.format(1.49, 1.48)}.",
        ),
        Run(
            "clean_seed2_lr6e-4.log",
            2,
            6e-4,
            False,
            "healthy",
            f"seed 2, lr 6e-4, {clean.format(1.74, 1.73)}.",
        ),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=[], help="run names (or a part of them)")
    only = parser.parse_args(argv).only
    torch.set_num_threads(1)
    OUT.mkdir(parents=True, exist_ok=True)
    for run in (r for r in _runs() if not only or any(part in r.path for part in only)):
        start = time.perf_counter()
        train(run)
        print(f"{run.path}: {time.perf_counter() - start:.1f}s", flush=True)
    with (OUT / "labels.csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "seed", "lr", "corrupted_iters", "symptom", "description"])
        for run in _runs():
            bad = " ".join(map(str, BAD_ITERS)) if run.corrupted else ""
            writer.writerow([run.path, run.seed, f"{run.lr:g}", bad, run.symptom, run.description])
    return 0


if __name__ == "__main__":
    sys.exit(main())
