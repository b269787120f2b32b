"""The "try an example" list: every file or folder (a multi-file run) under sample_logs/.

Descriptions come from sample_logs/labels.csv when it exists (first column naming the file or
folder, and a descriptive column such as title/description/symptom).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_logs"
_SKIPPED = {"labels.csv", "README.md", "readme.md"}
_KEY_COLUMNS = ("path", "file", "name", "run", "log")
_TEXT_COLUMNS = ("title", "description", "label", "symptom", "expected_symptom", "summary")


@dataclass(frozen=True)
class Example:
    name: str  # path relative to sample_logs/
    description: str
    path: Path

    def files(self) -> list[tuple[str, bytes]]:
        """The run's files as (name, bytes), like an upload: a folder gives every file below it."""
        if self.path.is_dir():
            members = sorted(p for p in self.path.rglob("*") if p.is_file() and not p.name.startswith("."))
            return [(str(p.relative_to(self.path)), p.read_bytes()) for p in members]
        return [(self.path.name, self.path.read_bytes())]


def _descriptions(root: Path) -> dict[str, str]:
    labels = root / "labels.csv"
    if not labels.is_file():
        return {}
    with labels.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    if not rows:
        return {}
    columns = list(rows[0])
    key = next((c for c in columns if c.lower() in _KEY_COLUMNS), columns[0])
    text = next((c for c in columns if c.lower() in _TEXT_COLUMNS), None)
    out = {}
    for row in rows:
        name = (row.get(key) or "").strip().strip("/")
        if name and text:
            out[name] = (row.get(text) or "").strip()
    return out


def list_examples(root: Path = SAMPLE_DIR) -> list[Example]:
    if not root.is_dir():
        return []
    descriptions = _descriptions(root)
    out = []
    for path in sorted(root.rglob("*")):
        relative = str(path.relative_to(root))
        if path.name in _SKIPPED or path.name.startswith((".", "_")) or path.suffix in (".py", ".md"):
            continue
        parent_listed = any(str(p) in descriptions for p in Path(relative).parents if str(p) != ".")
        # A folder is a run when labels.csv names it or it holds no sub-folders; files inside such
        # a folder belong to that run.
        if path.is_dir():
            is_run = relative in descriptions or not any(c.is_dir() for c in path.iterdir())
            if is_run and not parent_listed:
                out.append(Example(relative, descriptions.get(relative, ""), path))
        elif path.parent == root or (relative in descriptions and not parent_listed):
            out.append(Example(relative, descriptions.get(relative, ""), path))
    return out
