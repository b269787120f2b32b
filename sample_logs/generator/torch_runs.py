"""The PyTorch runs, each logged in one of the non-Caffe formats (print-style text, HF trainer_state.json,
Lightning metrics.csv, Keras CSVLogger, TensorBoard events)."""

from __future__ import annotations

import math
import time
from itertools import pairwise

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import data
from .common import START, out, run
from .torchkit import MLP, SmallCNN, TinyResNet, batches, descend, evaluate, tensors
from .writers import KerasCSV, SparseCSV, TensorBoard, TextLog, TrainerState


def patterns(
    seed: int,
    n_train: int,
    n_test: int,
    *,
    classes: int = 10,
    channels: int = 1,
    size: int = 16,
    contrast: float = 45,
    noise: float = 40,
) -> tuple[data.ImageSet, data.ImageSet]:
    """Train and test sets over the same class patterns."""
    kw = {"size": size, "channels": channels, "contrast": contrast, "noise": noise, "prototype_seed": seed}
    return data.pattern_images(seed + 1, classes, n_train, **kw), data.pattern_images(
        seed + 2, classes, n_test, **kw
    )


# --- print-style text ----------------------------------------------------------------------------------


@run(
    "torch_mlp_sgd_healthy.log",
    "print_style",
    "healthy",
    about="MLP 256-128-64-10 on grey patterns, SGD 0.05 momentum 0.9, 12 epochs, `Epoch [e/E], Step "
    "[s/S], Loss: x, lr: y` lines plus per-epoch val_loss/val_acc: loss 2.3 -> ~0.002, val "
    "accuracy ~94%.",
)
def torch_mlp_sgd_healthy() -> None:
    """MLP on 16x16 patterns, SGD + momentum, the classic `Epoch [e/E], Step [s/S], Loss: x` prints."""
    mlp_recipe("torch_mlp_sgd_healthy.log", normalize=(128.0, 64.0), epochs=12, every=10, show_lr=True)


def mlp_recipe(
    path: str, *, normalize: tuple[float, float] | None, epochs: int, every: int, show_lr: bool
) -> None:
    """MLP 256-128-64-10, SGD 0.05 momentum 0.9, batch 64, per-epoch validation in eval mode."""
    torch.manual_seed(100)
    train, test = patterns(100, 2560, 1000)
    (x, y), (xt, yt) = tensors(train, normalize=normalize), tensors(test, normalize=normalize)
    model = MLP([256, 128, 64, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(100)
    log = TextLog(out(path))
    bs = 64
    steps = len(x) // bs
    for epoch in range(1, epochs + 1):
        model.train()
        for step, idx in enumerate(batches(len(x), bs, gen), start=1):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            if step % every == 0:
                lr = f", lr: {opt.param_groups[0]['lr']}" if show_lr else ""
                log.line(f"Epoch [{epoch}/{epochs}], Step [{step}/{steps}], Loss: {loss.item():.4f}{lr}")
        model.eval()
        vloss, vacc = evaluate(model, xt, yt)
        log.line(f"Epoch [{epoch}/{epochs}] val_loss: {vloss:.4f}, val_acc: {100 * vacc:.2f} %")
    log.close()


@run(
    "torch_regression_unnormalized_diverging.log",
    "print_style",
    "diverging",
    "lr_too_high;input_scale",
    about="Linear regression on raw features (scales 1..2000) with plain SGD whose lr is 1% past the "
    "stability edge of the unnormalised problem: the MSE grows geometrically (about 1e4 to "
    "1e6-1e7 over 256 steps) and stays finite. Normalising the inputs or lowering the lr both fix "
    "it.",
)
def torch_regression_unnormalized_diverging() -> None:
    """Linear regression on raw features (scales 1..2000), plain SGD with the lr just past the stability
    edge of the unnormalised problem (1% above 2 / largest Hessian eigenvalue of the MSE): the loss grows
    geometrically (~2% per step) but stays finite for the run."""
    torch.manual_seed(101)
    xs, ys = data.regression_table(101, 4096)
    x, y = torch.from_numpy(xs), torch.from_numpy(ys)
    design = torch.cat([x, torch.ones(len(x), 1)], dim=1).double()
    lam = float(torch.linalg.eigvalsh(design.T @ design / len(x)).max())
    lr = float(f"{1.01 / lam:.3g}")  # the MSE Hessian is 2 X'X/n
    model = nn.Linear(x.shape[1], 1)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(101)
    log = TextLog(out("torch_regression_unnormalized_diverging.log"), START)
    log.logging(f"features: {x.shape[1]} raw columns, target mean {float(y.mean()):.3f}; SGD lr={lr}")
    step = 0
    for epoch in range(1, 5):
        for idx in batches(len(x), 64, gen):
            loss = F.mse_loss(model(x[idx]).squeeze(1), y[idx])
            descend(opt, loss)
            step += 1
            if step % 4 == 0:
                log.logging(f"epoch {epoch} step {step} loss {loss.item():.6g}")
        log.logging(f"epoch {epoch} done")
    log.close()


@run(
    "torch_cnn_nan_input.log",
    "print_style",
    "nan",
    "data_issue",
    about="Small CNN; one image of the 6th batch is a blank frame that the preprocessing turned into "
    "NaN pixels ((x - mean) / std with std 0): the loss is NaN from step 6 on, the weights with "
    "it.",
)
def torch_cnn_nan_input() -> None:
    """CNN on patterns; the 6th training batch holds an image whose preprocessing divided by a zero
    std (a blank image), i.e. NaN pixels: the loss is NaN from that step and the weights stay NaN."""
    torch.manual_seed(102)
    train, test = patterns(102, 2048, 500)
    (x, y), (xt, yt) = tensors(train), tensors(test)
    gen = torch.Generator().manual_seed(102)
    order = list(batches(len(x), 32, gen))
    blank = int(order[5][3])
    x[blank] = 0.0 / torch.zeros_like(x[blank])  # (img - mean) / std with std == 0 for a blank frame
    model = SmallCNN(1, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    log = TextLog(out("torch_cnn_nan_input.log"), START)
    step = 0
    for epoch in range(1, 3):
        for idx in order if epoch == 1 else batches(len(x), 32, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            step += 1
            if step <= 10 or step % 5 == 0:
                log.logging(
                    f"Train Epoch: {epoch} [{step * 32 % len(x)}/{len(x)}]\tStep: {step}\t"
                    f"Loss: {loss.item():.6f}"
                )
        vloss, vacc = evaluate(model.eval(), xt, yt)
        model.train()
        log.logging(f"Test set: Average loss: {vloss:.4f}, Accuracy: {100 * vacc:.1f}%")
    log.close()


@run(
    "torch_lr_range_nan.log",
    "print_style",
    "diverging",
    "lr_too_high",
    about="An lr range test (lr x1.04 per step from 1e-4, SGD momentum 0.9, small CNN): loss ~2.3 until "
    "lr ~0.03, falls to ~0.7 around lr 0.14, then grows (43 near lr 0.5, 1027 at lr 626 when the test "
    "stops at step 400, still finite: it was meant to reach NaN and did not, so it is labelled diverging).",
)
def torch_lr_range_nan() -> None:
    """An lr range test: the lr grows 4% per step from 1e-4 (SGD, momentum 0.9, small CNN); the loss
    falls, then grows without bound (the 400 steps end before it overflows)."""
    torch.manual_seed(103)
    train, _ = patterns(103, 4096, 10, channels=3)
    x, y = tensors(train)
    model = SmallCNN(3, 10)
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=1.04)
    gen = torch.Generator().manual_seed(103)
    log = TextLog(out("torch_lr_range_nan.log"))
    step = 0
    while step < 400:
        for idx in batches(len(x), 32, gen):
            lr = opt.param_groups[0]["lr"]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            sched.step()
            step += 1
            log.line(f"iter {step:4d} | lr {lr:.3e} | loss {loss.item():.4f}")
            if step >= 400:
                break
    log.close()


@run(
    "torch_cnn_lr1e-9_flat.log",
    "print_style",
    "flat",
    "lr_too_low",
    about="Small CNN with Adam at lr 1e-9 (typo for 1e-3), `[epoch, step] loss:` lines: the loss stays "
    "at 2.306-2.308 for 8 epochs, val accuracy 10%.",
)
def torch_cnn_lr1e_9_flat() -> None:
    """Small CNN with Adam at lr 1e-9 (a typo for 1e-3): the loss does not move from ln(10)."""
    torch.manual_seed(104)
    train, test = patterns(104, 2560, 500)
    (x, y), (xt, yt) = tensors(train), tensors(test)
    model = SmallCNN(1, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-9)
    gen = torch.Generator().manual_seed(104)
    log = TextLog(out("torch_cnn_lr1e-9_flat.log"))
    epochs, bs = 8, 64
    for epoch in range(1, epochs + 1):
        running, n = 0.0, 0
        for step, idx in enumerate(batches(len(x), bs, gen), start=1):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            running += loss.item()
            n += 1
            if step % 10 == 0:
                log.line(f"[{epoch}, {step:5d}] loss: {running / n:.3f}")
                running, n = 0.0, 0
        vloss, vacc = evaluate(model.eval(), xt, yt)
        model.train()
        log.line(f"Epoch {epoch}: val loss {vloss:.4f} acc {vacc:.4f}")
    log.close()


@run(
    "torch_mlp_lr_too_high_diverging.log",
    "print_style",
    "diverging",
    "lr_too_high",
    about="MLP with SGD lr 0.5 and momentum 0.95: after a good first epoch the loss grows geometrically "
    "to ~1e13 while staying finite (the logits blow up; val accuracy stays ~78%).",
)
def torch_mlp_lr_too_high_diverging() -> None:
    """MLP with SGD at lr 0.5 and momentum 0.95 (an effective step of 10): after a good first epoch the
    loss grows geometrically to ~1e13 while staying finite (the logits blow up; accuracy stays high)."""
    torch.manual_seed(105)
    train, test = patterns(105, 3200, 500)
    (x, y), (xt, yt) = tensors(train), tensors(test)
    model = MLP([256, 128, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.95)
    gen = torch.Generator().manual_seed(105)
    log = TextLog(out("torch_mlp_lr_too_high_diverging.log"))
    epochs, bs = 10, 64
    steps = len(x) // bs
    for epoch in range(1, epochs + 1):
        for step, idx in enumerate(batches(len(x), bs, gen), start=1):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            if step % 5 == 0:
                log.line(f"Epoch [{epoch}/{epochs}], Step [{step}/{steps}], Loss: {loss.item():.4f}")
        vloss, vacc = evaluate(model.eval(), xt, yt)
        model.train()
        log.line(f"Epoch [{epoch}/{epochs}], Val Loss: {vloss:.4f}, Val Acc: {vacc:.4f}")
    log.close()


@run(
    "torch_cnn_sgd_oscillating.log",
    "print_style",
    "oscillating",
    "lr_too_high",
    about="Small CNN (no BN) with SGD lr 0.5, momentum 0.9, 8 epochs: the loss swings between ~0.7 and "
    "~2.4 for the whole run without settling; val accuracy wanders between 20% and 63%.",
)
def torch_cnn_sgd_oscillating() -> None:
    """Small CNN with SGD at lr 0.5, momentum 0.9 (no BN), 8 epochs: the loss swings between ~0.7 and
    ~2.4 for the whole run without settling."""
    torch.manual_seed(105)
    train, test = patterns(105, 3200, 500)
    (x, y), (xt, yt) = tensors(train), tensors(test)
    model = SmallCNN(1, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    gen = torch.Generator().manual_seed(105)
    log = TextLog(out("torch_cnn_sgd_oscillating.log"), START)
    step = 0
    for epoch in range(1, 9):
        for idx in batches(len(x), 64, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            step += 1
            if step % 5 == 0:
                log.logging(f"epoch: {epoch}, iter: {step}, loss: {loss.item():.4f}")
        vloss, vacc = evaluate(model.eval(), xt, yt)
        model.train()
        log.logging(f"epoch: {epoch}, val_loss: {vloss:.4f}, val_acc: {vacc:.4f}")
    log.close()


@run(
    "torch_raw_pixels_input_scale.log",
    "print_style",
    "flat",
    "input_scale",
    about="The healthy MLP recipe fed raw 0..255 pixels (normalisation left out): the first logged loss "
    "is 1.25e6, after which the ReLUs are dead and the loss sits at ln(10) with val accuracy 10%.",
)
def torch_raw_pixels_input_scale() -> None:
    """The same MLP recipe as torch_mlp_sgd_healthy but fed raw 0..255 pixels (the normalisation
    transform was left out): the first layer's pre-activations are ~100x too large."""
    mlp_recipe("torch_raw_pixels_input_scale.log", normalize=None, epochs=6, every=5, show_lr=False)


@run(
    "torch_sum_reduction_loss_normalization.log",
    "print_style",
    "nan",
    "loss_normalization",
    about="Per-pixel segmentation loss with reduction='sum' (summed over 8 x 32 x 32 pixels, so ~9000 "
    "at the start) and SGD lr 4e-4 meant for a mean loss: the loss jumps to ~1e28 at step 2 and "
    "is NaN from step 3.",
)
def torch_sum_reduction_loss_normalization() -> None:
    """Per-pixel segmentation loss with reduction='sum' (summed over 8 x 32 x 32 pixels) and SGD lr 4e-4
    (momentum 0.9), an lr meant for a mean loss: the step is ~8000x too large and the loss overflows."""
    torch.manual_seed(106)
    train = data.shapes_segmentation(106, 256)
    x = (torch.from_numpy(train.images.astype(np.float32)) - 110.0) / 40.0
    y = torch.from_numpy(train.labels)
    model = nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 16, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(16, 3, 1),
    )
    opt = torch.optim.SGD(model.parameters(), lr=4e-4, momentum=0.9)
    gen = torch.Generator().manual_seed(106)
    log = TextLog(out("torch_sum_reduction_loss_normalization.log"), START)
    step = 0
    for epoch in range(1, 9):
        for idx in batches(len(x), 8, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx], reduction="sum")
            descend(opt, loss)
            step += 1
            log.logging(f"epoch={epoch} it={step} loss={loss.item():.2f}")
    log.close()


# --- HF trainer_state.json -----------------------------------------------------------------------------


def linear_warmup(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """transformers.get_linear_schedule_with_warmup."""
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: s / max(1, warmup) if s < warmup else max(0.0, (total - s) / max(1, total - warmup))
    )


def hf_train(
    path: str,
    model: nn.Module,
    train: data.ImageSet,
    test: data.ImageSet,
    *,
    epochs: int,
    batch: int,
    lr: float,
    logging_steps: int,
    eval_steps: int,
    seed: int,
    warmup_ratio: float = 0.0,
    weight_decay: float = 0.0,
    corrupt_every: int = 0,
    constant_lr: bool = False,
) -> None:
    """The HF Trainer loop in miniature: AdamW, linear schedule with warm-up, grad clipping at 1.0 (the
    logged grad_norm is the norm before clipping), eval every `eval_steps`. `corrupt_every` > 0 replaces
    every such batch by a broken one (unnormalised 0..255 pixels with shuffled labels)."""
    (x, y), (xt, yt) = tensors(train), tensors(test)
    raw = torch.from_numpy(train.images.astype(np.float32))
    steps_per_epoch = math.ceil(len(x) / batch)
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    sched = (
        torch.optim.lr_scheduler.LambdaLR(opt, lambda _: 1.0)
        if constant_lr
        else linear_warmup(opt, int(warmup_ratio * total), total)
    )
    gen = torch.Generator().manual_seed(seed)
    state = TrainerState(logging_steps, eval_steps, total, epochs, batch)
    step, train_sum, best = 0, 0.0, None
    for _ in range(epochs):
        for idx in batches(len(x), batch, gen):
            model.train()
            xb, yb = x[idx], y[idx]
            if corrupt_every and (step + 1) % corrupt_every == 0:
                xb, yb = raw[idx], yb[torch.randperm(len(idx), generator=gen)]
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            norm = float(torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0))
            opt.step()
            sched.step()
            step += 1
            train_sum += loss.item()
            state.train_step(step, step / steps_per_epoch, loss.item(), sched.get_last_lr()[0], norm)
            if step % eval_steps == 0 or step == total:
                t0 = time.perf_counter()
                model.eval()
                vloss, vacc = evaluate(model, xt, yt)
                state.eval(
                    step,
                    step / steps_per_epoch,
                    {"loss": vloss, "accuracy": vacc},
                    time.perf_counter() - t0,
                    len(xt),
                )
                if best is None or vloss < best[0]:
                    best = (vloss, f"out/checkpoint-{step}")
    target = out(f"{path}/trainer_state.json")
    state.write(target, step, float(epochs), train_sum / step, best)


HF_CNN = {"epochs": 6, "batch": 32, "lr": 2e-3, "eval_steps": 40, "warmup_ratio": 0.1, "weight_decay": 0.01}


@run(
    "hf_adamw_eval_healthy",
    "hf_trainer_state",
    "healthy",
    about="HF-Trainer-style loop: small CNN, AdamW 2e-3, 10% linear warm-up then linear decay, grad "
    "clipping 1.0, logging every 10 steps, eval every 40: loss 2.3 -> ~0.005, eval_loss ~0.005, "
    "eval accuracy ~100%. Folder with trainer_state.json.",
)
def hf_adamw_eval_healthy() -> None:
    """Small CNN, AdamW 2e-3 with 10% linear warm-up and linear decay, eval every 40 steps."""
    torch.manual_seed(200)
    train, test = patterns(200, 2560, 500, channels=3)
    hf_train("hf_adamw_eval_healthy", SmallCNN(3, 10), train, test, seed=200, logging_steps=10, **HF_CNN)


@run(
    "hf_corrupted_batches_spiky",
    "hf_trainer_state",
    "spiky",
    "data_issue",
    about="The healthy HF recipe, but every 37th batch comes from a broken loader worker (unnormalised "
    "0..255 pixels, shuffled labels): the logged loss (mean of 5 steps) jumps to ~280-440 at "
    "those steps and is back to its level at the next log; eval loss keeps falling.",
)
def hf_corrupted_batches_spiky() -> None:
    """The healthy HF recipe, but every 37th batch comes from a broken loader worker (raw 0..255 pixels,
    shuffled labels): the logged loss jumps at those steps and recovers right after."""
    torch.manual_seed(201)
    train, test = patterns(201, 2560, 500, channels=3)
    hf_train(
        "hf_corrupted_batches_spiky",
        SmallCNN(3, 10),
        train,
        test,
        seed=201,
        logging_steps=5,
        corrupt_every=37,
        **HF_CNN,
    )


@run(
    "hf_mlp_overfitting",
    "hf_trainer_state",
    "overfitting",
    "overfitting",
    about="A wide MLP (256-512-512-10) on only 120 faint, noisy images, AdamW 1e-3 constant lr, 80 "
    "epochs: train loss -> 1e-4, eval_loss bottoms out at step 48 (1.81) and then climbs steadily "
    "to 1.91.",
)
def hf_mlp_overfitting() -> None:
    """A wide MLP (256-512-512-10) on only 120 noisy training images, AdamW 1e-3 constant lr, 80 epochs:
    the train loss goes to ~0 while the eval loss bottoms out early and then climbs."""
    torch.manual_seed(202)
    train, test = patterns(202, 120, 1000, contrast=30, noise=55)
    hf_train(
        "hf_mlp_overfitting",
        MLP([256, 512, 512, 10]),
        train,
        test,
        epochs=80,
        batch=16,
        lr=1e-3,
        logging_steps=8,
        eval_steps=16,
        seed=202,
        constant_lr=True,
    )


# --- Lightning metrics.csv -----------------------------------------------------------------------------


def lightning_train(
    path: str,
    model: nn.Module,
    train: data.ImageSet,
    test: data.ImageSet,
    *,
    epochs: int,
    batch: int,
    opt: torch.optim.Optimizer,
    sched_fn,
    seed: int,
    log_every: int = 10,
) -> None:
    """Lightning's CSVLogger rows: `train_loss_step` + `lr-<Optimizer>` every `log_every` steps (step =
    global_step - 1 as Lightning records it), per epoch `val_loss`, `val_acc`, `train_loss_epoch`."""
    (x, y), (xt, yt) = tensors(train), tensors(test)
    sched = sched_fn(opt)
    gen = torch.Generator().manual_seed(seed)
    table = SparseCSV()
    name = f"lr-{type(opt).__name__}"
    step = 0
    for epoch in range(epochs):
        model.train()
        losses = []
        for idx in batches(len(x), batch, gen):
            lr = opt.param_groups[0]["lr"]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            sched.step()
            step += 1
            losses.append(loss.item())
            if step % log_every == 0:
                table.log(**{name: lr, "epoch": epoch, "step": step - 1})
                table.log(train_loss_step=loss.item(), epoch=epoch, step=step - 1)
        model.eval()
        vloss, vacc = evaluate(model, xt, yt)
        table.log(val_loss=vloss, val_acc=vacc, epoch=epoch, step=step - 1)
        table.log(train_loss_epoch=float(np.mean(losses)), epoch=epoch, step=step - 1)
    table.write(out(f"{path}/metrics.csv"))


@run(
    "lightning_warmup_cosine_healthy",
    "lightning_csv",
    "healthy",
    about="Lightning CSVLogger metrics.csv: CNN with BN, SGD momentum 0.9, one epoch of linear warm-up "
    "to 0.1, then cosine decay, 8 epochs: train_loss_step 2.0 -> ~0.007, val_loss ~0.007, val_acc "
    "~100%.",
)
def lightning_warmup_cosine_healthy() -> None:
    """Small CNN with BN, SGD momentum 0.9, 1 epoch of linear warm-up to 0.1 then cosine decay, 8 epochs."""
    torch.manual_seed(300)
    train, test = patterns(300, 2560, 500, channels=3)
    model = SmallCNN(3, 10, bn=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    per_epoch, epochs = 40, 8

    def sched(o: torch.optim.Optimizer) -> torch.optim.lr_scheduler.LRScheduler:
        total = per_epoch * epochs
        return torch.optim.lr_scheduler.LambdaLR(
            o, lambda s: (s + 1) / per_epoch if s < per_epoch else 0.5 * (1 + math.cos(math.pi * s / total))
        )

    lightning_train(
        "lightning_warmup_cosine_healthy",
        model,
        train,
        test,
        epochs=epochs,
        batch=64,
        opt=opt,
        sched_fn=sched,
        seed=300,
    )


@run(
    "lightning_early_lr_drop_plateau",
    "lightning_csv",
    "plateau",
    "lr_too_low",
    about="CNN without BN, SGD 0.05, but MultiStepLR milestones given in steps where epochs were meant "
    "([40, 50], gamma 0.03): the lr falls ~1000x in the second epoch; the loss drops from 2.30 to "
    "~1.98 and stays there (1.95 after 8 epochs), val accuracy ~36-44%.",
)
def lightning_early_lr_drop_plateau() -> None:
    """The same CNN without BN, SGD 0.05, but MultiStepLR milestones typed in steps where epochs were
    meant ([40, 50], gamma 0.03): the lr falls ~1000x within the second epoch and the loss stalls where
    it was."""
    torch.manual_seed(301)
    train, test = patterns(301, 2560, 500, channels=3)
    model = SmallCNN(3, 10)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    lightning_train(
        "lightning_early_lr_drop_plateau",
        model,
        train,
        test,
        epochs=8,
        batch=64,
        opt=opt,
        sched_fn=lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [40, 50], 0.03),
        seed=301,
    )


@run(
    "lightning_bn_momentum_eval_gap",
    "lightning_csv",
    "eval_gap",
    "bn_stats",
    about="CNN with BatchNorm momentum=0.001 (Keras' 0.999 ported as 1 - 0.999): the running statistics "
    "barely move from their init, so eval-mode val_loss (0.57 -> 0.39) stays ~50-100x above the "
    "training loss (0.006) for the whole run.",
)
def lightning_bn_momentum_eval_gap() -> None:
    """CNN with BatchNorm momentum=0.001 (Keras' 0.999 ported as 1 - 0.999): the running statistics barely
    move from their init, so eval-mode validation is far worse than training all along."""
    torch.manual_seed(302)
    train, test = patterns(302, 2560, 500, channels=3)
    model = SmallCNN(3, 10, bn=True, bn_momentum=0.001)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    lightning_train(
        "lightning_bn_momentum_eval_gap",
        model,
        train,
        test,
        epochs=8,
        batch=64,
        opt=opt,
        sched_fn=lambda o: torch.optim.lr_scheduler.StepLR(o, 1000),
        seed=302,
    )


# --- Keras CSVLogger -----------------------------------------------------------------------------------


def keras_fit(
    path: str,
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    xv: torch.Tensor,
    yv: torch.Tensor,
    *,
    epochs: int,
    batch: int,
    opt: torch.optim.Optimizer,
    seed: int,
    lr_schedule=None,
) -> None:
    """model.fit(..., validation_data=...) with CSVLogger: per epoch the running mean of the batch losses
    and accuracies (as Keras reports them) and the validation loss/accuracy; with `lr_schedule` (a
    LearningRateScheduler callback) the epoch's lr is logged too, as Keras adds `lr` to the logs."""
    gen = torch.Generator().manual_seed(seed)
    log = KerasCSV(out(path))
    for epoch in range(epochs):
        extra = {}
        if lr_schedule is not None:
            for group in opt.param_groups:
                group["lr"] = lr_schedule(epoch)
            extra["lr"] = float(np.float32(lr_schedule(epoch)))
        model.train()
        seen, loss_sum, correct = 0, 0.0, 0
        for idx in batches(len(x), batch, gen):
            logits = model(x[idx])
            loss = F.cross_entropy(logits, y[idx])
            descend(opt, loss)
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        model.eval()
        vloss, vacc = evaluate(model, xv, yv)
        log.epoch(
            epoch, accuracy=correct / seen, loss=loss_sum / seen, val_accuracy=vacc, val_loss=vloss, **extra
        )


@run(
    "keras_dense_overfitting.csv",
    "keras_csv",
    "overfitting",
    "overfitting",
    about="Keras CSVLogger: Flatten + Dense(512) + Dense(512) on only 120 faint, noisy images (a "
    "quarter with wrong labels), Adam 1e-3, 60 epochs: val_loss falls to 1.94 at epoch 4, then "
    "rises steadily to 2.25 while loss goes to 1e-4.",
)
def keras_dense_overfitting() -> None:
    """Flatten + Dense(512) + Dense(512) on only 120 faint, noisy 16x16 images (a quarter of them with
    wrong labels, as a rushed annotation pass leaves them), Adam 1e-3, 60 epochs: val_loss falls for 4
    epochs, then rises steadily while the training loss goes to ~0 (the net memorises the small set)."""
    torch.manual_seed(400)
    kw = {"size": 16, "channels": 1, "contrast": 30, "noise": 55, "prototype_seed": 400}
    train, test = data.pattern_images(401, 10, 120, **kw), data.pattern_images(402, 10, 1000, **kw)
    (x, y), (xv, yv) = tensors(train), tensors(test)
    flip = torch.Generator().manual_seed(403)
    wrong = torch.randperm(len(y), generator=flip)[: len(y) // 4]
    y[wrong] = (y[wrong] + torch.randint(1, 10, (len(wrong),), generator=flip)) % 10
    model = MLP([256, 512, 512, 10])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    keras_fit("keras_dense_overfitting.csv", model, x, y, xv, yv, epochs=60, batch=16, opt=opt, seed=400)


@run(
    "keras_val_preprocessing_mismatch.csv",
    "keras_csv",
    "eval_gap",
    "data_issue",
    about="Keras CSVLogger: training images standardised ((x - 128) / 64), validation images only "
    "divided by 255 (another preprocessing function in the validation generator): loss falls to "
    "0.007 while val_loss is 3.0 at epoch 0 and grows to 18, val accuracy 10-20%.",
)
def keras_val_preprocessing_mismatch() -> None:
    """Training images standardised ((x - 128) / 64), validation images only divided by 255 (a different
    preprocessing function in the validation generator): val_loss stays far above loss from the start."""
    torch.manual_seed(401)
    train, test = patterns(401, 2560, 500, channels=3)
    (x, y) = tensors(train)
    xv, yv = tensors(test, normalize=(0.0, 255.0))
    model = SmallCNN(3, 10)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    keras_fit(
        "keras_val_preprocessing_mismatch.csv", model, x, y, xv, yv, epochs=12, batch=32, opt=opt, seed=401
    )


@run(
    "keras_mlp_lr_schedule_diverging.csv",
    "keras_csv",
    "diverging",
    "lr_too_high",
    about="Keras CSVLogger with an `lr` column: MLP with SGD and a LearningRateScheduler whose factor "
    "was written as 2 instead of 0.5 (lr = 0.02 * 2**epoch): loss falls to 0.009 by epoch 5 (lr "
    "0.64), then grows to ~70 by epoch 13 (lr 164).",
)
def keras_mlp_lr_schedule_diverging() -> None:
    """MLP with SGD and a LearningRateScheduler whose decay factor was written as 2 instead of 0.5
    (lr = 0.02 * 2**epoch, logged in the `lr` column): the loss falls for 6 epochs, then grows from 0.009
    to ~70 (finite: the ReLUs keep it from overflowing)."""
    torch.manual_seed(402)
    train, test = patterns(402, 2560, 500)
    (x, y), (xv, yv) = tensors(train), tensors(test)
    model = MLP([256, 256, 128, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.02)
    keras_fit(
        "keras_mlp_lr_schedule_diverging.csv",
        model,
        x,
        y,
        xv,
        yv,
        epochs=14,
        batch=32,
        opt=opt,
        seed=402,
        lr_schedule=lambda epoch: 0.02 * 2.0**epoch,
    )


# --- TensorBoard ---------------------------------------------------------------------------------------


def tb_train(
    path: str,
    model: nn.Module,
    train: data.ImageSet,
    test: data.ImageSet,
    *,
    epochs: int,
    batch: int,
    opt: torch.optim.Optimizer,
    sched,
    seed: int,
    every: int = 5,
) -> None:
    """SummaryWriter scalars: train/loss and train/lr every `every` steps, val/loss and val/acc per epoch."""
    (x, y), (xt, yt) = tensors(train), tensors(test)
    gen = torch.Generator().manual_seed(seed)
    tb = TensorBoard(out(path))
    step = 0
    for _ in range(epochs):
        model.train()
        for idx in batches(len(x), batch, gen):
            loss = F.cross_entropy(model(x[idx]), y[idx])
            descend(opt, loss)
            step += 1
            if step % every == 0:
                tb.scalar("train/loss", loss.item(), step)
                tb.scalar("train/lr", opt.param_groups[0]["lr"], step)
            if sched is not None:
                sched.step()
        model.eval()
        vloss, vacc = evaluate(model, xt, yt)
        tb.scalar("val/loss", vloss, step)
        tb.scalar("val/acc", vacc, step)
    tb.close()


TB_NAME = "events.out.tfevents.1795428903.cpu-worker"


@run(
    f"tb_resnet_cosine_healthy/{TB_NAME}",
    "tfevents",
    "healthy",
    about="TensorBoard event file (tensorboardX): small ResNet with BN, SGD 0.1 momentum 0.9, cosine "
    "annealing, 6 epochs; train/loss 2.3 -> ~0.004, val/loss ~0.005, val/acc 100%.",
)
def tb_resnet_cosine_healthy() -> None:
    """A small ResNet (BN), SGD 0.1 momentum 0.9 with cosine annealing, 6 epochs."""
    torch.manual_seed(500)
    train, test = patterns(500, 1920, 500, channels=3, contrast=50, noise=35)
    model = TinyResNet(3, 10, widths=(16, 32, 32))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, 6 * 30)
    tb_train(
        f"tb_resnet_cosine_healthy/{TB_NAME}",
        model,
        train,
        test,
        epochs=6,
        batch=64,
        opt=opt,
        sched=sched,
        seed=500,
    )


@run(
    f"tb_mlp_momentum_diverging/{TB_NAME}",
    "tfevents",
    "diverging",
    "lr_too_high",
    about="TensorBoard event file: MLP with SGD lr 0.05 and momentum 0.99 (effective step 5): "
    "train/loss reaches ~1e-3 in the second epoch, then climbs to ~5-15 and val/loss from 0.10 to "
    "23.",
)
def tb_mlp_momentum_diverging() -> None:
    """MLP with SGD lr 0.05 and momentum 0.99 (an effective step of 5): the loss reaches ~0.1 in the first
    epoch, then climbs steadily for the rest of the run."""
    torch.manual_seed(105)
    train, test = patterns(105, 3200, 500)
    model = MLP([256, 128, 10])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.99)
    tb_train(
        f"tb_mlp_momentum_diverging/{TB_NAME}",
        model,
        train,
        test,
        epochs=10,
        batch=64,
        opt=opt,
        sched=None,
        seed=105,
        every=2,
    )


@run(
    f"tb_deep_mlp_small_init_flat/{TB_NAME}",
    "tfevents",
    "flat",
    "depth_init",
    about="TensorBoard event file: 12-layer tanh MLP with N(0, 0.01) weights: the signal dies within a "
    "few layers and train/loss and val/loss stay at ln(10) = 2.303 for 8 epochs.",
)
def tb_deep_mlp_small_init_flat() -> None:
    """A 12-layer tanh MLP initialised with N(0, 0.01) weights: the signal dies within a few layers, the
    output is constant and the loss stays at ln(10)."""
    torch.manual_seed(502)
    train, test = patterns(502, 2560, 500)
    layers: list[nn.Module] = [nn.Flatten()]
    sizes = [256] + [128] * 11 + [10]
    for a, b in pairwise(sizes):
        lin = nn.Linear(a, b)
        nn.init.normal_(lin.weight, 0.0, 0.01)
        nn.init.zeros_(lin.bias)
        layers += [lin, nn.Tanh()]
    model = nn.Sequential(*layers[:-1])
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    tb_train(
        f"tb_deep_mlp_small_init_flat/{TB_NAME}",
        model,
        train,
        test,
        epochs=8,
        batch=64,
        opt=opt,
        sched=None,
        seed=502,
    )
