"""One number per run from its stored result: what a check's `metric` names.

A metric is a per-epoch key (EPOCH_KEYS), optionally behind a reducer (REDUCERS) as `reducer:key`;
without a reducer it is the selected epoch's value (the last one, or the best with `select: best`).
Keys of `final` that are not per-epoch (FINAL_KEYS: bias-shift results) work as plain names.
docs/spec-reference.md lists all three (`repro reference` writes it from these tables). `disagreement` holds
the relations between a result's numbers, which the store checks in every file it reads.
"""
from __future__ import annotations

import math
import statistics

BAND = 0.10  # settle: relative band around the final value
LAST = 5     # spread: epochs at the end

# What train.py records for every epoch (tests/test_train.py checks a run records exactly these).
EPOCH_KEYS = {
    "epoch": "the epoch number, from 1",
    "lr": "the learning rate used in the epoch",
    "train_loss": "mean training loss over the epoch (what was backpropagated)",
    "train_hard": "mean hard-label term of the loss (unweighted)",
    "train_soft": "mean teacher term of the loss (unweighted; 0 without a teacher)",
    "train_acc": "running training accuracy over the epoch (on augmented batches, in train mode)",
    "test_errors": "misclassified test images",
    "test_acc": "test accuracy (1 - test_errors / test images)",
    "test_loss": "cross-entropy on the test set",
    "test_errors_per_class": "misclassified test images per true class (a list; not a check metric)",
    "logit_gap": "arms with a teacher: mean |teacher logit - student logit| on the test set",
    "fidelity": "arms with a teacher: top-1 agreement with the teacher on the test set (Stanton et al. 2021); "
                "recorded by runs trained since it was added",
    "step_acc": "with log_steps: training accuracy of every step (a list; not in `final`)",
}
REDUCERS = {
    "first": "epoch 1's value (e.g. first:train_acc, the area under the running accuracy in epoch 1)",
    "mean": "the mean over all epochs (e.g. mean:train_acc, the area under the whole curve, per epoch)",
    "settle": f"the first epoch from which the value stays within {BAND:.0%} of its final value",
    "spread": f"std / |mean| over the last {LAST} epochs (how much the value still moves)",
}
FINAL_KEYS = {
    "errors_before": "with bias_shift: test errors before the shift",
    "errors_after_holdout": "with bias_shift: test errors after the shift tuned on held-out training images",
    "errors_after_test": "with bias_shift: test errors after the shift tuned on the test set (as the paper did)",
    "class_acc_after_holdout": "with bias_shift: accuracy on the shifted classes after the held-out-tuned shift",
    "error_reduction_holdout": "with bias_shift: 1 - errors_after_holdout / errors_before",
    "teacher_test_errors": "with teacher_checkpoint: the checkpoint teacher's misclassified test images",
    "teacher_test_acc": "with teacher_checkpoint: the checkpoint teacher's test accuracy",
}
CHECKPOINT_KEYS = ("teacher_test_errors", "teacher_test_acc")  # in `final`, recorded by checkpoint students
SHIFT_KEYS = ("bias_tuned_on", "errors_after", "class_errors_after", "class_acc_after", "error_reduction")  # + _test, _holdout


FLOAT_MAX = 1.7976931348623157e308
TIE = 1e-9  # how far a stored ratio may sit from its definition: rounding (1 - e/n against (n - e)/n), not an edit


def is_number(x) -> bool:
    """A stored number: an int or float (not a bool), and an int a float can hold (JSON reads 1e400 as inf but
    a 400-digit integer as an int, which math.isfinite and every float operation refuse with OverflowError)."""
    return isinstance(x, float) or isinstance(x, int) and not isinstance(x, bool) and abs(x) <= FLOAT_MAX


def is_seconds(x) -> bool:
    """A stored duration: a finite number of seconds >= 0 (a result's wall_s, a retrain's retrained_wall_s)."""
    return is_number(x) and math.isfinite(x) and x >= 0


def _near(x, expected: float) -> bool:
    return is_number(x) and math.isclose(x, expected, rel_tol=0, abs_tol=TIE)


def _count(x) -> bool:
    return is_number(x) and (isinstance(x, int) or x.is_integer())


def disagreement(epochs: list[dict], final: dict) -> str | None:
    """Where a result's numbers contradict the definitions train.py computes them by, or None. These tie the
    number a check reads to the numbers beside it, in every stored file, so a forger who edits one (say the
    bias-shift error_reduction a verdict reads) must edit them all consistently; it proves nothing about a
    consistent forgery (that is `repro verify`'s job). Checked where the keys are present:
    - test_errors is the sum of test_errors_per_class, each a count;
    - test_acc is 1 - test_errors / n, one test-set size n for every epoch (and the checkpoint teacher's);
    - with bias_shift: errors_before is the final test_errors, error_reduction_W is 1 - errors_after_W /
      errors_before, class_acc_after_W is 1 - class_errors_after_W / shift_classes_test_count, and no class
      count exceeds the errors it is part of or the classes' test images."""
    rows = [(f"epochs.{i}", e) for i, e in enumerate(epochs)] + [("final", final)]
    pairs = [(where, m.get("test_errors"), m.get("test_acc")) for where, m in rows]
    pairs.append(("final.teacher_test_*", final.get("teacher_test_errors"), final.get("teacher_test_acc")))
    for where, m in rows:
        per_class, errors = m.get("test_errors_per_class"), m.get("test_errors")
        if isinstance(per_class, list) and not all(_count(c) and c >= 0 for c in per_class):
            return f"{where}.test_errors_per_class: {str(per_class)[:60]} holds a value that is not a count"
        if isinstance(per_class, list) and _count(errors) and sum(per_class) != errors:
            return f"{where}.test_errors: {errors} is not the sum of its test_errors_per_class ({sum(per_class)})"
    pairs = [(w, e, a) for w, e, a in pairs if _count(e) and is_number(a) and math.isfinite(a)]
    sizes = [(w, e / (1 - a)) for w, e, a in pairs if e > 0 and a < 1]
    n = round(sizes[0][1]) if sizes else None
    for where, errors, acc in pairs:
        expected = 1.0 if errors == 0 else (1 - errors / n if n else None)
        if expected is not None and not _near(acc, expected):
            return (f"{where}: test_acc {acc!r} is not 1 - test_errors / test images ({errors} errors"
                    + (f" of {n}, as the result's other epochs say" if n else "") + ")")
    shifted = [w for w in ("test", "holdout") if any(f"{k}_{w}" in final for k in SHIFT_KEYS)]
    if not shifted and "errors_before" not in final and "shift_classes_test_count" not in final:
        return None
    before, count = final.get("errors_before"), final.get("shift_classes_test_count")
    for key, value in (("errors_before", before), ("shift_classes_test_count", count)):
        if not (_count(value) and value >= 0):
            return f"final.{key}: {value!r} is not a count (a result with bias-shift numbers has it)"
    if _count(final.get("test_errors")) and before != final["test_errors"]:
        return f"final.errors_before: {before!r} is not the final test_errors ({final['test_errors']})"
    for where in shifted:
        after, class_after = final.get(f"errors_after_{where}"), final.get(f"class_errors_after_{where}")
        if not (_count(after) and after >= 0):
            return f"final.errors_after_{where}: {after!r} is not a count of errors"
        if not _near(final.get(f"error_reduction_{where}"), 1 - after / max(before, 1)):
            return (f"final.error_reduction_{where}: {final.get(f'error_reduction_{where}')!r} is not 1 - "
                    f"errors_after_{where} / errors_before ({after} / {before})")
        if not (_count(class_after) and 0 <= class_after <= min(after, count)):
            return (f"final.class_errors_after_{where}: {class_after!r} is not a count of at most the errors after "
                    f"({after}) and the shifted classes' test images ({count})")
        if not _near(final.get(f"class_acc_after_{where}"), 1 - class_after / max(count, 1)):
            return (f"final.class_acc_after_{where}: {final.get(f'class_acc_after_{where}')!r} is not 1 - "
                    f"class_errors_after_{where} / shift_classes_test_count ({class_after} / {count})")
    return None


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
    raise KeyError(f"unknown metric reducer '{reducer}' in '{metric}'; known: {', '.join(REDUCERS)}")


TEACHER_KEYS = ("logit_gap", "fidelity")  # recorded only by arms with a teacher
LIST_KEYS = ("test_errors_per_class", "step_acc")  # lists: not a check metric


def recorded_keys(teacher: bool, bias_shift: bool, holdout: bool,
                  checkpoint: bool = False) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(per-epoch keys, keys only in `final`) that train.train records for a run of this shape."""
    epoch = tuple(k for k in EPOCH_KEYS if k not in LIST_KEYS and (teacher or k not in TEACHER_KEYS))
    final: tuple[str, ...] = CHECKPOINT_KEYS if checkpoint else ()
    if bias_shift:
        final = ("shift_classes_test_count", "errors_before", "class_errors_before")
        for where in ("test", "holdout") if holdout else ("test",):
            final += tuple(f"{k}_{where}" for k in SHIFT_KEYS)
    return epoch, final
