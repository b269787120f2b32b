"""settings_file: a run's settings saved on their own, uploaded beside a curves-only log.

Real data only: settings files cut out of real logs (the Python config an mmdetection log echoes, the
YAML config a detectron2 log echoes; both tools save exactly that text as a file of its own) and out of
real CPU training runs of the corpus (the argparse Namespace and the freezing lines the generator's
training script printed, split from the metrics it logged). A setting must mean the same whichever
file states it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from real_log_files import real_log

from diagnostics import diagnose
from diagnostics.split import CORPUS, EXTRA
from parsers import ParseError, load, load_paths
from parsers.formats import settings_file
from parsers.registry import detect
from parsers.source import SourceFile
from tests.corpus_runs import split_run

# Facts a config states, compared between the config on its own and the log that echoes it.
FACTS = ("base_lr", "optimizer", "momentum", "weight_decay", "batch_size", "epochs", "max_iter", "pretrained")
FACTS += ("pretrained_from", "input_norm_mean", "input_norm_std", "input_range", "net_name")
# Runs of the tuning data (the corpus's training split, the extra set) written as print-style logs: a
# net whose frozen layers were never loaded with weights, of three families.
FROZEN_RUNS = [
    CORPUS / "runs/fcn_022_frozen_random_backbone",
    EXTRA / "runs/resnet_128_frozen_random_backbone",
    EXTRA / "runs/cnn_241_frozen_random_backbone",
]


TRAINING_SCRIPT = """import torch
import torchvision

model = torchvision.models.resnet50(pretrained=True)
if args.freeze_backbone:
    for p in model.parameters():
        p.requires_grad = False
optimizer = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9)
"""


def section(path: Path, opener: str, stop: str) -> str:
    """The lines after the line holding `opener`, up to the first line matching `stop`."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    start = next(n for n, line in enumerate(lines) if opener in line) + 1
    end = next(n for n in range(start, len(lines)) if re.match(stop, lines[n]))
    return "\n".join(lines[start:end]) + "\n"


def facts(meta) -> dict:
    out = {name: getattr(meta, name) for name in FACTS if name in meta.where}
    out["frozen"] = sorted(f.name for f in meta.frozen_layers)
    out["bn_eval"] = bool(meta.batchnorm_flags)
    return out


def test_mmdetection_python_config_reads_like_the_log_that_echoes_it():
    log = real_log("mmdet_text/faster_rcnn_r50_voc_imagenetinit_lrx10.log")
    config = section(log, "INFO - Config:", r"\d{4}-\d\d-\d\d ")
    source = SourceFile.from_bytes("faster_rcnn_r50_fpn_1x.py", config.encode())
    assert detect(source)[0] == "settings_file"
    alone, echoed = settings_file.parse(source).meta, load_paths([log]).meta
    assert facts(alone) == facts(echoed)
    assert facts(alone)["pretrained"] is True and facts(alone)["frozen"] == ["1 stages"]
    assert len(alone.where) >= 12
    # each fact quotes the config file's own line: the log's line less the 34 lines above the config
    assert alone.where["base_lr"].line == echoed.where["base_lr"].line - 34
    assert alone.where["base_lr"].text == echoed.where["base_lr"].text


def test_a_long_python_config_quotes_its_own_lines():
    """Past the 2,000 lines a log's header is read in full, a settings file is still read whole."""
    log = real_log("mmdet_text/faster_rcnn_r50_voc_imagenetinit_lrx10.log")
    config = section(log, "INFO - Config:", r"\d{4}-\d\d-\d\d ")
    padding = "".join(f"# note {n}\n" for n in range(2100))
    source = SourceFile.from_bytes("long_config.py", (padding + config).encode())
    alone, echoed = settings_file.parse(source).meta, load_paths([log]).meta
    assert facts(alone) == facts(echoed)
    assert alone.where["base_lr"].line == echoed.where["base_lr"].line - 34 + 2100
    assert alone.where["base_lr"].text == echoed.where["base_lr"].text


def test_detectron2_yaml_config_reads_like_the_log_that_echoes_it():
    """detectron2 saves the config it echoes as config.yaml; a YAML file goes to Lightning's hparams
    reader (the higher score), which reads settings with the same reader."""
    log = real_log("other/detectron2_text_frcnn_semisup_stage_lr0.04.txt")
    config = section(log, "Running with full config:", r"\[\d\d/\d\d")
    source = SourceFile.from_bytes("config.yaml", config.encode())
    assert detect(source)[0] == "lightning_hparams"
    alone = load([("config.yaml", config.encode()), ("metrics.csv", b"step,loss\n1,2.0\n2,1.5\n")]).meta
    echoed = load_paths([log]).meta
    assert facts(alone) == facts(echoed)
    assert facts(alone)["frozen"] == ["2 stages"] and facts(alone)["bn_eval"] and len(alone.where) >= 10


@pytest.mark.parametrize("run", FROZEN_RUNS, ids=lambda p: p.name)
def test_printed_arguments_beside_the_metrics_diagnose_like_the_whole_log(run: Path):
    settings, metrics = split_run(run)
    whole = load_paths([run])
    curves_only = load([("train.log", metrics)])
    both = load([("train.log", metrics), ("args.txt", settings)])
    assert "settings_file" in both.meta.formats
    assert facts(both.meta) == facts(whole.meta) and facts(both.meta)["frozen"]
    d_whole, d_both, d_curves = diagnose(whole), diagnose(both), diagnose(curves_only)
    assert (d_both.symptom.symptom, [c.id for c in d_both.causes][:1]) == (
        d_whole.symptom.symptom,
        [c.id for c in d_whole.causes][:1],
    )
    assert "LD310" in {f.rule for f in d_both.findings}
    assert "LD310" in d_curves.unchecked and "LD310" not in d_both.unchecked


@pytest.mark.parametrize(
    "name, text",
    [
        ("notes.txt", "Remember to rerun the baseline tomorrow.\nThe cluster is down on Friday.\n"),
        ("table.txt", "alpha beta gamma\n1 2 3\n4 5 6\n"),
        # a training script in a run folder: its defaults and code are not the run's settings (read as
        # settings, `pretrained=True` and `p.requires_grad = False` would become facts of the run)
        ("train.py", TRAINING_SCRIPT),
    ],
)
def test_a_file_without_settings_stays_unrecognised(name: str, text: str):
    source = SourceFile.from_bytes(name, text.encode())
    assert detect(source) == (None, 0.0)
    with pytest.raises(ParseError, match="no training metrics recognised"):
        load([(name, text.encode())])


def test_a_large_file_is_not_taken_for_settings():
    line = b"Namespace(lr=0.1, batch_size=64, freeze_backbone=True)\n"
    big = line * (settings_file.MAX_BYTES // len(line) + 1)
    assert settings_file.sniff(SourceFile.from_bytes("args.txt", line)) > 0
    assert settings_file.sniff(SourceFile.from_bytes("args.txt", big)) == 0.0


def test_settings_alone_are_refused_with_the_reason():
    with pytest.raises(ParseError, match="configuration found, but no training metrics"):
        load([("args.txt", b"Namespace(lr=0.1, batch_size=64, freeze_backbone=True)\n")])


def test_other_formats_keep_their_files(monkeypatch: pytest.MonkeyPatch):
    """A fallback: a Lightning hparams.yaml (which a settings reader would also read) and a print-style
    log stay theirs, and the files other formats claim are never sniffed for settings."""

    def not_asked(source: SourceFile) -> float:
        raise AssertionError(f"{source.name} was sniffed for settings although another format claims it")

    monkeypatch.setattr(settings_file, "sniff", not_asked)
    hparams = next(CORPUS.glob("runs/*/hparams.yaml.gz"))
    assert detect(SourceFile.from_path(hparams))[0] == "lightning_hparams"
    log = FROZEN_RUNS[0] / "train.log.gz"
    assert detect(SourceFile.from_path(log))[0] == "print_style"
