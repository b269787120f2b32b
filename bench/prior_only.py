"""Where LD206's lost-signal reading acts, on the tuning sets only: `python bench/prior_only.py`.

A plateau whose evaluated answers never changed under a working lr is read as a signal that never
reaches the output (`_prior_only` in `diagnostics/rules/causes.py`). This lists every training-split
and extra-set run whose diagnosis carries that evidence, with its labelled cause and the first cause
named with the committed params and with the reading off (`ld206_score_prior_only` = 0), then counts
the labels and how often each reading names the labelled cause first. Held-out sets are not read.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from diagnostics import diagnose, fitted  # noqa: E402
from diagnostics.evaluate import read_labels, resolve_run_path, set_source  # noqa: E402
from parsers import load_paths  # noqa: E402

TUNING_SETS = ("corpus-train", "corpus-extra")
OFF = dataclasses.replace(fitted.PARAMS, ld206_score_prior_only=0.0)


def first_cause(log, params) -> str:
    causes = diagnose(log, params).causes
    return causes[0].id if causes else "-"


def main() -> int:
    start = time.perf_counter()
    labels: Counter[str] = Counter()
    right_on, right_off = 0, 0
    for name in TUNING_SETS:
        source = set_source(name)
        if source is None:
            continue
        path, filters = source
        folder = filters.get("base") or path.parent
        for row in read_labels(path, filters.get("only")):
            log = load_paths([resolve_run_path(folder, row.path)])
            d = diagnose(log)
            if not any(e.key == "evidence.prior_only" for c in d.causes for e in c.evidence):
                continue
            label = row.causes[0] if row.causes else "healthy"
            on, off = d.causes[0].id, first_cause(log, OFF)
            labels[label] += 1
            right_on += on in row.causes
            right_off += off in row.causes
            print(f"{name:13s} {row.path:45s} label {label:16s} first cause {off:16s} -> {on}")
    total = sum(labels.values())
    counts = ", ".join(f"{k} {v}" for k, v in labels.most_common())
    print(f"\n{total} runs with the reading; labels: {counts}")
    print(f"labelled cause named first: {right_off} with the reading off -> {right_on} with it")
    print(f"\n{time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
