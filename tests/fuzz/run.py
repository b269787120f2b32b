"""The long fuzz run: `python -m tests.fuzz.run --cases 100000` runs hypothesis-generated logs (a tenth
of the cases unless `--generated` says otherwise), then mutated sample and real logs, and prints cases,
outcomes, every crash site with an example, and the slowest case.

Exit status 1 when any case crashed, stalled or killed the worker. `--save DIR` keeps the failing cases;
`--minutes M` stops after M minutes (or at SIGTERM / Ctrl-C) and reports the cases run so far.
"""

from __future__ import annotations

import argparse
import random
import signal
import sys
import time
from collections import Counter
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as hypothesis_seed

from tests.fuzz.engine import Executor, Files, Outcome, mutate_case, seed_runs
from tests.fuzz.strategies import any_log


class Tally:
    """Outcomes by kind, failures by site (count, first case, example) and the slowest case."""

    def __init__(self, save: Path | None) -> None:
        self.save = save
        self.kinds: Counter[str] = Counter()
        self.sites: dict[str, tuple[int, str, Outcome]] = {}
        self.slowest: tuple[float, str] = (0.0, "")
        self.start = time.perf_counter()

    def add(self, case: str, files: Files, outcome: Outcome) -> None:
        self.kinds[outcome.kind] += 1
        self.slowest = max(self.slowest, (outcome.seconds, case))
        if outcome.bad:
            key = f"{outcome.site or outcome.kind} {outcome.error.split(':')[0]}"
            count, first, example = self.sites.get(key, (0, case, outcome))
            self.sites[key] = (count + 1, first, example)
            if self.save:
                folder = self.save / case.replace(":", "_")
                folder.mkdir(parents=True, exist_ok=True)
                for name, data in files:
                    (folder / Path(name).name).write_bytes(data)
        done = self.kinds.total()
        if done % 1000 == 0:
            rate = done / (time.perf_counter() - self.start)
            print(f"  {done} cases, {dict(self.kinds)}, {rate:.1f}/s", flush=True)

    def report(self) -> int:
        bad = sum(count for count, _, _ in self.sites.values())
        elapsed = time.perf_counter() - self.start
        print(f"cases: {self.kinds.total()}  outcomes: {dict(self.kinds)}  crashes: {bad}  ({elapsed:.0f} s)")
        print(f"slowest case: {self.slowest[1]} {self.slowest[0]:.2f} s")
        for key, (count, first, example) in sorted(self.sites.items(), key=lambda kv: -kv[1][0]):
            print(f"  {count:6d}  {key}  e.g. case {first}: {example.error}")
        return 1 if bad else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fuzz.run", description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases in all (default 10,000)")
    parser.add_argument("--generated", type=int, help="of which hypothesis-generated (default a tenth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a case counts as a stall")
    parser.add_argument("--save", type=Path, help="folder to write each failing case to")
    parser.add_argument("--minutes", type=float, help="stop after this long and report what ran")
    args = parser.parse_args(argv)
    generated = args.cases // 10 if args.generated is None else args.generated
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # report, then stop
    if args.minutes:
        signal.signal(signal.SIGALRM, signal.default_int_handler)
        signal.alarm(int(args.minutes * 60))

    seeds = seed_runs()
    print(
        f"{len(seeds)} seed runs; {args.cases - generated} mutated + {generated} generated cases, seed {args.seed}"
    )
    tally = Tally(args.save)
    with Executor(timeout=args.timeout) as executor:

        @settings(
            max_examples=generated,
            database=None,
            deadline=None,
            phases=[Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        @hypothesis_seed(args.seed)
        @given(files=any_log())
        def generate(files: Files) -> None:
            tally.add(f"generated:{tally.kinds.total()}", files, executor.run(files))

        try:
            if generated:
                generate()
            for case in range(args.cases - generated):
                files = mutate_case(random.Random(f"{args.seed}:{case}"), seeds)
                tally.add(f"mutated:{case}", files, executor.run(files))
        except KeyboardInterrupt:
            print("stopped early (time budget or signal)")
    return tally.report()


if __name__ == "__main__":
    sys.exit(main())
