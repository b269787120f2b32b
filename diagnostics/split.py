"""The frozen train/test split of the labelled corpus (`sample_logs/corpus`).

The rule was written down before any threshold was fitted, and never changes:

* every run of a held-out model family goes to the test split (the rules never see that family
  while they are tuned), and
* every run of a held-out *group* goes there too. A group is one base recipe (model, data and seeds)
  with all the faulty variants built from it, so a test run is never the sibling of a training run.
  Groups are held out by a hash of their id, which no tuning can move.

`split.csv` beside the corpus labels freezes the outcome with a checksum of every file; a test fails
when a run moves, appears, vanishes or changes a byte (`python -m diagnostics.split --check`).

`sample_logs/corpus_fresh` is a second held-out set, generated after the test split's mistakes had been
read (the groups that follow the corpus's in the same sampling, so new ids and seeds): every run of it
is `fresh`, and its own `split.csv` freezes it the same way (`--corpus sample_logs/corpus_fresh`).

`sample_logs/corpus_extra` is more tuning data: the groups after the fresh set's, without the held-out
families; every run of it is `train`, frozen by its own `split.csv` (`--corpus sample_logs/corpus_extra`).

`sample_logs/corpus_unseen` is a third held-out set, generated after the test split and the fresh set had
both been read (the groups after the extra set's, every family): every run of it is `unseen`, frozen by
its own `split.csv` (`--corpus sample_logs/corpus_unseen`).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CORPUS = REPO / "sample_logs" / "corpus"
FRESH = REPO / "sample_logs" / "corpus_fresh"
EXTRA = REPO / "sample_logs" / "corpus_extra"
UNSEEN = REPO / "sample_logs" / "corpus_unseen"
LLM_TRAIN = REPO / "sample_logs" / "llm" / "train"  # tiny-GPT runs, fitted on
LLM_REPLAY = REPO / "sample_logs" / "llm" / "replay"  # the same families, another seed: never fitted on
HELD_OUT_FAMILIES = ("vgg",)
HELD_OUT_GROUP_PERCENT = 22  # of the remaining groups, by hash
MANIFEST_NAME = "split.csv"


def split_of(family: str, group: str) -> str:
    """'test' or 'train' for a run of this family and group."""
    if family in HELD_OUT_FAMILIES:
        return "test"
    bucket = int(hashlib.sha256(f"loss-doctor-split:{group}".encode()).hexdigest()[:8], 16) % 100
    return "test" if bucket < HELD_OUT_GROUP_PERCENT else "train"


@dataclass(frozen=True)
class Entry:
    path: str
    split: str
    family: str
    group: str
    sha256: str


def read_corpus_labels(corpus: Path = CORPUS) -> list[dict[str, str]]:
    with (corpus / "labels.csv").open(newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_digest(run: Path) -> str:
    """sha256 over the run's files (names and bytes, in name order); a file run is its own bytes."""
    digest = hashlib.sha256()
    files = sorted(p for p in run.rglob("*") if p.is_file()) if run.is_dir() else [run]
    for f in files:
        digest.update(f.relative_to(run if run.is_dir() else run.parent).as_posix().encode() + b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()


def entries(corpus: Path = CORPUS) -> list[Entry]:
    """The split as the rule gives it for the corpus on disk now (all `fresh` for the fresh set, all
    `train` for the extra training set, all `unseen` for the unseen set)."""
    whole = {FRESH.name: "fresh", EXTRA.name: "train", UNSEEN.name: "unseen"}.get(corpus.name)
    return [
        Entry(
            r["path"],
            whole or split_of(r["family"], r["group"]),
            r["family"],
            r["group"],
            run_digest(corpus / r["path"]),
        )
        for r in read_corpus_labels(corpus)
    ]


def read_manifest(corpus: Path = CORPUS) -> list[Entry]:
    with (corpus / MANIFEST_NAME).open(newline="", encoding="utf-8") as fh:
        return [Entry(**row) for row in csv.DictReader(fh)]


def write_manifest(corpus: Path = CORPUS) -> list[Entry]:
    found = entries(corpus)
    with (corpus / MANIFEST_NAME).open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["path", "split", "family", "group", "sha256"])
        writer.writerows([e.path, e.split, e.family, e.group, e.sha256] for e in found)
    return found


def differences(corpus: Path = CORPUS) -> list[str]:
    """What differs between the frozen manifest and the corpus on disk (empty when they agree)."""
    frozen = {e.path: e for e in read_manifest(corpus)}
    now = {e.path: e for e in entries(corpus)}
    out = [f"{p}: in the manifest, not in labels.csv" for p in sorted(frozen.keys() - now.keys())]
    out += [f"{p}: in labels.csv, not in the manifest" for p in sorted(now.keys() - frozen.keys())]
    for p in sorted(frozen.keys() & now.keys()):
        a, b = frozen[p], now[p]
        if a.split != b.split:
            out.append(f"{p}: split {a.split} in the manifest, {b.split} by the rule")
        if a.sha256 != b.sha256:
            out.append(f"{p}: files changed (sha256 {a.sha256[:12]} -> {b.sha256[:12]})")
    return out


def paths_of(split: str, corpus: Path = CORPUS) -> set[str]:
    """Run paths of one split, from the frozen manifest."""
    return {e.path for e in read_manifest(corpus) if e.split == split}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m diagnostics.split", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="freeze the split of the corpus on disk")
    parser.add_argument("--check", action="store_true", help="exit 1 when the corpus left the frozen split")
    parser.add_argument("--corpus", type=Path, default=CORPUS)
    args = parser.parse_args(argv)
    if args.write:
        found = write_manifest(args.corpus)
        counts = Counter(e.split for e in found)
        shares = ", ".join(f"{n} {name} ({n / len(found):.1%})" for name, n in sorted(counts.items()))
        print(f"{len(found)} runs: {shares or 'none'}")
        return 0
    problems = differences(args.corpus)
    print("\n".join(problems) or "the corpus matches its frozen split")
    return 1 if problems and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
