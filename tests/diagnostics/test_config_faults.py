"""LD310-LD312 (diagnostics.rules.config_faults): config facts that are faults whatever the curve
looks like, on runs of several families (Caffe prototxts, print-style logs with a Namespace echo,
Lightning hparams.yaml, mmdet and detectron2 configs). Healthy fine-tuning gives no finding."""

from __future__ import annotations

import shutil
from dataclasses import replace

import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS, real_logs

from diagnostics import diagnose
from diagnostics.context import Context
from diagnostics.fitted import PARAMS
from diagnostics.rules.stall import made_progress
from parsers import load, load_paths

NEW_RULES = ("LD310", "LD311", "LD312")
STEPS = "\n".join(
    f"Epoch [{e}/3], Step [{s}/40], Loss: {2.3 - 0.002 * (e * 40 + s):.4f}"
    for e in range(1, 4)
    for s in range(5, 41, 5)
)


def findings(log) -> dict[str, object]:
    return {f.rule: f for f in diagnose(log).findings if f.rule in NEW_RULES}


def print_run(head: str):
    return load([("train.log", (head + "\n" + STEPS + "\n").encode())])


def real(relative: str):
    path = REAL_LOGS / relative
    if not path.exists():
        pytest.skip("real logs not available")
    return load_paths([path])


# ------------------------------------------------------------------------ LD310 frozen, no weights
def _caffe_run_with_frozen_convs(tmp_path, folder: str, layers: tuple[str, ...]):
    run = tmp_path / folder
    shutil.copytree(SAMPLE_LOGS / folder, run)
    net = next(p for p in run.iterdir() if p.name.endswith(".prototxt") and "solver" not in p.name)
    text = net.read_text()
    for name in layers:
        at = text.index("lr_mult:", text.index(f'name: "{name}"'))
        text = text[:at] + "lr_mult: 0" + text[text.index("\n", at) :]
    net.write_text(text)
    return load_paths(sorted(run.iterdir()))


def test_caffe_lr_mult_0_from_scratch_is_critical(tmp_path):
    log = _caffe_run_with_frozen_convs(tmp_path, "case3_vgg_scaled", ("conv1_1", "conv2_1"))
    found = findings(log)["LD310"]
    assert found.severity == "critical"
    first = found.evidence[0]
    assert first.params["count"] == 2 and first.params["loaded"] == 0 and first.params["how"] == "lr_mult_0"
    assert first.quote.text.strip() == "lr_mult: 0"


def test_caffe_fcn_fixed_upsampling_gives_no_finding():
    log = load_paths(sorted((SAMPLE_LOGS / "case2_fcn_lr1e-4").iterdir()))
    assert "LD310" not in findings(log)


def test_caffe_frozen_layers_with_loaded_weights_is_fine_tuning(tmp_path):
    text = (SAMPLE_LOGS / "case4_finetune_pretrained.log").read_text()
    at = text.index("lr_mult: 1")  # the first conv's weights, in the printed TRAIN net
    path = tmp_path / "finetune_frozen.log"
    path.write_text(text[:at] + "lr_mult: 0" + text[at + len("lr_mult: 1") :])
    log = load_paths([path])
    assert log.meta.frozen_layers and log.meta.pretrained is True
    assert "LD310" not in findings(log)


def test_print_style_freeze_flag_from_scratch_is_critical():
    log = print_run(
        "Namespace(arch='resnet18', batch_size=64, freeze_backbone=True, lr=0.1, pretrained=False)"
    )
    found = findings(log)["LD310"]
    assert found.severity == "critical"
    assert found.evidence[0].quote.line == 1
    assert found.evidence[1].key == "evidence.weights_scratch"


def test_print_style_training_fc_only_without_a_weights_statement_is_a_warning():
    found = findings(print_run("Training fc only"))["LD310"]
    assert found.severity == "warning"
    assert found.evidence[1].key == "evidence.weights_unknown"


def test_print_style_frozen_backbone_with_loaded_weights_is_quiet():
    log = print_run(
        "Namespace(arch='resnet50', freeze_backbone=True, lr=0.01, weights='IMAGENET1K_V2')\n"
        "Freezing layers: conv1, layer1, layer2"
    )
    assert log.meta.pretrained is True
    assert findings(log) == {}


def test_lightning_hparams_freeze_backbone(tmp_path):
    metrics = "epoch,step,train_loss\n" + "\n".join(f"0,{i},{2.3 - i * 0.01}" for i in range(60)) + "\n"
    (tmp_path / "metrics.csv").write_text(metrics)
    (tmp_path / "hparams.yaml").write_text("lr: 0.001\nfreeze_backbone: true\npretrained: false\n")
    assert findings(load_paths(sorted(tmp_path.iterdir())))["LD310"].severity == "critical"
    (tmp_path / "hparams.yaml").write_text("lr: 0.001\nfreeze_backbone: true\npretrained: true\n")
    assert "LD310" not in findings(load_paths(sorted(tmp_path.iterdir())))


def test_lora_run_is_fine_tuning():
    assert findings(real("print_style/gpt2_lora_alpaca.log")) == {}


# ------------------------------------------------------------------ LD311 BatchNorm eval, scratch
MMDET_FROM_SCRATCH = (
    "Config:\nmodel = dict(\n    type='RetinaNet',\n    pretrained=None,\n    backbone=dict(\n"
    "        type='ResNet',\n        depth=50,\n        frozen_stages=1,\n"
    "        norm_cfg=dict(type='BN', requires_grad=True),\n        norm_eval=True))\n"
    "img_norm_cfg = dict(\n    mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)\n"
    "load_from = None\n\n"
)


def test_mmdet_backbone_recipe_without_weights_is_critical_twice():
    found = findings(print_run(MMDET_FROM_SCRATCH))
    assert found["LD311"].severity == "critical"
    assert found["LD311"].evidence[0].quote.text == "norm_eval=True))"
    assert found["LD311"].evidence[0].params["setting"] == "model.backbone.norm_eval"
    assert found["LD310"].severity == "critical"
    assert "LD312" not in found  # ImageNet mean/std in 0..255 units on 0..255 pixels: right


def test_freeze_bn_message_from_scratch():
    log = print_run("Namespace(lr=0.1, pretrained=False)\nFreezing BatchNorm layers")
    assert findings(log)["LD311"].severity == "critical"


@pytest.mark.parametrize(
    "rel",
    [
        "mmdet_text/mask_rcnn_coco_slurm.out",
        "mmdet_text/faster_rcnn_carafed_coco_1x.log",
        "mmdet_json/faster_rcnn_carafe_voc_12ep.log.json",
        "mmdet_json/fcos_r50_mocoinit_2x.log.json",
        "other/detectron2_text_frcnn_semisup_stage_lr0.04.txt",
    ],
)
def test_standard_detection_fine_tuning_recipes_are_quiet(rel):
    """frozen_stages=1 + norm_eval=True (mmdet) and FREEZE_AT 2 + FrozenBN + PIXEL_STD 1 (detectron2)
    with pretrained weights are the libraries' own recipes."""
    log = real(rel)
    assert log.meta.frozen_layers and log.meta.batchnorm_flags
    assert findings(log) == {}


def test_detectron2_recipe_from_scratch_fires(tmp_path):
    source = REAL_LOGS / "other/detectron2_text_frcnn_semisup_stage_lr0.04.txt"
    if not source.exists():
        pytest.skip("real logs not available")
    # the user's from-scratch variant: no WEIGHTS, so no checkpoint is loaded either
    lines = source.read_text().splitlines(keepends=True)
    lines = [
        line.replace("../../output/supervised/model_supervised.pth", '""') if "WEIGHTS:" in line else line
        for line in lines
        if "[Checkpointer] Loading from" not in line
    ]
    (tmp_path / "log.txt").write_text("".join(lines))
    found = findings(load_paths([tmp_path / "log.txt"]))
    assert found["LD310"].severity == "critical"  # FREEZE_AT: 2 with random weights
    assert found["LD311"].severity == "critical"  # NORM: FrozenBN with initial statistics
    assert found["LD312"].severity == "warning"  # PIXEL_STD 1 for a randomly initialised net
    assert found["LD312"].evidence[0].params["input_max"] > 100


# ---------------------------------------------------------------------- LD312 normalisation units
def test_mmcv_std_in_unit_range_with_byte_mean_is_critical():
    head = MMDET_FROM_SCRATCH.replace("std=[58.395, 57.12, 57.375]", "std=[0.229, 0.224, 0.225]")
    found = findings(print_run(head.replace("pretrained=None", "pretrained='torchvision://resnet50'")))
    assert set(found) == {"LD312"}
    assert found["LD312"].severity == "critical"
    params = found["LD312"].evidence[0].params
    assert params["std_max"] == 0.229 and params["mean_max"] == 123.675 and params["input_max"] > 500


def test_torchvision_byte_statistics_after_to_tensor_is_critical():
    log = print_run("ToTensor()\nNormalize(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375])")
    found = findings(log)["LD312"]
    assert found.severity == "critical"
    assert found.evidence[0].key == "evidence.norm_byte_stats_unit_pixels"
    assert found.evidence[1].quote.text == "ToTensor()"


def test_std_of_one_from_scratch_is_a_warning_and_quiet_with_caffe_weights():
    head = "args: {'mean': [123.675, 116.28, 103.53], 'std': [1.0, 1.0, 1.0], 'pretrained': False}"
    found = findings(print_run(head))["LD312"]
    assert found.severity == "warning" and found.evidence[0].key == "evidence.norm_unscaled"
    caffe = head.replace("'pretrained': False", "'load_from': 'open-mmlab://detectron2/resnet50_caffe'")
    assert "LD312" not in findings(print_run(caffe))


def test_usual_normalisations_are_quiet():
    assert (
        findings(print_run("ToTensor()\nNormalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])"))
        == {}
    )
    assert findings(print_run("Normalize(mean=(0.5,), std=(0.5,))")) == {}


# ---------------------------------------------------------------- the real logs: no false alarm
def test_no_real_log_gets_a_config_fault():
    """None of the team's real logs shows one of these faults (read by hand): none may get a finding."""
    if not (REAL_LOGS / "MANIFEST.csv").exists():
        pytest.skip("real logs not available")
    fired = {name: sorted(findings(log)) for name, log in real_logs()}
    assert {name: rules for name, rules in fired.items() if rules} == {}


def test_summed_loss_under_an_lr_for_a_mean_is_a_fault_whatever_the_curve(tmp_path):
    """A corpus-train run (charlm, `reduction='sum'`, lr 1): its loss falls from 1.25e6, which alone
    looks like learning; the stated loss normalisation and lr (LD306) make it a stall, explained by
    loss_normalization."""
    run = SAMPLE_LOGS / "corpus" / "runs" / "charlm_071_sum_reduction"
    d = diagnose(load_paths(sorted(run.iterdir())))
    assert d.symptom.symptom in ("flat", "plateau") and d.symptom.rule == "LD306"
    assert d.causes[0].id == "loss_normalization"


def test_frozen_layers_whose_weights_the_log_does_not_mention_make_a_falling_curve_a_stall():
    d = diagnose(print_run("Training fc only"))
    assert d.symptom.symptom in ("flat", "plateau") and d.symptom.rule == "LD310"
    assert d.causes[0].id == "no_pretraining"


def test_a_config_fault_run_whose_evaluation_never_improved_made_no_progress():
    """cnn_043_sum_reduction (corpus, training split): a summed loss blows up to 2.2e6 at the first
    epoch and settles at 76, a fall of almost all of its start, while the validation accuracy stays at
    0.1 throughout. The summed loss is the fault; the run learned nothing: flat, not a plateau. Without
    the accuracy, the fall of the loss is all there is to judge by."""
    run = SAMPLE_LOGS / "corpus" / "runs" / "cnn_043_sum_reduction"
    log = load_paths(sorted(run.iterdir()))
    d = diagnose(log)
    assert d.symptom.symptom == "flat"
    assert d.causes[0].id == "loss_normalization"
    ctx = Context(log, PARAMS)
    assert ctx.train_loss is not None and not made_progress(ctx, ctx.train_loss)
    blind = replace(log, metrics=log.metrics[log.metrics["metric"] != "accuracy"])
    ctx = Context(blind, PARAMS)
    assert ctx.train_loss is not None and made_progress(ctx, ctx.train_loss)
