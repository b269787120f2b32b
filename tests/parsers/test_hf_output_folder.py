"""An HF Trainer output folder uploaded whole (a real one: `tests/fixtures/hf_tensorboard/output/`): the
curves of `trainer_state.json`, the net from the model's indented `config.json`, and the pickled
`training_args.bin` refused with a reason, never unpickled; weights files are skipped in folders."""

from __future__ import annotations

import io
import json
import pickle
import shutil
import zipfile
from pathlib import Path

import pytest

from parsers import ParseError, load, load_paths
from parsers.source import SourceFile, saved_object

HF = Path(__file__).resolve().parents[1] / "fixtures" / "hf_tensorboard"


def test_the_output_folder_gives_curves_net_and_batch_and_says_why_the_pickle_is_not_read():
    expected = json.loads((HF / "expected.json").read_text())
    log = load_paths([HF / "output"])
    assert log.meta.format == "hf_trainer_state" and "settings_file" in log.meta.formats
    assert log.meta.net_name == "gpt2" and log.meta.where["net_name"].source == "config.json"
    assert log.meta.batch_size == expected["batch_size"]
    loss = log.metrics[(log.metrics["split"] == "train") & (log.metrics["metric"] == "loss")]
    assert len(loss) == expected["loss_points"]
    (warning,) = [w.message for w in log.warnings if "training_args.bin" in w.message]
    assert "saved Python object" in warning and "TensorBoard event file" in warning


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_pickles_of_every_protocol_are_saved_objects(protocol):
    data = pickle.dumps({"learning_rate": 0.1}, protocol=protocol)
    assert saved_object(SourceFile.from_bytes("args.bin", data))
    with pytest.raises(ParseError, match=r"saved Python object .* not read"):
        load([("args.bin", data)])


def test_a_torch_save_zip_is_a_saved_object_and_other_binaries_are_not():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # torch.save's layout: <name>/data.pkl first
        archive.writestr("training_args/data.pkl", pickle.dumps({"lr": 0.1}))
        archive.writestr("training_args/version", "3\n")
    assert saved_object(SourceFile.from_bytes("training_args.bin", buffer.getvalue()))
    junk = bytes(range(256)) * 64
    assert not saved_object(SourceFile.from_bytes("weights.bin", junk))
    with pytest.raises(ParseError, match="no training metrics recognised"):
        load([("weights.bin", junk)])


def test_weights_files_are_skipped_when_a_folder_is_read(tmp_path):
    shutil.copy(HF / "output" / "trainer_state.json", tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      " * 1000)
    log = load_paths([tmp_path])
    assert log.sources == ["trainer_state.json"] and not log.warnings
