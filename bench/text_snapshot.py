"""Record what the text-log parsers return for every sample, corpus and real log (and for mutated copies
of them), then check that other code returns exactly the same: the guard for speed work on the text
formats, where a faster reader must not change one value, line number or warning.

    # before a change (or with PYTHONPATH pointing at a checkout of the old code):
    .venv/bin/python bench/text_snapshot.py record bench/out/text_snapshot.pkl --mutated 3000
    # after it:
    .venv/bin/python bench/text_snapshot.py compare bench/out/text_snapshot.pkl
    # the large-model formats: also their test excerpts, generated logs and mutations seeded from them
    .venv/bin/python bench/text_snapshot.py record bench/out/llm_snapshot.pkl --llm --mutated 3000

Each file is detected and, when a text format claims it, loaded on its own; each mutated case (the fuzz
harness's seeded mutations, `tests/fuzz/engine.py`) is loaded as a run. Compared: the metrics frame
(values, dtypes, categories and their order), the run facts, the warnings, the skipped-line count, or the
ParseError message; the events table too.
"""

from __future__ import annotations

import argparse
import pickle
import random
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
REAL_LOGS = REPO / "../shared/real_logs"
# formats that read text lines with parsers/formats/_textlog.py
TEXT_FORMATS = {"print_style", "hf_stdout", "mmdet_text", "detectron2_text", "keras_stdout", "mxnet_log"}
# the large-model formats (parsers/formats/_llm.py), recorded with --llm
LLM_FORMATS = {"megatron", "deepspeed", "nanogpt", "torchtitan"}


def outcome(files: list[tuple[str, bytes]]) -> dict[str, Any]:
    """What `parsers.load` made of a run, in comparable pieces."""
    from parsers import ParseError, load

    try:
        log = load(files)
    except ParseError as err:
        return {"error": str(err)}
    return {
        "metrics": log.metrics,
        "events": log.events,
        "meta": repr(log.meta),
        "warnings": [tuple(w.__dict__.values()) for w in log.warnings],
        "skipped_lines": log.skipped_lines,
        "sources": log.sources,
    }


def text_format(files: list[tuple[str, bytes]], formats: set[str] = TEXT_FORMATS | LLM_FORMATS) -> str | None:
    """The first of `formats` any of the files is detected as (None: none)."""
    from parsers import SourceFile, detect

    for name, data in files:
        fmt = detect(SourceFile.from_bytes(name, data))[0]
        if fmt in formats:
            return fmt
    return None


def cases(mutated: int, seed: int, seeds_of: str | None = None) -> dict[str, list[tuple[str, bytes]]]:
    """Every sample/corpus/real file on its own, then `mutated` fuzz-mutated runs (of the runs detected as
    `seeds_of` only, when given)."""
    found: dict[str, list[tuple[str, bytes]]] = {}
    for root in (REPO / "sample_logs", REAL_LOGS):
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            found[str(path.resolve().relative_to(root.resolve().parent))] = [(path.name, path.read_bytes())]
    if mutated:
        from tests.fuzz.engine import mutate_case, seed_runs

        rng = random.Random(seed)
        seeds = seed_runs()
        if seeds_of:
            seeds = [run for run in seeds if text_format(run, {seeds_of})]
        for number in range(mutated):
            found[f"mutated {seed}/{number}"] = mutate_case(rng, seeds)
    return found


def llm_cases(mutated: int, seed: int) -> dict[str, list[tuple[str, bytes]]]:
    """The large-model logs: sample logs, the excerpts of real output in tests/parsers/test_llm_formats.py,
    logs written by bench/llm_parse_bench.py (1 MB, three seeds), then `mutated` fuzz-mutated copies."""
    sys.path[:0] = [str(REPO / "bench"), str(REPO / "tests" / "parsers")]
    import test_llm_formats
    from llm_parse_bench import write_log

    found = {
        str(path.relative_to(REPO)): [(path.name, path.read_bytes())]
        for path in sorted((REPO / "sample_logs" / "llm").glob("*.log"))
    }
    for name, value in vars(test_llm_formats).items():
        if name.isupper() and isinstance(value, str) and len(value) > 40:
            found[f"test_llm_formats.{name}"] = [(f"{name.lower()}.log", value.encode())]
    with tempfile.TemporaryDirectory() as tmp:
        for fmt in sorted(LLM_FORMATS):
            for log_seed in (1, 2, 3):
                path = Path(tmp) / f"{fmt}.log"
                write_log(path, fmt, 1.0, log_seed)
                found[f"llm_parse_bench {fmt} seed {log_seed}"] = [(path.name, path.read_bytes())]
    if mutated:
        from tests.fuzz.engine import mutate_case

        rng = random.Random(seed)
        seeds = list(found.values())
        for number in range(mutated):
            found[f"mutated llm {seed}/{number}"] = mutate_case(rng, seeds)
    return found


def record(out: Path, mutated: int, seed: int, llm: bool, seeds_of: str | None) -> None:
    snapshot = {}
    chosen = llm_cases(mutated, seed) if llm else cases(mutated, seed, seeds_of)
    for key, files in chosen.items():
        fmt = text_format(files)
        if fmt is not None:
            snapshot[key] = {"format": fmt, "files": files, **outcome(files)}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(snapshot))
    by_format: dict[str, int] = {}
    for entry in snapshot.values():
        by_format[entry["format"]] = by_format.get(entry["format"], 0) + 1
    print(f"recorded {len(snapshot)} runs in text formats to {out}: {dict(sorted(by_format.items()))}")


def compare(path: Path) -> int:
    import pandas.testing

    snapshot = pickle.loads(path.read_bytes())
    differences = 0
    for key, before in snapshot.items():
        files = before["files"]
        fmt = text_format(files)
        after = {"format": fmt, "files": files, **outcome(files)}
        frames = ("metrics", "events")
        problems = [k for k in before if k not in frames and before[k] != after.get(k)]
        for frame in frames:
            if frame in before and frame in after:
                try:
                    pandas.testing.assert_frame_equal(before[frame], after[frame], check_exact=True)
                except AssertionError as err:
                    problems.append(f"{frame}: {str(err).splitlines()[0:3]}")
        if problems:
            differences += 1
            print(f"DIFFERENT {key} ({before['format']}): {problems}")
    print(f"{len(snapshot) - differences} of {len(snapshot)} runs identical")
    return 1 if differences else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["record", "compare"])
    parser.add_argument("snapshot", type=Path)
    parser.add_argument("--mutated", type=int, default=0, help="fuzz-mutated runs to add when recording")
    parser.add_argument("--seed", type=int, default=11, help="seed of the mutations")
    parser.add_argument("--llm", action="store_true", help="the large-model logs instead of the text logs")
    parser.add_argument("--seeds-of", help="mutate only the runs detected as this format")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    if args.mode == "record":
        record(args.snapshot, args.mutated, args.seed, args.llm, args.seeds_of)
        return 0
    return compare(args.snapshot)


if __name__ == "__main__":
    sys.exit(main())
