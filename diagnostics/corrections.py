"""Fixes of the leading causes -> text edits of the run's own configuration files.

    from diagnostics import corrections
    configs = corrections.config_files(files)            # uploaded prototxts, or rebuilt from the log echo
    options = corrections.options(diagnosis, configs)    # per cause: the fixes that are edits (or a command)
    result = corrections.apply(configs, options[:1])     # corrected texts, unified diffs, the edits

Only the lines a fix needs change: each edit replaces or deletes the `key: value` span on the line the
prototxt reader located (`Field.line`), so comments, order, spacing and line endings stay as written;
the file is never re-serialised. When no prototxt was uploaded, solver.prototxt and the TRAIN net are
rebuilt from what the Caffe log echoes after `Initializing solver/net from parameters:`. Other
frameworks' settings files (hparams.yaml, training_args.json, a config .py) and echoed command lines
are edited by `diagnostics.settings_edits`.
Pure (no Streamlit); texts are catalogue keys (`edits.*`) rendered in the reader's language.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from diagnostics import settings_edits
from diagnostics.model import Cause, Diagnosis, Fix
from i18n import t
from parsers.caffe_config import is_net, is_solver, net_facts, net_phase, solver_facts
from parsers.model import RunMeta, TrainingLog
from parsers.prototxt import Field, Message, parse_prototxt
from parsers.source import ParseError

# A log's echo is printed before training starts: only the head of a log is read for it.
HEAD_BYTES = 16 * 1024 * 1024
_GLOG_PREFIX = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d+\s+\d+\s+[^\]\s]+\] ?")
_GLOG_LINE = re.compile(r"^[IWEF]\d{4} \d\d:\d\d:\d\d")
_ECHO = {"solver": "Initializing solver from parameters:", "net": "Initializing net from parameters:"}
_REBUILT_NAMES = {"solver": "solver.prototxt", "net": "train_net.prototxt"}
# The value token after `key:` (a quoted string, or a word up to a blank, comment or brace).
_VALUE = r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*'|[^\s#}{;,]+)"
# `key: value` snippets that are one solver field (raise/lower lr, iter_size, weight_decay, ...).
_SOLVER_SNIPPET = re.compile(r"^(\w+):\s*([^\s#]+)\s*(?:#.*)?$")
_LOOKS_PROTOTXT = re.compile(rb"^[ \t]*+(?:layers?\s*+\{|base_lr\s*+:|net\s*+:|name\s*+:)", re.MULTILINE)
_NEWLINE = re.compile(r"[^\n]*\n|[^\n]+\Z")
_COMMAND = re.compile(r"(?:[^\s+]*/)?(?:caffe|caffe\.bin)\s+train\b.*")


@dataclass
class ConfigFile:
    """One Caffe prototxt (as uploaded, or rebuilt from the echo in a log: `rebuilt_from` names it) or
    another framework's settings file."""

    name: str
    kind: str  # "solver", "net" or "settings"
    text: str
    rebuilt_from: str | None = None

    @property
    def msg(self) -> Message:
        return parse_prototxt(self.text)


@dataclass(frozen=True)
class Edit:
    """One changed line. `after` None: the line is deleted; `before` None: the line is added."""

    file: str
    line: int
    before: str | None
    after: str | None
    cause: str
    rule: str
    key: str  # catalogue key of the explanation
    params: dict[str, Any] = field(default_factory=dict)

    def explain(self, lang: str = "en") -> str:
        return t(self.key, lang, **self.params)

    def to_json(self, lang: str = "en") -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "before": self.before,
            "after": self.after,
            "cause": self.cause,
            "rule": self.rule,
            "why": self.explain(lang),
        }


@dataclass
class Option:
    """One fix of a cause made concrete: edits of config files, or a changed command line."""

    cause: str
    fix: str  # the Fix's catalogue key
    rule: str
    edits: list[Edit] = field(default_factory=list)
    command: str | None = None  # a command-line change (e.g. `caffe train ... -weights X`)

    def files(self) -> list[str]:
        return list(dict.fromkeys(e.file for e in self.edits))


@dataclass
class Corrected:
    """The chosen options applied: corrected texts and unified diffs of the changed files."""

    files: dict[str, str]
    patches: dict[str, str]
    edits: list[Edit]
    commands: list[str]
    rebuilt: dict[str, str]  # file name -> the log it was rebuilt from


# ---------------------------------------------------------------- the configuration files


def config_files(uploads: Iterable[tuple[str, bytes]]) -> list[ConfigFile]:
    """The Caffe solver and net among the uploads; the ones missing are rebuilt from a log's echo."""
    found: list[ConfigFile] = []
    logs: list[tuple[str, str]] = []
    for name, data in uploads:
        short = _basename(name)
        if is_log(data):
            logs.append((short, decode(data[:HEAD_BYTES])))
            continue
        if len(data) > HEAD_BYTES or b"\0" in data[:4096] or not _LOOKS_PROTOTXT.search(data[:65536]):
            continue
        text = decode(data)
        kind = _kind(text)
        if kind is not None:
            found.append(ConfigFile(short, kind, text))
    kinds = {c.kind for c in found}
    for name, text in logs:
        for kind in ("solver", "net"):
            if kind not in kinds:
                echo = rebuild(text, kind)
                if echo is not None:
                    found.append(ConfigFile(_REBUILT_NAMES[kind], kind, echo, rebuilt_from=name))
                    kinds.add(kind)
    return found


def rebuild(log_text: str, kind: str) -> str | None:
    """The solver (kind "solver") or TRAIN net ("net") as the log echoes it, glog prefixes stripped;
    None when the log has no such echo. The net echoed for phase TRAIN wins over the TEST one."""
    lines = split_lines(log_text)
    blocks: list[list[str]] = []
    for i, line in enumerate(lines):
        if _ECHO[kind] not in line:
            continue
        header = _GLOG_PREFIX.match(line)
        block: list[str] = []
        for echoed in lines[i + 1 :]:
            prefix = _GLOG_PREFIX.match(echoed)
            if prefix is None and _GLOG_LINE.match(echoed):
                break
            if prefix is not None:
                # a collector that prefixes every line repeats the header's `file.cpp:NN]` tag
                if header is None or _tag(prefix.group(0)) != _tag(header.group(0)):
                    break
                echoed = echoed[prefix.end() :]
            block.append(echoed)
        if any(part.strip() for part in block):
            blocks.append(block)
    if not blocks:
        return None
    if kind == "net":
        blocks.sort(key=lambda b: net_phase(_parse("".join(b))) != "train")
    text = "".join(blocks[0])
    return text if text.endswith("\n") else text + "\n"


def _tag(prefix: str) -> str:
    return prefix.rstrip().rsplit(" ", 1)[-1]


def is_log(data: bytes) -> bool:
    """A Caffe log that echoes its solver or net (looked for in its head)."""
    head = data[:HEAD_BYTES]
    return any(echo.encode() in head for echo in _ECHO.values())


def decode(data: bytes) -> str:
    """Text whose every byte comes back with `encode` (bytes that are not UTF-8 included)."""
    return data.decode("utf-8", "surrogateescape")


def encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _basename(name: str) -> str:
    return re.split(r"[\\/]", name)[-1]


def _kind(text: str) -> str | None:
    msg = _parse(text)
    if is_solver(msg):
        return "solver"
    return "net" if is_net(msg) else None


def _parse(text: str) -> Message:
    try:
        return parse_prototxt(text)
    except ParseError:
        return Message(fields=[])


# ---------------------------------------------------------------- fixes -> options


def options(diagnosis: Diagnosis, configs: Sequence[ConfigFile], log_text: str | None = None) -> list[Option]:
    """Every fix of the diagnosis's causes that is an edit of `configs` (or a command line), in the
    causes' order; a cause's options are its alternatives."""
    out: list[Option] = []
    for cause in diagnosis.causes:
        rule = next((r for r in cause.rules if r.startswith("LD3")), cause.rules[0] if cause.rules else "")
        for fix in cause.fixes:
            option = _option(cause, fix, rule, configs, log_text)
            if option is None or not (option.edits or option.command):
                continue
            if not any(o.cause == option.cause and o.edits == option.edits for o in out if o.edits):
                out.append(option)
    return out


def by_cause(opts: Sequence[Option]) -> dict[str, list[Option]]:
    grouped: dict[str, list[Option]] = {}
    for option in opts:
        grouped.setdefault(option.cause, []).append(option)
    return grouped


def choose(opts: Sequence[Option], wanted: Sequence[str] = ()) -> list[Option]:
    """`wanted` entries `cause` or `cause=N` (N from 1: the cause's N-th option); none: the first
    option of the leading cause that has one."""
    grouped = by_cause(opts)
    if not wanted:
        return [next(iter(grouped.values()))[0]] if grouped else []
    chosen = []
    for item in wanted:
        cause, _, number = item.partition("=")
        alternatives = grouped.get(cause.strip(), [])
        index = int(number) - 1 if number.strip().isdigit() else 0
        if 0 <= index < len(alternatives):
            chosen.append(alternatives[index])
    return chosen


def _option(
    cause: Cause, fix: Fix, rule: str, configs: Sequence[ConfigFile], log_text: str | None
) -> Option | None:
    option = Option(cause.id, fix.key, rule)
    change = settings_edits.change_of(fix)
    if change is not None and not any(c.kind in ("solver", "net") for c in configs):
        option.edits = [e for c in configs for e in _settings_edits(c, option, change, fix)]
        if not option.edits and log_text is not None:
            option.command = settings_edits.echoed_command(log_text, change)
        return option
    solver = next((c for c in configs if c.kind == "solver"), None)
    nets = [c for c in configs if c.kind == "net"]
    if fix.key in ("fixes.bn_use_batch_stats", "fixes.bn_remove_param"):
        option.edits = [e for net in nets for e in _batchnorm_edits(net, option)]
    elif fix.key == "fixes.remove_scale":
        option.edits = [e for net in nets for e in _scale_edits(net, option)]
    elif fix.key == "fixes.normalize_false":
        option.edits = [e for net in nets for e in _normalize_edits(net, option, False)]
    elif fix.key == "fixes.load_weights_caffe":
        option.command = _weights_command(fix, log_text)
    elif solver is not None and fix.snippet_lang == "prototxt" and fix.snippet:
        match = _SOLVER_SNIPPET.match(fix.snippet.strip())
        if match is None:
            return None
        key, value = match.groups()
        option.edits = _solver_edits(solver, option, key, value, fix)
    else:
        return None
    return option


def _edit(
    option: Option,
    config: ConfigFile,
    line: int,
    before: str | None,
    after: str | None,
    why: str,
    /,
    **params: Any,
) -> Edit:
    return Edit(config.name, line, before, after, option.cause, option.rule, why, params)


def _solver_edits(solver: ConfigFile, option: Option, key: str, value: str, fix: Fix) -> list[Edit]:
    msg = solver.msg
    found = msg.find(key)
    if key in ("base_lr",) and fix.key in ("fixes.raise_lr", "fixes.lower_lr"):
        why, params = f"edits.{fix.key.split('.')[1]}", dict(fix.params)
    else:
        why, params = "edits.set_solver", {"key": key, "new": value}
    if found is None or isinstance(found.value, Message):
        if found is not None:
            return []
        lines = split_lines(solver.text)
        return [
            _edit(option, solver, len(lines) + 1, None, f"{key}: {value}", why, **({"old": "-"} | params))
        ]
    before = _line(solver.text, found.line)
    after = _replace_value(before, found, value)
    if after is None or after == before:
        return []
    return [_edit(option, solver, found.line, before, after, why, **(params | {"old": found.raw}))]


def _settings_edits(
    config: ConfigFile, option: Option, change: settings_edits.Change, fix: Fix
) -> list[Edit]:
    why = f"edits.{fix.key.split('.')[1]}"
    return [
        _edit(option, config, number, before, after, why, **fix.params)
        for number, before, after in settings_edits.changed_lines(split_lines(config.text), change)
    ]


def _batchnorm_edits(net: ConfigFile, option: Option) -> list[Edit]:
    """use_global_stats: true in the TRAIN net. A layer of the TRAIN phase only gets `false`; a layer
    shared by both phases loses the field, so Caffe's default applies: batch statistics in TRAIN and
    the running ones in TEST (`false` there would make the test net use batch statistics too)."""
    msg = net.msg
    edits = []
    for layer, phase in _layers(msg):
        if layer.get_str("type") != "BatchNorm" or phase == "test":
            continue
        for param in layer.messages("batch_norm_param"):
            flag = param.find("use_global_stats")
            if flag is None or param.get_bool("use_global_stats") is not True:
                continue
            before = _line(net.text, flag.line)
            name = layer.get_str("name") or "?"
            if phase == "train" or net_phase(msg) == "train":
                after = _replace_value(before, flag, "false")
                key = "edits.bn_false"
            else:
                after = _delete_field(before, flag)
                key = "edits.bn_delete"
            if after != before:
                edits.append(_edit(option, net, flag.line, before, after, key, layer=name))
    return edits


def _scale_edits(net: ConfigFile, option: Option) -> list[Edit]:
    """Delete `scale` from the transform_param of every data layer (TRAIN and TEST alike: both must
    see the same pixels); the mean stays in [0, 255] units, which Caffe subtracts before scaling."""
    edits = []
    for layer, _ in _layers(net.msg):
        holders = layer.messages("transform_param") + [
            f.value
            for f in layer.fields
            if f.key.endswith("data_param") and isinstance(f.value, Message) and f.value.find("scale")
        ]
        for holder in holders:
            scale = holder.find("scale")
            if scale is None or isinstance(scale.value, Message):
                continue
            before = _line(net.text, scale.line)
            after = _delete_field(before, scale)
            factor = round(1 / scale.value) if isinstance(scale.value, float) and scale.value > 0 else "?"
            edits.append(
                _edit(
                    option,
                    net,
                    scale.line,
                    before,
                    after,
                    "edits.remove_scale",
                    scale=scale.raw,
                    factor=factor,
                )
            )
    return edits


def _normalize_edits(net: ConfigFile, option: Option, value: bool) -> list[Edit]:
    edits = []
    for layer, phase in _layers(net.msg):
        if phase == "test":
            continue
        for param in layer.messages("loss_param"):
            flag = param.find("normalize")
            if flag is None or param.get_bool("normalize") is value:
                continue
            before = _line(net.text, flag.line)
            after = _replace_value(before, flag, "true" if value else "false")
            if after != before:
                edits.append(_edit(option, net, flag.line, before, after, "edits.normalize_false"))
    return edits


def _weights_command(fix: Fix, log_text: str | None) -> str:
    """The run's own `caffe train` command line with `-weights`, else the fix's command."""
    weights = fix.params.get("weights", "pretrained.caffemodel")
    for line in (log_text or "").splitlines()[:200]:
        match = _COMMAND.search(line)
        if match and "-weights" not in line:
            command = match.group(0).strip()
            return f"{command} -weights {weights}"
    return (fix.snippet or "").splitlines()[0] if fix.snippet else f"caffe train -weights {weights}"


def _layers(msg: Message) -> list[tuple[Message, str]]:
    """(layer, phase) of the net, phase from the layer's include/exclude rule ("any" when shared)."""
    out = []
    for f in msg.fields:
        if f.key not in ("layer", "layers") or not isinstance(f.value, Message):
            continue
        included = {(r.get_str("phase") or "").lower() for r in f.value.messages("include")} - {""}
        excluded = {(r.get_str("phase") or "").lower() for r in f.value.messages("exclude")} - {""}
        phase = "any"
        if len(included) == 1:
            phase = included.pop()
        elif len(excluded) == 1:
            phase = "test" if excluded == {"train"} else "train"
        out.append((f.value, phase))
    return out


# ---------------------------------------------------------------- text spans


def split_lines(text: str) -> list[str]:
    """Lines with their endings, split at "\n" only, as the prototxt reader numbers them (str.splitlines
    also splits at form feeds, lone carriage returns and other separators)."""
    return _NEWLINE.findall(text)


def _line(text: str, number: int) -> str:
    """Line `number` (from 1) without its line ending ('' when out of range)."""
    lines = split_lines(text)
    return lines[number - 1].rstrip("\n").removesuffix("\r") if 0 < number <= len(lines) else ""


def _span(line: str, f: Field) -> re.Match[str] | None:
    return re.search(rf"\b{re.escape(f.key)}\s*:\s*{_VALUE}", line)


def _replace_value(line: str, f: Field, value: str) -> str | None:
    match = _span(line, f)
    if match is None:
        return None
    return line[: match.start(1)] + value + line[match.end(1) :]


def _delete_field(line: str, f: Field) -> str | None:
    """The line without `key: value` (and the blanks after it); None when nothing else is left."""
    match = _span(line, f)
    if match is None:
        return line
    rest = line[: match.start()] + line[match.end() :].lstrip(" \t")
    return None if not rest.strip() else rest.rstrip(" \t") if not line[match.end() :].strip() else rest


# ---------------------------------------------------------------- applying


def apply(configs: Sequence[ConfigFile], chosen: Sequence[Option]) -> Corrected:
    """Apply the chosen options (an earlier option wins a line two of them edit)."""
    by_file: dict[str, list[Edit]] = {}
    taken: set[tuple[str, int]] = set()
    edits: list[Edit] = []
    for option in chosen:
        for edit in option.edits:
            if edit.before is not None and (edit.file, edit.line) in taken:
                continue
            taken.add((edit.file, edit.line))
            by_file.setdefault(edit.file, []).append(edit)
            edits.append(edit)
    files, patches, rebuilt = {}, {}, {}
    for config in configs:
        if config.name not in by_file:
            continue
        corrected = edit_text(config.text, by_file[config.name])
        files[config.name] = corrected
        patches[config.name] = unified_diff(config.text, corrected, config.name)
        if config.rebuilt_from:
            rebuilt[config.name] = config.rebuilt_from
    commands = [o.command for o in chosen if o.command]
    return Corrected(files, patches, edits, commands, rebuilt)


def edit_text(text: str, edits: Sequence[Edit]) -> str:
    """`text` with the edits applied line by line; every other byte (line endings too) unchanged."""
    lines = split_lines(text)
    changes = {e.line: e for e in edits if e.before is not None}
    out = []
    for number, line in enumerate(lines, 1):
        edit = changes.get(number)
        if edit is None:
            out.append(line)
        elif edit.after is not None:
            ending = "\r\n" if line.endswith("\r\n") else "\n" if line.endswith("\n") else ""
            out.append(edit.after + ending)
    added = [e.after for e in edits if e.before is None and e.after is not None]
    if added:
        ending = "\r\n" if lines and lines[-1].endswith("\r\n") else "\n"
        if out and not out[-1].endswith("\n"):
            out[-1] += ending
        out += [line + ending for line in added]
    return "".join(out)


def unified_diff(before: str, after: str, name: str) -> str:
    """A unified diff that `patch -p0` applies to `name` (with the no-newline-at-end marker)."""
    out = []
    for line in difflib.unified_diff(split_lines(before), split_lines(after), fromfile=name, tofile=name):
        out.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    return "".join(out)


# ---------------------------------------------------------------- checking the result


def corrected_meta(log: TrainingLog, corrected: dict[str, str], configs: Sequence[ConfigFile]) -> RunMeta:
    """The run's facts with the corrected files read first (they win over the log's own echo); a fact
    an edit removed (a deleted `scale`) is unknown again rather than refilled from the log."""
    before, after = _config_meta(configs, {}), _config_meta(configs, corrected)
    meta = _config_meta(configs, corrected)
    meta.merge(log.meta)
    for name in meta.__dataclass_fields__:
        if getattr(after, name) in (None, []) and getattr(before, name) not in (None, []):
            setattr(meta, name, getattr(after, name))
            meta.where.pop(name, None)
    meta.framework, meta.format = log.meta.framework, log.meta.format
    return meta


def _config_meta(configs: Sequence[ConfigFile], corrected: dict[str, str]) -> RunMeta:
    meta = RunMeta()
    for config in configs:
        msg = parse_prototxt(corrected.get(config.name, config.text))
        if config.kind == "solver":
            solver_facts(msg, meta, config.name)
        else:
            net_facts(msg, meta, config.name)
    return meta


# ---------------------------------------------------------------- what the page offers


@dataclass
class Offer:
    """One option of one cause, applied alone: what the page offers for download."""

    cause: str
    number: int  # 1, 2, ...: the option's place among the cause's options
    result: Corrected

    @property
    def patch(self) -> str:
        """One patch for every file the option changes (`patch -p0` applies it in their folder)."""
        return "".join(self.result.patches[name] for name in self.result.files)

    @property
    def patch_name(self) -> str:
        return f"fix-{self.cause}-{self.number}.patch"


def for_uploads(
    uploads: Iterable[tuple[str, bytes]], diagnosis: Diagnosis
) -> tuple[list[ConfigFile], list[Option]]:
    """The run's configs (Caffe: uploaded or rebuilt from the log; other frameworks: the uploaded
    settings files) and the options the diagnosis's causes give."""
    if not diagnosis.causes:
        return [], []
    uploads = list(uploads)
    if diagnosis.framework != "caffe":
        configs = [
            ConfigFile(_basename(name), "settings", decode(data))
            for name, data in uploads
            if settings_edits.is_settings_file(_basename(name), data)
        ]
        names = {c.name for c in configs}
        logs = [decode(data[:HEAD_BYTES]) for name, data in uploads if _basename(name) not in names]
        return configs, options(diagnosis, configs, logs[0] if logs else None)
    configs = config_files(uploads)
    log_text = next((decode(data[:HEAD_BYTES]) for _, data in uploads if is_log(data)), None)
    return configs, options(diagnosis, configs, log_text)


def offers(uploads: Iterable[tuple[str, bytes]], diagnosis: Diagnosis) -> list[Offer]:
    """Every option of every cause, each applied alone, in the causes' order."""
    configs, found = for_uploads(uploads, diagnosis)
    out = []
    for cause, alternatives in by_cause(found).items():
        out += [Offer(cause, n, apply(configs, [o])) for n, o in enumerate(alternatives, 1)]
    return out


def summaries(edits: Sequence[Edit], lang: str = "en", most: int = 3) -> list[str]:
    """One line per kind of edit and file: `file:76, 131, … (9)  why` (layer names joined)."""
    groups: dict[tuple[str, str], list[Edit]] = {}
    for edit in edits:
        groups.setdefault((edit.file, edit.key), []).append(edit)
    out = []
    for (name, _), group in groups.items():
        lines = ", ".join(str(e.line) for e in group[:most]) + (", …" if len(group) > most else "")
        count = f" ({len(group)})" if len(group) > most else ""
        params = dict(group[0].params)
        if "layer" in params:
            layers = [e.params["layer"] for e in group]
            params["layer"] = ", ".join(layers[:most]) + (", …" if len(layers) > most else "")
        out.append(f"{name}:{lines}{count}  {t(group[0].key, lang, **params)}")
    return out
