"""The relations between a result's numbers (metrics.disagreement), which every stored file must satisfy: a
result edited in one number, with its checksum recomputed as anyone can, contradicts the numbers beside it."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hypothesis import given, strategies as st

from repro.metrics import SHIFT_KEYS, disagreement
from repro.store import CorruptResult, Store, checksum


@st.composite
def results(draw):
    """(epochs, final) as train.py computes them (error_metrics, bias_shift_metrics): per-class errors, their sum,
    1 - errors / n; with a bias shift, errors before and after on test and held-out tunings. Every count is at least
    1: a row of 0 errors pins its accuracy to 1 whatever the test set's size, and 0 class errors its class accuracy
    to 1 whatever the classes' count, so an edit of the size alone is invisible there."""
    n, classes = draw(st.integers(20, 20000)), draw(st.integers(2, 12))
    epochs = []
    for e in range(draw(st.integers(1, 4))):
        per_class = draw(st.lists(st.integers(0, max(1, n // (2 * classes))), min_size=classes, max_size=classes)
                         .filter(lambda x: sum(x) > 0))
        epochs.append({"epoch": e + 1, "test_errors": sum(per_class), "test_acc": 1 - sum(per_class) / n,
                       "test_errors_per_class": per_class, "test_loss": 0.5})
    final = dict(epochs[-1])
    if draw(st.booleans()):
        before, count = final["test_errors"], draw(st.integers(1, n))
        final.update(errors_before=before, shift_classes_test_count=count, class_errors_before=0)
        for where in ("test", "holdout"):
            after = draw(st.integers(1, n))
            class_after = draw(st.integers(1, min(after, count)))
            final.update({f"bias_tuned_on_{where}": -1.0, f"errors_after_{where}": after,
                          f"class_errors_after_{where}": class_after, f"class_acc_after_{where}": 1 - class_after / count,
                          f"error_reduction_{where}": 1 - after / max(before, 1)})
    return epochs, final


TIED = ("test_errors", "test_acc", "test_errors_per_class", "errors_before", "shift_classes_test_count",
        *(f"{k}_{w}" for k in SHIFT_KEYS if k != "bias_tuned_on" for w in ("test", "holdout")))


@given(results(), st.data())
def test_a_result_as_trained_agrees_and_any_one_tied_number_edited_does_not(result, data):
    epochs, final = result
    assert disagreement(epochs, final) is None
    rows = [*epochs, final]
    row = data.draw(st.sampled_from(rows))
    key = data.draw(st.sampled_from([k for k in TIED if k in row]))
    if key == "test_errors_per_class":
        i = data.draw(st.integers(0, len(row[key]) - 1))
        row[key] = [*row[key][:i], row[key][i] + data.draw(st.sampled_from([-1, 1, 7])), *row[key][i + 1:]]
    elif isinstance(row[key], int):
        row[key] += data.draw(st.sampled_from([-1, 1, 3]))
    else:  # an accuracy or a reduction nudged as a forger would round it: by a thousandth, or a millionth
        row[key] += data.draw(st.sampled_from([-1e-3, 1e-3, 1e-6, -1e-6]))
    assert disagreement(epochs, final) is not None, (key, row)


@pytest.mark.parametrize("per_class", [[-5, 10, 0], [2.5, 2.5, 0], [None, 5, 0]])
def test_per_class_errors_that_sum_right_but_are_not_counts_are_a_contradiction(per_class):
    row = {"test_errors": 5, "test_acc": 0.5, "test_errors_per_class": per_class}
    assert disagreement([row], dict(row)).startswith("epochs.0.test_errors_per_class: ")


def test_a_bias_shift_number_removed_is_a_contradiction_not_a_pass():
    final = {"test_errors": 20, "test_acc": 0.998, "errors_after_holdout": 5, "class_errors_after_holdout": 2,
             "class_acc_after_holdout": 0.99, "error_reduction_holdout": 0.75}  # errors_before, the count removed
    assert disagreement([dict(final)], final) == ("final.errors_before: None is not a count (a result with "
                                                  "bias-shift numbers has it)")


@given(results())
def test_errors_before_raised_with_the_reductions_recomputed_still_contradicts_the_test_errors(result):
    """Two numbers forged together, the baseline and the reduction it gives: tied to the final test_errors."""
    epochs, final = result
    if "errors_before" not in final:
        return
    final["errors_before"] += 100
    for where in ("test", "holdout"):
        final[f"error_reduction_{where}"] = 1 - final[f"errors_after_{where}"] / final["errors_before"]
    assert disagreement(epochs, final).startswith("final.errors_before: ")


def test_the_paper_only_7_8_result_with_its_decisive_number_forged_is_corrupt(tmp_path):
    """hinton-only-7-8's verdict reads error_reduction_holdout, a number only in `final`: raised from 0.716 to 0.9,
    checksum recomputed, it was used; now the store names it."""
    [shipped] = sorted(Path("results/paper/hinton-only-7-8/as_described/distilled_78").glob("seed0-*.json"))
    path = tmp_path / shipped.name
    shutil.copy(shipped, path)
    assert Store.load(path)["final"]["error_reduction_holdout"] == pytest.approx(0.7157, abs=1e-4)
    payload = json.loads(path.read_text())
    payload["final"]["error_reduction_holdout"] = 0.9
    payload["checksum"] = checksum(payload)
    path.write_text(json.dumps(payload))
    with pytest.raises(CorruptResult, match=r"final\.error_reduction_holdout: 0\.9 is not 1 - errors_after_holdout "
                                            r"/ errors_before \(570 / 2005\)"):
        Store.load(path)
