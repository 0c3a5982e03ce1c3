"""Training's service-facing details, without a model run: metrics a platform can plot, progress in
service logs (resume states: test_resume.py)."""

from __future__ import annotations

import io
import logging
import sys

from adapter.training.callbacks import EpochMetrics, EpochReporter


def test_nan_and_inf_epoch_metrics_are_not_sent_and_the_log_names_them(caplog):
    sent = []
    metrics = EpochMetrics(lambda epoch, values: sent.append((epoch, values)) or True)

    with caplog.at_level(logging.WARNING):
        metrics.on_epoch_end(4, {"loss": float("nan"), "val_loss": 0.7, "accuracy": float("inf"), "val_accuracy": 0.5})
        metrics.on_epoch_end(5, {"loss": float("nan")})

    assert sent == [(4, [("loss", "validation", 0.7), ("accuracy", "validation", 0.5)])]  # nothing for epoch 6
    assert "Epoch 5 loss is nan" in caplog.text and "Epoch 5 accuracy is inf" in caplog.text


def test_multi_label_epochs_send_map_f1_and_each_classs_ap():
    sent = []
    metrics = EpochMetrics(lambda epoch, values: sent.append((epoch, values)) or True)

    metrics.on_epoch_end(2, {"loss": 0.4, "val_map": 0.8, "val_f1": 0.6, "val_ap/red": 0.9, "val_ap/big": 0.7})

    ((epoch, values),) = sent
    assert epoch == 2
    assert set(values) == {
        ("loss", "train", 0.4),
        ("mAP", "validation", 0.8),
        ("F1", "validation", 0.6),
        ("AP per class", "red", 0.9),
        ("AP per class", "big", 0.7),
    }


class Terminal(io.StringIO):
    def isatty(self):
        return True


def run_two_epochs(reporter: EpochReporter) -> None:
    for epoch in range(2):
        reporter.on_epoch_begin(epoch)
        for batch in range(3):
            reporter.on_train_batch_end(batch, {"loss": 0.5})
        reporter.on_epoch_end(epoch, {"loss": 0.5, "val_accuracy": 0.75})
    reporter.on_train_end()


def test_a_service_log_gets_one_line_per_epoch_and_no_progress_bar(caplog, monkeypatch):
    service_stderr = io.StringIO()  # not a terminal, as in a service's container
    monkeypatch.setattr(sys, "stderr", service_stderr)
    calls = []
    with caplog.at_level(logging.INFO, logger="adapter.training.callbacks"):
        run_two_epochs(EpochReporter(2, steps=3, on_epoch_end_callback=lambda i, n: calls.append((i, n))))

    assert service_stderr.getvalue() == ""
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(":")[0] for line in lines] == ["Epoch 1/2", "Epoch 2/2"]
    assert "loss 0.5000" in lines[0] and "val_accuracy 0.7500" in lines[0]
    assert calls == [(0, 2), (1, 2)]


def test_a_terminal_gets_a_progress_bar(monkeypatch):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)

    run_two_epochs(EpochReporter(2, steps=3))

    assert "epoch 1/2" in terminal.getvalue() and "\r" in terminal.getvalue()
