"""Config facts that can be faults on their own (parsers.config_facts, caffe_config): frozen layers,
BatchNorm put in inference mode by a setting, the input normalisation, a summed loss. Real lines
from ../shared/real_logs where the team has them (skipped when absent), else lines as the tools
print them."""

from __future__ import annotations

import shutil
from pathlib import Path

from real_log_files import real_log

from parsers import load, load_paths
from parsers.model import RunMeta

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"
STEPS = "\n".join(
    f"Epoch [{e}/3], Step [{s}/40], Loss: {2.3 - 0.01 * (e * 40 + s) / 5:.4f}"
    for e in range(1, 4)
    for s in range(5, 41, 5)
)


def print_log(head: str) -> RunMeta:
    """A print-style PyTorch log whose header is `head`."""
    return load([("train.log", (head + "\n" + STEPS + "\n").encode())]).meta


def frozen(meta: RunMeta) -> list[tuple[str, str]]:
    return [(f.name, f.how) for f in meta.frozen_layers]


# ------------------------------------------------------------------------------------------ Caffe
def test_caffe_lr_mult_0_on_a_weight_layer_is_frozen(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(SAMPLES / "case3_vgg_scaled", run)
    net = run / "train_val.prototxt"
    text = net.read_text()
    # conv1_1's weight param gets lr_mult 0 (the copy a user makes to "freeze the features")
    start = text.index('name: "conv1_1"')
    at = text.index("lr_mult:", start)
    end = text.index("\n", at)
    net.write_text(text[:at] + "lr_mult: 0" + text[end:])
    meta = load_paths(sorted(run.iterdir())).meta
    assert frozen(meta) == [("conv1_1", "lr_mult_0")]
    assert meta.frozen_layers[0].where.text.strip() == "lr_mult: 0"
    assert meta.frozen_layers[0].where.source == "train_val.prototxt"


def test_caffe_fixed_bilinear_upsampling_and_batchnorm_blobs_are_not_frozen_layers():
    # FCN's `upscore` Deconvolution (lr_mult 0, bilinear filler) is meant to be fixed; BatchNorm's
    # three `param { lr_mult: 0 }` blobs are its statistics, not weights.
    for run in ("case2_fcn_lr1e-4", "case1_resnet_frozen_bn"):
        folder = SAMPLES / run
        assert load_paths(sorted(folder.iterdir())).meta.frozen_layers == []


def test_real_fcn_log_with_a_bilinear_deconvolution_has_no_frozen_layer():
    meta = load_paths([real_log("caffe/digits_binary_medical_cls.log")]).meta
    assert meta.frozen_layers == []


# ----------------------------------------------------------------------------------- mmdet, detectron2
def test_mmdet_text_config_states_frozen_stages_norm_eval_and_img_norm_cfg():
    meta = load_paths([real_log("mmdet_text/mask_rcnn_coco_slurm.out")]).meta
    assert frozen(meta) == [("1 stages", "flag")]
    assert meta.frozen_layers[0].where.text == "frozen_stages=1,"
    assert [(b.name, b.phase, b.use_global_stats, b.source) for b in meta.batchnorm_flags] == [
        ("model.backbone.norm_eval", "train", True, "flag")
    ]
    assert meta.batchnorm == []  # the net's own layers (LD301's) stay apart
    assert meta.input_norm_mean == [123.675, 116.28, 103.53]
    assert meta.input_norm_std == [58.395, 57.12, 57.375]
    assert meta.input_range == "0-255"
    assert "mean=[123.675" in meta.where["input_norm_mean"].text
    assert meta.pretrained is True


def test_mmdet_json_config_line_gives_the_same_facts():
    meta = load_paths([real_log("mmdet_json/fcos_r50_mocoinit_2x.log.json")]).meta
    assert frozen(meta) == [("1 stages", "flag")]
    assert meta.frozen_layers[0].where.text == "frozen_stages=1,"
    assert [b.name for b in meta.batchnorm_flags] == ["model.backbone.norm_eval"]
    assert meta.input_norm_std == [1.0, 1.0, 1.0]  # caffe-style backbone: centred, not scaled
    assert meta.input_norm_mean == [102.9801, 115.9465, 122.7717]
    # norm_cfg=dict(type='BN', requires_grad=False) freezes BN's affine parameters, not layers
    assert all(f.how != "requires_grad" for f in meta.frozen_layers)


def test_detectron2_yaml_lists_freeze_at_and_frozen_bn():
    meta = load_paths([real_log("other/detectron2_text_frcnn_semisup_stage_lr0.04.txt")]).meta
    assert meta.input_norm_mean == [103.53, 116.28, 123.675]
    assert meta.input_norm_std == [1.0, 1.0, 1.0]
    assert meta.where["input_norm_mean"].text == "PIXEL_MEAN:"
    assert frozen(meta) == [("2 stages", "flag")]
    assert meta.frozen_layers[0].where.text == "FREEZE_AT: 2"
    assert [b.where.text for b in meta.batchnorm_flags] == ["NORM: FrozenBN"]
    assert meta.pretrained is True


def test_mmcv_config_without_any_weights_is_from_scratch():
    config = (
        "Config:\nmodel = dict(\n    type='RetinaNet',\n    pretrained=None,\n    backbone=dict(\n"
        "        type='ResNet',\n        depth=50,\n        frozen_stages=1,\n        norm_eval=True))\n"
        "load_from = None\n\n"
    )
    meta = print_log(config)
    assert meta.pretrained is False
    assert frozen(meta) == [("1 stages", "flag")]


# ----------------------------------------------------------------------------------- PyTorch prints
def test_lora_log_freeze_layers_setting_real_line():
    meta = load_paths([real_log("print_style/gpt2_lora_alpaca.log")]).meta
    assert ("layers 0,1,2,3", "flag") in frozen(meta)
    assert "freeze_layers: 0,1,2,3" in meta.frozen_layers[0].where.text


def test_temporary_or_disabled_freezes_are_not_frozen_layers():
    meta = print_log(
        "freeze_prototypes_niters: 313\nfrozen_stages: -1\nfreeze_backbone: False\nfreeze: 0\n"
        "norm_cfg=dict(type='BN', requires_grad=False)\nunfreeze_epoch: 5"
    )
    assert meta.frozen_layers == []
    assert meta.batchnorm_flags == []


def test_namespace_flags_and_messages_that_freeze():
    meta = print_log(
        "Namespace(arch='resnet18', batch_size=64, freeze_backbone=True, lr=0.1, pretrained=False)\n"
        "Freezing layers: conv1, layer1\n"
        "layer2.0.conv1.weight requires_grad=False\n"
        "Training fc only"
    )
    assert frozen(meta) == [
        ("backbone", "flag"),
        ("conv1, layer1", "text"),
        ("layer2.0.conv1", "requires_grad"),
        ("all but fc", "text"),
    ]
    assert meta.frozen_layers[2].where.line == 3
    assert meta.pretrained is False


def test_command_line_freeze_count():
    meta = print_log("python train.py --freeze 10 --weights '' --img 640")
    assert frozen(meta) == [("10 layers", "flag")]


def test_batchnorm_eval_mode_settings_and_messages():
    assert [b.name for b in print_log("Namespace(freeze_bn=True, lr=0.01)").batchnorm_flags] == ["freeze_bn"]
    flags = print_log("2024-05-01 10:00:00 INFO: BatchNorm layers set to eval mode").batchnorm_flags
    assert [(b.source, b.use_global_stats, b.phase) for b in flags] == [("flag", True, "train")]
    assert print_log("Namespace(bn_eval=False)").batchnorm_flags == []


def test_torchvision_normalize_and_to_tensor():
    meta = print_log(
        "Compose(\n    RandomResizedCrop(size=(224, 224))\n    ToTensor()\n"
        "    Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])\n)"
    )
    assert meta.input_norm_mean == [0.485, 0.456, 0.406]
    assert meta.input_norm_std == [0.229, 0.224, 0.225]
    assert meta.input_range == "0-1"
    assert meta.where["input_norm_std"].line == 4


def test_summed_loss_settings():
    assert print_log("criterion: CrossEntropyLoss(reduction='sum')").loss_normalization == "NONE"
    assert print_log("Namespace(lr=0.01, size_average=False)").loss_normalization == "NONE"
    assert print_log("loss_reduction: sum").loss_normalization == "NONE"
    assert print_log("Namespace(lr=0.01, reduction='mean')").loss_normalization is None


def test_lightning_hparams_yaml(tmp_path):
    hparams = (
        "lr: 0.001\nbatch_size: 32\nfreeze_backbone: true\nmean: [0.5, 0.5, 0.5]\nstd: [0.5, 0.5, 0.5]\n"
    )
    metrics = "epoch,step,train_loss\n" + "\n".join(f"0,{i},{2.3 - i * 0.01}" for i in range(50)) + "\n"
    (tmp_path / "hparams.yaml").write_text(hparams)
    (tmp_path / "metrics.csv").write_text(metrics)
    meta = load_paths(sorted(tmp_path.iterdir())).meta
    assert frozen(meta) == [("backbone", "flag")]
    assert meta.frozen_layers[0].where.source == "hparams.yaml"
    assert meta.input_norm_mean == [0.5, 0.5, 0.5]


# ------------------------------------------------------------------------------------ class counts
def test_namespace_class_and_vocabulary_counts_are_echoed_classes():
    assert print_log("Namespace(lr=0.1, num_classes=10, batch_size=64)").echoed_classes == 10
    assert print_log("Namespace(arch='charlm_gru', vocab_size=16, block_size=24)").echoed_classes == 16
    # not a count: a list of class names, or a single class
    assert print_log("Namespace(lr=0.1, classes='cat,dog')").echoed_classes is None
    assert print_log("Namespace(lr=0.1, num_classes=1)").echoed_classes is None
