"""Hyper-parameter echoes in text training logs -> RunMeta facts, each with the line that states it.

PyTorch-ecosystem trainers echo their settings in a handful of shapes: argparse `Namespace(lr=0.1,
...)`, HF `TrainingArguments(` blocks (one `key=value,` per line), mmcv/mmengine Python config dumps
(`optimizer = dict(type='SGD', lr=0.02, ...)`, values sometimes on the next line), printed dicts,
YAML dumps (detectron2's `SOLVER:` / `  BASE_LR: 0.02`), `key: value` lines of a logger and the
command line (`--lr=5e-4`). All are read as (path, key, value text) echoes; one table then maps keys
to facts. Nothing is evaluated: the log is user text.

Only the first 2000 lines are read in full (the header is where settings are echoed) plus, anywhere
in the file, the lines that open a settings block or say that weights were loaded, so a 1 GB log
costs one regex scan.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from parsers.config_facts import FALSE_WORDS, TRUE_WORDS, echo_facts, line_facts
from parsers.formats._textlog import LineCounter, LineLayouts, Unsupported, has_log_prefix, strip_log_prefix
from parsers.model import LogLine, RunMeta, as_counter

HEAD_LINES = 2000
_MAX_BLOCK_LINES = 1500
_MAX_VALUE_CHARS = 200

# Lines worth reading beyond the head: settings blocks and weight loading. Plain words, found with
# str.find (memchr speed) rather than one regex alternation (15 MB/s).
_TRIGGER_WORDS = ("Namespace(", "Arguments(", "onfig:", "retrained", "load_from", "load_state_dict")
_TRIGGER_WORDS += ("_IncompatibleKeys", "weights of", "ine-tun", "inetun", "--weights", "Loading from")
_TRIGGER_WORDS += ("scratch", "requires_grad", "reez", "roze")  # + freezing weights (config_facts)
_LAYOUTS_FROM_CHARS = 4 * 1024**2  # below this, one `find` per trigger word is faster than LineLayouts
# `Namespace(`, `TrainingArguments(`, `...Config(` (the word start is found by walking back: a
# leading `\w*` would make the regex try every position of every line)
_CALL_LINE = re.compile(r"(?:Namespace|Arguments|Config)\((?!\))")
_BLOCK_OPENER = re.compile(r"(?:Arguments\(|Config:|[Ff]ull config:|config_file=\S*:)\s*$")

_VALUE = r"""'[^'\n]*'|"[^"\n]*"|\[[^\[\]]*\]|\([^()]*\)|[^,()\[\]{}\s][^,()\[\]{}\n]*+(?!\()"""
# A name starts at the first letter of its run of word characters, which is read from the run's start
# (`(?<!\w)` and a possessive skip of leading digits): starting again at every letter of a long
# word that fails to match was quadratic.
_TOKEN = re.compile(
    rf"""(?P<dict>(?<!\w)[^\WA-Za-z_]*+(?P<dname>[A-Za-z_]\w*+)\s*+=\s*+dict\()
    |(?P<kv>(?<!\w)[^\WA-Za-z_]*+(?P<key>[A-Za-z_]\w*+)\s*+=\s*+(?P<val>{_VALUE}))
    |(?P<open>(?<!\w)[^\WA-Za-z_]*+(?P<oname>[A-Za-z_]\w*+)\s*+=\s*+[\[({{])
    |(?P<call>(?<![\w.])(?:[^\WA-Za-z_]|\.)*+[A-Za-z_][\w.]*+\()
    |(?P<str>'[^'\n]*'|"[^"\n]*")
    |(?P<lp>[\[({{])|(?P<rp>[\])}}])""",
    re.VERBOSE,
)
_DICT_PAIR = re.compile(r"""['"]([A-Za-z_][\w.\-]*)['"]\s*:\s*('[^']*'|"[^"]*"|\[[^\[\]]*\]|[^,{}\[\]'"]+)""")
# `key: value` / `key=value`; the value's trailing blanks and one comma are stripped after the match (a lazy
# value before `\s*,?\s*$` backtracked quadratically over a long run of blanks)
_YAML_LINE = re.compile(r"^(\s*)(?:[^\w\s]+\s*)?([A-Za-z_][\w.\-]*)\s*(?::(?=\s|$)|=)\s*(.*)$")
# A key of a JSON document written with an indent, one per line: `  "lr": 0.1,`
_JSON_KEY = re.compile(r'(?m)^(\s*)"([A-Za-z_][\w.\-]*)"\s*:')
# An item of a YAML block sequence of scalars (`- 16`, `  - 0.485`); `- name: x` is a mapping, not read.
_YAML_SEQUENCE_ITEM = re.compile(r"^(\s*)-\s+([^\s:#{}\[\]][^:#{}\[\]]*)$")
_MAX_LIST_ITEMS = 64
_MORE_PAIRS = re.compile(r"[,|]\s*[A-Za-z_][\w .]*\s*[:=]\s*[-+\d.]")  # `loss: 1, acc: 2` is a metric line
# A value with blanks outside quotes or brackets is a sentence, not a setting.
_PROSE = re.compile(r"^(?!['\"\[({]|\w+\([^()]*\)$).*\s")  # a call (`normal(0, 0.01)`) is a value
_METRIC_KEY = re.compile(r"loss|acc|^(?:perplexity|ppl|map|bleu|f1|auc)$", re.IGNORECASE)
_NAMED_DICT = re.compile(r"^[\w ]+:\s*\{")  # `config: {'lr': 0.1}`
_SCRIPT = re.compile(r"\.py\b")
# A flag's value: one token, a call with blanks inside its brackets (`--init normal(0, 0.01)`), or a run of
# numbers (argparse's `nargs`: `--widths 16 32 32`, `--milestones 30 60`).
_CLI_PAIR = re.compile(
    r"(?:^|\s)--([A-Za-z][\w\-]*)(?:=|\s+)(?!--)"
    r"([^\s(]*\([^()\n]*\)\S*|[-+]?\d[\w.+\-]*(?:\s+[-+]?\d[\w.+\-]*(?=\s|$))+|\S+)"
)
_CLI_BARE = re.compile(r"(?:^|\s)--([A-Za-z][\w\-]*)(?=\s+--|\s*$)")
_METRIC_DICT_KEY = re.compile(r"""['"](?:[\w/]*loss[\w/]*|eval_\w+|train_runtime)['"]\s*:""")

_PRETRAINED_PHRASES = [
    (re.compile(r"Loading pretrained (?:weights|model|checkpoint)s?(?: from)?:?\s*['\"]?([^\s'\"]+)?"), True),
    (re.compile(r"\b[Ll]oad(?:ing|ed|s)? (?:the )?pretrained\b"), True),
    (re.compile(r"\bload_state_dict\b"), True),
    (re.compile(r"_IncompatibleKeys\(missing_keys="), True),
    (re.compile(r"Some weights of \S+ were not initialized from the model checkpoint at (\S+?)\s"), True),
    (re.compile(r"Some weights of the model checkpoint at (\S+?) were not used"), True),
    (re.compile(r"All the weights of \S+ were initialized from the model checkpoint at (\S+?)\.?$"), True),
    (re.compile(r"[Ff]ine-?tun(?:e|ing) from:?\s*['\"]?([^\s'\"]+)"), True),
    (re.compile(r"\[Checkpointer\] Loading from (\S+) \.\.\."), True),
    (re.compile(r"from pretrained model (\S+)"), True),
    (re.compile(r"\bweights\s*=\s*['\"]?([\w.]*IMAGENET[\w.]*|DEFAULT)\b"), True),
    (re.compile(r"\bpretrained\s*=\s*True\b"), True),
    (re.compile(r"\b(?:weights\s*=\s*None|pretrained\s*=\s*False)\b"), False),
    (re.compile(r"No checkpoint found\. Initializing model from scratch"), False),
    (re.compile(r"\b(?:start|starting|train|training) (?:training )?from scratch\b", re.IGNORECASE), False),
]

# Cheap pre-check: every phrase above contains one of these.
_PHRASE_HINT = re.compile(r"retrained|[Ll]oad|weights|_Incompatible|[Ff]ine-?tun|scratch")

_FLOAT_FACTS = {
    "lr": "base_lr",
    "learning_rate": "base_lr",
    "base_lr": "base_lr",
    "lr0": "base_lr",
    "momentum": "momentum",
    "weight_decay": "weight_decay",
    "wd": "weight_decay",
    "adam_beta2": "adam_beta2",
    "beta2": "adam_beta2",
}
_INT_FACTS = {
    "batch_size": "batch_size",
    "per_device_train_batch_size": "batch_size",
    "train_batch_size": "batch_size",
    "samples_per_gpu": "batch_size",
    "ims_per_batch": "batch_size",
    "epochs": "epochs",
    "num_train_epochs": "epochs",
    "max_epochs": "epochs",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "n_epoch": "epochs",
    "total_epochs": "epochs",
    "max_steps": "max_iter",
    "max_iter": "max_iter",
    "max_iters": "max_iter",
}
_CLIP_KEYS = {"clip_grad", "max_grad_norm", "clip_grad_norm", "gradient_clip_val", "clip_norm", "grad_clip"}
_OPTIMIZER_KEYS = {"optimizer", "optim", "opt", "optimizer_type", "optimizer_name"}
_NET_KEYS = {"arch", "model", "model_name", "model_name_or_path", "network", "net", "architecture"}
_NET_KEYS |= {"model_type", "backbone"}
_WEIGHT_KEYS = {"pretrained", "weights", "load_from", "pretrained_model", "pretrained_weights"}
_WEIGHT_KEYS |= {"pretrained_path", "init_checkpoint", "finetune", "finetune_from"}
# Parents whose settings belong to a sub-module or another phase, not to the optimisation of the run.
_FOREIGN_PARENT = re.compile(r"norm|bn|backbone|neck|head|model|val|test|eval|sched|warmup|lr_config|ema|swa")
# Longest first: `adamw_torch` is AdamW, `nadam` is not Adam.
_OPTIMIZERS = ("adamw", "adamax", "nadam", "radam", "adam", "sgd", "rmsprop", "adadelta", "adagrad")
_OPTIMIZERS += ("adafactor", "lamb", "lars", "lion", "novograd", "ftrl")
_HALF_PRECISIONS = {"fp16", "bf16", "16", "16-mixed", "bf16-mixed"}
_NONE = {"none", "null", "", "false", "0"}
_WEIGHT_FILE = re.compile(
    r"\.(?:pth|pt|pkl|ckpt|bin|h5|caffemodel|safetensors|params|npz)\b|://|imagenet|DEFAULT"
)


@dataclass(frozen=True)
class Echo:
    """One echoed setting: `path` holds the enclosing section names (`optimizer`, `SOLVER`)."""

    path: tuple[str, ...]
    key: str
    value: str
    where: LogLine

    @property
    def dotted(self) -> str:
        return ".".join((*self.path, self.key))


@dataclass
class _Claims:
    """Evidence about weight loading, applied after all echoes: positive evidence wins (weights were
    loaded even if a flag elsewhere says `pretrained=False`)."""

    loaded: list[tuple[str | None, LogLine]] = field(default_factory=list)
    scratch: list[LogLine] = field(default_factory=list)

    def apply(self, meta: RunMeta) -> None:
        """The first statement in the file is quoted."""
        loaded = sorted(self.loaded, key=lambda claim: claim[1].line)
        if loaded:
            meta.set("pretrained", True, loaded[0][1])
            named = [(origin, where) for origin, where in loaded if origin]
            if named:
                meta.set("pretrained_from", named[0][0], named[0][1])
        elif self.scratch:
            meta.set("pretrained", False, min(self.scratch, key=lambda where: where.line))


def hyperparams_from_text(
    text: str, source: str, meta: RunMeta, layouts: LineLayouts | None = None, *, python_config: bool = False
) -> None:
    """Fill `meta` (facts + `hyperparams`) from the settings a text log echoes (`layouts`: the text's
    line layouts, when the caller has them; `python_config`: the whole text is an mmcv/mmengine Python
    config, read as the block under a log's `Config:` line is)."""
    # a Python config is one block: every line (a settings file is small), numbered from 1
    lines = dict(enumerate(text.split("\n"), start=1)) if python_config else _candidate_lines(text, layouts)
    echoes, claims = read_echoes(text, source, lines, python_config=python_config)
    for echo in echoes:
        meta.hyperparams.setdefault(echo.dotted, echo.value[:_MAX_VALUE_CHARS])
        _apply(echo, meta, claims)
    _compound_facts(echoes, meta)
    claims.apply(meta)
    echo_facts(echoes, meta)
    line_facts(lines, source, meta, strip_log_prefix)


def settings_document_facts(text: str, source: str, meta: RunMeta, *, python_config: bool = False) -> None:
    """`hyperparams_from_text` for a file or text that holds only settings, which may be a JSON document
    (`json_settings`); the facts quote its lines as they are."""
    readable = json_settings(text)
    hyperparams_from_text(readable, source, meta, python_config=python_config)
    if readable is not text:
        lines = text.split("\n")
        meta.requote(lambda where: LogLine(where.source, where.line, lines[where.line - 1].strip()))


def json_settings(text: str) -> str:
    """A JSON document of settings (an `args.json`, HF's TrainingArguments or model config logged as
    text) as the YAML the readers know: each key of an indented document unquoted in place, so line
    numbers stay. Only a whole document: in a log, a pretty-printed JSON line may be a metrics record
    (`"learning_rate": 7e-4,` of a logged step), which no line alone tells from a setting."""
    if not text.lstrip().startswith("{"):
        return text
    try:
        document = json.loads(text)
    except ValueError:
        return text
    return _JSON_KEY.sub(r"\1\2:", text) if isinstance(document, dict) else text


def config_text_facts(config: str, quote: Callable[[int], LogLine], meta: RunMeta) -> None:
    """The config-fault facts (`config_facts`) of an mmcv config embedded in another record (mmdet's
    `.log.json` first line); `quote(offset)` is the LogLine for a position in `config`."""
    lines = dict(enumerate(config.split("\n"), start=1))
    starts = [0]
    for number in range(1, len(lines)):
        starts.append(starts[-1] + len(lines[number]) + 1)
    echoes = [
        Echo(e.path, e.key, e.value, quote(starts[e.where.line - 1]))
        for e in _python_echoes(config, 1, "", lines)
    ]
    echo_facts(echoes, meta)
    quoted = {number: text for number, text in lines.items()}
    probe = RunMeta()
    line_facts(quoted, "", probe)
    for name in ("input_norm_mean", "input_norm_std", "input_range", "loss_normalization"):
        value = getattr(probe, name)
        if value not in (None, []):
            meta.set(name, value, quote(starts[probe.where[name].line - 1]))
    for frozen in probe.frozen_layers:
        assert frozen.where is not None
        where = quote(starts[frozen.where.line - 1])
        if all(f.name != frozen.name for f in meta.frozen_layers):
            meta.frozen_layers.append(type(frozen)(frozen.name, frozen.how, where))


def read_echoes(
    text: str, source: str, lines: dict[int, str] | None = None, *, python_config: bool = False
) -> tuple[list[Echo], _Claims]:
    """Every echoed setting in file order, and the weight-loading evidence."""
    lines = _candidate_lines(text) if lines is None else lines
    echoes: list[Echo] = []
    claims = _Claims()
    if python_config:  # one Python-call text, like a `Config:` block of a log (whose lines it skips too)
        return _python_echoes(text, 1, source, lines), claims
    numbers = sorted(lines)
    index = 0
    sections: list[tuple[int, str]] = []  # YAML sections open above the current line: (indent, name)
    previous = 0
    while index < len(numbers):
        number = numbers[index]
        line = lines[number]
        message = strip_log_prefix(line)
        if number != previous + 1:
            sections = []
        opener = message.strip()
        if opener == "Environment info:":  # library versions, not settings
            skipped = _environment_block(lines, number)
            index += len(skipped) + 1
            previous = number + len(skipped)
            continue
        if opener == "Config:" or opener.endswith("Arguments("):
            # mmcv config dump / HF TrainingArguments block: Python-call text over many lines
            block = _block(lines, number)
            unit = "\n".join(block) if opener == "Config:" else "\n".join([opener, *block])
            echoes += _python_echoes(unit, number + 1 if opener == "Config:" else number, source, lines)
            index += len(block) + 1
            previous = number + len(block)
            sections = []
            continue
        previous = number
        call = _CALL_LINE.search(message)
        if call:
            start = call.start()
            while start and (message[start - 1].isalnum() or message[start - 1] == "_"):
                start -= 1
            echoes += _python_echoes(message[start:], number, source, lines)
        else:
            echoes += _line_echoes(line, message, number, source, sections)
            sequence = _yaml_sequence(lines, number, message)
            if sequence is not None:
                # `widths:` over `- 16` lines (yaml.dump of a list: Lightning's hparams.yaml, Hydra
                # dumps) is one setting, `[16, 16]`, not a section
                key, value, items = sequence
                if sections and sections[-1][1] == key:
                    sections.pop()
                path = tuple(name for _, name in sections)
                echoes.append(Echo(path, key, value, LogLine(source, number, line.strip())))
                index += len(items)
                previous = items[-1]
        _claim_phrases(line, number, source, claims)
        index += 1
    return echoes, claims


def _yaml_sequence(lines: dict[int, str], number: int, message: str) -> tuple[str, str, list[int]] | None:
    """(key, `[a, b, ...]`, the items' line numbers) when the YAML key at `number` has no value of its
    own and the lines right under it are a block sequence of scalars; else None."""
    if not lines.get(number + 1, "").lstrip().startswith("- "):
        return None  # the cheap test first: most lines open no list
    found = _YAML_LINE.match(message)
    if not found or found[3].strip() or ":" not in message:
        return None
    indent, values, numbers = len(found[1]), [], []
    following = number + 1
    while following in lines and len(values) < _MAX_LIST_ITEMS:
        item = _YAML_SEQUENCE_ITEM.match(lines[following])
        if not item or len(item[1]) < indent:
            break
        value = _unquote(item[2].strip())
        if _PROSE.search(value):
            return None  # `Changes:` over `- fixed a bug` lines is prose, not a setting
        values.append(value)
        numbers.append(following)
        following += 1
    return (found[2], "[" + ", ".join(values) + "]", numbers) if values else None


def _candidate_lines(text: str, layouts: LineLayouts | None = None) -> dict[int, str]:
    """Line number -> text for the head of the file and, beyond it, trigger lines and the blocks
    they open."""
    head_end = 0
    for _ in range(HEAD_LINES):
        head_end = text.find("\n", head_end) + 1
        if head_end == 0:
            head_end = len(text)
            break
    lines = dict(enumerate(text[:head_end].split("\n"), start=1))
    if head_end >= len(text):
        return lines
    lines.pop(max(lines), None)  # the empty tail after the last newline of the head
    counter = LineCounter(text)
    counter.line(head_end)
    last_end = head_end
    for offset in _trigger_offsets(text, head_end, layouts):
        if offset < last_end:
            continue
        start = text.rfind("\n", 0, offset) + 1
        number = counter.line(start)
        end = _line_end(text, start)
        line = text[start:end]
        lines[number] = line
        last_end = end
        if _BLOCK_OPENER.search(line):
            for offset in range(1, _MAX_BLOCK_LINES):
                start, end = end + 1, _line_end(text, end + 1)
                if start > len(text):
                    break
                block_line = text[start:end]
                lines[number + offset] = block_line
                last_end = end
                if not block_line.strip() or block_line.strip() == ")":
                    break
    return lines


def _trigger_offsets(text: str, start: int, layouts: LineLayouts | None) -> list[int]:
    """Offsets of the trigger words from `start` on. In a large log, searched in the lines of the line
    layouts that hold one (one `find` per word over 100 MB costs a second and a half)."""
    if layouts is None and len(text) - start > _LAYOUTS_FROM_CHARS:
        try:
            layouts = LineLayouts(text)
        except Unsupported:
            layouts = None
    if layouts is not None:
        return layouts.find_all(_TRIGGER_WORDS, start)
    offsets = set()
    for word in _TRIGGER_WORDS:
        at = text.find(word, start)
        while at >= 0:
            offsets.add(at)
            at = text.find(word, at + 1)
    return sorted(offsets)


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start)
    return len(text) if end < 0 else end


def _block(lines: dict[int, str], number: int) -> list[str]:
    """The lines below the block opener at `number`, up to a blank line or a lone `)`."""
    block = []
    for offset in range(1, _MAX_BLOCK_LINES):
        line = lines.get(number + offset)
        if line is None or not line.strip():
            break
        block.append(line)
        if line.strip() == ")":
            break
    return block


def _environment_block(lines: dict[int, str], number: int) -> list[str]:
    """The lines of an mmcv `Environment info:` table, which ends at its second dashed rule."""
    block: list[str] = []
    rules = 0
    for offset in range(1, _MAX_BLOCK_LINES):
        line = lines.get(number + offset)
        if line is None:
            break
        block.append(line)
        rules += line.startswith("-" * 10)
        if rules == 2:
            break
    return block


def _python_echoes(unit: str, first_line: int, source: str, lines: dict[int, str]) -> list[Echo]:
    """Echoes of Python-call text (`Namespace(...)`, `TrainingArguments(...)`, mmcv config dumps):
    `name=dict(` opens a named section, a bare call is transparent, and settings inside anonymous
    brackets (pipeline lists) are skipped."""
    echoes = []
    stack: list[str | None] = []
    counter = LineCounter(unit)
    for token in _TOKEN.finditer(unit):
        kind = token.lastgroup
        if kind == "dict":
            stack.append(token["dname"])
        elif kind == "kv" and None not in stack:
            number = first_line + counter.line(token.start()) - 1
            path = tuple(name for name in stack if name)
            value = _unquote(token["val"].strip())
            echoes.append(Echo(path, token["key"], value, _quote(source, number, lines)))
        elif kind == "open":
            stack.append(token["oname"])
        elif kind == "call":
            stack.append("")
        elif kind == "lp":
            stack.append(None)
        elif kind == "rp" and stack:
            stack.pop()
    return echoes


def _line_echoes(line: str, message: str, number: int, source: str, sections: list) -> list[Echo]:
    where = LogLine(source, number, line.strip())
    stripped = message.strip()
    if (stripped.startswith("{") or _NAMED_DICT.match(stripped)) and not stripped.endswith("{"):
        if _METRIC_DICT_KEY.search(stripped):
            return []
        return [Echo((), k, _unquote(v.strip()), where) for k, v in _DICT_PAIR.findall(stripped)]
    if " --" in stripped and _SCRIPT.search(stripped):
        # A bare `--flag` (argparse's store_true) sets it to true.
        pairs = [(m.start(), m[1], _unquote(m[2])) for m in _CLI_PAIR.finditer(stripped)]
        pairs += [(m.start(), m[1], "true") for m in _CLI_BARE.finditer(stripped)]
        return [Echo((), k.replace("-", "_"), v, where) for _, k, v in sorted(pairs)]
    found = _YAML_LINE.match(message)
    if not found or _MORE_PAIRS.search(_without_trailing_comma(found[3])):
        return []
    indent, key, value = len(found[1]), found[2], _without_trailing_comma(found[3])
    while sections and sections[-1][0] >= indent:
        sections.pop()
    if not value or value in ("{", "["):  # a JSON object or list (`key: {` ending the line) opens a section
        if not has_log_prefix(line) and ":" in message:
            sections.append((indent, key))
        return []
    if _PROSE.search(value) or _METRIC_KEY.search(key):  # `wandb: Currently logged in as ...`, `Loss: 0.53`
        return []
    return [Echo(tuple(name for _, name in sections), key, _unquote(value), where)]


def _without_trailing_comma(value: str) -> str:
    """`value` without trailing blanks and one trailing comma (with the blanks before it)."""
    value = value.rstrip()
    return value[:-1].rstrip() if value.endswith(",") else value


def _claim_phrases(line: str, number: int, source: str, claims: _Claims) -> None:
    if not _PHRASE_HINT.search(line):
        return
    for pattern, loaded in _PRETRAINED_PHRASES:
        found = pattern.search(line)
        if not found:
            continue
        where = LogLine(source, number, line.strip())
        if loaded:
            origin = found.group(1) if pattern.groups else None
            claims.loaded.append((origin.rstrip(".,") if origin else None, where))
        else:
            claims.scratch.append(where)
        return


def _quote(source: str, number: int, lines: dict[int, str]) -> LogLine:
    return LogLine(source, number, lines.get(number, "").strip())


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _apply(echo: Echo, meta: RunMeta, claims: _Claims) -> None:
    """Map one echo onto a RunMeta fact (first statement wins, as in `RunMeta.set`)."""
    key = echo.key.lower().replace("-", "_")
    parents = [p.lower() for p in echo.path]
    value = echo.value.strip()
    lowered = value.lower()
    foreign = any(_FOREIGN_PARENT.search(p) for p in parents)
    if key in _WEIGHT_KEYS or (key == "checkpoint" and parents[-1:] == ["init_cfg"]):
        _weights(key, value, echo.where, claims)
        if key in ("load_from", "pretrained") and lowered in ("none", "null") and parents in ([], ["model"]):
            claims.scratch.append(echo.where)  # an mmcv config's `load_from = None` (a load elsewhere wins)
    elif key in _FLOAT_FACTS and not foreign:
        number = _number(value)
        if number is not None:
            meta.set(_FLOAT_FACTS[key], number, echo.where)
    elif key in _INT_FACTS and not foreign:
        number = _number(value)
        count = None if number is None else as_counter(number)  # inf and 1e400 are no count
        if count is not None and count > 0:
            meta.set(_INT_FACTS[key], count, echo.where)
    elif key in _OPTIMIZER_KEYS or (key == "type" and parents[-1:] in (["optimizer"], ["optim"])):
        if re.fullmatch(r"[A-Za-z][\w.\-]*", value) and lowered not in _NONE:
            meta.set("optimizer", _optimizer_name(lowered), echo.where)
    elif (key == "type" and parents == ["model"]) or key == "meta_architecture":
        meta.set("net_name", value, echo.where)
    elif key in _NET_KEYS and not parents and re.fullmatch(r"[\w./\-]+", value) and lowered not in _NONE:
        if _number(value) is None and lowered not in TRUE_WORDS:
            meta.set("net_name", value, echo.where)
    elif key in ("betas", "adam_betas") and not foreign:
        numbers = re.findall(r"[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?", value)
        if len(numbers) == 2:  # (beta1, beta2)
            meta.set("adam_beta2", float(numbers[1]), echo.where)
    elif key in _CLIP_KEYS or (key == "max_norm" and parents[-1:] in (["grad_clip"], ["clip_grad"])):
        number = _number(value)
        if number is not None and number > 0:
            meta.set("clip_gradients", number, echo.where)
    else:
        _precision(key, parents, lowered, echo.where, meta)


def _weights(key: str, value: str, where: LogLine, claims: _Claims) -> None:
    lowered = value.lower()
    if key == "pretrained" and lowered in TRUE_WORDS:
        claims.loaded.append((None, where))
    elif key == "pretrained" and lowered in FALSE_WORDS:
        claims.scratch.append(where)
    elif key in ("pretrained", "weights") and lowered in ("false", "none", "''", ""):
        if key == "weights":
            claims.scratch.append(where)
    elif lowered not in _NONE and (key != "weights" or _WEIGHT_FILE.search(value)):
        claims.loaded.append((value, where))


def _precision(key: str, parents: list[str], value: str, where: LogLine, meta: RunMeta) -> None:
    truthy = value in TRUE_WORDS or value in ("o1", "o2", "o3")
    if key in ("fp16", "use_fp16", "half") and truthy:
        meta.set("precision", "fp16", where)
    elif key in ("bf16", "use_bf16") and truthy:
        meta.set("precision", "bf16", where)
    elif (key in ("amp", "use_amp") or (key == "enabled" and parents[-1:] == ["amp"])) and truthy:
        meta.set("precision", "mixed", where)
    elif key == "loss_scale" and parents[-1:] == ["fp16"]:
        meta.set("precision", "fp16", where)
    elif key == "type" and value == "ampoptimwrapper":
        meta.set("precision", "mixed", where)
    elif key in ("mixed_precision", "precision") and value in (
        "fp16",
        "bf16",
        "16",
        "16-mixed",
        "bf16-mixed",
    ):
        meta.set("precision", "bf16" if "bf16" in value else "fp16", where)


def _optimizer_name(value: str) -> str:
    name = value.rsplit(".", 1)[-1]
    return next((known for known in _OPTIMIZERS if known in name), name)


def _compound_facts(echoes: list[Echo], meta: RunMeta) -> None:
    """Facts stated by two settings together: detectron2 clips gradients only when
    SOLVER.CLIP_GRADIENTS.ENABLED is true."""
    by_key = {}
    for echo in echoes:
        by_key.setdefault(echo.dotted.lower(), echo)
    enabled = by_key.get("solver.clip_gradients.enabled")
    clip = by_key.get("solver.clip_gradients.clip_value")
    if enabled and clip and enabled.value.lower() in TRUE_WORDS:
        number = _number(clip.value)
        if number is not None:
            meta.set("clip_gradients", number, clip.where)
