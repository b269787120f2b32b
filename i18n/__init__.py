"""The message catalogue: every user-facing text, English and 简体中文 side by side.

Texts live in the TOML files of this folder (one table per key, `en` and `zh` beside each other):

    [ui.verdict]
    en = "Verdict: {symptom}"
    zh = "诊断结论：{symptom}"

`t("ui.verdict", "zh", symptom=...)` formats one. Code never holds user-facing prose: a diagnosis
stores catalogue keys and numbers, and is rendered in the reader's language at display time.

A text whose noun follows a `{count}` may add the singular beside it (`en_one = "{count} isolated
spike; ..."`), used when count is 1: "1 isolated spikes" reads as a bug; `zh_one` where the Chinese
text speaks of "the largest of them".
"""

from __future__ import annotations

import string
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

LANGUAGES = {"en": "English", "zh": "简体中文"}
DEFAULT_LANGUAGE = "en"
_DIR = Path(__file__).parent
_SINGULARS = {f"{lang}_one" for lang in LANGUAGES}


@cache
def catalogue() -> dict[str, dict[str, str]]:
    """All entries: flattened key -> {"en": ..., "zh": ...}. Keys are unique across files."""
    entries: dict[str, dict[str, str]] = {}
    for path in sorted(_DIR.glob("*.toml")):
        with path.open("rb") as fh:
            _flatten(tomllib.load(fh), "", entries, path.name)
    return entries


def _flatten(table: dict[str, Any], prefix: str, out: dict[str, dict[str, str]], origin: str) -> None:
    if "en" in table and isinstance(table["en"], str):
        if prefix in out:
            raise ValueError(f"catalogue key {prefix!r} defined twice ({origin})")
        out[prefix] = {k: v for k, v in table.items() if k in LANGUAGES or k in _SINGULARS}
        return
    for key, value in table.items():
        if isinstance(value, dict):
            _flatten(value, f"{prefix}.{key}" if prefix else key, out, origin)


def has(key: str) -> bool:
    return key in catalogue()


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The text for `key` in `lang` (English when that language lacks it), formatted with params.
    An unknown key raises KeyError: a typo must fail tests, not show a key to the user."""
    entry = catalogue()[key]
    template = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    if params.get("count") == 1 and lang in entry:
        template = entry.get(f"{lang}_one", template)
    return template.format(**params) if params else template


def placeholders(template: str) -> set[str]:
    """Field names used by a template ("{lr:.4g}" -> {"lr"})."""
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}
