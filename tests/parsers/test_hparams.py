"""Hyper-parameter echoes of text logs -> RunMeta facts with the line that states each one."""

import pytest

from parsers.hparams import HEAD_LINES, hyperparams_from_text
from parsers.model import RunMeta


def _meta(text: str) -> RunMeta:
    meta = RunMeta()
    hyperparams_from_text(text, "train.log", meta)
    return meta


def test_argparse_namespace():
    meta = _meta(
        "start\n"
        "Namespace(arch='resnet50', batch_size=128, epochs=90, lr=0.1, momentum=0.9, "
        "weight_decay=0.0001, pretrained=False, optimizer='SGD', data=['a', 'b'])\n"
    )
    assert (meta.base_lr, meta.batch_size, meta.epochs, meta.momentum) == (0.1, 128, 90, 0.9)
    assert (meta.weight_decay, meta.optimizer, meta.net_name) == (0.0001, "sgd", "resnet50")
    assert meta.pretrained is False
    assert meta.where["base_lr"].line == 2
    assert meta.hyperparams["data"] == "['a', 'b']"
    assert meta.hyperparams["arch"] == "resnet50"


def test_printed_python_and_json_dicts():
    meta = _meta("{'lr': 0.001, 'epochs': 10, 'optimizer': 'adamw'}\n" + '{"batch_size": 64, "fp16": true}\n')
    assert (meta.base_lr, meta.epochs, meta.optimizer) == (0.001, 10, "adamw")
    assert (meta.batch_size, meta.precision) == (64, "fp16")
    assert meta.where["batch_size"].line == 2


def test_metric_dicts_are_not_settings():
    meta = _meta("{'loss': 0.69, 'learning_rate': 5e-05, 'epoch': 0.01}\n")
    assert meta.base_lr is None and meta.hyperparams == {}


def test_training_arguments_block_beyond_the_head_is_read():
    filler = "".join(f"{{'loss': 0.5, 'epoch': {i}}}\n" for i in range(HEAD_LINES + 5))
    block = (
        "TrainingArguments(\n_n_gpu=1,\nbf16=True,\nlearning_rate=2e-05,\nlogging_steps=50,\n"
        "max_grad_norm=1.0,\nmax_steps=-1,\nnum_train_epochs=3.0,\noptim=adamw_torch,\n"
        "per_device_train_batch_size=16,\n)\n"
    )
    meta = _meta(filler + block + "{'loss': 0.4, 'epoch': 1.0}\n")
    opener = HEAD_LINES + 6
    assert (meta.base_lr, meta.epochs, meta.batch_size) == (2e-05, 3, 16)
    assert (meta.optimizer, meta.precision, meta.clip_gradients) == ("adamw", "bf16", 1.0)
    assert meta.max_iter is None  # max_steps=-1 means "not set"
    assert meta.hyperparams["logging_steps"] == "50"
    assert meta.where["base_lr"].line == opener + 3
    assert meta.where["base_lr"].text == "learning_rate=2e-05,"


MMCV_DUMP = """\
2021-12-07 13:57:39,351 - mmdet - INFO - Config:
model = dict(
    type='FasterRCNN',
    pretrained=
    '../work_dirs/resnet50_imagenet/epoch_100.pth',
    backbone=dict(
        type='ResNet',
        norm_cfg=dict(type='BN', requires_grad=True, momentum=0.03)),
    roi_head=dict(type='StandardRoIHead'))
data = dict(
    samples_per_gpu=2,
    train=dict(pipeline=[dict(type='Resize', img_scale=(1333, 800), keep_ratio=True)]))
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(
    policy='step',
    warmup='linear',
    step=[8, 11])
runner = dict(type='EpochBasedRunner', max_epochs=12)
fp16 = dict(loss_scale=512.0)
load_from = None

2021-12-07 13:57:47,101 - mmdet - INFO - Start running
"""


def test_mmcv_config_dump():
    meta = _meta(MMCV_DUMP)
    assert (meta.optimizer, meta.base_lr, meta.momentum, meta.weight_decay) == ("sgd", 0.02, 0.9, 0.0001)
    assert (meta.batch_size, meta.epochs, meta.clip_gradients, meta.precision) == (2, 12, 35.0, "fp16")
    assert meta.net_name == "FasterRCNN"
    assert meta.pretrained is True
    assert meta.pretrained_from == "../work_dirs/resnet50_imagenet/epoch_100.pth"
    assert meta.where["pretrained"].line == 4  # `pretrained=` whose value is on the next line
    assert meta.where["base_lr"].line == 13
    assert meta.hyperparams["lr_config.step"] == "[8, 11]"
    assert meta.hyperparams["lr_config.policy"] == "step"
    assert meta.hyperparams["model.backbone.norm_cfg.momentum"] == "0.03"
    assert "data.train.pipeline.type" not in meta.hyperparams  # pipeline lists are skipped


def test_mmengine_optim_wrapper():
    meta = _meta(
        "Config:\noptim_wrapper = dict(\n    type='AmpOptimWrapper',\n"
        "    optimizer=dict(type='AdamW', lr=0.0001, weight_decay=0.05),\n"
        "    clip_grad=dict(max_norm=0.1, norm_type=2))\n"
        "train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=36, val_interval=1)\n"
        "train_dataloader = dict(batch_size=4, num_workers=2)\n"
        "val_dataloader = dict(batch_size=1)\n"
        "load_from = 'https://download.openmmlab.com/x/model.pth'\n\n"
    )
    assert (meta.optimizer, meta.base_lr, meta.weight_decay) == ("adamw", 0.0001, 0.05)
    assert (meta.clip_gradients, meta.precision, meta.epochs, meta.batch_size) == (0.1, "mixed", 36, 4)
    assert meta.pretrained_from == "https://download.openmmlab.com/x/model.pth"
    assert meta.where["optimizer"].line == 4


def test_logger_key_value_lines_with_prefix():
    meta = _meta(
        "INFO - 09/02/20 13:55:22 - 0:00:00 - arch: resnet50\n"
        "                                     base_lr: 0.6\n"
        "                                     batch_size: 32\n"
        "                                     epochs: 400\n"
        "                                     use_fp16: True\n"
        "                                     wd: 1e-06\n"
        "wandb: Currently logged in as: someone. Use `wandb login --relogin` to force relogin\n"
        "INFO:__main__:📊 Evaluation Results:\n"
        "INFO:__main__:   Loss: 0.5301\n"
    )
    assert (meta.net_name, meta.base_lr, meta.batch_size, meta.epochs) == ("resnet50", 0.6, 32, 400)
    assert (meta.precision, meta.weight_decay) == ("fp16", 1e-06)
    assert meta.where["base_lr"].text == "base_lr: 0.6"
    assert "wandb" not in meta.hyperparams and "Loss" not in meta.hyperparams


def test_detectron2_yaml_sections():
    meta = _meta(
        "[11/18 18:13:46] detectron2 INFO: Running with full config:\n"
        "MODEL:\n"
        "  META_ARCHITECTURE: GeneralizedRCNN\n"
        "  WEIGHTS: detectron2://ImageNetPretrained/MSRA/R-50.pkl\n"
        "SOLVER:\n"
        "  AMP:\n"
        "    ENABLED: true\n"
        "  BASE_LR: 0.02\n"
        "  CLIP_GRADIENTS:\n"
        "    CLIP_VALUE: 1.0\n"
        "    ENABLED: true\n"
        "  IMS_PER_BATCH: 16\n"
        "  MAX_ITER: 90000\n"
        "  WEIGHT_DECAY: 0.0001\n"
        "  WEIGHT_DECAY_NORM: 0.0\n"
        "\n"
    )
    assert (meta.base_lr, meta.batch_size, meta.max_iter, meta.weight_decay) == (0.02, 16, 90000, 0.0001)
    assert (meta.clip_gradients, meta.precision, meta.net_name) == (1.0, "mixed", "GeneralizedRCNN")
    assert meta.pretrained is True
    assert meta.pretrained_from == "detectron2://ImageNetPretrained/MSRA/R-50.pkl"
    assert meta.hyperparams["SOLVER.BASE_LR"] == "0.02"
    assert meta.where["max_iter"].line == 13


def test_detectron2_clip_disabled_is_not_clipping():
    meta = _meta("SOLVER:\n  CLIP_GRADIENTS:\n    CLIP_VALUE: 1.0\n    ENABLED: false\n")
    assert meta.clip_gradients is None


def test_command_line_echo():
    meta = _meta("/usr/bin/python train.py --n_epoch=100 --lr=5e-4 --batch_size 128 --weights yolov5s.pt\n")
    assert (meta.epochs, meta.base_lr, meta.batch_size) == (100, 0.0005, 128)
    assert (meta.pretrained, meta.pretrained_from) == (True, "yolov5s.pt")


@pytest.mark.parametrize(
    ("line", "origin"),
    [
        ("Loading pretrained weights from /ckpt/resnet50.pth", "/ckpt/resnet50.pth"),
        ("_IncompatibleKeys(missing_keys=['fc.weight', 'fc.bias'], unexpected_keys=[])", None),
        (
            "Some weights of BertForSequenceClassification were not initialized from the model checkpoint "
            "at bert-base-uncased and are newly initialized: ['classifier.bias']",
            "bert-base-uncased",
        ),
        ("Finetuning from checkpoints/pretrain.pth", "checkpoints/pretrain.pth"),
        ("[11/18 18:13:50] fvcore.common.checkpoint INFO: [Checkpointer] Loading from a/model.pth ...", None),
        ("model = resnet50(weights=ResNet50_Weights.IMAGENET1K_V2)", "ResNet50_Weights.IMAGENET1K_V2"),
    ],
)
def test_weight_loading_phrases(line, origin):
    meta = _meta(f"epoch 0\n{line}\n")
    assert meta.pretrained is True
    assert meta.where["pretrained"].line == 2
    if origin is not None:
        assert meta.pretrained_from == origin


@pytest.mark.parametrize("line", ["Namespace(pretrained=False, lr=0.1)", "net = resnet18(weights=None)"])
def test_from_scratch_statements(line):
    meta = _meta(line + "\n")
    assert meta.pretrained is False
    assert meta.where["pretrained"].line == 1


def test_loaded_weights_win_over_a_false_flag():
    meta = _meta("Namespace(pretrained=False)\nLoading pretrained weights from x.pth\n")
    assert (meta.pretrained, meta.pretrained_from) == (True, "x.pth")
    assert meta.where["pretrained"].line == 2


def test_hf_optimizer_names_are_normalised():
    assert _meta("optim=paged_adamw_8bit\n").optimizer == "adamw"
    assert _meta("optimizer: torch.optim.SGD\n").optimizer == "sgd"
    assert _meta("opt: nadam\n").optimizer == "nadam"


def test_command_line_bare_flags_are_true():
    """argparse's store_true flags (`--batch-norm`, `--nesterov`) have no value: present means true."""
    meta = _meta(
        "$ python train.py --arch mlp --batch-size 2 --lr 0.007 --nesterov --hidden 64 64 --batch-norm "
        "--init default --amp\n"
    )
    assert meta.hyperparams["batch_norm"] == "true" and meta.hyperparams["nesterov"] == "true"
    assert meta.hyperparams["amp"] == "true" and meta.hyperparams["init"] == "default"
    assert (meta.batch_size, meta.base_lr) == (2, 0.007)
    assert meta.batchnorm[0].source == "setting" and meta.batchnorm[0].where.line == 1


def test_batchnorm_from_the_architecture_and_from_settings():
    assert _meta("Namespace(arch='resnet18', lr=0.1)\n").batchnorm[0].name == "resnet18"
    assert _meta("arch: vgg16_bn\n").batchnorm[0].name == "vgg16_bn"
    assert not _meta("arch: vgg16\n").batchnorm
    assert not _meta("Namespace(arch='resnet18', batch_norm=False)\n").batchnorm
    assert _meta("model:\n  use_bn: true\n").batchnorm[0].name == "model.use_bn"


def test_command_line_values_with_blanks():
    """argparse `nargs` lists (`--widths 16 32 32`) and call-shaped values (`--init normal(0, 0.01)`) are one
    value each; a shell redirection after a number is not part of it."""
    meta = _meta(
        "$ python train_seg.py --arch fcn --widths 16 16 32 --milestones 5 8 --init normal(0, 0.01) "
        "--lr 0.07 2>&1 | tee train.log\n"
    )
    assert meta.hyperparams["widths"] == "16 16 32" and meta.hyperparams["milestones"] == "5 8"
    assert meta.hyperparams["init"] == "normal(0, 0.01)"
    assert meta.base_lr == 0.07


@pytest.mark.parametrize(
    "text",
    [
        "$ python train.py --arch fcn --widths 16 16 16 32 32 --init normal(0, 0.01) --lr 0.07\n",
        "Namespace(arch='fcn', widths=[16, 16, 16, 32, 32], batch_norm=False, init='normal(0, 0.01)')\n",
        "arch: fcn\nwidths: [16, 16, 16, 32, 32]\ninit: normal(0, 0.01)\n",
        "Namespace(hidden=[64, 64, 32, 32, 16], init='gaussian(std=0.01)')\n",
    ],
)
def test_a_stated_gaussian_init_and_the_layer_widths_give_the_filler_and_the_depth(text):
    meta = _meta(text)
    assert meta.depth == 6  # five widths and the output layer
    [filler] = meta.weight_fillers
    assert (filler.type, filler.std) == ("gaussian", 0.01)
    assert filler.where is not None and filler.where.line == text[: text.index("init")].count("\n") + 1


def test_scaled_and_default_inits_and_shortcut_architectures():
    assert _meta("Namespace(init='kaiming_normal')\n").weight_fillers[0].type == "msra"
    assert _meta("init: xavier_uniform\n").weight_fillers[0].type == "xavier"
    assert _meta("init: he_normal\n").weight_fillers[0].type == "msra"
    assert _meta("init: heuristic\n").weight_fillers == []
    assert _meta("Namespace(channels=3, lr=0.1)\n").depth is None  # the input's channels, not a stack
    assert _meta("Namespace(init='default', widths=[8, 16])\n").weight_fillers == []
    assert _meta("Namespace(arch='resnet', widths=[8, 16])\n").has_residual is True
    assert _meta("Namespace(arch='vgg', channels=[16, 32])\n").has_residual is None
    # a list of something else than layer widths is no depth
    assert _meta("Namespace(hidden=['a', 'b'])\n").depth is None
    # a section's `init` (e.g. a sub-module's) is not the net's
    assert _meta("model:\n  head:\n    init: normal(0, 0.01)\n").weight_fillers == []


# ------------------------------------------------------------------------------ YAML block sequences
def test_yaml_block_sequence_is_one_setting():
    """yaml.dump writes a list as `key:` over `- item` lines (Lightning's hparams.yaml, Hydra dumps):
    one setting, whose widths give the depth of a plain stack."""
    meta = _meta("arch: fcn\nwidths:\n- 16\n- 16\n- 32\nbatch_norm: false\ninit: normal(0, 0.01)\n")
    assert meta.hyperparams["widths"] == "[16, 16, 32]"
    assert meta.depth == 4 and meta.where["depth"].line == 2 and meta.layer_widths == [16, 16, 32]
    assert meta.hyperparams["batch_norm"] == "false"  # the key after the list is read at top level
    assert meta.weight_fillers[0].std == 0.01


def test_yaml_block_sequence_inside_a_section_keeps_its_path():
    meta = _meta(
        "model:\n  hidden_sizes:\n    - 256\n    - 128\n    - 64\n  dropout: 0.1\n"
        "transform:\n  mean:\n  - 0.485\n  - 0.456\n  - 0.406\n  std:\n  - 0.229\n  - 0.224\n  - 0.225\nlr: 0.01\n"
    )
    assert meta.hyperparams["model.hidden_sizes"] == "[256, 128, 64]"
    assert meta.hyperparams["model.dropout"] == "0.1"
    assert meta.input_norm_mean == [0.485, 0.456, 0.406] and meta.input_norm_std == [0.229, 0.224, 0.225]
    assert meta.base_lr == 0.01 and "transform.lr" not in meta.hyperparams


def test_prose_bullets_and_lists_of_mappings_are_not_settings():
    meta = _meta(
        "Changes:\n- fixed the loader\n- 16 new layers\ncallbacks:\n- name: early_stop\n  patience: 3\nlr: 0.1\n"
    )
    assert "Changes" not in meta.hyperparams and "callbacks" not in meta.hyperparams
    assert meta.depth is None and meta.base_lr == 0.1


@pytest.mark.parametrize("value", ["false", "no", "off", "0"])
def test_pretrained_said_no_in_any_boolean_spelling_is_a_scratch_start(value):
    """`0` is how TensorBoard's hparams record stores `pretrained=False`; `no` was read as a weights file."""
    meta = RunMeta()
    hyperparams_from_text(f"pretrained: {value}\n", "config.yaml", meta)
    assert meta.pretrained is False
