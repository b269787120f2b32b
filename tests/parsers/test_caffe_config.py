"""Caffe solver/net parameters -> RunMeta, with the exact lines quoted; the prototxt plug-in; and
every solver/net dump in the team's real Caffe logs."""

import math
import re
from pathlib import Path

import pytest

from parsers import ParseError, load
from parsers.caffe_config import is_net, is_solver, net_facts, net_phase, solver_facts
from parsers.formats import caffe_prototxt
from parsers.model import BatchNormLayer, LogLine, RunMeta, WeightFiller
from parsers.prototxt import parse_prototxt
from parsers.source import SourceFile

REAL_CAFFE = Path(__file__).resolve().parents[2] / "../shared/real_logs/caffe"

FCN_SOLVER = """\
net: "train_val.prototxt"
test_iter: 736
# make test net, but don't invoke it from the solver itself
test_interval: 999999999
display: 20
average_loss: 20
lr_policy: "fixed"
base_lr: 1e-4  # lr for unnormalized softmax
# high momentum
momentum: 0.99
# no gradient accumulation
iter_size: 1
max_iter: 100000
weight_decay: 0.0005
snapshot: 4000
snapshot_prefix: "snapshot/train"
test_initialization: false
"""

FCN_TRAIN_VAL = """\
name: "FCN32s"
layer {
  name: "data"
  type: "ImageData"
  top: "data"
  top: "label"
  include {
    phase: TRAIN
  }
  transform_param {
    mean_value: 104.00699
  }
  image_data_param {
    source: "train.txt"
    batch_size: 1
    is_color: false
    shuffle: true
  }
}
layer {
  name: "data"
  type: "ImageData"
  top: "data"
  top: "label"
  include {
    phase: TEST
  }
  image_data_param {
    source: "val.txt"
    batch_size: 1
    is_color: false
  }
}
layer {
  name: "conv1_1"
  type: "Convolution"
  bottom: "data"
  top: "conv1_1"
  param { lr_mult: 1 decay_mult: 1 }
  convolution_param {
    num_output: 64
    pad: 100
    kernel_size: 3
  }
}
layer { name: "relu1_1" type: "ReLU" bottom: "conv1_1" top: "conv1_1" }
layer {
  name: "fc6"
  type: "Convolution"
  bottom: "conv1_1"
  top: "fc6"
  convolution_param {
    num_output: 4096
    kernel_size: 7
  }
}
layer {
  name: "score_fr"
  type: "Convolution"
  bottom: "fc6"
  top: "score_fr"
  convolution_param {
    num_output: 21
    kernel_size: 1
  }
}
layer {
  name: "upscore"
  type: "Deconvolution"
  bottom: "score_fr"
  top: "upscore"
  param { lr_mult: 0 }
  convolution_param {
    num_output: 21
    bias_term: false
    kernel_size: 64
    stride: 32
    weight_filler { type: "bilinear" }
  }
}
layer {
  name: "score"
  type: "Crop"
  bottom: "upscore"
  bottom: "data"
  top: "score"
  crop_param { axis: 2 offset: 19 }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "score"
  bottom: "label"
  top: "loss"
  loss_param {
    ignore_label: 255
    normalize: true
  }
}
"""

# A ResNet-like TRAIN net as a log prints it ("Initializing net from parameters:" at line 119).
RESNET_TRAIN_DUMP = """\
name: "ResNet-50"
state {
  phase: TRAIN
}
layer {
  name: "data"
  type: "Data"
  top: "data"
  top: "label"
  include {
    phase: TRAIN
  }
  transform_param {
    mirror: true
    crop_size: 224
    mean_value: 104
    mean_value: 117
    mean_value: 123
  }
  data_param {
    source: "ilsvrc12_train_lmdb"
    batch_size: 32
    backend: LMDB
  }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param {
    num_output: 64
    bias_term: false
    kernel_size: 7
    stride: 2
    weight_filler {
      type: "msra"
    }
  }
}
layer {
  name: "bn_conv1"
  type: "BatchNorm"
  bottom: "conv1"
  top: "conv1"
  batch_norm_param {
    use_global_stats: true
  }
}
layer {
  name: "scale_conv1"
  type: "Scale"
  bottom: "conv1"
  top: "conv1"
  scale_param {
    bias_term: true
  }
}
layer {
  name: "res2a_branch2a"
  type: "Convolution"
  bottom: "conv1"
  top: "res2a_branch2a"
  convolution_param {
    num_output: 64
    bias_term: false
    kernel_size: 1
    weight_filler {
      type: "msra"
    }
  }
}
layer {
  name: "bn2a_branch2a"
  type: "BatchNorm"
  bottom: "res2a_branch2a"
  top: "res2a_branch2a"
}
layer {
  name: "res2a"
  type: "Eltwise"
  bottom: "conv1"
  bottom: "res2a_branch2a"
  top: "res2a"
}
layer {
  name: "fc1000"
  type: "InnerProduct"
  bottom: "res2a"
  top: "fc1000"
  inner_product_param {
    num_output: 1000
    weight_filler {
      type: "msra"
    }
  }
}
layer {
  name: "loss"
  type: "SoftmaxWithLoss"
  bottom: "fc1000"
  bottom: "label"
  top: "loss"
}
"""

VGG_SOLVER = """\
net: "models/vgg16/train_val.prototxt"
test_iter: 1000
test_interval: 10000
base_lr: 0.0648
lr_policy: "step"
gamma: 0.1
stepsize: 100000
display: 20
max_iter: 350000
momentum: 0.9
weight_decay: 0.0005
clip_gradients: 35
snapshot: 10000
snapshot_prefix: "models/vgg16/vgg16"
solver_mode: GPU
solver_type: NESTEROV
"""

VGG_TRAIN_VAL = """\
name: "VGG_ILSVRC_16_layers"
layer {
  name: "data"
  type: "Data"
  include { phase: TEST }
  transform_param { scale: 0.5 crop_size: 224 mirror: false }
  data_param { source: "ilsvrc12_val_lmdb" batch_size: 50 backend: LMDB }
  top: "data"
  top: "label"
}
layer {
  name: "data"
  type: "Data"
  include { phase: TRAIN }
  transform_param { scale: 0.00390625 mean_file: "mean.binaryproto" crop_size: 224 mirror: true }
  data_param { source: "ilsvrc12_train_lmdb" batch_size: 64 backend: LMDB }
  top: "data"
  top: "label"
}
layer {
  name: "conv1_1"
  type: "Convolution"
  bottom: "data"
  top: "conv1_1"
  convolution_param { num_output: 64 pad: 1 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer {
  name: "conv1_2"
  type: "Convolution"
  bottom: "conv1_1"
  top: "conv1_2"
  convolution_param { num_output: 64 pad: 1 kernel_size: 3 weight_filler { type: "xavier" } }
}
layer {
  name: "fc8"
  type: "InnerProduct"
  bottom: "conv1_2"
  top: "fc8"
  inner_product_param { num_output: 1000 weight_filler { type: "gaussian" std: 0.005 } }
}
layer {
  name: "accuracy"
  type: "Accuracy"
  bottom: "fc8"
  bottom: "label"
  top: "accuracy"
  include { phase: TEST }
}
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "fc8" bottom: "label" top: "loss" }
"""

V1_LENET = """\
name: "LeNet"
layers {
  name: "mnist"
  type: DATA
  top: "data"
  top: "label"
  data_param {
    source: "examples/mnist/mnist_train_lmdb"
    backend: LMDB
    batch_size: 64
    scale: 0.00390625
  }
  include: { phase: TRAIN }
}
layers {
  name: "conv1"
  type: CONVOLUTION
  bottom: "data"
  top: "conv1"
  blobs_lr: 1
  blobs_lr: 2
  convolution_param {
    num_output: 20
    kernel_size: 5
    weight_filler {
      type: "xavier"
    }
  }
}
layers {
  name: "ip2"
  type: INNER_PRODUCT
  bottom: "conv1"
  top: "ip2"
  blobs_lr: 1
  blobs_lr: 2
  inner_product_param {
    num_output: 10
    weight_filler { type: "gaussian" std: 0.01 }
  }
}
layers {
  name: "loss"
  type: SOFTMAX_LOSS
  bottom: "ip2"
  bottom: "label"
}
"""

DEPLOY = """\
name: "CaffeNet"
layer {
  name: "data"
  type: "Input"
  top: "data"
  input_param { shape: { dim: 10 dim: 3 dim: 227 dim: 227 } }
}
layer {
  name: "conv1"
  type: "Convolution"
  bottom: "data"
  top: "conv1"
  convolution_param { num_output: 96 kernel_size: 11 stride: 4 }
}
layer {
  name: "fc8"
  type: "InnerProduct"
  bottom: "conv1"
  top: "fc8"
  inner_product_param { num_output: 1000 }
}
layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }
"""


def _solver_meta(text: str, source: str = "solver.prototxt") -> RunMeta:
    meta = RunMeta()
    solver_facts(parse_prototxt(text), meta, source)
    return meta


def _net_meta(text: str, source: str = "train_val.prototxt", first_line: int = 1, phase=None) -> RunMeta:
    meta = RunMeta()
    net_facts(parse_prototxt(text, first_line), meta, source, phase)
    return meta


# ----- solver -------------------------------------------------------------------------------


def test_fcn_solver_facts_lines_and_comments():
    meta = _solver_meta(FCN_SOLVER)
    assert meta.base_lr == 1e-4
    assert meta.where["base_lr"] == LogLine(
        "solver.prototxt", 8, "base_lr: 1e-4  # lr for unnormalized softmax"
    )
    assert meta.momentum == 0.99 and meta.where["momentum"] == LogLine(
        "solver.prototxt", 10, "momentum: 0.99"
    )
    assert meta.lr_policy == "fixed" and meta.where["lr_policy"].line == 7
    assert meta.lr_params == {}
    assert meta.optimizer == "sgd" and "optimizer" not in meta.where  # Caffe's default solver
    assert (meta.iter_size, meta.max_iter, meta.average_loss, meta.display) == (1, 100000, 20, 20)
    assert meta.test_interval == 999999999 and meta.weight_decay == 0.0005
    assert meta.clip_gradients is None and meta.pretrained is None and meta.batch_size is None
    assert meta.hyperparams["base_lr"] == "1e-4" and meta.hyperparams["net"] == "train_val.prototxt"
    assert meta.hyperparams["test_initialization"] == "false" and meta.hyperparams["test_iter"] == "736"
    assert meta.comments == [
        LogLine("solver.prototxt", 3, "# make test net, but don't invoke it from the solver itself"),
        LogLine("solver.prototxt", 8, "base_lr: 1e-4  # lr for unnormalized softmax"),
        LogLine("solver.prototxt", 9, "# high momentum"),
        LogLine("solver.prototxt", 11, "# no gradient accumulation"),
    ]


def test_vgg_solver_old_solver_type_step_policy_and_clipping():
    meta = _solver_meta(VGG_SOLVER)
    assert meta.base_lr == 0.0648 and meta.where["base_lr"] == LogLine(
        "solver.prototxt", 4, "base_lr: 0.0648"
    )
    assert meta.optimizer == "nesterov" and meta.where["optimizer"].text == "solver_type: NESTEROV"
    assert meta.lr_policy == "step" and meta.lr_params == {"gamma": 0.1, "stepsize": 100000}
    assert meta.where["lr_params"].line == 6
    assert meta.clip_gradients == 35.0 and meta.where["clip_gradients"].line == 12
    assert meta.max_iter == 350000 and meta.hyperparams["solver_mode"] == "GPU"


@pytest.mark.parametrize(
    ("text", "optimizer"),
    [
        ('type: "Adam"', "adam"),
        ('type: "AdaDelta"', "adadelta"),
        ('type: "RMSProp"', "rmsprop"),
        ("solver_type: ADAGRAD", "adagrad"),
        ("solver_type: ADAM", "adam"),
        ('type: "SGD"', "sgd"),
    ],
)
def test_optimizer_names_are_lower_case(text, optimizer):
    assert _solver_meta(f"base_lr: 0.001\n{text}\n").optimizer == optimizer


def test_schedule_params_multistep_poly_and_fork_warmup():
    multistep = _solver_meta(
        'base_lr: 0.1\nlr_policy: "multistep"\ngamma: 0.1\n'
        "stepvalue: 32000\nstepvalue: 48000\nmax_iter: 64000\n"
    )
    assert multistep.lr_params == {"gamma": 0.1, "stepvalue": [32000, 48000]}
    assert multistep.hyperparams["stepvalue"] == "32000, 48000"
    poly = _solver_meta(
        'base_lr: 0.2\nlr_policy: "poly"\npower: 2\nmax_iter: 500000\nrampup_interval: 1000\n'
        "rampup_lr: 0.1\nmin_lr: 5e-06\nclip_gradients: -1\n"
    )
    assert poly.lr_params == {
        "power": 2.0,
        "max_iter": 500000,
        "rampup_interval": 1000,
        "rampup_lr": 0.1,
        "min_lr": 5e-06,
    }
    assert poly.where["lr_params"].text == "power: 2"
    assert poly.clip_gradients is None  # negative: clipping off
    warmup = _solver_meta('base_lr: 0.1\nlr_policy: "multistep"\nwarmup_iter: 500\nwarmup_start_lr: 0.01\n')
    assert warmup.lr_params == {"warmup_iter": 500, "warmup_start_lr": 0.01}


def test_nonfinite_solver_values_do_not_break_integers():
    meta = _solver_meta('base_lr: nan\nmax_iter: inf\nlr_policy: "step"\nstepsize: -inf\ndisplay: 20\n')
    assert math.isnan(meta.base_lr) and meta.max_iter is None and meta.display == 20
    assert meta.lr_params == {"stepsize": -math.inf}


def test_solver_weights_mean_pretrained():
    meta = _solver_meta('base_lr: 0.001\nmax_iter: 100\nweights: "VGG16.v2.caffemodel"\n')
    assert meta.pretrained is True and meta.pretrained_from == "VGG16.v2.caffemodel"
    assert meta.where["pretrained"].line == 3


def test_solver_with_embedded_net_param_fills_net_facts():
    text = "base_lr: 0.01\nmax_iter: 10\nnet_param {\n" + RESNET_TRAIN_DUMP.replace("  phase: TRAIN\n", "", 1)
    text += '}\ntype: "Adam"\n'
    meta = _solver_meta(text, "run.log")
    assert meta.optimizer == "adam" and meta.net_name == "ResNet-50" and meta.num_classes == 1000
    assert meta.batch_size == 32 and meta.where["batch_size"] == LogLine("run.log", 24, "    batch_size: 32")


def test_is_solver_and_is_net():
    assert is_solver(parse_prototxt(FCN_SOLVER)) and not is_net(parse_prototxt(FCN_SOLVER))
    for net in (FCN_TRAIN_VAL, V1_LENET, DEPLOY):
        assert is_net(parse_prototxt(net)) and not is_solver(parse_prototxt(net))
    assert is_net(parse_prototxt('input: "data"\ninput_dim: 1\n'))
    assert not is_solver(parse_prototxt('name: "x"\n')) and not is_net(parse_prototxt('name: "x"\n'))


# ----- nets ---------------------------------------------------------------------------------


def test_fcn_train_val_facts():
    meta = _net_meta(FCN_TRAIN_VAL)
    assert meta.net_name == "FCN32s" and meta.where["net_name"].line == 1
    assert meta.batch_size == 1 and meta.where["batch_size"] == LogLine(
        "train_val.prototxt", 15, "    batch_size: 1"
    )
    assert meta.input_channels == 1 and meta.where["input_channels"].text == "    is_color: false"
    assert meta.mean_value == [104.00699] and meta.where["mean_value"].line == 11
    assert meta.input_scale is None and meta.crop_size is None and meta.mean_file is None
    assert meta.num_classes == 21 and meta.where["num_classes"].line == 74  # upscore, before Crop
    assert meta.loss_type == "SoftmaxWithLoss" and meta.where["loss_type"].line == 91
    assert meta.loss_normalize is True
    assert meta.where["loss_normalize"] == LogLine("train_val.prototxt", 97, "    normalize: true")
    assert meta.loss_normalization is None
    assert meta.depth == 4 and meta.has_residual is False and meta.batchnorm == []
    assert meta.layer_widths == [64, 4096, 21, 21]
    assert meta.weight_fillers == [
        WeightFiller(
            "upscore",
            "bilinear",
            None,
            LogLine("train_val.prototxt", 78, '    weight_filler { type: "bilinear" }'),
        )
    ]
    assert meta.pretrained is None and meta.comments == []


def test_resnet_train_dump_frozen_batchnorm_and_residual():
    meta = _net_meta(RESNET_TRAIN_DUMP, "caffe.log", first_line=120)
    assert net_phase(parse_prototxt(RESNET_TRAIN_DUMP)) == "train"
    assert meta.batchnorm == [
        BatchNormLayer("bn_conv1", "train", True, LogLine("caffe.log", 166, "    use_global_stats: true")),
        BatchNormLayer("bn2a_branch2a", "train", None, LogLine("caffe.log", 193, '  name: "bn2a_branch2a"')),
    ]
    assert meta.has_residual is True and meta.where["has_residual"].text == '  name: "res2a"'
    assert meta.depth == 3 and meta.num_classes == 1000 and meta.where["num_classes"].line == 211
    assert meta.batch_size == 32 and meta.where["batch_size"].line == 141
    assert meta.crop_size == 224 and meta.input_size == 224 and meta.mean_value == [104.0, 117.0, 123.0]
    assert [f.type for f in meta.weight_fillers] == ["msra"] * 3 and meta.weight_fillers[0].std is None


def test_test_phase_dump_adds_its_batchnorm_but_no_batch_size():
    test_dump = RESNET_TRAIN_DUMP.replace("phase: TRAIN", "phase: TEST")
    meta = _net_meta(test_dump, "caffe.log")
    assert meta.batch_size is None
    assert [(bn.name, bn.phase) for bn in meta.batchnorm] == [("bn_conv1", "test"), ("bn2a_branch2a", "test")]
    assert meta.input_scale is None and meta.crop_size == 224  # the transform of the only data layer
    both = _net_meta(RESNET_TRAIN_DUMP, "caffe.log")
    net_facts(parse_prototxt(test_dump), both, "caffe.log")
    net_facts(parse_prototxt(test_dump), both, "caffe.log")  # the same dump twice adds nothing
    assert [bn.phase for bn in both.batchnorm] == ["train", "train", "test", "test"]
    assert both.batch_size == 32


def test_vgg_train_val_takes_the_train_data_layer_and_fillers():
    meta = _net_meta(VGG_TRAIN_VAL)
    assert meta.input_scale == 0.00390625 and meta.where["input_scale"].line == 15
    assert meta.mean_file == "mean.binaryproto" and meta.batch_size == 64 and meta.crop_size == 224
    assert meta.num_classes == 1000 and meta.where["num_classes"].line == 39
    assert meta.depth == 3 and meta.has_residual is False
    assert [(f.layer, f.type, f.std) for f in meta.weight_fillers] == [
        ("conv1_1", "xavier", None),
        ("conv1_2", "xavier", None),
        ("fc8", "gaussian", 0.005),
    ]
    assert meta.weight_fillers[2].where.line == 39


def test_phase_argument_filters_a_train_val():
    meta = _net_meta(VGG_TRAIN_VAL, phase="test")
    assert meta.input_scale == 0.5 and meta.batch_size is None


def test_v1_layers_net():
    meta = _net_meta(V1_LENET)
    assert meta.net_name == "LeNet"
    assert meta.input_scale == 0.00390625 and meta.where["input_scale"].line == 11
    assert meta.batch_size == 64 and meta.depth == 2 and meta.num_classes == 10
    assert meta.layer_widths == [20, 10]
    assert meta.loss_type == "SoftmaxWithLoss" and meta.where["loss_type"].text == "  type: SOFTMAX_LOSS"
    assert [(f.type, f.std) for f in meta.weight_fillers] == [("xavier", None), ("gaussian", 0.01)]


def test_deploy_net_gives_classes_and_input_but_no_batch():
    meta = _net_meta(DEPLOY, "deploy.prototxt")
    assert meta.num_classes == 1000 and meta.where["num_classes"].line == 20
    assert meta.input_channels == 3 and meta.input_size == 227 and meta.batch_size is None
    assert meta.loss_type is None and meta.depth == 2
    old = _net_meta('name: "N"\ninput: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 28\ninput_dim: 28\n')
    assert (old.input_channels, old.input_size, old.batch_size) == (1, 28, None)
    assert old.where["input_channels"].line == 3


def test_input_layer_in_a_training_net_gives_the_batch():
    text = DEPLOY.replace(
        'layer { name: "prob" type: "Softmax" bottom: "fc8" top: "prob" }',
        'layer { name: "loss" type: "EuclideanLoss" bottom: "fc8" bottom: "data" }',
    )
    meta = _net_meta(text)
    assert meta.batch_size == 10 and meta.loss_type == "EuclideanLoss"


def test_main_loss_is_the_heaviest_and_multibox_classes():
    text = """\
layer { name: "data" type: "Data" top: "data" data_param { batch_size: 8 } }
layer { name: "loss1/classifier" type: "InnerProduct" inner_product_param { num_output: 1000 } }
layer { name: "loss1/loss" type: "SoftmaxWithLoss" loss_weight: 0.3 }
layer { name: "loss3/classifier" type: "InnerProduct" inner_product_param { num_output: 1000 } }
layer { name: "loss3/loss3" type: "SigmoidCrossEntropyLoss" loss_weight: 1 }
layer { name: "center_loss" type: "CenterLoss" loss_weight: 0.008 center_loss_param { num_output: 7 } }
"""
    meta = _net_meta(text)
    assert meta.loss_type == "SigmoidCrossEntropyLoss" and meta.where["loss_type"].line == 5
    assert meta.num_classes == 1000 and meta.where["num_classes"].line == 4
    ssd = _net_meta(
        'layer { name: "data" type: "AnnotatedData" data_param { batch_size: 32 } }\n'
        'layer { name: "mbox_conf" type: "Convolution" convolution_param { num_output: 84 } }\n'
        'layer { name: "mbox_loss" type: "MultiBoxLoss"\n  multibox_loss_param { num_classes: 21 }\n'
        "  loss_param { normalization: VALID } }\n"
    )
    assert ssd.num_classes == 21 and ssd.loss_normalization == "VALID" and ssd.batch_size == 32


def test_truncated_dump_gives_no_classes_or_loss():
    cut = RESNET_TRAIN_DUMP[: RESNET_TRAIN_DUMP.index('  name: "fc1000"')] + '  name: "fc10'
    meta = _net_meta(cut, "caffe.log")
    assert meta.num_classes is None and meta.loss_type is None
    assert meta.depth == 2 and meta.has_residual is True and meta.batch_size == 32
    cut_between_layers = RESNET_TRAIN_DUMP[: RESNET_TRAIN_DUMP.index('layer {\n  name: "res2a"\n')]
    meta = _net_meta(cut_between_layers, "caffe.log")
    assert meta.num_classes is None and meta.has_residual is None and meta.depth == 2


def test_net_comments_are_quoted_whole():
    meta = _net_meta('name: "FCN"  # from the VGG16 ILSVRC model\nlayer {\n  # frozen BN\n  name: "bn"\n}\n')
    assert meta.comments == [
        LogLine("train_val.prototxt", 1, 'name: "FCN"  # from the VGG16 ILSVRC model'),
        LogLine("train_val.prototxt", 3, "  # frozen BN"),
    ]


def test_batchnorm_and_eltwise_variants():
    meta = _net_meta(
        'layer { name: "bn" type: "BatchNorm" batch_norm_param { use_global_stats: false } }\n'
        'layer { name: "bn_t" type: "BatchNorm" include { phase: TEST } }\n'
        'layer { name: "gate" type: "Eltwise" eltwise_param { operation: PROD } }\n'
        'layer { name: "fc" type: "InnerProduct" inner_product_param { num_output: 2 } }\n'
    )
    assert [(b.name, b.phase, b.use_global_stats) for b in meta.batchnorm] == [
        ("bn", "any", False),
        ("bn_t", "test", None),
    ]
    assert meta.has_residual is False and meta.num_classes == 2


# ----- the plug-in --------------------------------------------------------------------------


def _source(name: str, text: str) -> SourceFile:
    return SourceFile.from_bytes(name, text.encode())


def test_sniff_claims_prototxts_and_leaves_logs():
    for name, text in (
        ("solver.prototxt", FCN_SOLVER),
        ("train_val.prototxt", FCN_TRAIN_VAL),
        ("deploy.prototxt", DEPLOY),
        ("lenet.prototxt", V1_LENET),
        ("upload.txt", VGG_SOLVER),
    ):
        assert caffe_prototxt.sniff(_source(name, text)) == 0.9, name
    glog = "I0124 13:30:05.869288 28098 solver.cpp:48] Initializing solver from parameters: \n" + FCN_SOLVER
    assert caffe_prototxt.sniff(_source("train.log", glog)) == 0.0
    assert caffe_prototxt.sniff(_source("x.csv", "epoch,loss\n1,0.5\n")) == 0.0
    assert caffe_prototxt.sniff(_source("x.prototxt", "base_lr: 0.1\n")) == 0.0


def test_parse_returns_config_only_meta():
    parsed = caffe_prototxt.parse(_source("train_val.prototxt", FCN_TRAIN_VAL))
    assert parsed.metrics is None and parsed.warnings == [] and parsed.skipped_lines == 0
    assert parsed.meta.framework == "caffe" and parsed.meta.format == "caffe_prototxt"
    assert parsed.meta.num_classes == 21 and parsed.meta.loss_normalize is True


def test_parse_reports_junk_and_rejects_non_caffe_text():
    parsed = caffe_prototxt.parse(_source("solver.prototxt", "base_lr: 0.01\n@@\nmax_iter: 5\nlayer_x {\n"))
    assert parsed.meta.base_lr == 0.01 and parsed.skipped_lines == 1
    assert [(w.line, w.message) for w in parsed.warnings] == [
        (2, "skipped unexpected '@'"),
        (2, "skipped unexpected '@'"),
        (4, "the text ends inside 'layer_x {' opened at line 4"),
    ]
    with pytest.raises(ParseError):
        caffe_prototxt.parse(_source("x.prototxt", 'name: "x"\n'))


def test_warnings_are_capped():
    junk = "base_lr: 0.01\nmax_iter: 5\n" + "@\n" * 30
    parsed = caffe_prototxt.parse(_source("solver.prototxt", junk))
    assert len(parsed.warnings) == 21 and parsed.warnings[-1].message == "10 more unreadable part(s) skipped"
    assert parsed.skipped_lines == 30


def test_load_refuses_config_only_uploads():
    files = [("solver.prototxt", FCN_SOLVER.encode()), ("train_val.prototxt", FCN_TRAIN_VAL.encode())]
    with pytest.raises(ParseError, match="configuration found, but no training metrics"):
        load(files)


def test_prototxt_meta_fills_what_the_log_lacks():
    log_meta = RunMeta(framework="caffe", format="caffe_glog", base_lr=0.001, formats=["caffe_glog"])
    log_meta.where["base_lr"] = LogLine("train.log", 5, "base_lr: 0.001")
    for name, text in (("solver.prototxt", FCN_SOLVER), ("train_val.prototxt", FCN_TRAIN_VAL)):
        parsed = caffe_prototxt.parse(_source(name, text))
        parsed.meta.formats = ["caffe_prototxt"]
        log_meta.merge(parsed.meta)
    assert log_meta.base_lr == 0.001 and log_meta.where["base_lr"].source == "train.log"
    assert log_meta.momentum == 0.99 and log_meta.where["momentum"] == LogLine(
        "solver.prototxt", 10, "momentum: 0.99"
    )
    assert log_meta.loss_normalize is True and log_meta.where["loss_normalize"].source == "train_val.prototxt"
    assert log_meta.num_classes == 21 and log_meta.batch_size == 1
    assert log_meta.formats == ["caffe_glog", "caffe_prototxt"] and log_meta.format == "caffe_glog"
    assert LogLine("solver.prototxt", 8, "base_lr: 1e-4  # lr for unnormalized softmax") in log_meta.comments


# ----- real logs ----------------------------------------------------------------------------

_GLOG = re.compile(r"^[IWEF]\d{4} ")

# base_lr of every "Initializing solver from parameters:" block, read by hand.
REAL_BASE_LR = {
    "caffenet128_lab_colorspace.log": 0.01,
    "caffenet128_lsuv_adadelta_1e-6.log": 1.0,
    "caffenet128_lsuv_adam_lr0.001.log": 0.001,
    "caffenet128_lsuv_bn_exp_lr.log": 0.035,
    "caffenet128_lsuv_rmsprop0.95_lr0.01.log": 0.01,
    "caffenet128_lsuv_rmsprop0.9_lr0.001.log": 0.001,
    "caffenet128_lsuv_rmsprop0.9_lr0.01.log": 0.01,
    "caffenet128_tanh_bs32_lr0.08.log": 0.08,
    "digits_binary_medical_cls.log": 0.0001,
    "digits_robond_googlenet.log": 0.001,
    "digits_robond_small_cls.log": 0.01,
    "nvcaffe_alexnet_imagenet_mfp16.log": 0.02,
    "nvcaffe_cifar10_nccl_3gpu.log": 0.001,
    "nvcaffe_mnist_lenet.log": 0.01,
    "nvcaffe_resnet50_imagenet_lr0.2.log": 0.2,
    "resnet20_cifar10_2016_4gpu.log": 0.1,
    "resnet20_cifar10_2018.log": 0.1,
    "resnet56_cifar10_2018.log": 0.1,
    "squeezenet128_imagenet.log": 0.04,
    "squeezenet_centerloss_face.log": 0.1,
    "ssd300_vgg16_ncs_retrain_job.log": 0.001,
    "ssd300_vgg16_resumed.log": 0.001,
}


def _dumps(path: Path, marker: str) -> list[tuple[int, str]]:
    """(first line number, text) of each parameter dump: the lines after the marker line up to
    the next glog line."""
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    out = []
    for i, line in enumerate(lines):
        if marker in line:
            end = i + 1
            while end < len(lines) and not _GLOG.match(lines[end]):
                end += 1
            out.append((i + 2, "\n".join(lines[i + 1 : end])))
    return out


def _real(name: str) -> Path:
    path = REAL_CAFFE / name
    if not path.exists():
        pytest.skip(f"real log {name} not available")
    return path


@pytest.mark.parametrize("name", sorted(REAL_BASE_LR))
def test_every_real_solver_dump_parses(name):
    dumps = _dumps(_real(name), "Initializing solver from parameters")
    assert dumps
    for first, text in dumps:
        msg = parse_prototxt(text, first)
        assert is_solver(msg) and msg.problems == []
        meta = RunMeta()
        solver_facts(msg, meta, name)
        assert meta.base_lr == REAL_BASE_LR[name]
        assert meta.where["base_lr"].line == msg.line_of("base_lr") >= first
        assert meta.where["base_lr"].text.startswith("base_lr: ")
        assert meta.max_iter and meta.optimizer


def test_no_real_solver_dump_is_missed():
    if not REAL_CAFFE.is_dir():
        pytest.skip("real logs not available")
    with_solver = {
        p.name
        for p in REAL_CAFFE.glob("*.log")
        if "Initializing solver from" in p.read_text(errors="replace")
    }
    assert with_solver == set(REAL_BASE_LR)


def test_real_adam_solver_with_embedded_net_param():
    name = "caffenet128_lsuv_adam_lr0.001.log"
    ((first, text),) = _dumps(_real(name), "Initializing solver from parameters")
    meta = RunMeta()
    solver_facts(parse_prototxt(text, first), meta, name)
    assert (meta.optimizer, meta.momentum, meta.average_loss, meta.max_iter) == ("adam", 0.95, 20, 320000)
    assert meta.where["optimizer"] == LogLine(name, meta.where["optimizer"].line, 'type: "Adam"')
    assert meta.hyperparams["momentum2"] == "0.999" and meta.lr_policy == "fixed"
    assert meta.net_name == "CaffeNet" and meta.batch_size == 256
    assert meta.where["batch_size"] == LogLine(name, 49, "      batch_size: 256")
    assert meta.input_scale == 0.04 and meta.crop_size == 128 and meta.mean_value == [104.0, 117.0, 124.0]
    assert meta.num_classes == 1000 and meta.loss_type == "SoftmaxWithLoss" and meta.depth == 8


def test_real_net_dumps():
    resnet = "resnet20_cifar10_2018.log"
    dumps = _dumps(_real(resnet), "Initializing net from parameters")
    meta = RunMeta()
    for first, text in dumps:
        net_facts(parse_prototxt(text, first), meta, resnet)
    assert [first for first, _ in dumps] == [34, 2215]
    assert len(meta.batchnorm) == 42 and {bn.phase for bn in meta.batchnorm} == {"train", "test"}
    assert all(bn.use_global_stats is None for bn in meta.batchnorm)
    assert meta.has_residual is True and meta.num_classes == 10 and meta.batch_size == 128
    assert meta.input_scale == 0.0078125 and meta.where["input_scale"].text == "    scale: 0.0078125"

    face = "squeezenet_centerloss_face.log"
    ((first, text),) = _dumps(_real(face), "Initializing net from parameters")
    meta = RunMeta()
    net_facts(parse_prototxt(text, first), meta, face)
    assert meta.loss_type == "SoftmaxWithLoss" and meta.num_classes == 10575
    assert meta.where["num_classes"].line == 648

    # glog cut this ResNet-50 dump (about 30 KB) in the middle of a layer name.
    cut = "nvcaffe_resnet50_imagenet_lr0.2.log"
    first, text = _dumps(_real(cut), "Initializing net from parameters")[0]
    msg = parse_prototxt(text, first)
    assert msg.truncated is False and msg.problems[0][1] == "skipped 'la': no value"
    meta = RunMeta()
    net_facts(msg, meta, cut)
    assert meta.num_classes is None and meta.loss_type is None and meta.has_residual is True
    assert meta.net_name == "Resnet50" and meta.batch_size == 32 and meta.input_scale == 0.00390625
    assert all(math.isfinite(f.std or 0) for f in meta.weight_fillers)
