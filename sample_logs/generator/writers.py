"""Writers for the PyTorch-ecosystem formats, fed with the values of real training steps: print-style
text, HF `trainer_state.json`, Lightning `metrics.csv`, Keras `CSVLogger` and TensorBoard event files."""

from __future__ import annotations

import csv
import json
import math
import shutil
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path


class TextLog:
    """Lines a training script prints (optionally with a logging-style timestamp from a fixed start)."""

    def __init__(self, path: Path, start: datetime | None = None):
        self.fh = path.open("w", encoding="utf-8")
        self.start = start
        self.t0 = time.perf_counter()

    def now(self) -> datetime:
        assert self.start is not None
        return self.start + timedelta(seconds=time.perf_counter() - self.t0)

    def line(self, text: str) -> None:
        self.fh.write(text + "\n")

    def logging(self, text: str, level: str = "INFO") -> None:
        """`2026-11-24 10:15:03,123 INFO: text` (logging format '%(asctime)s %(levelname)s: %(message)s')."""
        now = self.now()
        self.fh.write(f"{now:%Y-%m-%d %H:%M:%S},{now.microsecond // 1000:03d} {level}: {text}\n")

    def close(self) -> None:
        self.fh.close()


class TrainerState:
    """HF Trainer bookkeeping: `loss` is the mean of the per-step losses since the last log, rounded to 4
    digits; `learning_rate` the scheduler's lr after the step; eval entries hold eval_* metrics."""

    def __init__(self, logging_steps: int, eval_steps: int, max_steps: int, epochs: int, batch: int):
        self.logging_steps, self.eval_steps = logging_steps, eval_steps
        self.max_steps, self.epochs, self.batch = max_steps, epochs, batch
        self.history: list[dict] = []
        self._acc = 0.0
        self._n = 0
        self.t0 = time.perf_counter()

    def train_step(self, step: int, epoch: float, loss: float, lr: float, grad_norm: float) -> None:
        self._acc += loss
        self._n += 1
        if step % self.logging_steps == 0:
            self.history.append(
                {
                    "epoch": epoch,
                    "grad_norm": grad_norm,
                    "learning_rate": lr,
                    "loss": round(self._acc / self._n, 4),
                    "step": step,
                }
            )
            self._acc, self._n = 0.0, 0

    def eval(self, step: int, epoch: float, metrics: dict[str, float], seconds: float, samples: int) -> None:
        entry = {"epoch": epoch, "step": step}
        entry.update({f"eval_{k}": v for k, v in metrics.items()})
        entry["eval_runtime"] = round(seconds, 4)
        entry["eval_samples_per_second"] = round(samples / seconds, 3)
        entry["eval_steps_per_second"] = round(samples / self.batch / seconds, 3)
        self.history.append(entry)

    def write(
        self, path: Path, step: int, epoch: float, train_loss: float, best: tuple[float, str] | None
    ) -> None:
        runtime = time.perf_counter() - self.t0
        self.history.append(
            {
                "epoch": epoch,
                "step": step,
                "total_flos": 0.0,
                "train_loss": train_loss,
                "train_runtime": round(runtime, 4),
                "train_samples_per_second": round(step * self.batch / runtime, 3),
                "train_steps_per_second": round(step / runtime, 3),
            }
        )
        state = {
            "best_metric": best[0] if best else None,
            "best_model_checkpoint": best[1] if best else None,
            "epoch": epoch,
            "eval_steps": self.eval_steps,
            "global_step": step,
            "is_hyper_param_search": False,
            "is_local_process_zero": True,
            "is_world_process_zero": True,
            "log_history": self.history,
            "logging_steps": self.logging_steps,
            "max_steps": self.max_steps,
            "num_input_tokens_seen": 0,
            "num_train_epochs": self.epochs,
            "save_steps": self.max_steps,
            "total_flos": 0.0,
            "train_batch_size": self.batch,
            "trial_name": None,
            "trial_params": None,
        }
        path.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _csv_value(value: float | int | None) -> str:
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    return "nan" if math.isnan(value) else repr(float(value))


class SparseCSV:
    """Lightning CSVLogger: one table, columns sorted, each log call a row with only its own metrics."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def log(self, **metrics: float | int) -> None:
        self.rows.append(metrics)

    def write(self, path: Path) -> None:
        keys = sorted({k for row in self.rows for k in row})
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(keys)
            for row in self.rows:
                w.writerow([_csv_value(row.get(k)) for k in keys])


class KerasCSV:
    """Keras CSVLogger: `epoch` then the metric names sorted, one row per epoch (epoch from 0)."""

    def __init__(self, path: Path):
        self.path = path
        self.rows: list[dict] = []

    def epoch(self, epoch: int, **logs: float) -> None:
        self.rows.append({"epoch": epoch, **logs})
        keys = sorted(k for k in self.rows[0] if k != "epoch")
        with self.path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["epoch", *keys])
            for row in self.rows:
                w.writerow([row["epoch"], *[_csv_value(row.get(k)) for k in keys]])


class TensorBoard:
    """tensorboardX SummaryWriter into a temp dir; the event file is then moved to a stable name."""

    def __init__(self, target: Path):
        from tensorboardX import SummaryWriter

        self.target = target
        self.tmp = Path(tempfile.mkdtemp(prefix="tb_"))
        self.writer = SummaryWriter(logdir=str(self.tmp), flush_secs=3600)

    def scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def close(self) -> None:
        self.writer.close()
        (event,) = self.tmp.glob("events.out.tfevents.*")
        self.target.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(event), self.target)
        shutil.rmtree(self.tmp, ignore_errors=True)
