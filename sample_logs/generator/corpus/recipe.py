"""A run's full recipe: what the sampled scenario fixes (data, model, optimiser, schedule, logging, the
fault if any) and the label it is expected to earn."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Recipe:
    run_id: str
    group: str
    family: str  # mlp, cnn, resnet, vgg, fcn, charlm
    data: str  # images, tabular, tokens, segmentation
    seed: int
    scenario: str
    fmt: str
    symptom: str  # expected symptom
    cause: str = ""
    severity: float | None = None
    engine: str = "torch"  # torch or caffe
    style: str = ""  # print style / variant of the format
    # data
    n_train: int = 1000
    n_val: int = 300
    n_classes: int = 10
    size: int = 16
    channels: int = 3
    contrast: float = 55.0
    noise: float = 35.0
    gain_jitter: float = 0.0
    offset_jitter: float = 0.0
    proto_seed: int = 0
    vocab: int = 24
    seq_len: int = 24
    input_norm: str = "standard"  # standard, raw (0..255 / raw units), scaled256 ((x - mean) / 256)
    augment: bool = False
    # model
    model: dict = field(default_factory=dict)
    init_std: float | None = None
    bn_mode: str = ""  # "", frozen_eval, momentum
    bn_momentum: float = 0.1
    # optimisation
    optimizer: str = "sgd"  # sgd, adam, adamw, rmsprop
    lr: float = 0.05
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    batch: int = 32
    epochs: int = 10
    max_steps: int = 0
    schedule: str = "fixed"  # fixed, step, multistep, cosine, warmup_cosine, warmup_linear, plateau
    sched: dict = field(default_factory=dict)
    clip: float | None = None
    label_smoothing: float = 0.0
    reduction: str = "mean"
    # logging
    log_every: int = 10
    log_mode: str = "mean"  # mean of the window or the last step's loss
    eval_every: int = 0  # steps; 0 = once per epoch
    # scenario knobs
    fault: dict = field(default_factory=dict)  # kind nan_pixels / garbage / mislabel, every, start
    freeze: bool = False
    pretrained: bool = False
    resume: dict = field(default_factory=dict)  # ckpt_epoch, crash_step, keras_restart
    stop_after_nan: int = 40
    about: str = ""  # a phrase on what the scenario is, for the description
