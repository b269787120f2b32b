"""Raw input handling: bytes in (uploads arrive as bytes, not paths), decompressed and decoded once.

Logs come gzip-compressed, with CRLF or bare CR (tqdm), in GBK from Chinese machines, cut off
mid-line or with binary junk. Nothing here raises on such input: text is decoded with
replacement characters and the count of undecodable bytes is reported as a warning.
"""

from __future__ import annotations

import codecs
import mmap
import os
import zlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from charset_normalizer import from_bytes

GZIP_MAGIC = b"\x1f\x8b"
# Files of a run folder that are never logs: weights and solver states, images, arrays. Skipped when a
# folder is read, followed or scanned.
NOT_LOG_SUFFIXES = {
    ".caffemodel",
    ".solverstate",
    ".pth",
    ".pt",
    ".ckpt",
    ".safetensors",
    ".png",
    ".jpg",
    ".npy",
}
# A saved Python object: torch.save's zip (a `data.pkl` member near the start) or a bare pickle
# (protocol 2-5 starts with PROTO), as HF's `training_args.bin` or a `.bin` checkpoint.
_PICKLE_PROTOCOLS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")
# Budgets checked while a compressed upload is decompressed, so that a small archive (a "zip bomb")
# is refused before it fills memory. The operator can change them with the environment variables
# of the same name prefixed LOSS_DOCTOR_ (see `budget`).
MAX_DECOMPRESSED_BYTES = 4 * 1024**3
# Text logs compress 5 to 15 times; a bomb of zeros about 1000 times. Checked once the output passes
# _RATIO_FLOOR_BYTES: smaller outputs cannot flood memory, whatever their ratio.
MAX_COMPRESSION_RATIO = 200
_RATIO_FLOOR_BYTES = 16 * 1024**2
_GUNZIP_STEP = 1024**2  # compressed bytes fed at a time, and decompressed bytes taken at a time
# UTF-32 before UTF-16: the UTF-32-LE mark starts with the UTF-16-LE one.
_BYTE_ORDER_MARKS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Lines of a text log longer than this are skipped and reported, never scanned: no log line is that
# long, and one huge line (a file with no line break) is where a pattern's scan time would explode.
MAX_LINE_CHARS = 64 * 1024
# Files on disk at least this large are memory-mapped rather than read (see SourceFile.from_path).
MAP_BYTES = 32 * 1024**2


# Encodings tried for non-UTF-8 logs. Korean code pages are left out on purpose: on short Chinese
# samples charset-normalizer prefers them over GB18030, and our users' machines write GBK.
_CANDIDATE_ENCODINGS = ["gb18030", "big5", "shift_jis", "cp1252", "cp1251", "latin_1"]


class ParseError(ValueError):
    """The input holds no training data this tool can read; the message says why, in plain words."""


def budget(name: str, default: int) -> int:
    """A limit: `default`, unless the operator set LOSS_DOCTOR_<name> to a positive integer."""
    setting = os.environ.get(f"LOSS_DOCTOR_{name}", "").strip().replace("_", "")
    return int(setting) if setting.isdigit() and int(setting) > 0 else default


@dataclass
class SourceFile:
    """One uploaded file of a run."""

    name: str
    data: bytes | mmap.mmap  # a large file on disk is mapped, not read: see from_path
    notes: list[str] = field(default_factory=list)  # decoding notes, shown as warnings
    long_lines: list[int] = field(default_factory=list)  # lines `log_text` left out (1-based)
    # (format, score) once `parsers.detect` has sniffed it: splitting a folder into runs and loading
    # a run then sniff each file once
    detected: tuple[str | None, float] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_bytes(cls, name: str, raw: bytes) -> SourceFile:
        notes: list[str] = []
        if raw[:2] == GZIP_MAGIC:
            raw = _gunzip(raw, notes)
            if name.endswith(".gz"):
                name = name[:-3]
        return cls(name=name, data=_utf8_from_marked(raw), notes=notes)

    @classmethod
    def from_path(cls, path: Path) -> SourceFile:
        """A file on disk. A large uncompressed one is memory-mapped, so that a parser that reads it
        chunk by chunk (the Caffe parser) never holds the whole file in memory."""
        size = path.stat().st_size
        if size < MAP_BYTES:
            return cls.from_bytes(path.name, path.read_bytes())
        with path.open("rb") as fh:
            head = fh.read(4)
            if head[:2] == GZIP_MAGIC or _marked_encoding(head):
                fh.seek(0)
                return cls.from_bytes(path.name, fh.read())
            mapped = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        return cls(name=path.name, data=mapped)

    def is_blank(self) -> bool:
        """Empty or only whitespace (read in blocks, so a mapped file is not copied)."""
        block = 1 << 20
        return all(not self.data[at : at + block].strip() for at in range(0, self.size, block))

    def as_bytes(self) -> bytes:
        """The whole content as bytes (a copy when the file is mapped)."""
        return self.data if isinstance(self.data, bytes) else self.data[:]

    @property
    def size(self) -> int:
        return len(self.data)

    def head_bytes(self, n: int = 64 * 1024) -> bytes:
        return self.data[:n]

    def head_text(self, n: int = 64 * 1024) -> str:
        """The first n bytes decoded the same way as `text` (for format sniffing)."""
        return self.data[:n].decode(self.encoding, errors="replace")

    def looks_binary(self) -> bool:
        """Text logs have no NUL bytes and few control characters; TFRecord or images do. Backspace and
        ESC count as text: a progress bar redirected to a file redraws with them (Keras 3's `fit` writes
        a run of backspaces and colour codes before every update)."""
        head = self.data[:8192]
        if not head:
            return False
        if b"\x00" in head:
            return True
        control = sum(1 for b in head if b < 8 or (13 < b < 32 and b != 27))
        return control / len(head) > 0.05

    @cached_property
    def encoding(self) -> str:
        """UTF-8 when the bytes are UTF-8 (the common case, checked cheaply on a sample);
        otherwise charset-normalizer's best guess (GB18030, CP1252, ...)."""
        sample = self.data[: 1024 * 1024]
        try:
            sample.decode("utf-8")
            return "utf-8"
        except UnicodeDecodeError as err:
            if err.start >= len(sample) - 4:  # a multi-byte character cut by the sample boundary
                return "utf-8"
        best = from_bytes(sample, cp_isolation=_CANDIDATE_ENCODINGS).best()
        return best.encoding if best is not None else "latin-1"

    @cached_property
    def text(self) -> str:
        """The whole file as text; CRLF and bare CR (progress bars) become line breaks."""
        text = self.as_bytes().decode(self.encoding, errors="replace")
        bad = text.count("\ufffd")
        if bad:
            self.notes.append(f"{bad} byte(s) could not be decoded as {self.encoding}; shown as \ufffd")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text

    def lines(self) -> list[str]:
        return self.text.split("\n")

    @cached_property
    def log_text(self) -> str:
        """`text` with every line longer than MAX_LINE_CHARS emptied (so line numbers stay) and listed in
        `long_lines`: what the line-oriented parsers read. The scan jumps from line break to line
        break at most a cap's length apart, so it costs a few passes of `rfind` over the text."""
        text = self.text
        cap = budget("MAX_LINE_CHARS", MAX_LINE_CHARS)
        kept: list[str] = []
        copied = 0  # text before this offset is in `kept`
        at = 0  # a line start
        line, counted = 1, 0  # the line number at offset `counted`
        while len(text) - at > cap:
            last_break = text.rfind("\n", at, at + cap + 1)
            if last_break >= 0:  # every line from `at` to there is short enough
                at = last_break + 1
                continue
            end = text.find("\n", at)
            end = len(text) if end < 0 else end
            line += text.count("\n", counted, at)
            counted = at
            self.long_lines.append(line)
            kept.append(text[copied:at])
            copied = at = end
        return "".join([*kept, text[copied:]]) if kept else text

    def log_lines(self) -> list[str]:
        return self.log_text.split("\n")


def _gunzip(raw: bytes, notes: list[str]) -> bytes:
    """Decompress every member of a gzip archive, a step at a time, refusing it as soon as the output
    passes the size or ratio budget; what a truncated or corrupt archive held up to the damage is
    kept, with a note."""
    limit = budget("MAX_DECOMPRESSED_BYTES", MAX_DECOMPRESSED_BYTES)
    ratio = budget("MAX_COMPRESSION_RATIO", MAX_COMPRESSION_RATIO)
    out: list[bytes] = []
    size = 0
    view = memoryview(raw)
    start = 0  # where the current member starts in `raw`
    damaged = False
    while start < len(raw):
        member = zlib.decompressobj(16 + zlib.MAX_WBITS)
        fed = start
        try:
            while not member.eof and fed < len(raw):
                pending = view[fed : fed + _GUNZIP_STEP]
                fed += len(pending)
                while pending and not member.eof:
                    piece = member.decompress(pending, _GUNZIP_STEP)
                    pending = member.unconsumed_tail
                    size += len(piece)
                    out.append(piece)
                    check_budget(size, fed - len(pending), limit, ratio)
        except zlib.error:
            damaged = True
            break
        if not member.eof:
            damaged = True  # cut off
            break
        start = fed - len(member.unused_data)
        while start < len(raw) and raw[start] == 0:  # padding after the last member
            start += 1
        if start < len(raw) and raw[start : start + 2] != GZIP_MAGIC:
            damaged = True  # trailing junk
            break
    if damaged:
        notes.append("the gzip archive is truncated or corrupt; parsed what could be recovered")
    return b"".join(out)


def check_budget(size: int, consumed: int, limit: int, ratio: int) -> None:
    """ParseError once `size` decompressed bytes (from `consumed` compressed ones) pass a budget."""
    if size > limit:
        raise ParseError(
            f"the compressed file expands to more than {limit / 1024**2:,.0f} MiB; refusing to read it "
            "(the server's limit, LOSS_DOCTOR_MAX_DECOMPRESSED_BYTES)"
        )
    if size > _RATIO_FLOOR_BYTES and size > ratio * max(consumed, 1):
        raise ParseError(
            f"the compressed file expands more than {ratio} times, which no training log does; "
            "refusing to read it (the server's limit, LOSS_DOCTOR_MAX_COMPRESSION_RATIO)"
        )


def _marked_encoding(head: bytes) -> str | None:
    """UTF-16 or UTF-32 when the bytes start with its byte-order mark (Windows PowerShell's `>`
    writes UTF-16-LE with one), else None."""
    return next((encoding for mark, encoding in _BYTE_ORDER_MARKS if head.startswith(mark)), None)


def _utf8_from_marked(raw: bytes) -> bytes:
    """A UTF-16/UTF-32 file with a byte-order mark as UTF-8, so that every parser (the Caffe one reads
    bytes) and the binary check see text; other bytes unchanged."""
    encoding = _marked_encoding(raw[:4])
    if encoding is None:
        return raw
    return raw.decode(encoding, errors="replace").encode("utf-8")


def saved_object(source: SourceFile) -> bool:
    """The file is a pickled Python object (torch.save, pickle.dump), which is never read: unpickling
    runs code of the file's choosing."""
    head = source.data[:512]
    return head.startswith(_PICKLE_PROTOCOLS) or (head.startswith(b"PK\x03\x04") and b"data.pkl" in head)


def describe_head(source: SourceFile, lines: int = 5) -> str:
    """The first few lines, for error messages that show what was seen."""
    if source.looks_binary():
        return f"(binary data, first bytes: {source.data[:16]!r})"
    shown = [ln[:120] for ln in source.head_text(8192).splitlines()[:lines]]
    return "\n".join(f"  {i + 1}: {ln}" for i, ln in enumerate(shown)) or "  (empty)"
