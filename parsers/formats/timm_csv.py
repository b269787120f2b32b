"""timm `summary.csv` (train.py's `update_summary`): `epoch,train_loss,eval_loss,eval_top1,eval_top5,lr`.

A plain epoch table that generic_csv reads correctly (`train_loss` -> train loss, `eval_top1` ->
val accuracy, `eval_top5` -> val top5); this module only recognises it with more confidence than
the generic reader so that the run is labelled timm/PyTorch. A resumed run writes the header
again; that repeated header is dropped.
"""

from __future__ import annotations

from parsers.formats import _table, generic_csv
from parsers.model import RunMeta
from parsers.registry import ParsedFile
from parsers.source import SourceFile

FORMAT = "timm_csv"
FRAMEWORK = "pytorch"


def sniff(source: SourceFile) -> float:
    columns = _table.header_columns(source)
    if columns[:1] == ["epoch"] and "train_loss" in columns and any(c.startswith("eval_") for c in columns):
        return 0.6
    return 0.0


def parse(source: SourceFile) -> ParsedFile:
    return generic_csv.parse_table(source, RunMeta(framework=FRAMEWORK, format=FORMAT))
