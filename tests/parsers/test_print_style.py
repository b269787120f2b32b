"""Hand-rolled print/logging training lines: counters, key-value pairs, splits, steps, segments."""

import math
from pathlib import Path

import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import print_style
from parsers.registry import detect
from parsers.source import ParseError, SourceFile


def _frame(text: str):
    frame = parse_text(print_style, text)[1].metrics
    validate_metrics(frame)
    return frame


def test_step_counters_with_totals_make_global_steps():
    frame = _frame(
        "Epoch [1/10], Step [100/600], Loss: 2.3012\n"
        "Epoch [1/10], Step [200/600], Loss: nan\n"
        "Epoch [2/10], Step [100/600], Loss: 1.9000\n"
    )
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(100, 1), (200, 2), (700, 3)]
    assert loss[0][1] == 2.3012 and math.isnan(loss[1][1])
    assert frame["epoch"].tolist() == [1.0, 1.0, 2.0]
    assert frame["name"].tolist() == ["Loss"] * 3


def test_a_global_iteration_counter_is_the_step():
    frame = _frame("epoch 3 iter 200 loss=0.71 lr=1e-3\nepoch 4 iter 400 loss=0.69 lr=1e-4\n")
    assert rows(frame, "loss") == [(200, 0.71, 1), (400, 0.69, 2)]
    assert rows(frame, "lr") == [(200, 1e-3, 1), (400, 1e-4, 2)]


def test_an_evaluation_that_prints_the_global_iteration_sits_there():
    # A hand-written loop that evaluates every other step and logs training every 4 (the corpus's char-LM
    # logs): each evaluation at its own step, not piled onto the last training line's.
    frame = _frame(
        "epoch 1 step 2 val_loss 2.6936 val_acc 0.1619\n"
        "epoch 2 step 4 loss 2.3451 lr 1\n"
        "epoch 2 step 4 val_loss 2.7113 val_acc 0.1785\n"
        "epoch 3 step 6 val_loss 2.8751 val_acc 0.1860\n"
        "epoch 4 step 8 loss 1.5194 lr 1\n"
    )
    assert rows(frame, "loss", "val") == [(2, 2.6936, 1), (4, 2.7113, 3), (6, 2.8751, 4)]
    assert rows(frame, "loss") == [(4, 2.3451, 2), (8, 1.5194, 5)]


def test_an_evaluation_loops_own_batch_counter_is_not_a_step():
    frame = _frame(
        "epoch 1 iter 200 loss=0.71\n"
        "Test: [10/40] loss: 0.90 acc: 61.0\n"
        "Test: [300/400] loss: 0.80 acc: 62.0\n"
        "epoch 2 iter 400 loss=0.69\n"
    )
    assert [step for step, _, _ in rows(frame, "loss", "test")] == [200, 200]


def test_pipe_separated_fields_and_aliases():
    frame = _frame(
        "INFO:__main__:Epoch 0 | Step    0/6501 | Loss: 8.9351 | PPL: 7594.22 | LR: 3.27e-05 | Grad: 20.697 | Time: 1.073s\n"
        "INFO:__main__:Epoch 1 | Step 6500/6501 | Loss: 0.4631 | PPL: 1.61 | LR: 1.00e-06 | Grad: 0.618 | Time: 0.130s\n"
        "INFO:__main__:📊 Evaluation Results:\n"
        "INFO:__main__:   Loss: 0.4887\n"
        "INFO:__main__:   Perplexity: 1.63\n"
        "INFO:__main__:✅ Epoch 1 completed in 4730.85s | Avg Loss: 0.4735\n"
        "INFO:__main__:🎉 Final Results: Loss=0.4886, PPL=1.63\n"
    )
    assert rows(frame, "loss") == [(0, 8.9351, 1), (13001, 0.4631, 2)]
    assert rows(frame, "perplexity")[1] == (13001, 1.61, 2)
    assert rows(frame, "grad_norm")[0] == (0, 20.697, 1)
    assert rows(frame, "lr")[0] == (0, 3.27e-05, 1)
    # the evaluation block below its header line, and the epoch summary, at the last step
    assert rows(frame, "loss", "val") == [(13001, 0.4887, 4)]
    assert rows(frame, "perplexity", "val") == [(13001, 1.63, 5)]
    assert frame.loc[frame["split"] == "val", "name"].tolist() == ["Evaluation Loss", "Evaluation Perplexity"]
    assert rows(frame, "avg_loss") == [(13001, 0.4735, 6)]
    assert 7 not in set(frame["line"])  # the final summary is not a point of the curve
    assert "time" not in set(frame["metric"])


def test_per_epoch_lines_with_train_and_test_splits_and_wall_time():
    frame = _frame(
        "2022-10-17 20:16:36,492 - train.py[line:123] - INFO: Train Epoch 1 --- train loss : 0.6283 --- "
        "train accuracy:0.8382\n"
        "2022-10-17 20:16:37,746 - train.py[line:145] - INFO: Test Epoch 1 --- test loss : 0.3568 --- "
        "test accuracy:0.9032\n"
        "2022-10-17 20:17:50,512 - train.py[line:123] - INFO: Train Epoch 2 --- train loss : 0.3349 --- "
        "train accuracy:0.9083\n"
    )
    assert rows(frame, "loss") == [(1, 0.6283, 1), (2, 0.3349, 3)]
    assert rows(frame, "accuracy", "test") == [(1, 0.9032, 2)]
    assert frame.groupby("line")["wall_time"].first().to_dict() == pytest.approx({1: 0.0, 2: 1.254, 3: 74.02})


def test_noise_lines_and_val_keys():
    frame = _frame(
        "nohup: ignoring input\n"
        "/home/x/tokenization_marian.py:175: UserWarning: Recommended: pip install sacremoses.\n"
        '  warnings.warn("Recommended: pip install sacremoses.")\n'
        "开始训练...\n"
        "Epoch 1/100 - Train Loss: 4.0520, Val Loss: 3.2508\n"
        "  保存最佳模型 (val_loss=3.2508)\n"
        "Epoch 2/100 - Train Loss: 3.1246, Val Loss: 2.8442\n"
    )
    assert rows(frame, "loss") == [(1, 4.052, 5), (2, 3.1246, 7)]
    assert rows(frame, "loss", "val") == [(1, 3.2508, 5), (2, 2.8442, 7)]
    assert set(frame["line"]) == {5, 7}


def test_underscore_split_keys_and_the_pytorch_tutorial_counter():
    frame = _frame(
        "[1,    10] loss: 2.306\n"
        "[1,    20] loss: 2.307\n"
        "Epoch [1/12] val_loss: 1.0256, val_acc: 80.90 %\n"
        "[2,    10] loss: 2.1\n"
        "2026-11-24 10:15:03,243 INFO: Test set: Average loss: nan, Accuracy: 10.0%\n"
    )
    # the batch counter starts again each epoch: epoch 2's batch 10 is step 20 + 10
    assert rows(frame, "loss") == [(10, 2.306, 1), (20, 2.307, 2), (30, 2.1, 4)]
    assert rows(frame, "loss", "val") == [(20, 1.0256, 3)]
    assert rows(frame, "accuracy", "val") == [(20, 80.9, 3)]
    assert frame.loc[frame["line"] == 3, "name"].tolist() == ["val_loss", "val_acc"]
    test_loss = rows(frame, "loss", "test")  # an averaged loss is the loss of its split
    assert [(s, ln) for s, _, ln in test_loss] == [(30, 5)] and math.isnan(test_loss[0][1])
    assert frame.loc[frame["line"] == 4, "epoch"].iloc[0] == 2.0


def test_batch_losses_and_epoch_averages():
    frame = _frame(
        "2025-03-02 05:16:20,962 - INFO - Epoch 1 - Batch loss: 12.1336\n"
        "2025-03-02 05:16:22,229 - INFO - Epoch 1 - Batch loss: 14.9769\n"
        "2025-03-02 05:24:38,655 - INFO - Epoch 1 - Average Train Loss: 1.6334\n"
        "2025-03-02 05:34:00,482 - INFO - Epoch 1 - Validation BLEU: BLEU-1 71.65, BLEU-2 65.76\n"
        "2025-03-02 05:34:01,370 - INFO - Epoch 1 - New best model saved with BLEU-2: 65.76\n"
        "2025-03-02 05:34:22,147 - INFO - Epoch 1 - Dev BLEU: BLEU-1 63.88, BLEU-2 59.46\n"
        "2025-03-02 05:34:23,000 - INFO - Epoch 2 - Batch loss: 0.5\n"
    )
    assert rows(frame, "loss_raw") == [(1, 12.1336, 1), (2, 14.9769, 2), (4, 0.5, 7)]
    assert rows(frame, "loss") == [(3, 1.6334, 3)]
    val = frame[frame["split"] == "val"]
    assert list(zip(val["name"], val["value"], val["step"], strict=True)) == [
        ("Validation BLEU-1", 71.65, 3),
        ("Validation BLEU-2", 65.76, 3),
        ("Dev BLEU-1", 63.88, 3),
        ("Dev BLEU-2", 59.46, 3),
    ]
    assert set(val["metric"]) == {"bleu_1", "bleu_2"}
    assert 5 not in set(frame["line"])


def test_appended_runs_with_ctime_stamps_are_segments():
    frame = _frame(
        "Wed Oct 28 02:19:41 2020 Epoch 0, lr: 0.0001000, val loss: 149.25757, acc: 45.81000\n"
        "Wed Oct 28 02:20:50 2020 Epoch 1, lr: 0.0001000, val loss: 130.75906, acc: 52.83000\n"
        "Thu Jan  6 13:28:41 2022 Epoch 0, lr: 0.0010000, val loss: 165.03876, acc: 38.76000\n"
        "Thu Mar 31 12:34:37 2022 Epoch 0, lr: 0.0010000, val loss: 165.58318, acc: 39.61000\n"
    )
    assert rows(frame, "loss", "val") == [
        (0, 149.25757, 1),
        (1, 130.75906, 2),
        (0, 165.03876, 3),
        (0, 165.58318, 4),
    ]
    assert rows(frame, "accuracy", "val")[0] == (0, 45.81, 1)
    assert rows(frame, "lr")[2] == (0, 0.001, 3)
    assert frame.groupby("line")["segment"].first().to_dict() == {1: 0, 2: 0, 3: 1, 4: 2}
    assert frame.loc[frame["line"] == 2, "wall_time"].iloc[0] == 69.0


def test_torchvision_metric_logger_running_averages_are_dropped():
    frame = _frame(
        "Epoch: [0]  [   0/1563]  eta: 0:52:10  lr: 0.1  img/s: 120.5  loss: 6.9078 (6.9078)  "
        "acc1: 0.0000 (0.0000)  acc5: 0.0000 (0.0000)  time: 2.0030  data: 1.5000  max mem: 5434\n"
        "Epoch: [0]  [ 100/1563]  eta: 0:02:10  lr: 0.1  img/s: 500.2  loss: 6.1000 (6.5000)  "
        "acc1: 3.1250 (1.2000)  acc5: 9.3750 (5.1000)  time: 0.2000  data: 0.0001  max mem: 5434\n"
        "Test:  Acc@1 71.200 Acc@5 90.100\n"
        "Epoch: [1]  [   0/1563]  eta: 0:52:10  lr: 0.1  img/s: 120.5  loss: 5.5000 (5.5000)\n"
    )
    assert rows(frame, "loss") == [(0, 6.9078, 1), (100, 6.1, 2), (1563, 5.5, 4)]
    assert rows(frame, "accuracy")[1] == (100, 3.125, 2)
    assert rows(frame, "top5")[1] == (100, 9.375, 2)
    assert rows(frame, "accuracy", "test") == [(100, 71.2, 3)]
    assert rows(frame, "top5", "test") == [(100, 90.1, 3)]
    assert not {"eta", "img/s", "time", "data", "max_mem"} & set(frame["metric"])


def test_timm_train_and_test_lines():
    frame = _frame(
        "Train: 0 [1250/1251 (100%)]  Loss: 6.912 (6.950)  Time: 0.339s,  755.43/s  (0.339s,  755.43/s)  "
        "LR: 1.000e-04  Data: 0.012 (0.014)\n"
        "Test: [  48/48]  Time: 0.100 (0.200)  Loss:  1.2000 (1.3000)  Acc@1: 70.0000 (71.0000)  "
        "Acc@5: 89.0000 (90.0000)\n"
        "Train: 1 [ 100/1251 (8%)]  Loss: 6.789 (6.901)  Time: 0.339s,  755.43/s  (0.339s,  755.43/s)  "
        "LR: 1.000e-03  Data: 0.012 (0.014)\n"
    )
    assert rows(frame, "loss") == [(1250, 6.912, 1), (1351, 6.789, 3)]
    assert rows(frame, "loss", "test") == [(1250, 1.2, 2)]
    assert rows(frame, "accuracy", "test") == [(1250, 70.0, 2)]
    assert rows(frame, "lr")[1] == (1351, 1e-03, 3)


def test_swav_batch_counters_without_totals_step_evenly_across_epochs():
    frame = _frame(
        "INFO - 09/02/20 14:18:08 - 0:00:30 - Epoch: [0][0]\tTime 5.399 (5.399)\tData 0.725 (0.725)\t"
        "Loss 4.2811 (4.2811)\tLr: 0.0000\n"
        "INFO - 09/02/20 14:19:41 - 0:02:03 - Epoch: [0][50]\tTime 2.376 (1.927)\tData 0.000 (0.014)\t"
        "Loss 4.2079 (4.2377)\tLr: 0.0019\n"
        "INFO - 09/02/20 14:58:42 - 0:01:25 - Epoch: [1][0]\tTime 2.386 (2.386)\tData 1.695 (1.695)\t"
        "Loss 3.9151 (3.9151)\tLr: 0.0601\n"
        "INFO - 09/02/20 16:04:30 - 0:01:24 - Epoch: [0][0]\tTime 2.523 (2.523)\tData 1.852 (1.852)\t"
        "Loss 4.0515 (4.0515)\tLr: 0.0060\n"
    )
    loss = frame[frame["metric"] == "loss"]
    # batches 0 and 50 printed in each epoch: an epoch spans 100 steps (prints every 50); the run
    # appended after it starts again at epoch 0
    assert list(zip(loss["step"], loss["value"], loss["segment"], strict=True)) == [
        (0, 4.2811, 0),
        (50, 4.2079, 0),
        (100, 3.9151, 0),
        (0, 4.0515, 1),
    ]
    assert loss["wall_time"].tolist() == [0.0, 93.0, 2434.0, 6382.0]


def test_tqdm_postfix_after_a_carriage_return():
    text = (
        "Epoch 3:  50%|█████     | 300/600 [00:05<00:05, 55.1it/s, loss=0.223, acc=0.85]\r"
        "Epoch 3: 100%|██████████| 600/600 [00:10<00:00, 55.0it/s, loss=0.123, acc=0.9]\n"
    )
    frame = _frame(text)
    assert rows(frame, "loss") == [(1500, 0.223, 1), (1800, 0.123, 2)]
    assert rows(frame, "accuracy")[1] == (1800, 0.9, 2)


def test_csv_like_text():
    frame = _frame("epoch,loss,ppl,accuracy\n0, 9.15862, 9495.92153,0.023\n1, 9.14787, 9394.42718,8.785\n")
    assert rows(frame, "loss") == [(0, 9.15862, 2), (1, 9.14787, 3)]
    assert rows(frame, "perplexity")[1] == (1, 9394.42718, 3)
    assert rows(frame, "accuracy")[0] == (0, 0.023, 2)


def test_sniff_is_a_fallback_and_prose_is_not_a_log():
    source = SourceFile.from_bytes("x.log", b"Epoch 1 loss 0.5\nEpoch 2 loss 0.4\nEpoch 3 loss 0.3\n")
    assert print_style.sniff(source) == 0.4
    assert print_style.sniff(SourceFile.from_bytes("x", b"hello world\n")) == 0.0
    with pytest.raises(ParseError):
        parse_text(print_style, "Building model...\nTrainable ratio: 0.32 (32.00%)\n")


REAL = {
    # file: (first train loss (line, step, value), train loss count, first val/test loss (line, step, value))
    "print_style/emotion_tcn_logging.log": ((1, 1, 0.0717), 500, (1, 1, 0.0766)),
    "print_style/gpt2_lora_alpaca.log": ((383, 0, 8.9351), 1302, (1037, 6500, 0.5301)),
    "print_style/nmt_transformer_epoch_loss_ppl_acc.log": ((2, 0, 9.15862), 400, None),
    "print_style/numpy_mlp_mnist.log": ((1, 1, 0.6283828736781677), 50, (2, 1, 0.3568989852164526)),
    "print_style/seq2seq_mt_en2zh.log": ((17, 0, 11.2338), 52, (17, 0, 10.9681)),
    "print_style/t5_finetune_batchloss_bleu.log": ((390, 389, 1.6334), 20, None),
    "print_style/transformer_en_de_marian_tokenizer.log": ((7, 1, 4.052), 100, (7, 1, 3.2508)),
    "print_style/vit_cifar10_patch4_appended_runs.txt": (None, 0, (1, 0, 149.25757)),
    "other/swav_cifar10_pretrain.log": ((2100, 0, 4.2811), 1164, None),
}


@pytest.mark.parametrize("relative", sorted(REAL))
def test_real_logs(relative):
    path = real_log(relative)
    source = SourceFile.from_bytes(path.name, path.read_bytes())
    if "nmt_" not in relative:  # a CSV that the Keras CSVLogger plug-in reads as well
        assert detect(source)[0] == "print_style"
    parsed = print_style.parse(source)
    frame = parsed.metrics
    validate_metrics(frame)
    first, count, first_val = REAL[relative]
    train = frame[(frame["metric"] == "loss") & (frame["split"] == "train")]
    assert len(train) == count
    if first:
        assert tuple(train[["line", "step", "value"]].iloc[0]) == first
    held_out = frame[(frame["metric"] == "loss") & frame["split"].isin(["val", "test"])]
    if first_val:
        assert tuple(held_out[["line", "step", "value"]].iloc[0]) == first_val
    assert len(train) + len(held_out) > 0


def test_real_quirks():
    t5 = print_style.parse(
        SourceFile.from_bytes("t5", real_log("print_style/t5_finetune_batchloss_bleu.log").read_bytes())
    )
    raw = t5.metrics[t5.metrics["metric"] == "loss_raw"]
    assert len(raw) == 7760 and tuple(raw[["line", "step", "value"]].iloc[0]) == (2, 1, 12.1336)
    vit = print_style.parse(
        SourceFile.from_bytes(
            "vit", real_log("print_style/vit_cifar10_patch4_appended_runs.txt").read_bytes()
        )
    )
    starts = vit.metrics.groupby("segment")["line"].min().tolist()
    assert starts == [1, 50, 73, 74, 76, 126]  # runs appended at lines 50, 73, 74, 76, 126
    swav = print_style.parse(
        SourceFile.from_bytes("swav", real_log("other/swav_cifar10_pretrain.log").read_bytes())
    )
    # four runs appended, each from epoch 0 (lines 2100, 2347, 2982, 3758): the first, cut short in
    # epoch 0, is told from the second by its batch counter going back
    assert swav.metrics.groupby("segment")["line"].min().tolist() == [2100, 2347, 2982, 3758]
    assert (swav.meta.base_lr, swav.meta.epochs, swav.meta.precision) == (0.6, 400, "fp16")
    gpt2 = print_style.parse(
        SourceFile.from_bytes("gpt2", real_log("print_style/gpt2_lora_alpaca.log").read_bytes())
    )
    assert (gpt2.meta.base_lr, gpt2.meta.optimizer, gpt2.meta.clip_gradients) == (0.0003, "adamw", 1.0)


def test_tutorial_counter_every_two_epochs_with_an_evaluation_each_epoch():
    """A real corpus run (`[epoch, batch]` every 10 batches of 5-batch epochs, a counter-less evaluation
    after every epoch): the steps are the run's iterations, and the two evaluations between two training
    lines are spread over the gap instead of stacking on one step."""
    runs = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs"
    log = load_paths([runs / "mlp_042_healthy_finetune_frozen" / "train.log.gz"])
    frame = log.metrics
    assert rows(frame, "loss")[:3] == [(10, 1.246, 7), (20, 1.059, 10), (30, 0.948, 13)]
    val = rows(frame, "loss", "val")
    assert val[:5] == [(0, 1.224, 6), (10, 1.131, 8), (15, 1.066, 9), (20, 1.01, 11), (25, 0.962, 12)]
    assert len({step for step, _, _ in val}) == len(val) == 20  # one evaluation per epoch, none stacked
    assert val[-1] == (100, 0.682, 35)  # after the last training line: at it


def test_evaluations_spread_only_when_they_repeat_a_metric():
    frame = _frame(
        "[1,   100] loss: 2.0\n"
        "Validation loss: 1.9\n"
        "Validation accuracy: 30.0\n"
        "Validation loss: 1.8\n"
        "Validation accuracy: 35.0\n"
        "Validation loss: 1.7\n"
        "Validation accuracy: 40.0\n"
        "[2,   100] loss: 1.6\n"
        "Test: [10/20] Acc@1 41.0\n"
        "Test: [20/20] Acc@1 42.0\n"
        "[3,   100] loss: 1.5\n"
        "Validation loss: 1.4\n"
        "Validation loss: 1.3\n"
    )
    assert rows(frame, "loss") == [(100, 2.0, 1), (200, 1.6, 8), (300, 1.5, 11)]
    # three evaluations of two lines each between steps 100 and 200: 100, 133, 166
    assert rows(frame, "loss", "val")[:3] == [(100, 1.9, 2), (133, 1.8, 4), (166, 1.7, 6)]
    assert rows(frame, "accuracy", "val") == [(100, 30.0, 3), (133, 35.0, 5), (166, 40.0, 7)]
    # an evaluation loop's own progress lines carry a counter: one evaluation, not spread
    assert [step for step, _, _ in rows(frame, "accuracy", "test")] == [200, 200]
    # after the last training line there is no next step to spread up to
    assert rows(frame, "loss", "val")[3:] == [(300, 1.4, 12), (300, 1.3, 13)]


def test_two_sets_evaluated_together_stay_on_one_step():
    """A value met again starts the next evaluation; the same metric under another name (a second
    evaluation set, as the real t5 log's `Validation BLEU-1` and `Dev BLEU-1`) does not."""
    frame = _frame(
        "[1,   100] loss: 2.0\n"
        "Validation BLEU-1: 60.0\n"
        "Dev BLEU-1: 55.0\n"
        "Validation BLEU-1: 61.0\n"
        "Dev BLEU-1: 56.0\n"
        "[2,   100] loss: 1.6\n"
    )
    bleu = frame[frame["metric"] == "bleu_1"]
    assert list(zip(bleu["step"], bleu["name"], strict=True)) == [
        (100, "Validation BLEU-1"),
        (100, "Dev BLEU-1"),
        (150, "Validation BLEU-1"),
        (150, "Dev BLEU-1"),
    ]


def test_pytorch_mnist_example_accuracy_is_the_percentage():
    """pytorch/examples' MNIST `main.py` prints the test accuracy as correct/total (percent); the
    percentage is the accuracy (before, the fraction left no value at all)."""
    frame = _frame(
        "Train Epoch: 1 [0/60000 (0%)]\tLoss: 2.305\n"
        "Train Epoch: 1 [30080/60000 (50%)]\tLoss: 0.310\n"
        "Train Epoch: 1 [59520/60000 (99%)]\tLoss: 0.090\n"
        "\n"
        "Test set: Average loss: 0.0544, Accuracy: 9826/10000 (98%)\n"
        "\n"
        "Train Epoch: 2 [0/60000 (0%)]\tLoss: 0.070\n"
        "Train Epoch: 2 [30080/60000 (50%)]\tLoss: 0.060\n"
        "Train Epoch: 2 [59520/60000 (99%)]\tLoss: 0.050\n"
        "\n"
        "Test set: Average loss: 0.0400, Accuracy: 9870/10000 (98.70%)\n"
    )
    assert rows(frame, "loss", "test") == [(3, 0.0544, 5), (6, 0.04, 11)]
    assert rows(frame, "accuracy", "test") == [(3, 98.0, 5), (6, 98.7, 11)]


def test_batch_counter_printed_every_k_global_steps_keeps_even_steps():
    """resnet_008 (a real corpus run) prints every 5 global steps of 16-batch epochs, so the batch
    printed shifts each epoch (`[1, 15]`, `[2, 4]`): the span that keeps the prints 5 apart is 16, the
    true epoch length (the batches printed plus one gap, 15 - 1 + 5 = 19, would not be)."""
    runs = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs"
    frame = load_paths([runs / "resnet_008_nan_pixels_batch" / "train.log.gz"]).metrics
    steps = [step for step, _, _ in rows(frame, "loss")]
    # the user stopped it (Ctrl-C) with `[6, 3]`: batch 3 of epoch 6 is 5 * 16 + 3
    assert steps == [*range(5, 81, 5), 83]
