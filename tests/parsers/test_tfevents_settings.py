"""Settings logged into TensorBoard event files: a real HF Trainer run's `args` and `model_config`, and
what PyTorch scripts log with tensorboardX's SummaryWriter (`add_text`, a CleanRL-style table,
`add_hparams`), read as facts quoted with their record; texts that are not settings stay unread."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import pytest
from tensorboardX import SummaryWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto

from parsers import load, load_paths
from parsers.formats import settings_file, tfevents
from parsers.model import RunMeta
from parsers.source import ParseError, SourceFile

HF = Path(__file__).resolve().parents[1] / "fixtures" / "hf_tensorboard"


def _facts(meta: RunMeta) -> dict:
    return {name: getattr(meta, name) for name in meta.where}


def test_a_real_hf_trainer_event_file_gives_its_arguments_and_model_config():
    expected = json.loads((HF / "expected.json").read_text())
    log = load_paths([HF / "events.out.tfevents.hf_trainer"])
    meta = log.meta
    assert meta.base_lr == expected["base_lr"] and meta.batch_size == expected["batch_size"]
    assert meta.max_iter == expected["max_iter"] and meta.weight_decay == expected["weight_decay"]
    assert meta.clip_gradients == expected["clip_grad"] and meta.adam_beta2 == expected["adam_beta2"]
    assert meta.optimizer == "adamw" and meta.net_name == "gpt2"
    # quoted with the record that holds them: the `args` text, then the `model_config` text
    assert meta.where["base_lr"].line == 2 and meta.where["base_lr"].text == '"learning_rate": 0.003,'
    assert meta.where["net_name"].line == 3 and "gpt2" in meta.where["net_name"].text
    assert all(where.source == "events.out.tfevents.hf_trainer" for where in meta.where.values())
    # the nested `accelerator_config` object is a section: its keys are not the run's
    assert meta.hyperparams["accelerator_config.split_batches"] == "false"
    loss = log.metrics[(log.metrics["split"] == "train") & (log.metrics["metric"] == "loss")]
    assert len(loss) == expected["loss_points"]


def _write(folder: Path, log: Callable[[SummaryWriter], None]) -> Path:
    with SummaryWriter(str(folder)) as writer:
        log(writer)
    return folder


def test_printed_arguments_logged_as_text_are_read(tmp_path):
    namespace = "Namespace(arch='resnet18', batch_size=2, freeze_backbone=True, lr=0.1, pretrained=False)"

    def log(writer: SummaryWriter) -> None:
        writer.add_text("args", namespace)
        for step in range(5):
            writer.add_scalar("loss/train", 2.0 - 0.1 * step, step)

    meta = load_paths([_write(tmp_path, log)]).meta
    assert meta.base_lr == 0.1 and meta.batch_size == 2 and meta.pretrained is False
    assert [layer.how for layer in meta.frozen_layers] == ["flag"]
    assert meta.frozen_layers[0].where.line == 2  # the record after the file-version record


def test_a_cleanrl_style_hyperparameter_table_is_read(tmp_path):
    rows = {"learning_rate": 0.00025, "batch_size": 64, "optimizer": "adam", "seed": 1}
    table = "|param|value|\n|-|-|\n" + "\n".join(f"|{key}|{value}|" for key, value in rows.items())

    def log(writer: SummaryWriter) -> None:
        writer.add_text("hyperparameters", table)
        writer.add_scalar("charts/loss", 1.0, 0)

    meta = load_paths([_write(tmp_path, log)]).meta
    assert (meta.base_lr, meta.batch_size, meta.optimizer) == (0.00025, 64, "adam")


def test_add_hparams_writes_a_settings_only_file_read_beside_the_curves(tmp_path):
    def log(writer: SummaryWriter) -> None:
        for step in range(5):
            writer.add_scalar("train/loss", 2.0 - 0.1 * step, step)
        writer.add_hparams(
            {"lr": 0.03, "batch_size": 128, "optimizer": "sgd", "nesterov": True}, {"hparam/acc": 0.9}
        )

    folder = _write(tmp_path, log)
    (in_subfolder,) = [path for path in folder.rglob("events.out.tfevents.*") if path.parent != folder]
    # the hparams record goes to a sub-folder of its own, as torch's does
    settings_only = tfevents.parse(SourceFile.from_path(in_subfolder))
    assert settings_only.metrics is None and settings_only.meta.batch_size == 128
    log_ = load_paths([folder])
    assert (log_.meta.base_lr, log_.meta.batch_size, log_.meta.optimizer) == (0.03, 128, "sgd")
    assert log_.meta.where["batch_size"].text == "batch_size: 128"
    assert set(log_.metrics["metric"]) == {"loss"}  # `hparam/acc` is the dashboard's value, not a curve


def test_texts_that_are_not_settings_stay_unread(tmp_path):
    def log(writer: SummaryWriter) -> None:
        writer.add_text("samples", "lr=10 batch_size=1 pretrained=False")  # generated text, not settings
        writer.add_text("target_text", "lr=20")  # `arg` inside a word is no settings tag
        writer.add_text("args", "Namespace(lr=0.5)")
        writer.add_text("args", "Namespace(lr=7.0)")  # logged again: the first value counts
        writer.add_scalar("loss", 1.0, 0)

    meta = load_paths([_write(tmp_path, log)]).meta
    assert _facts(meta) == {"base_lr": 0.5}


def test_settings_past_a_megabyte_are_not_read(tmp_path):
    # 1.1 MB in 1,900 lines: within the 2,000 lines the settings readers read in full
    padding = "\n".join(f"note_{n}: {'x' * 600}" for n in range(1_900))

    def log(writer: SummaryWriter) -> None:
        writer.add_text("config", f"lr: 0.2\n{padding}\nbatch_size: 8")
        writer.add_scalar("loss", 1.0, 0)

    meta = load_paths([_write(tmp_path, log)]).meta
    assert meta.base_lr == 0.2 and meta.batch_size is None


def test_an_event_file_without_scalars_or_settings_is_still_refused(tmp_path):
    def log(writer: SummaryWriter) -> None:
        writer.add_text("notes", "first try")

    (events,) = _write(tmp_path, log).glob("events.out.tfevents.*")
    with pytest.raises(ParseError, match="no scalar values"):
        tfevents.parse(SourceFile.from_path(events))


def test_an_indented_json_of_the_arguments_is_a_settings_file():
    text = json.dumps({"lr": 0.02, "batch_size": 32, "pretrained": False, "sched": {"lr": 9.0}}, indent=2)
    meta = settings_file.parse(SourceFile.from_bytes("args.json", text.encode())).meta
    assert (meta.base_lr, meta.batch_size, meta.pretrained) == (0.02, 32, False)
    assert meta.where["base_lr"].line == 2  # the scheduler's own `lr` is a section's, not the run's
    assert meta.where["base_lr"].text == '"lr": 0.02,'  # quoted as written


def test_a_pretty_printed_metrics_record_in_a_log_is_no_setting():
    """Line by line, `"learning_rate": 0.0007,` of a logged step looks like a setting: only a whole JSON
    document of settings is read so."""
    record = json.dumps({"epoch": 1, "learning_rate": 0.0007, "loss": 2.5, "step": 10}, indent=2)
    log = load([("train.log", f"epoch 1 step 10 loss 2.5\n{record}\nepoch 1 step 20 loss 2.4\n".encode())])
    assert log.meta.base_lr is None


def test_an_undecodable_hparams_record_or_text_is_skipped():
    """Hand-made records (the writers never make these): settings that cannot be read cost nothing."""
    header = Event(wall_time=1000.0, file_version="brain.Event:2")
    hparams = SummaryMetadata(
        plugin_data=SummaryMetadata.PluginData(plugin_name="hparams", content=b"\xff\x01")
    )
    text = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="text"))
    settings = Summary(
        value=[
            Summary.Value(tag="_hparams_/session_start_info", metadata=hparams),
            Summary.Value(
                tag="args/text_summary", metadata=text, tensor=TensorProto(string_val=[b"lr: \xff\xfe 0.1"])
            ),
        ]
    )
    loss = Summary(value=[Summary.Value(tag="loss", simple_value=1.0)])
    events = [
        header,
        Event(wall_time=1000.0, summary=settings),
        Event(wall_time=1001.0, step=1, summary=loss),
    ]
    data = b"".join(_record(event) for event in events)
    parsed = tfevents.parse(SourceFile.from_bytes("events.out.tfevents.1.host", data))
    assert parsed.meta.base_lr is None and len(parsed.metrics) == 1


def _record(event: Event) -> bytes:
    payload = event.SerializeToString()
    return struct.pack("<Q", len(payload)) + b"\0" * 4 + payload + b"\0" * 4  # CRCs are not checked
