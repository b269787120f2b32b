"""Format plug-ins: every module in `parsers/formats/` is one format, found by discovery.

A format module defines:
    FORMAT: str                                   # stable id, e.g. "caffe_glog"
    FRAMEWORK: str                                # caffe, pytorch, keras, ...
    def sniff(source: SourceFile) -> float        # 0..1, from content (the name is only a hint)
    def parse(source: SourceFile) -> ParsedFile   # never raises on messy input except ParseError

Detection is by content: the format with the highest sniff score above 0 parses the file. A module
with `FALLBACK = True` (a file of settings only) is sniffed only when no other format claims the file:
it can never take a file from another format, and the files the others read never pay for its sniff.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType

import pandas as pd

from parsers import formats
from parsers.model import ParseWarning, RunMeta
from parsers.source import SourceFile


@dataclass
class ParsedFile:
    """What one file contributed: metrics (None for config-only files such as a prototxt)."""

    metrics: pd.DataFrame | None
    meta: RunMeta
    warnings: list[ParseWarning] = field(default_factory=list)
    skipped_lines: int = 0


@cache
def format_modules() -> dict[str, ModuleType]:
    """All format plug-ins, keyed by FORMAT id (found once; `parsers` imports them all)."""
    modules = {}
    for info in sorted(pkgutil.iter_modules(formats.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{formats.__name__}.{info.name}")
        modules[module.FORMAT] = module
    return modules


def detect(source: SourceFile) -> tuple[str | None, float]:
    """The best-scoring format for a file, with its score (None when nothing claims it); remembered
    on the file."""
    if source.detected is None:
        best, best_score = None, 0.0
        for fallback in (False, True):
            for fmt, module in format_modules().items():
                if getattr(module, "FALLBACK", False) is not fallback:
                    continue
                score = float(module.sniff(source))
                if score > best_score:
                    best, best_score = fmt, score
            if best is not None:
                break
        source.detected = (best, best_score)
    return source.detected
