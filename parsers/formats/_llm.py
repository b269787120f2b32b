"""Shared pieces of the large-model log plug-ins (Megatron-LM, DeepSpeed, nanoGPT, torchtitan).

Pre-training logs run to gigabytes of lines that repeat one layout millions of times, so values are
read a layout at a time, not a line at a time: records are found with one whole-text regex, grouped by
their layout (the record with its values cut out), and each group's values are pulled with one
`findall` and converted by NumPy. A record costs a few C calls, not a Python loop over its fields.
"""

from __future__ import annotations

import re

import numpy as np

ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# `key: value |` with the value cut out: what records of one layout share
_PIPE_VALUE = re.compile(r":[^|\n]*\|")
_PIPE_CAPTURE = re.compile(r":\s*([^|\n]*?)\s*\|")
# one match per line: the first `YYYY-mm-dd HH:MM:SS[.fff]` of the line, or empty groups
_STAMP_LINE = re.compile(
    r"^(?:[^\n]*?(\d{4})-(\d\d)-(\d\d)[ T](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?)?[^\n]*$", re.MULTILINE
)


def without_ansi(text: str) -> str:
    """The text without terminal colour codes (torchtitan colours every field unless told not to)."""
    return ANSI.sub("", text) if "\x1b" in text else text


def floats(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(values, present) of printed numbers; thousands commas dropped, anything else not a number
    (`N/A`, an empty field) absent rather than an error."""
    texts = np.asarray(texts, dtype=str)
    if len(texts) and np.char.find(texts, ",").max() >= 0:
        texts = np.char.replace(texts, ",", "")
    try:
        values = texts.astype(np.float64)
        return values, np.ones(len(values), dtype=bool)
    except ValueError:
        values = np.full(len(texts), np.nan)
        present = np.zeros(len(texts), dtype=bool)
        for i, text in enumerate(texts):
            try:
                values[i] = float(text)
                present[i] = True
            except ValueError:
                continue
        return values, present


def pipe_columns(rests: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per key, (values, present) over the records, from `key: value |` fields (Megatron's layout).
    The keys are not hard-coded: every field with a colon is read."""
    count = len(rests)
    if not count:
        return {}
    layouts = _PIPE_VALUE.sub("|", "\n".join(rests)).split("\n")
    groups: dict[str, list[int]] = {}
    for index, layout in enumerate(layouts):
        groups.setdefault(layout, []).append(index)
    columns: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for members in groups.values():
        fields = rests[members[0]].split("|")[:-1]
        keys = [field.partition(":")[0].strip() for field in fields if ":" in field]
        if not keys:
            continue
        texts = _PIPE_CAPTURE.findall("\n".join(rests[i] for i in members))
        if len(texts) != len(keys) * len(members):
            continue  # cannot happen for records of one layout; never misplace a value
        table = np.asarray(texts, dtype=str).reshape(len(members), len(keys))
        where = np.asarray(members, dtype=np.int64)
        for position, key in enumerate(keys):
            values, present = floats(table[:, position])
            if key not in columns:
                columns[key] = (np.full(count, np.nan), np.zeros(count, dtype=bool))
            all_values, all_present = columns[key]
            all_values[where] = values
            all_present[where] = present
    return columns


def wall_times(text: str, starts: list[int]) -> np.ndarray | None:
    """Seconds since the first record, from the timestamp in the logging prefix before each record
    (`[2024-06-13 10:11:12.123456]`, `[rank0]:[titan] 2025-11-25 19:45:01,441 - root - INFO - `);
    None when the first record has no prefix. All records at once: one regex pass, NumPy dates."""
    prefixes = [text[text.rfind("\n", 0, start) + 1 : start] for start in starts]
    if not prefixes or not prefixes[0].strip():
        return None
    rows = _STAMP_LINE.findall("\n".join(prefixes))
    if len(rows) != len(prefixes) or not rows[0][0]:
        return None
    iso = [f"{r[0]}-{r[1]}-{r[2]}T{r[3]}:{r[4]}:{r[5]}.{r[6][:6] or 0}" if r[0] else "NaT" for r in rows]
    try:
        stamps = np.asarray(iso, dtype="datetime64[us]")
    except ValueError:  # a 99th month in a noise line: no wall time rather than a wrong one
        return None
    elapsed = (stamps - stamps[0]).astype(np.float64) / 1e6
    elapsed[np.isnat(stamps)] = np.nan
    return elapsed
