"""Replay benchmark of the early warnings: `python bench/early_warning.py [--jobs N] [--runs]`.

Every diverging/NaN run and every healthy run of the labelled corpus is replayed prefix by prefix
(after each logged loss point; `diagnostics.early_warning_fit` explains the onset and the lead) with
the fitted thresholds, separately for the training split (where they were fitted: tuning numbers),
the frozen test split, the fresh and unseen held-out sets (`sample_logs/corpus_fresh`,
`sample_logs/corpus_unseen`), the public logs of
`../shared/real_logs` and the LLM divergence replay set of `sample_logs/llm/replay/` (held out: the
figures to quote); the LLM training set (`sample_logs/llm/train/`) is fitted on, like the training split.
It prints, per set: the runs warned before their first NaN or blow-up (and how many had any point
before it to warn on), the median lead as a share of the run before the onset, and the healthy runs
warned at any prefix. `--runs` lists each diverging/NaN run and each healthy run warned.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from diagnostics.early_warning import PARAMS, WARNING_RULES
from diagnostics.early_warning_fit import (
    LLM_TRAIN,
    Case,
    Score,
    all_firsts,
    corpus_tasks,
    llm_tasks,
    load_cases,
    real_tasks,
    replay_tasks,
    score,
)
from diagnostics.split import EXTRA, FRESH, UNSEEN


def row(name: str, s: Score) -> str:
    lead_steps = statistics.median(s.lead_steps) if s.lead_steps else 0
    return (
        f"| {name} | {s.warned}/{s.positives} = {s.warned / max(s.positives, 1):.0%} | {s.warnable} | "
        f"{s.median_lead:.0%} ({lead_steps:g} steps) | "
        f"{s.healthy_warned}/{s.healthy} = {s.healthy_warned / max(s.healthy, 1):.1%} | "
        + ", ".join(f"{r}: {s.by_rule[r]}/{s.false_by_rule[r]}" for r in s.by_rule)
        + " |"
    )


def run_lines(cases: list[Case], firsts: dict) -> list[str]:
    out = []
    for c in cases:
        when = {r: firsts[r][c.path] for r in firsts if firsts[r][c.path] is not None}
        first = min(when.values(), default=None)
        if not c.positive:
            if first is not None:  # a false warning: where, and by which rules
                out.append(f"  {c.path}: healthy, warned at {', '.join(f'{r} {s}' for r, s in when.items())}")
            continue
        shown = "-" if first is None else f"{first} ({', '.join(r for r, s in when.items() if s == first)})"
        error = f" error: {c.error}" if c.error else ""
        out.append(f"  {c.path}: {c.label}, points before the onset {len(c.cuts)}, onset {c.onset}, "
                   f"first warning {shown}{error}")  # fmt: skip
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=0)
    parser.add_argument(
        "--runs", action="store_true", help="list every diverging/NaN run and warned healthy run"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    sets = {"corpus-train (fitted)": corpus_tasks("train")}
    if (EXTRA / "split.csv").exists():
        sets["corpus-extra (fitted)"] = corpus_tasks("train", EXTRA)
    if llm_tasks(LLM_TRAIN):
        sets["llm train (fitted)"] = llm_tasks(LLM_TRAIN)
    sets["corpus-test"] = corpus_tasks("test")
    if (FRESH / "split.csv").exists():
        sets["corpus-fresh"] = corpus_tasks("fresh", FRESH)
    if (UNSEEN / "split.csv").exists():
        sets["corpus-unseen"] = corpus_tasks("unseen", UNSEEN)
    if real_tasks():
        sets["real logs"] = real_tasks()
    if replay_tasks():
        sets["llm replay (held out)"] = replay_tasks()
    print(f"thresholds: {PARAMS}")
    print("\n| set | warned before the onset | with a point to warn on | median lead | healthy warned | "
          "per rule: first warner / false warnings |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    details = []
    judged = 0
    for name, tasks in sets.items():
        cases = load_cases(tasks, args.jobs)
        firsts = all_firsts(cases, PARAMS)
        judged += sum(len(c.cuts) for c in cases)
        print(row(name, score(cases, firsts)))
        if args.runs:
            details += [f"\n{name}:", *run_lines(cases, firsts)]
    print("\n".join(details))
    rules = ", ".join(f"{r.id} {r.name}" for r in WARNING_RULES)
    print(f"\n{judged:,} prefixes judged in {time.perf_counter() - started:.0f} s ({rules})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
