"""Writes a recorded PyTorch run in one log format (generator.writers), then gzips every file."""

from __future__ import annotations

import gzip
import math
import shutil
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from generator.common import START
from generator.writers import KerasCSV, SparseCSV, TensorBoard, TrainerState

from .recipe import Recipe
from .settings import command_line, config, namespace_line
from .train import Record


def gzip_file(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    with (
        path.open("rb") as src,
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as dst,
    ):
        shutil.copyfileobj(src, dst)
    path.unlink()
    return target


def windows(r: Recipe, rec: Record):
    """Yield (pos, step, epoch, loss, lr, gnorm) at each logging step: the window mean or the last step's
    loss, as the script's running-loss bookkeeping does; the window restarts after a resume."""
    acc, cnt = 0.0, 0
    crash_pos = {pos for pos, _ in rec.events}
    for pos, (step, epoch, loss, lr, g) in enumerate(rec.steps):
        if pos in crash_pos:
            acc, cnt = 0.0, 0
        acc += loss
        cnt += 1
        if step % r.log_every == 0 or (pos == len(rec.steps) - 1 and rec.stopped):
            value = acc / cnt if r.log_mode == "mean" else loss
            yield pos + 1, step, epoch, value, lr, g
            acc, cnt = 0.0, 0


def logged_losses(r: Recipe, rec: Record) -> tuple[list[int], np.ndarray]:
    """(steps, training losses) as the run's format records them: Keras one mean per epoch, HF and the
    other writers one value per logging window, Caffe the loss of each display iteration (its smoothed
    `average_loss` aside). A symptom that does not show in these cannot be read off the log."""
    if r.fmt == "keras_csv":
        return [e[1] for e in rec.epochs], np.array([e[2] for e in rec.epochs], np.float64)
    if r.engine == "caffe":
        chosen = [s for s in rec.steps if s[0] % max(r.log_every, 1) == 0]
        return [s[0] for s in chosen], np.array([s[2] for s in chosen], np.float64)
    if r.fmt == "hf_trainer_state":  # the mean of the window, whatever the script's own habit
        points, window = [], []
        for step, _epoch, loss, _lr, _g in rec.steps:
            window.append(loss)
            if step % r.log_every == 0:
                points.append((step, float(np.mean(window))))
                window = []
        return [p[0] for p in points], np.array([p[1] for p in points], np.float64)
    points = list(windows(r, rec))
    return [w[1] for w in points], np.array([w[3] for w in points], np.float64)


def merged(r: Recipe, rec: Record):
    """Training log points, evaluations, epoch ends and resume events in the order they happened."""
    items = []
    for w in windows(r, rec):
        items.append((w[0], 0, "train", w))
    for pos, e in zip(rec.eval_pos, rec.evals, strict=True):
        items.append((pos, 2, "eval", e))
    for pos, e in zip(rec.epoch_pos, rec.epochs, strict=True):
        items.append((pos, 1, "epoch", e))
    for pos, text in rec.events:
        items.append((pos, 3, "crash", text))
    items.sort(key=lambda t: (t[0], t[1]))
    return items


def fnum(x: float, digits: int = 4) -> str:
    if not math.isfinite(x):
        return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return f"{x:.{digits}f}"


def _stamp(rec: Record, pos: int) -> str:
    t = START + timedelta(seconds=rec.times[min(max(pos - 1, 0), len(rec.times) - 1)] if rec.times else 0)
    return f"{t:%Y-%m-%d %H:%M:%S},{t.microsecond // 1000:03d}"


def print_style(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    path = folder / "train.log"
    c = config(r)
    script = {"charlm": "train_lm.py", "fcn": "train_seg.py"}.get(r.family, "train.py")
    lines: list[str] = []
    header = [namespace_line(c)] if r.seed % 2 else [f"$ {command_line(c, script)}"]
    header += [f"Model: {c['arch']} ({rec.params:,} parameters)", *rec.facts]
    if r.fault.get("kind") == "nan_pixels":
        header.append("Normalising each image by its own mean/std")
    E, per = r.epochs, rec.steps_per_epoch
    style = r.style
    lines += header
    for pos, _, kind, item in merged(r, rec):
        if kind == "train":
            _, step, epoch, loss, lr, g = item
            e = min(math.ceil(epoch) if epoch > 0 else 1, E)
            e_idx = min(int(epoch - 1e-9), E - 1)
            s_in = step - e_idx * per
            if style == "epoch_step":
                lines.append(
                    f"Epoch [{e_idx + 1}/{E}], Step [{s_in}/{per}], Loss: {fnum(loss)}, lr: {lr:.6g}"
                )
            elif style == "bracket":
                lines.append(f"[{e_idx + 1}, {s_in:5d}] loss: {fnum(loss, 3)}")
            elif style == "logging":
                lines.append(
                    f"{_stamp(rec, pos)} INFO: epoch {e_idx + 1} step {step} loss {fnum(loss)} lr {lr:.6g}"
                )
            elif style == "iter":
                ms = 1000 * (rec.times[pos - 1] - rec.times[pos - 2]) if pos > 1 else 0.0
                lines.append(f"iter {step}: loss {fnum(loss)}, time {ms:.2f}ms")
            else:
                lines.append(
                    f"step={step} epoch={epoch:.2f} loss={fnum(loss, 5)} lr={lr:.6g} grad_norm={fnum(g, 3)}"
                )
            del e
        elif kind == "eval":
            step, epoch, vl, va = item
            if style == "epoch_step":
                lines.append(
                    f"Epoch [{min(math.ceil(epoch - 1e-9), E)}/{E}], Val Loss: {fnum(vl)}, "
                    f"Val Acc: {va * 100:.2f}%"
                )
            elif style == "bracket":
                lines.append(f"Validation loss: {fnum(vl, 3)}, accuracy: {va * 100:.1f} %")
            elif style == "logging":
                lines.append(
                    f"{_stamp(rec, pos)} INFO: epoch {min(math.ceil(epoch - 1e-9), E)} step {step} "
                    f"val_loss {fnum(vl)} val_acc {va:.4f}"
                )
            elif style == "iter":
                tr = rec.steps[pos - 1][2] if pos else float("nan")
                lines.append(f"step {step}: train loss {fnum(tr)}, val loss {fnum(vl)}, val acc {va:.4f}")
            else:
                lines.append(f"step={step} epoch={epoch:.2f} val_loss={fnum(vl, 5)} val_acc={va:.4f}")
        elif kind == "crash":
            _, ep, st = item.split(":")
            lines += [
                "Traceback (most recent call last):",
                f'  File "{script}", line 212, in <module>',
                "    train_one_epoch(model, loader, optimizer)",
                "RuntimeError: DataLoader worker (pid 28341) is killed by signal: Killed. ",
            ]
            lines += header
            lines.append(f"Resuming from checkpoint ckpt/epoch_{ep}.pt (epoch {ep}, global step {st})")
    if rec.stopped:
        lines.append("^CTraceback (most recent call last):")
        lines.append("KeyboardInterrupt")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [gzip_file(path)]


def hf_state(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    """trainer_state.json as HF Trainer writes it, with logging_nan_inf_filter on (the default): a NaN/inf
    step's loss is replaced by the mean of the window so far (tr_loss += tr_loss / (1 + step - last)), so a
    window where every step was non-finite logs loss 0.0; grad_norm is logged as computed (nan)."""
    eval_steps = r.eval_every or rec.steps_per_epoch
    ts = TrainerState(r.log_every, eval_steps, rec.total_steps, r.epochs, r.batch)
    ts.t0 = time.perf_counter() - (rec.times[-1] if rec.times else 0.0)  # train_runtime: the real one
    tr_loss, last = 0.0, 0
    evals = dict(zip(rec.eval_pos, rec.evals, strict=True))
    for pos, (step, epoch, loss, lr, g) in enumerate(rec.steps, start=1):
        value = loss if math.isfinite(loss) else tr_loss / (1 + step - 1 - last)
        tr_loss += value
        ts.train_step(step, round(epoch, 4), value, lr, g)
        if step % r.log_every == 0:
            tr_loss, last = 0.0, step
        if pos in evals:
            st, ep, vl, va = evals[pos]
            secs = 0.05 + 0.0004 * r.n_val
            ts.eval(st, round(ep, 4), {"loss": vl, "accuracy": va}, secs, r.n_val)
    finite = [s[2] for s in rec.steps if math.isfinite(s[2])]
    train_loss = sum(finite) / max(len(finite), 1)
    best = None
    if rec.evals:
        vbest = min(rec.evals, key=lambda e: e[2] if math.isfinite(e[2]) else math.inf)
        best = (vbest[2], f"out/{r.run_id}/checkpoint-{vbest[0]}")
    path = folder / "trainer_state.json"
    ts.write(path, rec.steps[-1][0], round(rec.steps[-1][1], 4), train_loss, best)
    return [gzip_file(path)]


def lightning(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    csv = SparseCSV()
    lr_key = (
        f"lr-{ {'sgd': 'SGD', 'adam': 'Adam', 'adamw': 'AdamW', 'rmsprop': 'RMSprop'}[r.optimizer] }".replace(
            " ", ""
        )
    )
    for _, _, kind, item in merged(r, rec):
        if kind == "train":
            _, step, epoch, loss, lr, _g = item
            csv.log(
                **{
                    "epoch": int(min(epoch - 1e-9, r.epochs - 1)),
                    "step": step - 1,
                    "train_loss_step": loss,
                    lr_key: lr,
                }
            )
        elif kind == "eval":
            step, epoch, vl, va = item
            csv.log(
                epoch=math.ceil(epoch - 1e-9) - 1 if epoch > 0 else 0,
                step=step - 1,
                val_loss=vl,
                val_acc=va,
            )
        elif kind == "epoch":
            e, step, tl, ta = item
            csv.log(epoch=e, step=step - 1, train_loss_epoch=tl, train_acc_epoch=ta)
    path = folder / "metrics.csv"
    csv.write(path)
    hp = folder / "hparams.yaml"
    lines = []
    for k, v in config(r).items():
        if isinstance(v, list):
            lines.append(f"{k}:")
            lines += [f"- {x}" for x in v]
        elif v is None:
            lines.append(f"{k}: null")
        elif isinstance(v, bool):
            lines.append(f"{k}: {str(v).lower()}")
        else:
            lines.append(f"{k}: {v}")
    hp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [gzip_file(path), gzip_file(hp)]


def keras(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    """CSVLogger rows per epoch (loss = mean of the epoch's batch losses). A resumed run is a second
    `fit` with `CSVLogger(append=True)`: its rows are appended, numbered from 0 again unless the script
    passed `initial_epoch`."""
    path = folder / "training.csv"
    log = KerasCSV(path)
    crash = rec.events[0][0] if rec.events else None
    restart_zero = bool(r.resume.get("keras_restart"))
    base_epoch = None
    for pos, ep_row in zip(rec.epoch_pos, rec.epochs, strict=True):
        e, _step, tl, ta = ep_row
        ev = [x for p, x in zip(rec.eval_pos, rec.evals, strict=True) if p <= pos]
        vl, va = (ev[-1][2], ev[-1][3]) if ev else (math.nan, math.nan)
        lr = rec.steps[pos - 1][3]
        number = e
        if crash is not None and pos > crash and restart_zero:
            if base_epoch is None:
                base_epoch = e
            number = e - base_epoch
        log.epoch(number, accuracy=ta, learning_rate=lr, loss=tl, val_accuracy=va, val_loss=vl)
    return [gzip_file(path)]


def tfevents(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    target = folder / "events.out.tfevents.1764000000.trainhost"
    tb = TensorBoard(target)
    for _, _, kind, item in merged(r, rec):
        if kind == "train":
            _, step, _, loss, lr, g = item
            tb.scalar("train/loss", loss, step)
            tb.scalar("train/lr", lr, step)
            tb.scalar("train/grad_norm", g, step)
        elif kind == "eval":
            step, _, vl, va = item
            tb.scalar("val/loss", vl, step)
            tb.scalar("val/acc", va, step)
        elif kind == "epoch":
            _e, step, tl, _ta = item
            tb.scalar("train/epoch_loss", tl, step)
    tb.close()
    return [gzip_file(target)]


WRITERS = {
    "print_style": print_style,
    "hf_trainer_state": hf_state,
    "lightning_csv": lightning,
    "keras_csv": keras,
    "tfevents": tfevents,
}


def emit(r: Recipe, rec: Record, folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return WRITERS[r.fmt](r, rec, folder)
