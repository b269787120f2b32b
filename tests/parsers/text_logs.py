"""Helpers for the text-log plug-in tests: parse an inline log, read one curve as tuples."""

from types import ModuleType

from parsers.registry import ParsedFile
from parsers.source import SourceFile


def parse_text(module: ModuleType, text: str, name: str = "train.log") -> tuple[SourceFile, ParsedFile]:
    source = SourceFile.from_bytes(name, text.encode())
    return source, module.parse(source)


def rows(frame, metric: str, split: str = "train") -> list[tuple[int, float, int]]:
    """(step, value, line) of one metric, in frame order."""
    picked = frame[(frame["metric"] == metric) & (frame["split"] == split)]
    return list(zip(picked["step"], picked["value"], picked["line"], strict=True))
