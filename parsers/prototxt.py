"""A tolerant reader for protobuf TEXT format, as Caffe writes it (solver/net prototxts and the
parameter dumps in its logs).

Why our own: the `protobuf` package needs the compiled caffe.proto schema and refuses any text
it does not know (fork fields such as NVCaffe's `default_forward_type`, a dump cut off mid-file by
a crashed job, V1 `layers {}` nets). Here there is no schema: every `key: value` and `key { ... }`
is kept in file order with its line number, unknown junk is skipped and reported, and a missing
closing brace at the end simply ends the message. One compiled regex tokenises the whole text.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TypeAlias

from parsers.source import ParseError

Value: TypeAlias = "str | float | bool | Message"

# One alternation over the whole text; the group that matched names the token kind.
_TOKEN_RE = re.compile(
    r"""
    (?P<nl>\n)
  | (?P<space>[ \t\r\f\v]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"?|'(?:[^'\\\n]|\\.)*'?)
  | (?P<number>[-+]?(?<!\d)(?:0[xX][0-9a-fA-F]++|(?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?[fF]?)(?![\w.])
             |-(?:inf(?:inity)?|nan)\b)
  | (?P<ident>[A-Za-z_][\w.]*|\[[\w./]+\])
  | (?P<open>[{<])
  | (?P<close>[}>])
  | (?P<colon>:)
  | (?P<lbracket>\[)
  | (?P<rbracket>\])
  | (?P<sep>[;,])
  | (?P<junk>.)
    """,
    re.VERBOSE | re.IGNORECASE,
)

_ESCAPE_RE = re.compile(r"\\(?:([0-7]{1,3})|x([0-9a-fA-F]{1,2})|u([0-9a-fA-F]{4})|(.))", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "a": "\a", "b": "\b", "f": "\f", "v": "\v"}
_BOOLS = {"true": True, "false": False}
_SPECIAL_FLOATS = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


@dataclass
class Field:
    """One `key: value` or `key { ... }` in file order. `raw` is the value as written (for
    hyper-parameter echoes: `1e-4` stays `1e-4`); strings are unquoted and unescaped in `value`."""

    key: str
    value: Value
    line: int
    raw: str = ""


@dataclass
class Message:
    """A text-format message. Only the top-level message of a parse carries `comments` and
    `problems` (every `#` comment and every skipped token anywhere in the text, with its line).
    glog cuts long messages (~30 KB), so a net dumped in a log often ends mid-layer: `truncated`."""

    fields: list[Field]
    comments: list[tuple[int, str]] = field(default_factory=list)
    problems: list[tuple[int, str]] = field(default_factory=list)
    # The parsed text's lines and the line number of its first line, shared by nested messages so
    # that any field can be quoted verbatim.
    source_lines: list[str] = field(default_factory=list, repr=False, compare=False)
    first_line: int = 1
    truncated: bool = False  # the text ended before this message's closing brace

    def find(self, key: str) -> Field | None:
        """The first field with this key."""
        return next((f for f in self.fields if f.key == key), None)

    def get(self, key: str, default: Value | None = None) -> Value | None:
        found = self.find(key)
        return default if found is None else found.value

    def get_all(self, key: str) -> list[Value]:
        return [f.value for f in self.fields if f.key == key]

    def get_float(self, key: str, default: float | None = None) -> float | None:
        number = _as_float(self.get(key))
        return default if number is None else number

    def get_int(self, key: str, default: int | None = None) -> int | None:
        number = _as_float(self.get(key))
        if number is None or not math.isfinite(number):
            return default
        return int(number)

    def get_str(self, key: str, default: str | None = None) -> str | None:
        """Strings and enum names as they are; numbers and booleans as written."""
        found = self.find(key)
        if found is None or isinstance(found.value, Message):
            return default
        return found.value if isinstance(found.value, str) else found.raw

    def get_bool(self, key: str, default: bool | None = None) -> bool | None:
        value = self.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOLS:
            return _BOOLS[value.lower()]
        if isinstance(value, float) and value in (0.0, 1.0):
            return bool(value)
        return default

    def messages(self, key: str) -> list[Message]:
        return [f.value for f in self.fields if f.key == key and isinstance(f.value, Message)]

    def line_of(self, key: str) -> int | None:
        found = self.find(key)
        return None if found is None else found.line

    def line_text(self, line: int) -> str:
        """The text of a line of the parsed input ('' when out of range)."""
        index = line - self.first_line
        return self.source_lines[index] if 0 <= index < len(self.source_lines) else ""


def parse_prototxt(text: str, first_line: int = 1) -> Message:
    """Parse text-format protobuf. Never raises on messy input; raises ParseError only when the
    text holds no field at all. `first_line` is the line number of the text's first line (a dump
    that sits inside a log)."""
    lines = text.split("\n")
    if "\r" in text:  # CRLF files: quote lines without the carriage return
        lines = [line.rstrip("\r") for line in lines]
    root = Message(fields=[], source_lines=lines, first_line=first_line)
    tokens = _tokenize(text, first_line, root)
    stack: list[tuple[Message, int, str]] = [(root, first_line, "")]  # message, opened at, key
    i, n = 0, len(tokens)
    while i < n:
        kind, token, line = tokens[i]
        current = stack[-1][0]
        i += 1
        if kind == "close":
            if len(stack) > 1:
                stack.pop()
            else:
                root.problems.append((line, f"skipped unmatched {token!r}"))
            continue
        if kind == "sep":
            continue
        if kind != "ident":
            root.problems.append((line, f"skipped unexpected {_shown(token)}"))
            continue
        key = token[1:-1] if token.startswith("[") else token
        colon = i < n and tokens[i][0] == "colon"
        if colon:
            i += 1
        if i < n and tokens[i][0] == "open":
            child = Message(fields=[], source_lines=lines, first_line=first_line)
            current.fields.append(Field(key, child, line))
            stack.append((child, line, key))
            i += 1
            continue
        if colon and i < n and tokens[i][0] == "lbracket":
            i = _parse_list(tokens, i + 1, key, line, current, root)
            continue
        if colon and i < n and _is_value(tokens, i, line):
            value, raw, i = _parse_value(tokens, i)
            current.fields.append(Field(key, value, line, raw))
            continue
        root.problems.append((line, f"skipped {key!r}: no value"))
    for message, opened, key in reversed(stack[1:]):
        message.truncated = root.truncated = True
        root.problems.append((opened, f"the text ends inside '{key} {{' opened at line {opened}"))
    if not root.fields:
        raise ParseError("no protobuf text-format field (`key: value` or `key { ... }`) found")
    return root


def _tokenize(text: str, first_line: int, root: Message) -> list[tuple[str, str, int]]:
    """(kind, text, line) for every meaningful token; comments go straight to root.comments."""
    tokens: list[tuple[str, str, int]] = []
    line = first_line
    append = tokens.append
    for match in _TOKEN_RE.finditer(text):
        kind = match.lastgroup
        if kind == "nl":
            line += 1
        elif kind == "space":
            continue
        elif kind == "comment":
            root.comments.append((line, match.group()[1:].strip()))
        else:
            append((kind, match.group(), line))  # type: ignore[arg-type]
    return tokens


def _is_value(tokens: list[tuple[str, str, int]], i: int, key_line: int) -> bool:
    """A scalar value follows; a name on a later line followed by ':' or '{' is the next key
    (the previous key lost its value, e.g. `base_lr:` with nothing after it)."""
    kind, _, line = tokens[i]
    if kind in ("string", "number"):
        return True
    if kind != "ident":
        return False
    if line == key_line or i + 1 >= len(tokens):
        return True
    return tokens[i + 1][0] not in ("colon", "open")


def _parse_value(tokens: list[tuple[str, str, int]], i: int) -> tuple[Value, str, int]:
    kind, token, _ = tokens[i]
    i += 1
    if kind == "string":
        parts = [token]
        while i < len(tokens) and tokens[i][0] == "string":  # "abc" "def" concatenates
            parts.append(tokens[i][1])
            i += 1
        return "".join(_unquote(p) for p in parts), " ".join(parts), i
    if kind == "number":
        return _number(token), token, i
    lowered = token.lower()
    if lowered in _BOOLS:
        return _BOOLS[lowered], token, i
    if lowered in _SPECIAL_FLOATS:
        return _SPECIAL_FLOATS[lowered], token, i
    return token, token, i


def _parse_list(
    tokens: list[tuple[str, str, int]], i: int, key: str, line: int, current: Message, root: Message
) -> int:
    """`key: [v1, v2]` (or a list of messages) becomes repeated fields, as protobuf reads it."""
    while i < len(tokens) and tokens[i][0] != "rbracket":
        kind = tokens[i][0]
        if kind == "sep":
            i += 1
        elif kind in ("string", "number", "ident"):
            value, raw, i = _parse_value(tokens, i)
            current.fields.append(Field(key, value, line, raw))
        elif kind == "open":
            # Nested messages inside a list are rare in Caffe files; read them flat to the close.
            child = Message(fields=[], source_lines=root.source_lines, first_line=root.first_line)
            current.fields.append(Field(key, child, tokens[i][2]))
            depth, i = 1, i + 1
            while i < len(tokens) and depth:
                depth += {"open": 1, "close": -1}.get(tokens[i][0], 0)
                i += 1
        else:
            root.problems.append((tokens[i][2], f"skipped unexpected {_shown(tokens[i][1])} in a list"))
            i += 1
    return i + 1


def _number(token: str) -> float:
    lowered = token.lower()
    if lowered.lstrip("+-") in _SPECIAL_FLOATS:
        value = _SPECIAL_FLOATS[lowered.lstrip("+-")]
        return -value if lowered.startswith("-") else value
    if "x" in lowered:
        number = int(lowered, 16)
        try:
            return float(number)
        except OverflowError:  # a hex literal past the float range reads as +-inf, as 1e400 does
            return math.inf if number > 0 else -math.inf
    return float(lowered.rstrip("f"))


def _unquote(token: str) -> str:
    quote = token[0]
    body = token[1:-1] if len(token) > 1 and token.endswith(quote) else token[1:]
    if "\\" not in body:
        return body
    # Escapes may spell UTF-8 bytes (protobuf prints non-ASCII as octal): decode bytes at the end.
    out = bytearray()
    pos = 0
    for match in _ESCAPE_RE.finditer(body):
        out += body[pos : match.start()].encode("utf-8")
        octal, hexa, uni, char = match.groups()
        if octal:
            out.append(int(octal, 8) & 0xFF)
        elif hexa:
            out.append(int(hexa, 16))
        elif uni:
            out += chr(int(uni, 16)).encode("utf-8")
        else:
            out += _SIMPLE_ESCAPES.get(char, char).encode("utf-8")
        pos = match.end()
    out += body[pos:].encode("utf-8")
    return out.decode("utf-8", errors="replace")


def _as_float(value: Value | None) -> float | None:
    if isinstance(value, bool) or value is None or isinstance(value, Message):
        return None
    if isinstance(value, float):
        return value
    try:
        return float(value)
    except ValueError:
        return None


def _shown(token: str) -> str:
    return repr(token if len(token) <= 30 else token[:27] + "...")
