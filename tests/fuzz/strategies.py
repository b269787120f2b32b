"""Hypothesis strategies for structure-aware cases: logs of the supported shapes (Caffe glog lines,
key=value print lines, JSON-lines records, CSV tables) that sniff as their format, so that the hostile
numbers in them (nan, inf, -0, 1e400, huge ints, negative steps, empty fields, unicode, long tokens)
reach the parsers' number handling instead of being rejected at the door."""

from __future__ import annotations

import json

from hypothesis import strategies as st

Files = list[tuple[str, bytes]]

# Numbers as a log may print them, hostile ones first.
HOSTILE_NUMBERS = [
    "nan", "NaN", "-nan", "inf", "-inf", "Infinity", "-Infinity", "-0", "-0.0", "0", "1e400", "-1e400",
    "1e-400", "1e308", "99999999999999999999999", "-99999999999999999999999", "9223372036854775808",
    "-9223372036854775809", "1.", ".5", "1e", "", " ", "-", "0x10", "1_000", "١٢", "½",
]  # fmt: skip

number_text = st.one_of(
    st.sampled_from(HOSTILE_NUMBERS),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.floats(min_value=-10, max_value=10).map(lambda x: f"{x:.4f}"),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.integers(min_value=1, max_value=400).map(lambda n: "9" * n),
)
step_text = st.one_of(
    st.integers(min_value=0, max_value=10**6).map(str),
    st.integers(min_value=-(10**6), max_value=-1).map(str),
    number_text,
)
# Metric names: the usual ones, unicode, empty, separators and long words.
name_text = st.one_of(
    st.sampled_from(
        ["loss", "lr", "acc", "val_loss", "eval_loss", "accuracy", "top1", "grad_norm", "loss_cls"]
    ),
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=12),
    st.integers(min_value=100, max_value=5000).map(lambda n: "x" * n),
)


@st.composite
def caffe_glog(draw: st.DrawFn) -> Files:
    """Solver lines of a Caffe training log: iterations, losses, net outputs, lr and test passes."""
    lines = [
        "I0528 19:28:51.296658 12345 solver.cpp:48] Initializing solver from parameters:",
        f"base_lr: {draw(number_text)}",
        f'lr_policy: "{draw(st.sampled_from(["step", "fixed", "inv", ""]))}"',
    ]
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        it, value = draw(step_text), draw(number_text)
        lines += draw(
            st.sampled_from(
                [
                    [
                        f"I0528 19:29:01.1 12345 solver.cpp:218] Iteration {it} (0.5 iter/s, 20s/20 iters), loss = {value}"
                    ],
                    [
                        f"I0528 19:29:01.1 12345 solver.cpp:237]     Train net output #0: loss = {value} (* 1 = {value} loss)"
                    ],
                    [f"I0528 19:29:01.1 12345 sgd_solver.cpp:105] Iteration {it}, lr = {value}"],
                    [
                        f"I0528 19:29:01.1 12345 solver.cpp:330] Iteration {it}, Testing net (#0)",
                        f"I0528 19:29:02.1 12345 solver.cpp:397]     Test net output #0: accuracy = {value}",
                    ],
                ]
            )
        )
    return [("train.log", "\n".join(lines).encode())]


@st.composite
def print_lines(draw: st.DrawFn) -> Files:
    """Hand-rolled `print()` training lines of key=value / key: value pairs with epoch and step."""
    template = draw(
        st.sampled_from(
            [
                "Epoch {ep} | step {it} | {name}={v} lr={v2}",
                "epoch: {ep}, iter: {it}, {name}: {v}, lr: {v2}",
                "[{ep}/{it}] {name} {v} {name}_2 {v2}",
                "Epoch [{ep}][{it}/{n}]\t{name}: {v}, lr: {v2}",
                "step {it}: {name} = {v}",
            ]
        )
    )
    lines = [
        template.format(
            ep=draw(step_text),
            it=draw(step_text),
            n=draw(step_text),
            name=draw(name_text).replace("{", ""),
            v=draw(number_text),
            v2=draw(number_text),
        )
        for _ in range(draw(st.integers(min_value=1, max_value=30)))
    ]
    return [("train.log", "\n".join(lines).encode("utf-8", errors="replace"))]


json_value = st.one_of(
    number_text.map(lambda text: {"raw": text}),  # written verbatim, so 1e400 and 1_000 reach the parser
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.sampled_from([None, True, "", "nan", [], {}, [1.0, 2.0]]),
)


@st.composite
def json_lines(draw: st.DrawFn) -> Files:
    """JSON-lines records (generic, detectron2, mmdet, fairseq keys) with hostile values and steps."""
    counter = draw(st.sampled_from(["step", "iteration", "iter", "epoch", "num_updates", "global_step"]))
    extra = draw(st.lists(name_text, max_size=4))
    lines = []
    for _ in range(draw(st.integers(min_value=1, max_value=25))):
        record = {counter: draw(st.one_of(st.integers(0, 10**6), json_value))}
        if counter == "iter":
            record |= {"mode": draw(st.sampled_from(["train", "val"])), "epoch": draw(json_value)}
        for key in ["loss", "lr", *extra]:
            if draw(st.booleans()):
                record[key] = draw(json_value)
        lines.append(_json(record))
    name = draw(st.sampled_from(["log.jsonl", "metrics.json", "x.log.json", "scalars.json"]))
    return [(name, "\n".join(lines).encode("utf-8", errors="replace"))]


def _json(value: object) -> str:
    """JSON with NaN/Infinity as Python writes them and {"raw": text} written verbatim."""
    if isinstance(value, dict) and set(value) == {"raw"}:
        return value["raw"] or "0"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {_json(v)}" for k, v in value.items()) + "}"
    return json.dumps(value)


@st.composite
def csv_table(draw: st.DrawFn) -> Files:
    """A CSV/TSV table with a step-like column, metric columns, ragged rows and hostile cells."""
    sep = draw(st.sampled_from([",", "\t"]))
    counter = draw(st.sampled_from(["step", "epoch", "iter", ""]))
    names = [counter, *draw(st.lists(name_text.map(lambda s: s.replace(sep, "")), min_size=1, max_size=5))]
    rows = [sep.join(names)]
    for _ in range(draw(st.integers(min_value=0, max_value=30))):
        cells = [draw(step_text), *(draw(number_text) for _ in names[1:])]
        if draw(st.integers(0, 9)) == 0:  # ragged row
            cells = cells[: draw(st.integers(0, len(cells)))]
        rows.append(sep.join(cells))
    name = draw(st.sampled_from(["metrics.csv", "results.csv", "log.csv", "summary.csv", "train.tsv"]))
    return [(name, "\n".join(rows).encode("utf-8", errors="replace"))]


def any_log() -> st.SearchStrategy[Files]:
    """One run of any of the generated shapes, sometimes with an encoding twist."""
    files = st.one_of(caffe_glog(), print_lines(), json_lines(), csv_table())
    return st.tuples(files, st.sampled_from(["utf-8", "utf-8-sig", "crlf", "utf-16"])).map(_encoded)


def _encoded(case: tuple[Files, str]) -> Files:
    files, how = case
    if how == "utf-8":
        return files
    if how == "crlf":
        return [(name, data.replace(b"\n", b"\r\n")) for name, data in files]
    return [(name, data.decode("utf-8").encode(how)) for name, data in files]
