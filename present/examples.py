"""The "try an example" list: every file or folder (a multi-file run) under sample_logs/.

When sample_logs/labels.csv exists it lists the examples (a column naming the file or folder, and a
descriptive column such as title/description/symptom); otherwise the folder layout does.
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
    """The entries of labels.csv that exist; without labels.csv, the top-level files and every folder
    without sub-folders (a multi-file run)."""
    if not root.is_dir():
        return []
    descriptions = _descriptions(root)
    if descriptions:
        return [
            Example(name, text, root / name) for name, text in descriptions.items() if (root / name).exists()
        ]
    out = []
    for path in sorted(root.rglob("*")):
        if path.name in _SKIPPED or path.name.startswith((".", "_")) or path.suffix in (".py", ".md"):
            continue
        leaf_folder = path.is_dir() and not any(child.is_dir() for child in path.iterdir())
        if leaf_folder or (path.is_file() and path.parent == root):
            out.append(Example(str(path.relative_to(root)), "", path))
    return out
