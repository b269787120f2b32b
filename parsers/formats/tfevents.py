"""TensorBoard event files (`events.out.tfevents.*`) read from bytes, without TensorFlow.

A file is a sequence of TFRecords: 8-byte little-endian payload length, 4-byte masked CRC of the
length, the payload (one `Event` protobuf), 4-byte masked CRC of the payload. CRCs are not
checked (a pure-Python CRC32C would dominate the time); lengths are bounds-checked, so a file
cut off mid-record keeps everything before the cut and says so. Events are decoded with the
protos that ship in tensorboardX. Every scalar is kept (TensorBoard's own reader samples 10 000
per tag): `simple_value` (PyTorch SummaryWriter, tensorboardX, TF1) and TF2 scalar tensors
(`plugin_name == "scalars"`, which TF2 writes only on a tag's first event).

Tags become split/metric like other formats (`train/box_loss`, `total_loss`, `lr`), plus
`Loss/train`-style suffix splits, YOLO's `x/lr0`/`metrics/mAP_0.5` and Lightning's
`_step`/`_epoch` names. YOLO event files get the same summed `loss` as yolo_csv (and, as YOLO
logs once per epoch with the epoch as step, epoch = step). The line column
holds the 1-based record number; wall_time counts from the file's first event. A tag whose step
goes back starts a new segment (a restarted run appending to the same file).

The run's settings are read when the writer logged them beside the curves: text summaries whose tag
names settings (HF Trainer's `args` and `model_config` JSON, `add_text("args", str(args))`, CleanRL's
`hyperparameters` table) and the hparams plugin's `add_hparams` record (whose summary values,
`hparam/*` and Lightning's `hp_metric`, are not curves and are left out). They go through the readers
text logs use for their echoed settings (`parsers.hparams`), so the configuration checks run on a
TensorBoard-only upload; a quoted setting's line number is its record's. A file holding only settings
(torch's `add_hparams` writes one in a sub-folder) is read as settings, like a config beside a log.
"""

from __future__ import annotations

import re
import struct

import numpy as np
from google.protobuf.message import DecodeError
from google.protobuf.struct_pb2 import Value
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.plugin_hparams_pb2 import HParamsPluginData
from tensorboardX.proto.summary_pb2 import Summary
from tensorboardX.proto.tensor_pb2 import TensorProto

from parsers.formats import lightning_csv, yolo_csv
from parsers.hparams import hyperparams_from_text, json_settings
from parsers.model import (
    LogLine,
    ParseWarning,
    RunMeta,
    frame_from_columns,
)
from parsers.registry import ParsedFile
from parsers.source import ParseError, SourceFile

FORMAT = "tfevents"
FRAMEWORK = "unknown"

_LENGTH = struct.Struct("<Q")
_HEADER_BYTES = 12  # length + its CRC
_FOOTER_BYTES = 4  # payload CRC
_FILE_VERSION = b"brain.Event:"
_SPLIT_SUFFIX = re.compile(r"^(?P<metric>.+)/(?P<split>train|training|val|valid|validation|eval|test)$", re.I)
_SUFFIX_SPLITS = {"train": "train", "training": "train", "test": "test"}
# tf.keras TensorBoard callback: epoch_loss, batch_loss, evaluation_loss_vs_iterations
_KERAS_TAG = re.compile(r"^(?P<level>epoch|batch|evaluation)_(?P<metric>.+?)(?:_vs_iterations)?$")
_EVAL_PREFIXES = ("bbox/", "segm/", "keypoints/")  # detectron2 COCO evaluation results
_KERAS_SPLIT_NOTE = (
    "tf.keras writes training and validation curves to separate event files (train/, validation/) "
    "with the same tag names; the split cannot be told from the file itself, so it is shown as train"
)
# A text summary holds settings when its tag says so (`args/text_summary`, `model_config`, `hparams`,
# `hyperparameters`, `config`); other texts are samples, predictions or notes, logged again and again.
# Whole words of the tag (`args/text_summary`, `model_config`, `hyperparameters`): a substring would take
# `target_text` or `large_samples` for settings.
_SETTINGS_TAG = re.compile(
    r"(?<![a-z])(?:args?|arguments|\w*config|cfg|h?params?|hyperparam\w*|settings?|options?|flags?)(?![a-z])",
    re.IGNORECASE,
)
_MAX_SETTINGS_CHARS = 1024**2
# The hparams dashboard's values, not curves: Lightning's `hp_metric` (-1 until the user sets it) and the
# `metric_dict` of `add_hparams` (`hparam/accuracy`), one point each.
_SEARCH_SUMMARY = re.compile(r"hp_metric$|hparam/")
# `|lr|0.1|`: a row of the markdown table CleanRL-style scripts log (`|param|value|` header, `|-|-|` rule)
# (the value is stripped after the match: `\s*([^|]*?)\s*\|` re-read a long run of blanks quadratically)
_TABLE_ROW = re.compile(r"^\s*+\|\s*+([A-Za-z_][\w.\-]*+)\s*+\|([^|]*+)\|\s*+$")
_NUMPY_DTYPES = {1: np.float32, 2: np.float64, 19: np.float16, 3: np.int32, 9: np.int64, 14: None}


def sniff(source: SourceFile) -> float:
    head = source.head_bytes(64)
    return 0.95 if len(head) > _HEADER_BYTES and _FILE_VERSION in head[_HEADER_BYTES:] else 0.0


def tensor_scalar(tensor: TensorProto) -> float | None:
    """The value of a scalar tensor as TF2's `tf.summary.scalar` writes it (None if not numeric)."""
    for field in ("float_val", "double_val", "int64_val", "int_val"):
        values = getattr(tensor, field)
        if len(values):
            return float(values[0])
    if len(tensor.half_val):
        return float(np.array(tensor.half_val[:1], dtype=np.uint16).view(np.float16)[0])
    dtype = _NUMPY_DTYPES.get(tensor.dtype)
    if tensor.tensor_content and tensor.dtype == 14:  # bfloat16: the high half of a float32
        bits = np.frombuffer(tensor.tensor_content[:2], dtype=np.uint16).astype(np.uint32) << 16
        return float(bits.view(np.float32)[0])
    if tensor.tensor_content and dtype is not None:
        return float(np.frombuffer(tensor.tensor_content, dtype=dtype, count=1)[0])
    return None


def tag_split_metric(tag: str, tags: set[str], framework: str = "unknown") -> tuple[str, str]:
    """(split, metric) of a scalar tag, given every tag of the file and its `framework_of`."""
    if framework == "lightning":
        return lightning_csv.split_metric_for(tag, tags)
    keras = _KERAS_TAG.match(tag) if framework == "keras" else None
    if keras:
        metric = yolo_csv.split_metric(keras["metric"])[1]
        if keras["level"] == "evaluation":
            return "val", metric
        per_batch = any(other.startswith("batch_") for other in tags)
        return "train", f"{metric}_epoch" if keras["level"] == "epoch" and per_batch else metric
    suffix = _SPLIT_SUFFIX.match(tag)
    if suffix:
        split = _SUFFIX_SPLITS.get(suffix["split"].lower(), "val")
        return split, yolo_csv.split_metric(suffix["metric"])[1]
    if tag.startswith(_EVAL_PREFIXES):
        return "val", yolo_csv.split_metric(tag)[1]
    return yolo_csv.split_metric(tag)


def framework_of(tags: set[str]) -> str:
    """The writer whose tag names are unmistakable: "lightning" (its `_step`/`_epoch` names; the
    framework is PyTorch), "pytorch" (detectron2, YOLO, HF Trainer), "keras" (tf.keras callback)."""
    if "hp_metric" in tags or ("epoch" in tags and any(tag.endswith("_step") for tag in tags)):
        return "lightning"
    pytorch_prefixes = ("fast_rcnn/", "roi_head/", "metrics/mAP")
    if tags & {"total_loss", "train/box_loss", "train/learning_rate"} or any(
        tag.startswith(pytorch_prefixes) for tag in tags
    ):
        return "pytorch"
    if tags & {"epoch_loss", "batch_loss", "evaluation_loss_vs_iterations"}:
        return "keras"
    return FRAMEWORK


def _records(data: bytes, source_name: str, warnings: list[ParseWarning]):
    """(1-based record number, payload) of each complete record; a cut-off tail ends the file."""
    position, number = 0, 0
    while position < len(data):
        number += 1
        end = position + _HEADER_BYTES
        if end <= len(data):
            end += _LENGTH.unpack_from(data, position)[0]
        if end > len(data):
            cut = len(data) - position
            message = f"the file ends inside record {number} ({cut} bytes); the records before it were read"
            warnings.append(ParseWarning(source_name, number, message))
            return
        yield number, data[position + _HEADER_BYTES : end]
        position = end + _FOOTER_BYTES


def parse(source: SourceFile) -> ParsedFile:
    warnings: list[ParseWarning] = []
    steps: list[int] = []
    wall_times: list[float] = []
    values: list[float] = []
    tag_ids: list[int] = []
    records: list[int] = []
    segments: list[int] = []
    tag_index: dict[str, int] = {}
    scalar_tensor_tags: set[str] = set()
    last_step: dict[str, int] = {}
    segment, first_wall_time, undecodable = 0, None, []
    settings = _Settings()
    search_tags: set[str] = set()  # hp_metric, hparam/*: read for the framework, not kept
    for number, payload in _records(source.data, source.name, warnings):
        try:
            event = Event.FromString(payload)
        except DecodeError:
            undecodable.append(number)
            continue
        if first_wall_time is None:
            first_wall_time = event.wall_time
        if not event.HasField("summary"):
            continue
        for item in event.summary.value:
            kind = item.WhichOneof("value")
            if kind == "simple_value":
                value = item.simple_value
            elif kind == "tensor" and (
                item.metadata.plugin_data.plugin_name == "scalars" or item.tag in scalar_tensor_tags
            ):
                scalar_tensor_tags.add(item.tag)
                value = tensor_scalar(item.tensor)
                if value is None:
                    continue
            else:
                settings.add(number, item)
                continue
            if _SEARCH_SUMMARY.match(item.tag):
                search_tags.add(item.tag)
                continue
            if event.step < last_step.get(item.tag, event.step):
                segment += 1
                last_step.clear()
            last_step[item.tag] = event.step
            steps.append(event.step)
            wall_times.append(event.wall_time - first_wall_time)
            values.append(value)
            tag_ids.append(tag_index.setdefault(item.tag, len(tag_index)))
            records.append(number)
            segments.append(segment)
    if undecodable:
        shown = ", ".join(map(str, undecodable[:20]))
        warnings.append(ParseWarning(source.name, undecodable[0], f"undecodable record(s) skipped: {shown}"))
    meta = settings.meta(source.name)
    if not values:
        if meta.where:
            return ParsedFile(metrics=None, meta=meta, warnings=warnings, skipped_lines=len(undecodable))
        raise ParseError("no scalar values in this TensorBoard event file")

    tags = list(tag_index)
    tag_set = set(tags)
    framework = framework_of(tag_set | search_tags)
    labels = np.array([(*tag_split_metric(tag, tag_set, framework), tag) for tag in tags], dtype=object)
    per_row = labels[np.asarray(tag_ids, dtype=np.int64)]
    frame = frame_from_columns(
        {
            "step": steps,
            "split": per_row[:, 0],
            "metric": per_row[:, 1],
            "name": per_row[:, 2],
            "value": np.asarray(values, dtype=np.float64),
            "wall_time": wall_times,
            "line": records,
            "segment": segments,
            "source": [source.name] * len(values),
        }
    )
    if "train/box_loss" in tag_set:  # YOLO logs once per epoch, with the epoch as step
        frame = yolo_csv.with_component_losses(frame.assign(epoch=frame["step"].astype(np.float64)))
    if framework == "keras" and "epoch_loss" in tag_set:
        warnings.append(ParseWarning(source.name, 0, _KERAS_SPLIT_NOTE))
    meta.framework = "pytorch" if framework == "lightning" else framework
    return ParsedFile(
        metrics=frame,
        meta=meta,
        warnings=warnings,
        skipped_lines=len(undecodable),
    )


class _Settings:
    """The settings text of an event file, joined into one text whose lines remember their record."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.verbatim: list[str] = []
        self.records: list[int] = []
        self.chars = 0

    def add(self, record: int, item: Summary.Value) -> None:
        """Keep a settings text summary or an hparams record (a fact stated twice keeps its first value)."""
        plugin = item.metadata.plugin_data.plugin_name
        if plugin == "text" and _SETTINGS_TAG.search(item.tag):
            text = "\n".join(value.decode("utf-8", "replace") for value in item.tensor.string_val)
            readable = [_table_row(line) for line in json_settings(text).split("\n")]
            self._append(record, readable, text.split("\n"))
        elif plugin == "hparams":
            try:
                data = HParamsPluginData.FromString(item.metadata.plugin_data.content)
            except DecodeError:
                return
            pairs = data.session_start_info.hparams.items()
            lines = [f"{name}: {_hparam_value(value)}" for name, value in sorted(pairs)]
            self._append(record, lines, lines)

    def _append(self, record: int, lines: list[str], verbatim: list[str]) -> None:
        """Add one summary's lines as the readers read them and as they were logged (for the quotes), up
        to the cap on the settings text of a file (the lines that fit)."""
        kept = 0
        for line in lines:
            if self.chars + len(line) > _MAX_SETTINGS_CHARS:
                break
            self.chars += len(line) + 1
            kept += 1
        self.lines += [*lines[:kept], ""]  # a blank line ends a block before the next summary's
        self.verbatim += [*verbatim[:kept], ""]
        self.records += [record] * (kept + 1)

    def meta(self, source: str) -> RunMeta:
        """The facts the settings state, each quoted with its record number."""
        meta = RunMeta(format=FORMAT)
        if not self.lines:
            return meta
        hyperparams_from_text("\n".join(self.lines), source, meta)
        meta.requote(self._as_logged)
        return meta

    def _as_logged(self, where: LogLine) -> LogLine:
        """A quote of the joined text as the line was logged, numbered with its record."""
        return LogLine(where.source, self.records[where.line - 1], self.verbatim[where.line - 1].strip())


def _table_row(line: str) -> str:
    row = _TABLE_ROW.match(line)
    return f"{row[1]}: {row[2].strip()}" if row else line


def _hparam_value(value: Value) -> str:
    """A `google.protobuf.Value` as a settings text would print it (integral numbers without `.0`)."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        return str(int(number)) if number.is_integer() else repr(number)
    if kind == "bool_value":
        return str(value.bool_value)
    return value.string_value if kind == "string_value" else ""
