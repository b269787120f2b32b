"""LD314: an SGD lr many times above the linear scaling rule for the run's batch size.

Goyal et al. 2017 ("Accurate, Large Minibatch SGD: Training ImageNet in 1 Hour", arXiv:1706.02677):
ResNet-50 on ImageNet trains to the same accuracy with minibatches of 64 to 8k images when the lr is
0.1 x k/256 (the linear scaling rule), with a gradual warm-up over the first 5 epochs for the large
batches; past 8k images even that loses accuracy. The rule is published for SGD with momentum on
convolutional image classifiers, so the check only judges those (by the net's name): detection and
segmentation recipes have references of their own (Detectron's and mmdetection's 0.02 per 16 images),
RNNs and MLPs train with other lrs, and Adam's published lrs (GPT-3's table, Brown et al. 2020)
follow the model's size, which logs seldom state, not the batch. An informational check beside the
diagnosis: no cause rule reads it, it is no config fault, and it has no fitted parameter.
"""

from __future__ import annotations

import math

from diagnostics.context import Context
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule

# The rule: lr 0.1 for 256 images, linear in the batch (Goyal et al. 2017).
REFERENCE_LR = 0.1
REFERENCE_BATCH = 256
# The batches the paper trained with (its Fig. 1 spans 64 to 64k images; the rule held up to 8k).
MIN_BATCH = 64
MAX_RULE_BATCH = 8192
# How far above the rule an lr must be to be flagged: a logged batch is often one device's share of
# the global one (Goyal et al. ran 8 GPUs a server), and published recipes sit up to 2x above the rule
# (He et al. 2016's CIFAR-10 ResNets: lr 0.1 at batch 128). 8 x 2: above this no per-device batch or
# published recipe explains the lr.
DEVICES_PER_NODE = 8
RECIPE_SPREAD = 2
FLAG_FACTOR = DEVICES_PER_NODE * RECIPE_SPREAD
SGD_NAMES = ("sgd", "nesterov", "momentum")
# Convolutional image classifiers, the nets the rule was published for; the names of detection and
# segmentation nets (which contain some of these) are left out first.
CLASSIFIER_NAMES = (
    "resnet",
    "resnext",
    "vgg",
    "alexnet",
    "caffenet",
    "googlenet",
    "inception",
    "squeezenet",
    "densenet",
    "mobilenet",
    "efficientnet",
    "lenet",
    "cnn",
    "cifar10_quick",
)
NOT_CLASSIFIER_NAMES = ("rcnn", "fcn", "yolo", "ssd", "retina", "detr", "mask", "seg", "deeplab", "unet")


def rule_lr(batch: int) -> float:
    """The linear scaling rule's lr for `batch` images."""
    return REFERENCE_LR * batch / REFERENCE_BATCH


def is_conv_classifier(net_name: str | None) -> bool:
    name = (net_name or "").lower()
    return any(n in name for n in CLASSIFIER_NAMES) and not any(n in name for n in NOT_CLASSIFIER_NAMES)


@rule("LD314", "sgd-lr-above-linear-scaling-rule", meta=("optimizer", "batch_size"))
def lr_above_scaling_rule(ctx: Context) -> RuleResult | None:
    """SGD on a convolutional image classifier with an lr more than `FLAG_FACTOR` times the linear
    scaling rule's lr for its batch."""
    meta, lr = ctx.meta, ctx.lr_value
    assert meta.batch_size is not None
    if (meta.optimizer or "").lower() not in SGD_NAMES or not is_conv_classifier(meta.net_name):
        return None
    batch = meta.batch_size * (meta.iter_size or 1)  # Caffe accumulates iter_size batches per update
    if lr is None or not math.isfinite(lr) or batch < MIN_BATCH:
        return None
    expected = rule_lr(batch)
    factor = lr / expected
    if factor <= FLAG_FACTOR:
        return None
    numbers = {"lr": f"{lr:g}", "batch": batch, "rule": f"{expected:.3g}", "factor": f"{factor:.3g}"}
    evidence = [
        Evidence("evidence.lr_batch_rule", numbers, quote=ctx.lr_quote),
        Evidence("evidence.lr_batch_size", {"batch": batch}, quote=ctx.quote("batch_size")),
        Evidence(
            "evidence.lr_batch_rule_fix" if batch <= MAX_RULE_BATCH else "evidence.lr_batch_rule_fix_large",
            {"rule": f"{expected:.3g}", "batch": batch, "max": MAX_RULE_BATCH},
        ),
    ]
    severity = "warning" if ctx.symptoms else "info"  # the run shows a problem the lr may explain
    return RuleResult([Finding("LD314", severity, evidence)])
