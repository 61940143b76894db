"""One number per run from its stored result: what a check's `metric` names.

`test_errors`           the selected epoch's value (the last one, or the best if the arm says `select: best`)
`first:train_acc`       epoch 1's value (e.g. area under the running train accuracy in epoch 1)
`mean:train_acc`        the mean over all epochs (area under the whole curve, per epoch)
`settle:train_loss`     the first epoch from which the value stays within 10% of its final value
`spread:train_loss`     std / |mean| over the last 5 epochs (how much the loss still moves)
Keys of `final` that are not per-epoch (bias-shift results such as `errors_after_holdout`) work as plain names.
"""
from __future__ import annotations

import math
import statistics

BAND = 0.10  # settle: relative band around the final value
LAST = 5     # spread: epochs at the end


def _series(result: dict, key: str) -> list[float]:
    return [float(e[key]) for e in result["epochs"]]


def settle_epoch(values: list[float], band: float = BAND) -> int:
    final = values[-1]
    tolerance = band * abs(final) if final else band
    epoch = len(values)
    for i in range(len(values) - 1, -1, -1):
        if abs(values[i] - final) > tolerance:
            break
        epoch = i + 1
    return epoch


def run_value(result: dict, metric: str) -> float:
    """NaN for a run that did not finish ('diverged'): the verdict counts it, never drops it."""
    if result["status"] != "done":
        return math.nan
    reducer, _, key = metric.rpartition(":")
    if not reducer:
        if key not in result["final"]:
            raise KeyError(f"metric '{metric}' is not in this run's results (has {sorted(result['final'])})")
        return float(result["final"][key])
    values = _series(result, key)
    if reducer == "first":
        return values[0]
    if reducer == "mean":
        return statistics.fmean(values)
    if reducer == "settle":
        return float(settle_epoch(values))
    if reducer == "spread":
        tail = values[-LAST:]
        return statistics.pstdev(tail) / abs(statistics.fmean(tail))
    raise KeyError(f"unknown metric reducer '{reducer}' in '{metric}'; known: first, mean, settle, spread")


REDUCERS = ("first", "mean", "settle", "spread")
EPOCH_KEYS = ("train_loss", "train_hard", "train_soft", "train_acc", "test_errors", "test_acc", "test_loss", "lr", "epoch")


def recorded_keys(teacher: bool, bias_shift: bool, holdout: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(per-epoch keys, keys only in `final`) that train.train records for a run of this shape."""
    epoch = EPOCH_KEYS + (("logit_gap",) if teacher else ())
    final: tuple[str, ...] = ()
    if bias_shift:
        final = ("shift_classes_test_count", "errors_before", "class_errors_before")
        for where in ("test", "holdout") if holdout else ("test",):
            final += tuple(f"{k}_{where}" for k in ("bias_tuned_on", "errors_after", "class_errors_after",
                                                    "class_acc_after", "error_reduction"))
    return epoch, final
