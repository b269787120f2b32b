"""Turn the files of one training run (bytes + names) into one tidy `TrainingLog`.

from parsers import load
log = load([("train.log", data), ("solver.prototxt", solver_bytes)])
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from parsers.events import events_frame, file_events
from parsers.model import (
    METRIC_COLUMNS,
    LogLine,
    ParseWarning,
    RunMeta,
    TrainingLog,
    empty_metrics,
    hidden_nan_note,
    reveal_hidden_nan,
    validate_metrics,
)
from parsers.names import MAX_NAME_CHARS, capped_name
from parsers.registry import ParsedFile, detect, format_modules
from parsers.source import (
    MAX_LINE_CHARS,
    NOT_LOG_SUFFIXES,
    ParseError,
    SourceFile,
    budget,
    describe_head,
    saved_object,
)

__all__ = [
    "LogLine",
    "ParseError",
    "ParseWarning",
    "ParsedFile",
    "RunMeta",
    "SourceFile",
    "TrainingLog",
    "detect",
    "empty_metrics",
    "load",
    "load_paths",
    "source_files",
    "validate_metrics",
]

format_modules()  # every plug-in imported (and its patterns compiled) here, not in the first parse

_MAX_LONG_LINE_WARNINGS = 20  # warnings naming a skipped long line; a count says the rest
# When several files fail, each gets one line of at most this many characters, and at most
# MAX_LISTED_FAILURES are listed: a folder of 2,000 junk files gave 839 KB of messages.
MAX_LISTED_FAILURES = 20
_TRAINING_ARGS_HINT = (
    " It holds HF Trainer's arguments, which its TensorBoard event file (the `args` text) and a printed"
    " TrainingArguments also show."
)
_FAILURE_LINE = 160


def load(files: Sequence[tuple[str, bytes]] | Sequence[SourceFile], fmt: str | None = None) -> TrainingLog:
    """Parse every file of one run and merge them. Raises ParseError when none holds metrics."""
    sources = [f if isinstance(f, SourceFile) else SourceFile.from_bytes(f[0], f[1]) for f in files]
    if not sources:
        raise ParseError("no file was given")
    modules = format_modules()
    parsed: list[tuple[SourceFile, str, ParsedFile]] = []
    failures: list[str] = []
    for source in sources:
        if source.is_blank():
            failures.append(f"{source.name}: the file is empty")
            continue
        file_fmt = fmt if fmt is not None else detect(source)[0]
        if file_fmt is None:
            failures.append(_unrecognised(source))
            continue
        try:
            result = modules[file_fmt].parse(source)
        except ParseError as err:
            failures.append(f"{source.name}: {err}{_long_lines_note(source)}")
            continue
        result.meta.formats = [file_fmt]
        result.warnings[:0] = [ParseWarning(source.name, 0, note) for note in source.notes]
        result.warnings[len(source.notes) : len(source.notes)] = _long_line_warnings(source)
        result.skipped_lines += len(source.long_lines)
        _shorten_long_names(result, source.name)
        _reveal_hidden_nan(result, source.name)
        parsed.append((source, file_fmt, result))

    with_metrics = [p for p in parsed if p[2].metrics is not None and len(p[2].metrics)]
    if not with_metrics:
        if failures:
            raise ParseError(_failure_summary(failures))
        names = ", ".join(s.name for s in sources)
        raise ParseError(
            f"{names}: configuration found, but no training metrics. Upload the training log "
            "(or TensorBoard event file / metrics file) together with the configuration."
        )
    return _merge(with_metrics, [p for p in parsed if p not in with_metrics], failures)


def load_paths(paths: Iterable[str | os.PathLike[str]], fmt: str | None = None) -> TrainingLog:
    """`load` for files on disk; a directory stands for every file below it."""
    return load(source_files(paths), fmt=fmt)


def source_files(paths: Iterable[str | os.PathLike[str]]) -> list[SourceFile]:
    """The files `load_paths` reads: a directory stands for every file below it (checkpoints, images
    and hidden files left out)."""
    files: list[SourceFile] = []
    for path in map(Path, paths):
        members = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for member in members:
            if path.is_dir() and (member.suffix in NOT_LOG_SUFFIXES or member.name.startswith(".")):
                continue
            files.append(SourceFile.from_path(member))
    return files


def _merge(
    with_metrics: list[tuple[SourceFile, str, ParsedFile]],
    config_only: list[tuple[SourceFile, str, ParsedFile]],
    failures: list[str],
) -> TrainingLog:
    meta = RunMeta()
    for _, _, result in with_metrics + config_only:
        meta.merge(result.meta)
    meta.format = with_metrics[0][1]
    frames = []
    for source, _, result in with_metrics:
        frame = result.metrics
        if set(frame["source"].cat.categories) <= {""}:  # categories, not 10M strings
            frame = frame.assign(source=pd.Categorical([source.name] * len(frame)))
        frames.append(frame)
    metrics = frames[0] if len(frames) == 1 else _concat(frames)
    lr = metrics.loc[(metrics["metric"] == "lr") & np.isfinite(metrics["value"]), "value"]
    if len(lr) and meta.peak_lr is None:
        meta.peak_lr = float(lr.max())
    # base_lr stays "not stated" when no config says it: the first logged lr is often a warm-up start
    warnings = [w for _, _, r in with_metrics + config_only for w in r.warnings]
    warnings += [ParseWarning("", 0, f) for f in failures]
    return TrainingLog(
        metrics=metrics,
        meta=meta,
        warnings=warnings,
        skipped_lines=sum(r.skipped_lines for _, _, r in with_metrics + config_only),
        sources=[s.name for s, _, _ in with_metrics + config_only],
        events=_events(with_metrics),
    )


def _events(with_metrics: list[tuple[SourceFile, str, ParsedFile]]) -> pd.DataFrame:
    """The events of every file with metrics (text files also by their lines; see parsers/events.py)."""
    rows = []
    for source, _, result in with_metrics:
        assert result.metrics is not None
        text = None if source.looks_binary() else source.log_text
        rows += file_events(text, result.metrics, source.name)
    return events_frame(rows)


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    categorical = [c for c, dtype in METRIC_COLUMNS.items() if dtype == "category"]
    out = pd.concat([f.astype(dict.fromkeys(categorical, str)) for f in frames], ignore_index=True)
    return out.astype(dict.fromkeys(categorical, "category"))


def _shorten_long_names(result: ParsedFile, source_name: str) -> None:
    """Metric names over the cap shortened in the table (see `capped_name`), with a warning: the
    labels are categories, so this costs one pass over the distinct names."""
    if result.metrics is None:
        return
    shortened = 0  # names as logged (a long name usually gives a long metric too)
    for column in ("name", "metric"):
        labels = result.metrics[column].cat.categories
        capped = [capped_name(label) for label in labels]
        if capped != list(labels):
            if column == "name":
                shortened = sum(a != b for a, b in zip(capped, labels, strict=True))
            result.metrics[column] = result.metrics[column].cat.rename_categories(capped)
    if shortened:
        cap = budget("MAX_NAME_CHARS", MAX_NAME_CHARS)
        note = f"{shortened} metric name(s) longer than {cap} characters shortened (start … hash)"
        result.warnings.append(ParseWarning(source_name, 0, note))


def _reveal_hidden_nan(result: ParsedFile, source_name: str) -> None:
    """A loss of 0.0 beside a NaN grad norm is a NaN (`reveal_hidden_nan`), whichever format logged it."""
    hidden = 0 if result.metrics is None else reveal_hidden_nan(result.metrics)
    if hidden:
        result.warnings.insert(0, ParseWarning(source_name, 0, hidden_nan_note(hidden)))


def _long_line_warnings(source: SourceFile) -> list[ParseWarning]:
    """The lines a text parser skipped for their length (the first 20, then a count)."""
    cap = budget("MAX_LINE_CHARS", MAX_LINE_CHARS)
    shown = source.long_lines[:_MAX_LONG_LINE_WARNINGS]
    warnings = [ParseWarning(source.name, n, f"longer than {cap:,} characters; skipped") for n in shown]
    if len(source.long_lines) > len(shown):
        more = len(source.long_lines) - len(shown)
        warnings.append(ParseWarning(source.name, 0, f"{more} more line(s) longer than {cap:,} characters"))
    return warnings


def _long_lines_note(source: SourceFile) -> str:
    if not source.long_lines:
        return ""
    cap = budget("MAX_LINE_CHARS", MAX_LINE_CHARS)
    return f" ({len(source.long_lines)} line(s) longer than {cap:,} characters were skipped)"


def _failure_summary(failures: list[str]) -> str:
    """One failure in full (with the first lines seen); several as one short line each, capped."""
    if len(failures) == 1:
        return failures[0]
    lines = [f"{len(failures)} files could not be read:"]
    for failure in failures[:MAX_LISTED_FAILURES]:
        first = failure.splitlines()[0] if failure.strip() else failure
        lines.append(first if len(first) <= _FAILURE_LINE else first[: _FAILURE_LINE - 1] + "…")
    if len(failures) > MAX_LISTED_FAILURES:
        lines.append(f"... and {len(failures) - MAX_LISTED_FAILURES} more file(s) that could not be read")
    return "\n".join(lines)


def _unrecognised(source: SourceFile) -> str:
    if saved_object(source):
        message = (
            f"{source.name}: a saved Python object (torch.save or pickle), not a training log; not read, "
            "since loading a pickle runs its code."
        )
        if source.name.endswith("training_args.bin"):
            message += _TRAINING_ARGS_HINT
        return message
    kinds = ", ".join(sorted(format_modules()))
    return (
        f"{source.name}: no training metrics recognised. Looked for: {kinds}.\n"
        f"First lines seen:\n{describe_head(source)}"
    )
