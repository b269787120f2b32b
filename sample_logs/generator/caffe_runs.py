"""The Caffe-format runs (glog text from generator.caffe), incl. the four DEVELOPERS cases."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import data
from . import layers as L
from .caffe import CaffeRun, NetSpec, net_file_text, solver_file_text
from .common import START, out, run
from .prototxt import Enum

CACHE: dict[str, CaffeRun] = {}  # runs whose snapshot a later run fine-tunes from


@dataclass
class Recipe:
    """What a case run is made of besides its prototxts' text: the solver and net it was written from,
    its data, seed and how the user stopped it. closed_loop.py re-trains a case from corrected files
    with everything else taken from here."""

    solver: dict
    net: NetSpec
    dbs: dict[str, data.ImageSet]
    seed: int
    stop_after_nan: int | None = None
    comments: dict[str, str] | None = None

    def caffe_run(self, log: Path, solver: dict | None = None, net: NetSpec | None = None) -> CaffeRun:
        return CaffeRun(
            self.solver if solver is None else solver,
            self.net if net is None else net,
            self.dbs,
            log,
            seed=self.seed,
            start=START,
            command=caffe_cmd(),
            stop_after_nan=self.stop_after_nan,
        )


RECIPES: dict[str, Callable[[], Recipe]] = {}  # run path -> its recipe (the DEVELOPERS cases)


def recipe(path: str) -> Callable[[Callable[[], Recipe]], Callable[[], Recipe]]:
    def register(fn: Callable[[], Recipe]) -> Callable[[], Recipe]:
        RECIPES[path] = fn
        return fn

    return register


def caffe_cmd(solver: str = "solver.prototxt", weights: str | None = None) -> str:
    extra = f" -weights {weights}" if weights else ""
    return f"+ ./build/tools/caffe train -solver {solver}{extra}"


def lenet(
    n_classes: int,
    batch: int,
    test_batch: int,
    source: str,
    *,
    scale: float | None = 0.00390625,
    ip1: int = 200,
) -> NetSpec:
    g = L.filler("xavier")
    c = L.filler("constant")
    mults = L.params((1, 1), (2, 0))
    return NetSpec(
        "LeNet",
        [
            L.data("data", f"{source}_train_lmdb", batch, L.TRAIN, scale=scale),
            L.data("data", f"{source}_test_lmdb", test_batch, L.TEST, scale=scale),
            L.conv("conv1", "data", 20, 5, weight=g, bias=c, mults=mults),
            L.pool("pool1", "conv1"),
            L.conv("conv2", "pool1", 50, 3, weight=g, bias=c, mults=mults),
            L.pool("pool2", "conv2"),
            L.ip("ip1", "pool2", ip1, weight=g, bias=c, mults=mults),
            L.relu("relu1", "ip1"),
            L.ip("ip2", "ip1", n_classes, weight=g, bias=c, mults=mults),
            L.accuracy("accuracy", "ip2"),
            L.loss("loss", "ip2"),
        ],
    )


@run(
    "caffe_lenet_step_healthy.log",
    "caffe_glog",
    "healthy",
    about="LeNet (xavier) on 16x16 grey patterns, SGD 0.01 momentum 0.9, step policy (x0.1 at 800), "
    "1500 iterations: loss falls from 2.3 to ~0.1, test accuracy ~93%.",
)
def caffe_lenet_step_healthy() -> None:
    train = data.pattern_images(11, 10, 3000, size=16, channels=1, contrast=45, noise=40, prototype_seed=10)
    test = data.pattern_images(12, 10, 1000, size=16, channels=1, contrast=45, noise=40, prototype_seed=10)
    solver = {
        "net": "examples/patterns/lenet_train_test.prototxt",
        "test_iter": 10,
        "test_interval": 250,
        "base_lr": 0.01,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "lr_policy": "step",
        "gamma": 0.1,
        "stepsize": 800,
        "display": 20,
        "max_iter": 1500,
        "snapshot": 1500,
        "snapshot_prefix": "examples/patterns/lenet",
        "solver_mode": Enum("CPU"),
    }
    net = lenet(10, 64, 100, "examples/patterns/patterns")
    net.file = solver["net"]
    CaffeRun(
        solver,
        net,
        {"examples/patterns/patterns_train_lmdb": train, "examples/patterns/patterns_test_lmdb": test},
        out("caffe_lenet_step_healthy.log"),
        seed=1,
        start=START,
        command=caffe_cmd("examples/patterns/lenet_solver.prototxt"),
    ).run()


def resnet(
    name: str,
    blocks: int,
    source: str,
    batch: int,
    test_batch: int,
    *,
    frozen_bn: bool,
    n_classes: int = 10,
    widths: tuple[int, ...] = (16, 32, 64),
) -> NetSpec:
    """CIFAR-style ResNet (conv-BN-Scale-ReLU, identity or 1x1-projection shortcuts, global average pool)
    like resnet-20/trainval.prototxt; `frozen_bn` writes `use_global_stats: true` into every BN layer of
    both phases (a deploy prototxt used for training)."""
    msra = L.filler("msra")
    ugs = True if frozen_bn else None
    one = L.params((1, 1))
    layers = [
        L.data(
            "data", f"{source}_train_lmdb", batch, L.TRAIN, scale=0.0078125, mirror=True, mean_value=[128]
        ),
        L.data("data", f"{source}_test_lmdb", test_batch, L.TEST, scale=0.0078125, mean_value=[128]),
    ]

    def conv_bn(cname: str, bottom: str, width: int, kernel: int, stride: int) -> None:
        layers.append(
            L.conv(
                cname,
                bottom,
                width,
                kernel,
                stride=stride,
                pad=kernel // 2,
                weight=msra,
                bias_term=False,
                mults=one,
            )
        )
        layers.append(L.batchnorm(f"{cname}_bn", cname, use_global_stats=ugs))
        layers.append(L.scale(f"{cname}_scale", cname))

    conv_bn("first_conv", "data", widths[0], 3, 1)
    layers.append(L.relu("first_conv_relu", "first_conv"))
    prev, prev_width = "first_conv", widths[0]
    for g, width in enumerate(widths):
        for b in range(blocks):
            stride = 2 if g > 0 and b == 0 else 1
            base = f"group{g}_block{b}"
            conv_bn(f"{base}_conv0", prev, width, 3, stride)
            layers.append(L.relu(f"{base}_conv0_relu", f"{base}_conv0"))
            conv_bn(f"{base}_conv1", f"{base}_conv0", width, 3, 1)
            shortcut = prev
            if stride != 1 or width != prev_width:
                conv_bn(f"{base}_proj", prev, width, 1, stride)
                shortcut = f"{base}_proj"
            layers.append(L.eltwise(f"{base}_sum", f"{base}_conv1", shortcut))
            layers.append(L.relu(f"{base}_relu", f"{base}_sum"))
            prev, prev_width = f"{base}_sum", width
    layers.append(L.pool("global_avg_pool", prev, kind="AVE", global_pool=True))
    layers.append(
        L.ip(
            "fc",
            "global_avg_pool",
            n_classes,
            weight=msra,
            bias=L.filler("constant"),
            mults=L.params((1, 1), (2, 0)),
        )
    )
    layers.append(L.loss("loss", "fc"))
    layers.append(L.accuracy("accuracy", "fc"))
    return NetSpec(name, layers, "trainval.prototxt")


def write_run_folder(
    folder: Path, solver: dict, net: NetSpec, comments: dict[str, str] | None = None
) -> None:
    """The prototxts next to train.log, as the user had them on disk."""
    (folder / "solver.prototxt").write_text(solver_file_text(solver, comments), encoding="utf-8")
    (folder / net.file).write_text(net_file_text(net), encoding="utf-8")


@run(
    "case1_resnet_frozen_bn",
    "caffe_glog",
    "nan",
    "bn_stats",
    case="1",
    about="DEVELOPERS case 1: a ResNet-8 (BatchNorm + Scale after every conv, msra) whose prototxt has "
    "`use_global_stats: true` in every BN layer of the TRAIN net. Caffe's BN blobs start at zero, "
    "so each BN divides by sqrt(0 + 1e-5) (x316): the first loss is ~80 (saturated softmax, near "
    "87.3365) and the loss is NaN from iteration 1; the user stops the run 100 iterations later. "
    "Folder: train.log + solver.prototxt + trainval.prototxt.",
)
def case1_resnet_frozen_bn() -> None:
    folder = out("case1_resnet_frozen_bn/train.log").parent
    case = case1_recipe()
    write_run_folder(folder, case.solver, case.net)
    case.caffe_run(folder / "train.log").run()


@recipe("case1_resnet_frozen_bn")
def case1_recipe() -> Recipe:
    train = data.pattern_images(21, 10, 2560, size=16, contrast=50, noise=35, prototype_seed=20)
    test = data.pattern_images(22, 10, 1000, size=16, contrast=50, noise=35, prototype_seed=20)
    net = resnet("resnet-cifar10", 1, "cifar10", 64, 100, frozen_bn=True)
    solver = {
        "net": net.file,
        "test_iter": 10,
        "test_interval": 200,
        "base_lr": 0.1,
        "display": 10,
        "max_iter": 1000,
        "lr_policy": "multistep",
        "gamma": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0001,
        "snapshot": 1000,
        "snapshot_prefix": "snapshot/resnet",
        "solver_mode": Enum("CPU"),
        "stepvalue": [500, 750],
    }
    dbs = {"cifar10_train_lmdb": train, "cifar10_test_lmdb": test}
    return Recipe(solver, net, dbs, seed=3, stop_after_nan=100)


def fcn(weight: dict | None, *, normalize: bool, n_classes: int = 3) -> NetSpec:
    """A tiny FCN-32s: VGG-like conv stack (2 pools), fc6/fc7 as convolutions, 1x1 score_fr, a fixed
    bilinear Deconvolution (stride 4) and Crop back to the input, per-pixel SoftmaxWithLoss. With
    `weight=None` the convolutions have no fillers, like FCN's net.py output, which expects its weights
    from VGG16 (so from scratch every weight is Caffe's default constant 0)."""
    mults = L.params((1, 1), (2, 0))
    c = L.filler("constant") if weight else None
    layers = [
        L.data("data", "data/shapes/train_img_lmdb", 1, L.TRAIN, tops=("data",), mean_value=[104.0]),
        L.data("label", "data/shapes/train_label_lmdb", 1, L.TRAIN, tops=("label",)),
        L.data("data", "data/shapes/val_img_lmdb", 1, L.TEST, tops=("data",), mean_value=[104.0]),
        L.data("label", "data/shapes/val_label_lmdb", 1, L.TEST, tops=("label",)),
    ]
    prev = "data"
    for block, (width, convs) in enumerate([(16, 2), (32, 2)], start=1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            layers += [
                L.conv(name, prev, width, 3, pad=1, weight=weight, bias=c, mults=mults),
                L.relu(f"relu{block}_{i}", name),
            ]
            prev = name
        layers.append(L.pool(f"pool{block}", prev))
        prev = f"pool{block}"
    layers += [
        L.conv("fc6", prev, 64, 3, pad=1, weight=weight, bias=c, mults=mults),
        L.relu("relu6", "fc6"),
        L.dropout("drop6", "fc6"),
        L.conv("fc7", "fc6", 64, 1, weight=weight, bias=c, mults=mults),
        L.relu("relu7", "fc7"),
        L.dropout("drop7", "fc7"),
        L.conv("score_fr", "fc7", n_classes, 1, weight=weight, bias=c, mults=mults),
        L.conv(
            "upscore",
            "score_fr",
            n_classes,
            8,
            stride=4,
            bias_term=False,
            group=n_classes,
            weight=L.filler("bilinear"),
            mults=[{"lr_mult": 0}],
            kind="Deconvolution",
        ),
        {
            "name": "score",
            "type": "Crop",
            "bottom": ["upscore", "data"],
            "top": ["score"],
            "crop_param": {"axis": 2, "offset": 2},
        },
        L.loss("loss", "score", loss_param={"ignore_label": 255, "normalize": normalize}),
    ]
    return NetSpec("fcn32s-shapes", layers, "train_val.prototxt")


def fcn_dbs(n_train: int = 400, n_val: int = 50) -> dict[str, data.ImageSet]:
    train, val = data.shapes_segmentation(31, n_train), data.shapes_segmentation(32, n_val)
    return {
        "data/shapes/train_img_lmdb": train,
        "data/shapes/train_label_lmdb": train,
        "data/shapes/val_img_lmdb": val,
        "data/shapes/val_label_lmdb": val,
    }


def fcn_solver(base_lr: float, max_iter: int) -> dict:
    """FCN's solver.prototxt layout (fixed lr, momentum 0.99, average_loss 20), here with a test pass."""
    return {
        "net": "train_val.prototxt",
        "test_iter": 50,
        "test_interval": 500,
        "display": 20,
        "average_loss": 20,
        "lr_policy": "fixed",
        "base_lr": base_lr,
        "momentum": 0.99,
        "iter_size": 1,
        "max_iter": max_iter,
        "weight_decay": 0.0005,
        "snapshot": max_iter,
        "snapshot_prefix": "snapshot/train",
        "test_initialization": False,
        "solver_mode": Enum("CPU"),
    }


FCN_COMMENTS = {
    "base_lr": "lr for unnormalized softmax",
    "momentum": "high momentum",
    "iter_size": "no gradient accumulation",
}


def case2(path: str, base_lr: float, seed: int) -> None:
    folder = out(f"{path}/train.log").parent
    case = case2_recipe(base_lr, seed)
    write_run_folder(folder, case.solver, case.net, case.comments)
    case.caffe_run(folder / "train.log").run()


def case2_recipe(base_lr: float, seed: int) -> Recipe:
    return Recipe(
        fcn_solver(base_lr, 3000), fcn(None, normalize=True), fcn_dbs(), seed, comments=FCN_COMMENTS
    )


RECIPES["case2_fcn_lr1e-9"] = lambda: case2_recipe(1e-9, 5)
RECIPES["case2_fcn_lr1e-4"] = lambda: case2_recipe(1e-4, 5)


@run(
    "case2_fcn_lr1e-9",
    "caffe_glog",
    "flat",
    "lr_too_low;no_pretraining",
    case="2",
    about="DEVELOPERS case 2: tiny FCN-32s (conv stack, fc6/fc7 as convolutions, 1x1 score_fr, fixed "
    "bilinear Deconvolution, Crop) on single-channel 32x32 images, 3 classes, batch 1, per-pixel "
    "SoftmaxWithLoss with `normalize: true`, momentum 0.99, FCN's solver with `# lr for "
    "unnormalized softmax` and base_lr 1e-9, from scratch (FCN's prototxt has no fillers: it "
    "expects VGG weights). The loss stays at ln(3) = 1.0986 for 3000 iterations. Two causes: the "
    "lr, and the missing pretrained weights (with lr 1e-4 the same net only reaches the class- "
    "prior plateau, see case2_fcn_lr1e-4). Folder with train.log, solver.prototxt, "
    "train_val.prototxt.",
)
def case2_fcn_lr1e_9() -> None:
    case2("case2_fcn_lr1e-9", 1e-9, 5)


@run(
    "case2_fcn_lr1e-4",
    "caffe_glog",
    "plateau",
    "no_pretraining",
    case="2",
    about="DEVELOPERS case 2, same FCN and solver with base_lr 1e-4 and no `-weights`: the filler-less "
    "convolutions are all zero, so only the score bias learns. The loss falls from 1.0986 to "
    "0.7-0.8 (the class-prior entropy) within ~300 iterations and stays there for the remaining "
    "2700 (it predicts background everywhere). Folder with train.log, solver.prototxt, "
    "train_val.prototxt.",
)
def case2_fcn_lr1e_4() -> None:
    case2("case2_fcn_lr1e-4", 1e-4, 5)


VGG16_BLOCKS = ((16, 2), (32, 2), (64, 3), (64, 3), (64, 3))


def vgg(
    n_classes: int,
    source: str,
    batch: int,
    test_batch: int,
    *,
    scale: float | None,
    mean_file: str | None,
    fc_width: int = 256,
    blocks: tuple[tuple[int, int], ...] = VGG16_BLOCKS,
) -> NetSpec:
    """VGG layout (3x3 convolutions in blocks with 2x2 pools, fc6/fc7 with dropout, fc8), narrow for
    16x16 inputs (no pool after the last or fifth block), xavier weights, constant biases."""
    x, c = L.filler("xavier"), L.filler("constant", value=0.0)
    mults = L.params((1, 1), (2, 0))
    train_tf = {"scale": scale, "mirror": True, "mean_file": mean_file}
    layers = [
        L.data("data", f"{source}_train_lmdb", batch, L.TRAIN, **train_tf),
        L.data("data", f"{source}_val_lmdb", test_batch, L.TEST, scale=scale, mean_file=mean_file),
    ]
    prev = "data"
    for block, (width, convs) in enumerate(blocks, start=1):
        for i in range(1, convs + 1):
            name = f"conv{block}_{i}"
            layers += [
                L.conv(name, prev, width, 3, pad=1, weight=x, bias=c, mults=mults),
                L.relu(f"relu{block}_{i}", name),
            ]
            prev = name
        if block < 5 and block < len(blocks):
            layers.append(L.pool(f"pool{block}", prev))
            prev = f"pool{block}"
    for name, width in (("fc6", fc_width), ("fc7", fc_width)):
        layers += [
            L.ip(name, prev, width, weight=x, bias=c, mults=mults),
            L.relu(f"relu{name[2:]}", name),
            L.dropout(f"drop{name[2:]}", name),
        ]
        prev = name
    layers += [
        L.ip("fc8", prev, n_classes, weight=x, bias=c, mults=mults),
        L.accuracy("accuracy", "fc8"),
        L.accuracy("accuracy_top5", "fc8", top_k=5),
        L.loss("loss", "fc8"),
    ]
    return NetSpec("VGG_ILSVRC_16_layers", layers, "train_val.prototxt")


VGG_SMALL_BLOCKS = ((32, 1), (64, 1), (64, 1))


@run(
    "case3_vgg_scaled",
    "caffe_glog",
    "flat",
    "input_scale",
    case="3",
    about="DEVELOPERS case 3: VGG-style net (3x3 convs + pools, fc6/fc7 with dropout, xavier), "
    "TRAIN/TEST transform_param `scale: 0.00390625` after `mean_file` subtraction (inputs ~[-0.5, "
    "0.5]), base_lr 0.0648, batch 128, 1000 synthetic classes. The loss stays at ln(1000) = "
    "6.9078 for the 400 iterations, with top-1 accuracy 0.5%. Check run: the same with scale "
    "0.017 (unit-variance inputs) leaves the plateau at ~240 iterations and reaches 6.30 by 390. "
    "Folder with train.log, solver.prototxt, train_val.prototxt.",
)
def case3_vgg_scaled() -> None:
    folder = out("case3_vgg_scaled/train.log").parent
    case = case3_recipe()
    write_run_folder(folder, case.solver, case.net)
    case.caffe_run(folder / "train.log").run()


@recipe("case3_vgg_scaled")
def case3_recipe() -> Recipe:
    kw = {"size": 16, "contrast": 60, "noise": 25, "shift": 0, "prototype_seed": 40}
    train, val = data.pattern_images(41, 1000, 8000, **kw), data.pattern_images(42, 1000, 1000, **kw)
    net = vgg(
        1000,
        "ilsvrc12",
        128,
        50,
        scale=0.00390625,
        mean_file="imagenet_mean.binaryproto",
        blocks=VGG_SMALL_BLOCKS,
    )
    net.name = "VGG_small"
    solver = {
        "net": net.file,
        "test_iter": 4,
        "test_interval": 200,
        "base_lr": 0.0648,
        "display": 10,
        "max_iter": 400,
        "lr_policy": "step",
        "gamma": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "stepsize": 100000,
        "snapshot": 400,
        "snapshot_prefix": "models/vgg/vgg_train",
        "solver_mode": Enum("CPU"),
    }
    dbs = {"ilsvrc12_train_lmdb": train, "ilsvrc12_val_lmdb": val, "imagenet_mean.binaryproto": train}
    return Recipe(solver, net, dbs, seed=7)


def bn_convnet(
    name: str,
    n_classes: int,
    head: str,
    source: str,
    batch: int,
    test_batch: int,
    head_mults: tuple[tuple[float, float], ...] = ((1, 1), (2, 0)),
) -> NetSpec:
    """conv-BN-Scale-ReLU x3 (two max pools, global average pool) + one classifier layer `head`. The BN
    layers leave use_global_stats to Caffe's default (batch statistics in TRAIN, stored ones in TEST)."""
    msra = L.filler("msra")
    layers = [
        L.data(
            "data", f"{source}_train_lmdb", batch, L.TRAIN, scale=0.0078125, mirror=True, mean_value=[128]
        ),
        L.data("data", f"{source}_test_lmdb", test_batch, L.TEST, scale=0.0078125, mean_value=[128]),
    ]
    prev = "data"
    for i, width in enumerate((16, 32, 32), start=1):
        layers += [
            L.conv(f"conv{i}", prev, width, 3, pad=1, weight=msra, bias_term=False, mults=L.params((1, 1))),
            L.batchnorm(f"bn{i}", f"conv{i}", old_params=False),
            L.scale(f"scale{i}", f"conv{i}"),
            L.relu(f"relu{i}", f"conv{i}"),
        ]
        prev = f"conv{i}"
        if i < 3:
            layers.append(L.pool(f"pool{i}", prev))
            prev = f"pool{i}"
    layers += [
        L.pool("pool3", prev, kind="AVE", global_pool=True),
        L.ip(head, "pool3", n_classes, weight=msra, bias=L.filler("constant"), mults=L.params(*head_mults)),
        L.loss("loss", head),
        L.accuracy("accuracy", head),
    ]
    return NetSpec(name, layers, "train_val.prototxt")


def case4_solver(prefix: str, max_iter: int, base_lr: float, test_interval: int) -> dict:
    return {
        "net": "train_val.prototxt",
        "test_iter": 5,
        "test_interval": test_interval,
        "base_lr": base_lr,
        "display": 10,
        "max_iter": max_iter,
        "lr_policy": "step",
        "gamma": 0.1,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "stepsize": max_iter * 2 // 3,
        "snapshot": max_iter,
        "snapshot_prefix": prefix,
        "solver_mode": Enum("CPU"),
    }


def case4_taskB() -> dict[str, data.ImageSet]:
    """Task B: the 20 task-A patterns in 5 groups of 4 (label = A class // 4), only 5 images per pattern."""
    train = data.pattern_images(53, 20, 100, size=16, contrast=40, noise=35, prototype_seed=50)
    test = data.pattern_images(54, 20, 500, size=16, contrast=40, noise=35, prototype_seed=50)
    return {
        "shapesB_train_lmdb": data.ImageSet(train.images, train.labels // 4),
        "shapesB_test_lmdb": data.ImageSet(test.images, test.labels // 4),
    }


FINETUNE_HEAD = ((10, 1), (20, 0))  # the new classifier learns 10x faster, as in Caffe's fine-tuning examples


@run(
    "case4_pretrain_taskA.log",
    "caffe_glog",
    "healthy",
    case="4",
    about="DEVELOPERS case 4, step 1: the BN convnet (conv-BN-Scale-ReLU x3) trained on task A (20 "
    "patterns), SGD 0.05, 800 iterations; its final snapshot is the `.caffemodel` the fine-tuning "
    "run loads. Test accuracy ~99%.",
)
def case4_pretrain_taskA() -> None:
    train = data.pattern_images(51, 20, 4000, size=16, contrast=40, noise=35, prototype_seed=50)
    test = data.pattern_images(52, 20, 500, size=16, contrast=40, noise=35, prototype_seed=50)
    net = bn_convnet("patternnet", 20, "fc_taskA", "shapesA", 32, 100)
    solver = case4_solver("snapshots/taskA", 800, 0.05, 200)
    CACHE["taskA"] = CaffeRun(
        solver,
        net,
        {"shapesA_train_lmdb": train, "shapesA_test_lmdb": test},
        out("case4_pretrain_taskA.log"),
        seed=8,
        start=START,
        command=caffe_cmd(),
    ).run()


@run(
    "case4_finetune_pretrained.log",
    "caffe_glog",
    "healthy",
    case="4",
    about="DEVELOPERS case 4, fine-tuning: `caffe train -weights snapshots/taskA_iter_800.caffemodel` "
    "on task B (the 20 patterns in 5 groups, only 100 training images), new classifier `fc_taskB` "
    "(lr_mult 10/20, `Ignoring source layer fc_taskA`), base_lr 0.001. Train loss 2.9 -> 0.2, "
    "test loss 0.35, test accuracy 91%.",
)
def case4_finetune_pretrained() -> None:
    if "taskA" not in CACHE:
        case4_pretrain_taskA()
    weights = CACHE["taskA"].snapshot
    net = bn_convnet("patternnet", 5, "fc_taskB", "shapesB", 20, 100, FINETUNE_HEAD)
    solver = case4_solver("snapshots/taskB_finetune", 300, 0.001, 50)
    CaffeRun(
        solver,
        net,
        case4_taskB(),
        out("case4_finetune_pretrained.log"),
        seed=9,
        start=START,
        command=caffe_cmd(weights=weights.file),
        weights=weights,
    ).run()


@run(
    "case4_scratch.log",
    "caffe_glog",
    "plateau",
    "no_pretraining;lr_too_low",
    case="4",
    about="DEVELOPERS case 4, the same task-B run from scratch (no `-weights`, same fine-tuning "
    "solver): the loss creeps from 1.7 to ~1.26 and stalls after the lr step; test accuracy ~50%. "
    "The fine-tuning lr is also low for training from scratch.",
)
def case4_scratch() -> None:
    case4_scratch_recipe().caffe_run(out("case4_scratch.log")).run()


@recipe("case4_scratch.log")
def case4_scratch_recipe() -> Recipe:
    net = bn_convnet("patternnet", 5, "fc_taskB", "shapesB", 20, 100, FINETUNE_HEAD)
    solver = case4_solver("snapshots/taskB_scratch", 300, 0.001, 50)
    return Recipe(solver, net, case4_taskB(), seed=9)


def lenet_run(
    path: str,
    solver: dict,
    *,
    seed: int = 1,
    n_train: int = 3000,
    noise: float = 40,
    ip1: int = 200,
    scale: float | None = 0.00390625,
    corrupt: slice | None = None,
    stop_after_nan: int | None = 100,
) -> CaffeRun:
    """LeNet on 16x16 grey patterns (examples/patterns), the solver given in full."""
    kw = {"size": 16, "channels": 1, "contrast": 45, "noise": noise, "prototype_seed": 10}
    train, test = data.pattern_images(seed + 10, 10, n_train, **kw), data.pattern_images(12, 10, 1000, **kw)
    if corrupt is not None:
        # a stretch of the LMDB written by a converter that crashed: black frames with stale labels
        train.images[corrupt] = 0
        train.labels[corrupt] = np.random.default_rng(seed).integers(0, 10, corrupt.stop - corrupt.start)
    net = lenet(10, 64, 100, "examples/patterns/patterns", scale=scale, ip1=ip1)
    net.file = solver["net"]
    dbs = {"examples/patterns/patterns_train_lmdb": train, "examples/patterns/patterns_test_lmdb": test}
    return CaffeRun(
        solver,
        net,
        dbs,
        out(path),
        seed=seed,
        start=START,
        stop_after_nan=stop_after_nan,
        command=caffe_cmd("examples/patterns/lenet_solver.prototxt"),
    ).run()


def lenet_solver(
    base_lr: float, max_iter: int, *, display: int = 20, test_interval: int = 250, **extra: object
) -> dict:
    sp: dict = {
        "net": "examples/patterns/lenet_train_test.prototxt",
        "test_iter": 10,
        "test_interval": test_interval,
        "base_lr": base_lr,
        "momentum": 0.9,
        "weight_decay": 0.0005,
        "lr_policy": "fixed",
    }
    sp.update(extra)
    sp.update(
        {
            "display": display,
            "max_iter": max_iter,
            "snapshot": max_iter,
            "snapshot_prefix": "examples/patterns/lenet",
            "solver_mode": Enum("CPU"),
        }
    )
    return sp


@run(
    "caffe_lenet_lr_nan.log",
    "caffe_glog",
    "nan",
    "lr_too_high",
    about="LeNet with base_lr 0.2 (momentum 0.9): the loss rises (2.4 -> 52 by iteration 15) and is NaN "
    "from iteration 20; the user stops the run 100 iterations later.",
)
def caffe_lenet_lr_nan() -> None:
    lenet_run("caffe_lenet_lr_nan.log", lenet_solver(0.2, 1000, display=5), seed=2)


@run(
    "caffe_lenet_no_scale_87.log",
    "caffe_glog",
    "nan",
    "input_scale",
    about="LeNet whose Data layers lost `scale: 0.00390625` (raw 0..255 input, xavier): the softmax "
    "saturates at once (losses 67-83, near Caffe's 87.3365 clamp, display every iteration) and "
    "the loss is NaN from iteration 4.",
)
def caffe_lenet_no_scale_87() -> None:
    lenet_run("caffe_lenet_no_scale_87.log", lenet_solver(0.01, 1000, display=1), seed=3, scale=None)


@run(
    "caffe_lenet_overfitting.log",
    "caffe_glog",
    "overfitting",
    "overfitting",
    about="LeNet with a 500-unit ip1, no weight decay, on only 100 noisy training images, 2000 "
    "iterations: train loss -> 0.001 while the test loss bottoms out at iteration 200 (0.99) and "
    "then rises steadily (1.19 at the end).",
)
def caffe_lenet_overfitting() -> None:
    lenet_run(
        "caffe_lenet_overfitting.log",
        lenet_solver(0.01, 2000, test_interval=100, weight_decay=0.0),
        seed=4,
        n_train=100,
        noise=60,
        ip1=500,
    )


@run(
    "caffe_lenet_corrupt_lmdb_spiky.log",
    "caffe_glog",
    "spiky",
    "data_issue",
    about="LeNet on an LMDB with a stretch of 64 black frames with stale labels (a crashed converter): "
    "every pass over the data (120 iterations) the loss jumps to ~2-6 and recovers at once; test "
    "accuracy ~95%.",
)
def caffe_lenet_corrupt_lmdb_spiky() -> None:
    # 7680 images = 120 iterations per pass; the 101st batch of every pass is the broken stretch
    lenet_run(
        "caffe_lenet_corrupt_lmdb_spiky.log",
        lenet_solver(0.01, 2400, test_interval=600),
        seed=5,
        n_train=7680,
        corrupt=slice(6400, 6464),
    )


def plain_net(depth: int, width: int, weight: dict, source: str, batch: int, test_batch: int) -> NetSpec:
    """A plain (no BN, no shortcut) stack of `depth` 3x3 conv + ReLU layers, one max pool after the first
    third, global average pool and a classifier."""
    c = L.filler("constant")
    mults = L.params((1, 1), (2, 0))
    layers = [
        L.data(
            "data", f"{source}_train_lmdb", batch, L.TRAIN, scale=0.0078125, mirror=True, mean_value=[128]
        ),
        L.data("data", f"{source}_test_lmdb", test_batch, L.TEST, scale=0.0078125, mean_value=[128]),
    ]
    prev = "data"
    for i in range(1, depth + 1):
        layers += [
            L.conv(f"conv{i}", prev, width, 3, pad=1, weight=weight, bias=c, mults=mults),
            L.relu(f"relu{i}", f"conv{i}"),
        ]
        prev = f"conv{i}"
        if i == depth // 3:
            layers.append(L.pool(f"pool{i}", prev))
            prev = f"pool{i}"
    layers += [
        L.pool("global_pool", prev, kind="AVE", global_pool=True),
        L.ip("fc", "global_pool", 10, weight=weight, bias=c, mults=mults),
        L.loss("loss", "fc"),
        L.accuracy("accuracy", "fc"),
    ]
    return NetSpec("plain12", layers, "train_val.prototxt")


def cifar_like(seed: int, n_train: int) -> dict[str, data.ImageSet]:
    kw = {"size": 16, "channels": 3, "contrast": 50, "noise": 35, "prototype_seed": seed}
    return {
        "cifar10_train_lmdb": data.pattern_images(seed + 1, 10, n_train, **kw),
        "cifar10_test_lmdb": data.pattern_images(seed + 2, 10, 500, **kw),
    }


@run(
    "caffe_plain12_gaussian_flat.log",
    "caffe_glog",
    "flat",
    "depth_init",
    about="A plain 12-layer conv net (no BN, no shortcuts) with `gaussian std: 0.01` fillers, SGD 0.01: "
    "the signal vanishes with depth and the loss stays at ln(10) = 2.303 for 800 iterations (test "
    "accuracy 10%).",
)
def caffe_plain12_gaussian_flat() -> None:
    net = plain_net(12, 16, L.filler("gaussian", std=0.01), "cifar10", 32, 100)
    solver = lenet_solver(0.01, 800, test_interval=200)
    solver.update(net=net.file, test_iter=5, snapshot_prefix="snapshot/plain12")
    CaffeRun(
        solver,
        net,
        cifar_like(70, 2560),
        out("caffe_plain12_gaussian_flat.log"),
        seed=7,
        start=START,
        command=caffe_cmd(),
    ).run()


@run(
    "caffe_bn_batch1_eval_gap.log",
    "caffe_glog",
    "eval_gap",
    "small_batch;bn_stats",
    about="BN convnet trained with batch_size 1 on images with strong per-image exposure differences: "
    "in TRAIN each conv BN normalises one image by its own statistics, TEST uses the running "
    "averages. Train loss (average_loss 50) falls to 0.15 while the test loss rises from 2.3 to "
    "5.6 and test accuracy stays near chance. Check run: batch 32 gives test accuracy 99%.",
)
def caffe_bn_batch1_eval_gap() -> None:
    # images with strong per-image exposure differences; batch_size 1 makes each conv BN normalise one
    # image by its own statistics in TRAIN, while TEST uses the running averages
    kw = {
        "size": 16,
        "channels": 3,
        "contrast": 50,
        "noise": 30,
        "prototype_seed": 72,
        "gain_jitter": 0.6,
        "offset_jitter": 50.0,
    }
    dbs = {
        "cifar10_train_lmdb": data.pattern_images(73, 10, 2560, **kw),
        "cifar10_test_lmdb": data.pattern_images(74, 10, 500, **kw),
    }
    net = bn_convnet("bn-cifar", 10, "fc", "cifar10", 1, 100)
    solver = lenet_solver(0.01, 3000, test_interval=250, average_loss=50)
    solver.update(net=net.file, test_iter=5, snapshot_prefix="snapshot/bn_b1", display=50)
    CaffeRun(
        solver, net, dbs, out("caffe_bn_batch1_eval_gap.log"), seed=8, start=START, command=caffe_cmd()
    ).run()


@run(
    "caffe_fcn_unnormalized_loss",
    "caffe_glog",
    "nan",
    "loss_normalization",
    about="The case-2 FCN with xavier fillers and `loss_param { normalize: false }` (the loss is summed "
    "over the 1024 pixels) but base_lr 1e-4 as for a normalised loss: first loss ~8500, NaN "
    "within 20 iterations; stopped 200 iterations later. Folder with train.log, solver.prototxt, "
    "train_val.prototxt.",
)
def caffe_fcn_unnormalized_loss() -> None:
    folder = out("caffe_fcn_unnormalized_loss/train.log").parent
    net = fcn(L.filler("xavier"), normalize=False)
    solver = fcn_solver(1e-4, 1000)
    write_run_folder(folder, solver, net, {"momentum": "high momentum"})
    CaffeRun(
        solver,
        net,
        fcn_dbs(),
        folder / "train.log",
        seed=6,
        start=START,
        command=caffe_cmd(),
        stop_after_nan=200,
    ).run()
