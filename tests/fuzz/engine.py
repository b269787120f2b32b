"""The fuzz property and the machinery around it: seed runs, byte-level mutations, a sandboxed executor.

The property: reading a run (`parsers.load`), diagnosing it (`diagnostics.diagnose`), rendering what
the CLI prints (text and JSON) and downsampling every curve for the chart either succeed or raise
`ParseError`. Anything else is a bug, and so is a case that stalls. Cases run in a forked worker so that
a stall, a native panic or a memory blow-up is reported as a finding instead of stopping the run.
"""

from __future__ import annotations

import codecs
import gzip
import json
import multiprocessing
import random
import re
import resource
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from diagnostics import diagnose
from diagnostics.__main__ import _strict, parsed_summary, render_text
from parsers import ParseError, load
from present.downsample import downsample

REPO = Path(__file__).resolve().parents[2]
SAMPLE_LOGS = REPO / "sample_logs"
REAL_LOGS = REPO / "../shared/real_logs"
Files = list[tuple[str, bytes]]

# A seed file larger than this is cut to a window of it: mutations near the start matter most (headers,
# format sniffing), and small cases keep the rate at tens of cases per second.
SEED_WINDOW = 48 * 1024
# Numbers and tokens that have broken parsers elsewhere: overflow, signed zero, huge ints, empties.
HOSTILE_TOKENS = [
    b"nan", b"NaN", b"-nan", b"inf", b"-inf", b"Infinity", b"-0", b"-0.0", b"1e400", b"-1e400",
    b"1e-400", b"99999999999999999999999999", b"-99999999999999999999", b"9" * 400, b"0x1F", b"1_000",
    b"", b" ", b"-", b"+", b".", b"e", b"1e", b"--1", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"\xe4\xb8\xad",
    b"\xf0\x9f\x94\xa5", b"\\u0000", b"null", b"true", b"[]", b"{}", b'"', b",", b"=", b":", b"\n", b"\r",
    b"A" * 3000, b"Iteration -5", b"step=-1", b"epoch -3",
]  # fmt: skip
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Outcome:
    """What one case did: `ok`, `parse_error`, `crash` (any other exception), `rule_error` (a rule raised
    and `diagnose` reported it as failed), `timeout` or `died`."""

    kind: str
    seconds: float
    error: str = ""  # exception type and message
    site: str = ""  # file:line (function) of the innermost project frame that raised, or the rule id

    @property
    def bad(self) -> bool:
        return self.kind != "ok" and self.kind != "parse_error"


def check(files: Files) -> Outcome:
    """Run the property on one case in this process."""
    start = time.perf_counter()
    try:
        log = load(files)
    except ParseError:
        return Outcome("parse_error", time.perf_counter() - start)
    except BaseException as err:  # a native (Rust) panic is a BaseException
        if isinstance(err, KeyboardInterrupt):
            raise
        return _crash(err, start)
    try:
        d = diagnose(log)
        render_text(log, d, "en")
        report = d.to_json("zh") | {"parsed": parsed_summary(log)}
        json.dumps(_strict(report), ensure_ascii=False, default=str, allow_nan=False)
        m = log.metrics
        for _, curve in m.groupby(["split", "metric"], observed=True):
            downsample(curve["step"].to_numpy(), curve["value"].to_numpy(), n_out=200)
    except BaseException as err:
        if isinstance(err, KeyboardInterrupt):
            raise
        return _crash(err, start)
    if d.errors:
        rule, error = d.errors[0]
        return Outcome("rule_error", time.perf_counter() - start, error[:200], f"rule {rule}")
    return Outcome("ok", time.perf_counter() - start)


def _crash(err: BaseException, start: float) -> Outcome:
    frames = [f for f in traceback.extract_tb(err.__traceback__) if f.filename.startswith(str(REPO))]
    site = ""
    if frames:
        f = frames[-1]
        site = f"{Path(f.filename).relative_to(REPO)}:{f.lineno} ({f.name})"
    message = str(err).splitlines()[0][:200] if str(err) else ""
    return Outcome("crash", time.perf_counter() - start, f"{type(err).__name__}: {message}", site)


# ---------------------------------------------------------------------------------------- seeds


def seed_runs() -> list[Files]:
    """Every sample run and real log: a file, or a folder holding the files of one run."""
    roots = [p for p in sorted(SAMPLE_LOGS.iterdir()) if p.name not in ("corpus", "generator")]
    roots = [p for p in roots if p.suffix not in (".py", ".md") and p.name != "labels.csv"]
    roots += sorted((SAMPLE_LOGS / "corpus" / "runs").iterdir())
    if REAL_LOGS.is_dir():
        skip = {"README.md", "MANIFEST.csv"}
        roots += [p for p in sorted(REAL_LOGS.rglob("*")) if p.is_file() and p.name not in skip]
    runs = []
    for root in roots:
        members = sorted(p for p in root.iterdir() if p.is_file()) if root.is_dir() else [root]
        runs.append([(_plain_name(p), _plain_bytes(p)) for p in members])
    return runs


def _plain_name(path: Path) -> str:
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def _plain_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    return gzip.decompress(raw) if path.suffix == ".gz" else raw


# ------------------------------------------------------------------------------------ mutations


def mutate_case(rng: random.Random, seeds: list[Files]) -> Files:
    """One mutated run: a seed run cut to a window, then one to four stacked mutations of one file."""
    files = [(name, _window(rng, data)) for name, data in rng.choice(seeds)]
    at = rng.randrange(len(files))
    name, data = files[at]
    for _ in range(rng.randint(1, 4)):
        mutation = rng.choice(MUTATIONS)
        data = mutation(rng, data, seeds) if mutation is splice else mutation(rng, data)
    files[at] = (name, data)
    return files


def _window(rng: random.Random, data: bytes) -> bytes:
    if len(data) <= SEED_WINDOW:
        return data
    if rng.random() < 0.5:
        return data[:SEED_WINDOW]
    start = rng.randrange(len(data) - SEED_WINDOW)
    return data[start : start + SEED_WINDOW]


def bit_flip(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
    return bytes(out)


def insert_bytes(rng: random.Random, data: bytes) -> bytes:
    at = rng.randint(0, len(data))
    blob = rng.choice(HOSTILE_TOKENS) if rng.random() < 0.7 else rng.randbytes(rng.randint(1, 16))
    return data[:at] + blob + data[at:]


def delete_bytes(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    return data[:at] + data[at + rng.randint(1, 64) :]


def duplicate_chunk(rng: random.Random, data: bytes) -> bytes:
    if not data:
        return data
    at = rng.randrange(len(data))
    chunk = data[at : at + rng.randint(1, 4096)]
    return data[:at] + chunk * rng.randint(2, 20) + data[at:]


def truncate(rng: random.Random, data: bytes) -> bytes:
    cut = rng.randint(0, len(data))
    return data[:cut] if rng.random() < 0.7 else data[cut:]


def shuffle_lines(rng: random.Random, data: bytes) -> bytes:
    lines = data.split(b"\n")
    if len(lines) < 2:
        return data
    start = rng.randrange(len(lines))
    window = lines[start : start + rng.randint(2, 200)]
    rng.shuffle(window)
    return b"\n".join(lines[:start] + window + lines[start + len(window) :])


def hostile_number(rng: random.Random, data: bytes) -> bytes:
    """Replace a few numbers of the file with nan, inf, -0, 1e400, huge or negative ones."""
    spans = [m.span() for m in islice(_NUMBER.finditer(data, rng.randrange(len(data) + 1)), 200)]
    if not spans:
        return data
    out = data
    for start, end in sorted(rng.sample(spans, min(len(spans), rng.randint(1, 5))), reverse=True):
        out = out[:start] + rng.choice([*HOSTILE_TOKENS[:18], b"-" + out[start:end]]) + out[end:]
    return out


def splice(rng: random.Random, data: bytes, seeds: list[Files]) -> bytes:
    """The head of this file glued to the tail of a file of another run."""
    _, other = rng.choice(rng.choice(seeds))
    other = _window(rng, other)
    return data[: rng.randint(0, len(data))] + other[rng.randint(0, len(other)) :]


def re_encode(rng: random.Random, data: bytes) -> bytes:
    """The same text in another encoding, with other line ends, or gzipped (whole or cut off)."""
    choice = rng.randrange(6)
    if choice == 0:
        return gzip.compress(data, mtime=0)[: None if rng.random() < 0.7 else rng.randint(0, len(data))]
    if choice == 1:
        return data.replace(b"\n", b"\r\n" if rng.random() < 0.5 else b"\r")
    text = data.decode("utf-8", errors="replace")
    encoding = rng.choice(["utf-16", "utf-16-be", "utf-32", "gb18030", "big5", "shift_jis", "cp1252"])
    if choice == 2:
        return codecs.BOM_UTF8 + data
    return text.encode(encoding, errors="replace")


MUTATIONS: list[Callable] = [
    bit_flip, insert_bytes, delete_bytes, duplicate_chunk, truncate, shuffle_lines, hostile_number,
    hostile_number, splice, re_encode,
]  # fmt: skip


# ------------------------------------------------------------------------------------- executor


def _serve(conn, memory_limit: int) -> None:
    warnings.simplefilter("ignore")  # numpy's overflow warnings on hostile numbers are not findings
    resource.setrlimit(resource.RLIMIT_AS, (memory_limit, memory_limit))
    while True:
        files = conn.recv()
        conn.send(check(files))


class Executor:
    """Runs cases in one forked worker; a case past `timeout` seconds or killing the worker is a
    finding, and the worker is started again for the next case."""

    def __init__(self, timeout: float = 30.0, memory_limit: int = 3 * 1024**3) -> None:
        self.timeout, self.memory_limit = timeout, memory_limit
        self._context = multiprocessing.get_context("fork")
        self._worker = None

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop()

    def run(self, files: Files) -> Outcome:
        if self._worker is None:
            self._conn, child = self._context.Pipe()
            self._worker = self._context.Process(target=_serve, args=(child, self.memory_limit), daemon=True)
            self._worker.start()
        start = time.perf_counter()
        self._conn.send(files)
        if self._conn.poll(self.timeout):
            try:
                return self._conn.recv()
            except EOFError:
                pass
        else:
            self._stop()
            return Outcome("timeout", time.perf_counter() - start, f"over {self.timeout:g} s")
        code = self._worker.exitcode
        self._stop()
        return Outcome("died", time.perf_counter() - start, f"worker exit code {code}")

    def _stop(self) -> None:
        if self._worker is not None:
            self._worker.kill()
            self._worker.join()
            self._worker = None
