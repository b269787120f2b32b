"""Many runs from one input: a tree of folders, a zip, an MLflow store, a W&B export.

Two steps, so that a scan can spread the second over processes:

1. `group_tree` reads only the structure (paths, and the first 4 KB of each file: SQLite's header):
   an MLflow file-store run folder, a W&B run folder, one run per row of an MLflow database, and
   otherwise the files directly in one folder.
2. `runs_of_group` reads the content of one group and cuts it into runs: a W&B panel CSV with
   several runs becomes one CSV per run; a folder is one run (a log with its configs, a TensorBoard
   run's event files) unless it holds several metrics files of one format, which are then one run
   each, with the folder's config files beside every one (and the files no reader recognises
   together, so that they are reported once).

`load_run` parses one run, whatever it came from. Inside a run, files are named by their path
relative to the run's folder.
"""

from __future__ import annotations

import csv
import io
import os
import posixpath
import re
import sqlite3
import zipfile
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from parsers import detect, load
from parsers.formats import wandb_csv
from parsers.model import TrainingLog
from parsers.source import (
    MAX_COMPRESSION_RATIO,
    MAX_DECOMPRESSED_BYTES,
    NOT_LOG_SUFFIXES,
    ParseError,
    SourceFile,
    budget,
    check_budget,
)
from parsers.trackers import (
    SQLITE_MAGIC,
    is_mlflow_run,
    is_wandb_run,
    load_mlflow_run,
    load_wandb_run,
    mlflow_db_run_files,
    mlflow_db_runs,
    mlflow_run_name,
    open_mlflow_db,
    top_level_yaml,
)

Files = tuple[tuple[str, bytes], ...]
# Formats whose several files in one folder are one run when the tool named them (TensorBoard
# writes a new events.out.tfevents.* file per restart; mmengine writes scalars.json and
# <timestamp>.json side by side); files of these formats renamed by someone are one run each.
MULTI_FILE_FORMATS = {"tfevents", "mmengine_json"}
MULTI_FILE_NAMES = re.compile(r"events\.out\.tfevents\.|scalars\.json$|\d{8}_\d{6}\.json$")
# Formats that hold settings only: they go with every run of their folder.
CONFIG_FORMATS = {"caffe_prototxt", "lightning_hparams"}
# Files never part of a run: checkpoints, images, arrays, and the folders tools keep beside runs.
IGNORED_SUFFIXES = NOT_LOG_SUFFIXES | {".zip"}
IGNORED_DIRS = {"artifacts", "__pycache__", "__MACOSX"}
# A zip upload is read under these budgets (the total is LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES).
MAX_ZIP_MEMBERS = 10_000
ZIP_MAGIC = b"PK\x03\x04"
HEAD_BYTES = 4096  # what `group_tree` reads of a file: SQLite's header, an MLflow experiment's meta.yaml
_ZIP_STEP = 1024**2


@dataclass(frozen=True)
class RunGroup:
    """The files of one run, or of a container of runs, found from the tree's structure."""

    label: str  # where it is, relative to the root ("." for the root itself)
    kind: str  # "folder", "mlflow_run", "wandb_run", "mlflow_db", or "unreadable" (a folder not listed)
    paths: tuple[str, ...]  # relative to the root
    base: str = ""  # names inside the run are relative to this folder
    key: str | None = None  # the run id of an mlflow_db group
    name: str = ""  # the run's name when the structure says it (MLflow database runs), or the error


@dataclass
class Run:
    label: str
    sources: list[SourceFile] = field(default_factory=list)


def group_tree(
    paths: Iterable[str],
    head: Callable[[str], bytes],
    db_runs: Callable[[str], list[tuple[str, str]]],
    top: str = ".",
    prefix: str = "",
) -> list[RunGroup]:
    """The runs of a tree from its relative POSIX `paths`. `head(path)` gives a file's first HEAD_BYTES and
    `db_runs(path)` the (id, name) of the runs of an MLflow database (empty when it is not one)."""
    paths = sorted(p for p in paths if not _ignored(p))
    children: dict[str, list[str]] = {}
    for path in paths:
        children.setdefault(posixpath.dirname(path), []).append(path)
    claimed: set[str] = set()
    groups: list[RunGroup] = []
    for folder in sorted(children):
        if _inside(folder, claimed):
            continue
        # the paths below a folder are one slice of the sorted list ("0" sorts right after "/")
        below = (
            paths[bisect_left(paths, folder + "/") : bisect_left(paths, folder + "0")] if folder else paths
        )
        names = [p[len(folder) + 1 :] if folder else p for p in below]
        for kind, test in (("mlflow_run", is_mlflow_run), ("wandb_run", is_wandb_run)):
            if test(names):
                claimed.add(folder)
                if not (kind == "mlflow_run" and _deleted_run(head(posixpath.join(folder, "meta.yaml")))):
                    groups.append(RunGroup(_labelled(folder, top, prefix), kind, tuple(below), folder))
                break
    run_parents = {posixpath.dirname(g.base) for g in groups if g.kind == "mlflow_run"}
    for folder, files in sorted(children.items()):
        if _inside(folder, claimed):
            continue
        plain = []
        for path in files:
            start = head(path)
            if posixpath.basename(path) == "meta.yaml" and (
                folder in run_parents or _experiment_record(start)
            ):
                continue  # mlruns/<experiment>/meta.yaml: the experiment's record, not a run
            runs = db_runs(path) if start.startswith(SQLITE_MAGIC) else []
            if runs:
                groups += [
                    RunGroup(_labelled(path, top, prefix), "mlflow_db", (path,), folder, run_id, name)
                    for run_id, name in runs
                ]
            else:
                plain.append(path)
        if plain:
            groups.append(RunGroup(_labelled(folder, top, prefix), "folder", tuple(plain), folder))
    return groups


def _labelled(path: str, top: str, prefix: str) -> str:
    """A group's label: `prefix` and its path below the root; the root itself is labelled `top`."""
    return (f"{prefix}/{path}" if prefix else path) if path else top


def _inside(folder: str, claimed: set[str]) -> bool:
    """Whether `folder` is a claimed run folder or below one (its ancestors looked up, not scanned)."""
    while True:
        if folder in claimed:
            return True
        parent = posixpath.dirname(folder)
        if parent == folder:  # "" or "/" (a member named "/x" has the root "/" above it, not "")
            return False
        folder = parent


def _deleted_run(meta_yaml: bytes) -> bool:
    """A run deleted in MLflow (still on disk until `mlflow gc`): left out, as MLflow's UI does."""
    return top_level_yaml(meta_yaml.decode("utf-8", "replace")).get("lifecycle_stage") == "deleted"


def _experiment_record(head: bytes) -> bool:
    keys = top_level_yaml(head.decode("utf-8", "replace"))
    return "experiment_id" in keys and "artifact_location" in keys and "run_id" not in keys


def _ignored(path: str) -> bool:
    parts = path.split("/")
    return (
        any(p.startswith(".") or p in IGNORED_DIRS for p in parts)
        or posixpath.splitext(path)[1].lower() in IGNORED_SUFFIXES
    )


def runs_of_group(
    group: RunGroup,
    read: Callable[[str], SourceFile],
    open_db: Callable[[str], sqlite3.Connection | None],
) -> list[Run]:
    """The runs of one group, read from its files (`read(path)`; `open_db(path)` for a database)."""
    if group.kind == "mlflow_db":
        connection = open_db(group.paths[0])
        if connection is None:
            raise ParseError(f"{group.paths[0]}: not an MLflow database any more")
        try:
            return [Run(f"{group.label}#{group.name}", mlflow_db_run_files(connection, group.key or ""))]
        finally:
            connection.close()
    sources = [_renamed(read(path), _relative(path, group.base)) for path in group.paths]
    if group.kind == "mlflow_run":
        name = mlflow_run_name(sources)
        label = group.label if not name or group.label.endswith(name) else f"{group.label} ({name})"
        return [Run(label, sources)]
    if group.kind == "wandb_run":
        return [Run(group.label, sources)]
    return _folder_runs(group.label, sources)


def _folder_runs(label: str, sources: list[SourceFile]) -> list[Run]:
    """A folder's files as runs: one, unless several metrics files share a format (see the module)."""
    formats = {id(s): detect(s)[0] for s in sources}
    exports = [s for s in sources if formats[id(s)] == wandb_csv.FORMAT]
    runs = [run for export in exports for run in split_wandb_export(export, _within(label, export.name))]
    sources = [s for s in sources if formats[id(s)] != wandb_csv.FORMAT]
    configs = [s for s in sources if formats[id(s)] in CONFIG_FORMATS]
    units: dict[str | None, list[list[SourceFile]]] = {}  # per format: the files that are one run each
    for source in sources:
        fmt = formats[id(source)]
        if fmt in CONFIG_FORMATS:
            continue
        unit = units.setdefault(fmt, [])
        tool_named = fmt in MULTI_FILE_FORMATS and MULTI_FILE_NAMES.match(source.name)
        shared = next((u for u in unit if tool_named and MULTI_FILE_NAMES.match(u[0].name)), None)
        if shared is not None:
            shared.append(source)
        else:
            unit.append([source])
    unknown = [files for unit in units.pop(None, []) for files in unit]
    if all(len(unit) <= 1 for unit in units.values()):
        return runs + ([Run(label, sources)] if units or unknown or not runs else [])
    for unit in units.values():
        single = len(unit) == 1 and len(unit[0]) > 1  # a TensorBoard run's event files
        for files in unit:
            runs.append(Run(label if single else _within(label, files[0].name), files + configs))
    return runs + ([Run(label, unknown)] if unknown else [])  # reported together, as one run's files


def split_wandb_export(source: SourceFile, label: str) -> list[Run]:
    """A W&B panel CSV as one CSV per run (`Step` and that run's columns, cells as written)."""
    try:
        reader = csv.reader(io.StringIO(source.text))
        header = next(reader, [])
        runs = wandb_csv.run_columns([name.strip() for name in header])
        rows = list(reader) if len(runs) > 1 else []
    except csv.Error:  # a NUL byte, a cell past the csv module's limit: the reader says what is wrong
        return [Run(label, [source])]
    if len(runs) < 2:
        return [Run(label if not runs else f"{label}#{next(iter(runs))}", [source])]
    out = []
    for run, metrics in runs.items():
        keep = [0] + [i for column in metrics.values() for i in _with_bands(header, column)]
        text = io.StringIO()
        writer = csv.writer(text, lineterminator="\n")
        writer.writerow([header[i] for i in keep])
        writer.writerows([row[i] if i < len(row) else "" for i in keep] for row in rows)
        out.append(Run(f"{label}#{run}", [SourceFile.from_bytes(source.name, text.getvalue().encode())]))
    return out


def _with_bands(header: list[str], index: int) -> list[int]:
    """A metric's column and its __MIN/__MAX columns, as the export has them."""
    bands = {header[index] + suffix for suffix in wandb_csv.BAND_SUFFIXES}
    return [index] + [i for i, name in enumerate(header) if name.strip() in bands]


def load_run(files: Sequence[tuple[str, bytes]] | Sequence[SourceFile]) -> TrainingLog:
    """Parse the files of one run (names relative to the run's folder), whatever wrote them."""
    sources = [f if isinstance(f, SourceFile) else SourceFile.from_bytes(f[0], f[1]) for f in files]
    names = [s.name for s in sources]
    if is_mlflow_run(names):
        return load_mlflow_run(sources)
    if is_wandb_run(names):
        return load_wandb_run(sources)
    if len(sources) == 1 and sources[0].head_bytes(4) == ZIP_MAGIC:
        runs = split_runs(expand_zip(sources[0].name, sources[0].as_bytes()), open_zips=False)
        if len(runs) != 1:
            raise ParseError(f"{sources[0].name}: holds {len(runs)} runs; upload it to see each")
        return load_run(runs[0][1])
    return load(sources)


def split_runs(files: Sequence[tuple[str, bytes]], open_zips: bool = True) -> list[tuple[str, Files]]:
    """Uploaded files (zips opened, not the zips inside them) as (label, files) per run, in the order
    found. Files that are one run come back as given; a zip that cannot be opened comes back alone,
    so that loading it states the reason."""
    entries: list[tuple[str, bytes]] = []
    broken: list[tuple[str, Files]] = []
    opened = False
    for name, data in files:
        if data[:4] != ZIP_MAGIC or not open_zips:
            entries.append((name, data))
            continue
        try:
            entries += expand_zip(name, data)
            opened = True
        except ParseError:
            broken.append((name, ((name, data),)))
    tree = _unique(entries)
    # One upload (a zip) names its root; the root of several uploaded files is no file's, so each run
    # found there is named by its own file.
    top = files[0][0] if len(files) == 1 else "."
    groups = group_tree(tree, lambda p: tree[p][:HEAD_BYTES], lambda p: _db_runs(tree[p]), top)
    runs = [
        run
        for group in groups
        for run in _runs_or_files(
            group,
            lambda p: SourceFile.from_bytes(posixpath.basename(p), tree[p]),
            lambda p: open_mlflow_db(tree[p]),
        )
    ]
    if len(runs) == 1 and not opened and not broken:
        return [(files[0][0], tuple(files))]
    return [(run.label, tuple((s.name, s.as_bytes()) for s in run.sources)) for run in runs] + broken


def _runs_or_files(
    group: RunGroup, read: Callable[[str], SourceFile], open_db: Callable[[str], sqlite3.Connection | None]
) -> list[Run]:
    """`runs_of_group`, or the group's files as one run when they cannot be split (a damaged
    database or table): loading them then says what is wrong."""
    try:
        return runs_of_group(group, read, open_db)
    except (ParseError, sqlite3.Error, csv.Error, OSError):
        return [Run(group.label, [_renamed(read(p), _relative(p, group.base)) for p in group.paths])]


def expand_zip(name: str, data: bytes) -> list[tuple[str, bytes]]:
    """The files of a zip upload as (path, bytes), under budgets: at most MAX_ZIP_MEMBERS files, the
    decompressed total and ratio of LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES / _MAX_COMPRESSION_RATIO
    (counted while reading, not from the archive's own claims); a path that leaves the archive
    (absolute, `..`) and encrypted files refuse the whole upload."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = [info for info in archive.infolist() if not info.is_dir()]
    except (zipfile.BadZipFile, OSError, ValueError) as err:
        raise ParseError(f"{name}: not a readable zip archive ({err})") from None
    most = budget("MAX_ZIP_MEMBERS", MAX_ZIP_MEMBERS)
    if len(members) > most:
        raise ParseError(
            f"{name}: {len(members):,} files in the archive; refusing more than {most:,} "
            "(the server's limit, LOSS_DOCTOR_MAX_ZIP_MEMBERS)"
        )
    limit = budget("MAX_DECOMPRESSED_BYTES", MAX_DECOMPRESSED_BYTES)
    ratio = budget("MAX_COMPRESSION_RATIO", MAX_COMPRESSION_RATIO)
    out, total = [], 0
    for info in members:
        path = _safe_member_path(name, info.filename)
        if not path:
            continue  # "." or "./": no file
        if info.flag_bits & 0x1:
            raise ParseError(f"{name}: {path} is encrypted; upload the archive without a password")
        chunks = []
        try:
            with archive.open(info) as member:
                while chunk := member.read(_ZIP_STEP):
                    total += len(chunk)
                    chunks.append(chunk)
                    check_budget(total, len(data), limit, ratio)
        except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as err:
            raise ParseError(f"{name}: {path} cannot be read ({err})") from None
        out.append((path, b"".join(chunks)))
    return out


def _safe_member_path(archive: str, path: str) -> str:
    clean = path.replace("\\", "/")
    parts = clean.split("/")
    if clean.startswith("/") or (len(parts[0]) == 2 and parts[0][1] == ":") or ".." in parts:
        raise ParseError(f"{archive}: the member {path[:120]!r} points outside the archive; refusing it")
    return "/".join(p for p in parts if p not in ("", "."))


def _db_runs(data: bytes | Path) -> list[tuple[str, str]]:
    """(id, name) of the runs of an MLflow database (bytes or a path); [] for any other file."""
    connection = open_mlflow_db(data)
    if connection is None:
        return []
    try:
        return mlflow_db_runs(connection)
    except sqlite3.Error:
        return []
    finally:
        connection.close()


def _unique(entries: list[tuple[str, bytes]]) -> dict[str, bytes]:
    """Entries by path; a repeated path (two uploads of the same name) gets ` (2)`, ` (3)`, ..."""
    tree: dict[str, bytes] = {}
    for path, data in entries:
        tree[_free_name(path, tree)] = data
    return tree


def _free_name(name: str, taken: dict) -> str:
    key, n = name, 1
    while key in taken:
        n += 1
        key = f"{name} ({n})"
    return key


def _renamed(source: SourceFile, name: str) -> SourceFile:
    return SourceFile(name, source.data, source.notes, source.long_lines)


def _relative(path: str, base: str) -> str:
    return path[len(base) + 1 :] if base else path


def _within(label: str, name: str) -> str:
    """The label of a file of the folder labelled `label` ("." is the scan's root)."""
    return name if label == "." else f"{label}/{name}"


def disk_groups(root: Path, top: str = ".", prefix: str = "") -> list[RunGroup]:
    """The run groups under a folder on disk (`group_tree` over every file below it); the folder
    itself is labelled `top`, the groups below it `prefix/path`."""
    unreadable: list[OSError] = []  # a folder that cannot be listed is a group of its own
    paths = [
        (Path(folder) / name).relative_to(root).as_posix()
        for folder, _, names in os.walk(root, onerror=unreadable.append)
        for name in names
        if not name.startswith(".")
    ]
    groups = group_tree(paths, lambda p: _head(root / p), lambda p: _db_runs(root / p), top, prefix)
    for err in unreadable:
        below = Path(err.filename or root).relative_to(root).as_posix()
        where = _labelled("" if below == "." else below, top, prefix)
        groups.append(RunGroup(where, "unreadable", (), name=f"{where}: {err.strerror or err}"))
    return groups


def disk_runs(root: Path, group: RunGroup) -> list[Run]:
    """`runs_of_group` reading from disk (large files memory-mapped, gzip decompressed)."""
    if group.kind == "unreadable":
        raise OSError(f"the folder cannot be read: {group.name}")
    return runs_of_group(group, lambda p: SourceFile.from_path(root / p), lambda p: open_mlflow_db(root / p))


def runs_from_paths(paths: Sequence[str | os.PathLike[str]]) -> list[Run]:
    """The runs of the command line's paths: the files named are one folder's files (a log with its
    configs), a directory is searched like a scan's root, a zip is opened like an upload."""
    runs: list[Run] = []
    files = [Path(p) for p in paths if not Path(p).is_dir()]
    for directory in (Path(p) for p in paths if Path(p).is_dir()):
        groups = disk_groups(directory, str(directory), str(directory))
        runs += [run for group in groups for run in disk_runs(directory, group)]
    for archive in (f for f in files if _head(f).startswith(ZIP_MAGIC)):
        for label, run_files in split_runs([(archive.name, archive.read_bytes())]):
            runs.append(Run(label, [SourceFile.from_bytes(name, data) for name, data in run_files]))
    tree: dict[str, Path] = {}
    for file in files:  # one folder: named by their base names, a repeated one numbered
        if not _head(file).startswith(ZIP_MAGIC):
            tree[_free_name(file.name, tree)] = file
    for group in group_tree(tree, lambda p: _head(tree[p]), lambda p: _db_runs(tree[p])):
        read = lambda p: _renamed(SourceFile.from_path(tree[p]), p)  # noqa: E731
        runs += runs_of_group(group, read, lambda p: open_mlflow_db(tree[p]))
    return runs


def any_zip(paths: Sequence[str | os.PathLike[str]]) -> bool:
    return any(Path(p).is_file() and _head(Path(p)).startswith(ZIP_MAGIC) for p in paths)


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as fh:
            return fh.read(HEAD_BYTES)
    except OSError:
        return b""  # read again (and reported) when its run is loaded
