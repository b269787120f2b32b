"""Regenerate sample_logs/corpus/: several hundred real (tiny) training runs sampled from scenarios, each
written gzipped in one log format and labelled with a symptom and cause that the generator checked
against the run's own numbers. Every logged number comes from an actual training step.

    /work/train-venv/bin/python sample_logs/generate_corpus.py [--jobs 2] [--only SUBSTR]
        [--skip N] [--limit N]
    /work/train-venv/bin/python sample_logs/generate_corpus.py --fresh   # the fresh held-out set
    /work/train-venv/bin/python sample_logs/generate_corpus.py --extra   # more training runs
    /work/train-venv/bin/python sample_logs/generate_corpus.py --unseen  # the third held-out set

`--fresh` writes sample_logs/corpus_fresh/: the groups that come after the corpus's own in the same
sampling (new group ids, hence new seeds), for a held-out set made after the test split was read.
`--extra` writes sample_logs/corpus_extra/: the groups after the fresh set's, for tuning only (every run
is `train`), without the model families the test split holds out whole (`diagnostics.split`).
`--unseen` writes sample_logs/corpus_unseen/: the groups after the extra set's, every family included,
for a held-out set made after the test split and the fresh set had both been read.

Needs torch (CPU), numpy and tensorboardX (requirements-train.txt). See corpus/README.md.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing as mp
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from generator.corpus import readme  # noqa: E402
from generator.corpus.runner import COLUMNS, run_group  # noqa: E402
from generator.corpus.scenarios import build, build_caffe  # noqa: E402

CORPUS = HERE / "corpus"
FRESH = HERE / "corpus_fresh"
EXTRA = HERE / "corpus_extra"
UNSEEN = HERE / "corpus_unseen"
N_GROUPS = 90  # PyTorch groups (5 formats)
N_CAFFE = 18  # mini-Caffe groups (caffe_glog)
FRESH_GROUPS = 30  # PyTorch groups after the corpus's N_GROUPS
FRESH_CAFFE = 6  # mini-Caffe groups after its N_CAFFE
EXTRA_GROUPS = 144  # PyTorch groups after the fresh set's (the held-out family's are left out)
EXTRA_CAFFE = 25  # mini-Caffe groups after the fresh set's
UNSEEN_GROUPS = 30  # PyTorch groups after the extra set's (every family)
UNSEEN_CAFFE = 6  # mini-Caffe groups after the extra set's
HELD_OUT_FAMILIES = ("vgg",)  # diagnostics.split's: never trained on


def _job(args):
    group, out_root = args
    engine = None
    if any(r.engine == "caffe" for r in group):
        from generator.corpus.caffe_train import run_caffe

        engine = run_caffe
    return run_group(group, out_root, engine)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--only", help="only groups with a run id containing this")
    p.add_argument("--skip", type=int, help="leave out the first N groups (e.g. those already generated)")
    p.add_argument("--limit", type=int, help="only the first N groups")
    p.add_argument("--groups", type=int, default=N_GROUPS)
    p.add_argument("--caffe-groups", type=int, default=N_CAFFE)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--fresh", action="store_true", help="write the fresh held-out set (corpus_fresh/)")
    which.add_argument("--extra", action="store_true", help="write the extra training set (corpus_extra/)")
    which.add_argument("--unseen", action="store_true", help="write the third held-out set (corpus_unseen/)")
    args = p.parse_args(argv)
    out_dir = FRESH if args.fresh else EXTRA if args.extra else UNSEEN if args.unseen else CORPUS
    if args.fresh:  # continue the same sampling: later groups never share an id or seed with the corpus
        torch_groups = build(args.groups + FRESH_GROUPS)[args.groups :]
        caffe_groups = build_caffe(args.caffe_groups + FRESH_CAFFE)[args.caffe_groups :]
    elif args.extra:  # after the fresh set's groups; the held-out family stays unseen by the fit
        first, first_caffe = args.groups + FRESH_GROUPS, args.caffe_groups + FRESH_CAFFE
        torch_groups = [
            g for g in build(first + EXTRA_GROUPS)[first:] if g[0].family not in HELD_OUT_FAMILIES
        ]
        caffe = build_caffe(first_caffe + EXTRA_CAFFE)[first_caffe:]
        caffe_groups = [g for g in caffe if g[0].family not in HELD_OUT_FAMILIES]
    elif args.unseen:  # after the extra set's groups (its range, the held-out family's groups included)
        first = args.groups + FRESH_GROUPS + EXTRA_GROUPS
        first_caffe = args.caffe_groups + FRESH_CAFFE + EXTRA_CAFFE
        torch_groups = build(first + UNSEEN_GROUPS)[first:]
        caffe_groups = build_caffe(first_caffe + UNSEEN_CAFFE)[first_caffe:]
    else:
        torch_groups, caffe_groups = build(args.groups), build_caffe(args.caffe_groups)
    groups = []  # one Caffe group after every five PyTorch groups
    for i, g in enumerate(torch_groups):
        groups.append(g)
        if i % 5 == 4 and caffe_groups:
            groups.append(caffe_groups.pop(0))
    groups += caffe_groups
    if args.only:
        groups = [g for g in groups if any(args.only in r.run_id for r in g)]
    if args.skip:
        groups = groups[args.skip :]
    if args.limit:
        groups = groups[: args.limit]
    partial = bool(args.only or args.skip or args.limit)
    runs_dir = out_dir / "runs"  # run folders are replaced one by one; labels.csv follows each group
    runs_dir.mkdir(parents=True, exist_ok=True)
    labels = out_dir / "labels.csv"
    old: list[dict] = []
    if partial and labels.exists():
        with labels.open(encoding="utf-8") as fh:
            old = list(csv.DictReader(fh))
    start = time.perf_counter()
    rows: list[dict] = []
    jobs = [(g, runs_dir) for g in groups]
    with mp.get_context("fork").Pool(args.jobs, maxtasksperchild=8) as pool:
        for i, out in enumerate(pool.imap_unordered(_job, jobs), 1):
            rows += out
            write_labels(labels, old, rows)
            kept = sum(1 for x in out if "path" in x)
            print(
                f"[{i}/{len(jobs)}] {out[0].get('group') or out[0]['run_id']}: {kept}/{len(out)} kept "
                f"({time.perf_counter() - start:.0f}s)",
                flush=True,
            )
    wall = time.perf_counter() - start
    kept = [x for x in rows if "path" in x]
    dropped = [x for x in rows if "dropped" in x]
    all_rows = write_labels(labels, old, rows)
    listed = {row["path"].split("/", 1)[1] for row in all_rows}
    for folder in runs_dir.iterdir():  # runs of earlier regenerations that are no longer labelled
        if folder.name not in listed:
            shutil.rmtree(folder)
    relabelled = [x for x in kept if x["relabelled_from"]]
    print(
        f"\n{len(kept)} kept, {len(relabelled)} of them relabelled, {len(dropped)} dropped; {wall:.0f}s wall"
    )
    for x in relabelled:
        print(f"  relabelled {x['path']}: {x['relabelled_from']} -> {x['symptom']}")
    for x in dropped:
        print(f"  dropped {x['run_id']}: {x['dropped']}")
    print(Counter(x["symptom"] for x in all_rows))
    readme.write(out_dir, all_rows, dropped, wall if not partial else None, args.jobs)
    return 0


def write_labels(labels: Path, old: list[dict], rows: list[dict]) -> list[dict]:
    """labels.csv: the kept rows so far, plus (in a partial run) the earlier rows of other runs."""
    kept = [x for x in rows if "path" in x]
    redone = {x["path"] for x in kept} | {f"runs/{x['run_id']}" for x in rows if "dropped" in x}
    all_rows = sorted([row for row in old if row["path"] not in redone] + kept, key=lambda x: x["path"])
    tmp = labels.with_suffix(".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(all_rows)
    tmp.replace(labels)
    return all_rows


if __name__ == "__main__":
    raise SystemExit(main())
