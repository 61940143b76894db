"""Results on disk: atomic, checksummed, never trusted when damaged."""
from __future__ import annotations

import json

import pytest

from repro.plan import plan_claim
from repro.spec import load_claim
from repro.store import CorruptResult, Store

from conftest import made_up_result

RUN = plan_claim(load_claim("claims/hinton-kd-helps.yaml"), "as_described", "smoke")["small"][0]
RESULT = made_up_result(RUN)


def saved(tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    path = store.path("smoke", "c", "v", "small", RUN)
    store.save(path, RUN, RESULT, {"git_commit": None})
    return store, path


def test_round_trip_and_key_in_name(tmp_path):
    store, path = saved(tmp_path)
    assert path.name == f"seed{RUN.seed}-{RUN.key[:12]}.json"
    assert store.find(path)["final"]["test_errors"] == 3
    assert not list(path.parent.glob("*.tmp"))  # the temporary file was renamed away


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],                           # truncated
    lambda text: text.replace('"test_errors": 3', '"test_errors": 1'),  # hand-edited
    lambda text: "[]",                                              # not a result
])
def test_damaged_results_are_detected(tmp_path, damage):
    store, path = saved(tmp_path)
    path.write_text(damage(path.read_text()))
    with pytest.raises(CorruptResult, match=str(path)):
        store.find(path)


def test_key_changes_with_the_spec_but_not_with_unrelated_defaults():
    other = RUN.model_copy(update={"seed": RUN.seed + 1})
    assert other.key != RUN.key
    same = type(RUN).model_validate(json.loads(RUN.model_dump_json()))
    assert same.key == RUN.key


def test_a_run_stored_for_another_claim_is_found_by_key(tmp_path):
    store, path = saved(tmp_path)  # stored under claim "c"; no done index (as in a fresh clone)
    found = store.done(RUN.key)
    assert found is not None and found["key"] == RUN.key
    assert store.done("0" * 64) is None


def test_stored_files_get_the_ordinary_file_mode(tmp_path):
    import os
    store, path = saved(tmp_path)
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's private 0600


def forged(path, **fields):
    """Rewrite a stored result with `fields` changed and a recomputed checksum (anyone can do that)."""
    from repro.store import checksum
    payload = {**json.loads(path.read_text()), **fields}
    payload["checksum"] = checksum(payload)
    path.write_text(json.dumps(payload))


@pytest.mark.parametrize("fields,fault", [
    ({"final": "oops"}, "final: expected a mapping"),
    ({"final": {"test_errors": "3"}}, "final: expected a mapping"),
    ({"final": {"test_errors": 10 ** 400}}, "final: expected a mapping"),  # an int no float holds: was OverflowError
    ({"wall_s": "slow"}, "wall_s: expected a finite number"),
    ({"wall_s": -1.0}, "wall_s: expected a finite number"),
    ({"status": "great"}, "status: expected one of"),
    ({"epochs": {"1": {}}}, "epochs: expected a list"),
    ({"device": 3}, "device: expected a string"),
    ({"provenance": "x"}, "provenance: expected a mapping"),
])
def test_retyped_results_with_a_recomputed_checksum_are_corrupt(tmp_path, fields, fault):
    store, path = saved(tmp_path)
    forged(path, **fields)
    with pytest.raises(CorruptResult, match=fault) as err:
        store.find(path, RUN.key)
    assert str(path) in str(err.value)


def test_a_result_is_only_used_for_the_run_it_is_filed_under(tmp_path):
    """Issue 14: a valid result copied over another seed's name was used silently (seed 0 counted twice)."""
    store, path = saved(tmp_path)
    other = plan_claim(load_claim("claims/hinton-kd-helps.yaml"), "as_described", "smoke")["small"][1]
    misfiled = store.path("smoke", "c", "v", "small", other)
    misfiled.write_text(path.read_text())  # seed 0's file under seed 1's name
    with pytest.raises(CorruptResult, match="not the one its name says"):
        store.find(misfiled, other.key)
    # a forged key (and recomputed checksum) under the right name is still not that run's result
    forged(path, key=RUN.key[:12] + "0" * 52)
    with pytest.raises(CorruptResult, match="is not the hash of its stored run spec"):
        store.find(path, RUN.key)
    assert store.done(other.key) is None  # done() skips it too


def test_smoke_results_are_git_ignored_and_quick_results_are_not():
    """smoke runs are a machinery check (synthetic data): they must never end up committed as evidence."""
    import shutil
    import subprocess
    if shutil.which("git") is None or subprocess.run(["git", "rev-parse"], capture_output=True).returncode:
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "-q", "results/smoke/c/v/a/seed0-0123456789ab.json"])
    assert ignored.returncode == 0
    assert subprocess.run(["git", "check-ignore", "-q", "results/quick/c/v/a/seed0-0123456789ab.json"]).returncode == 1


def test_committed_weights_serve_a_fresh_clone_and_are_never_deleted_when_damaged(tmp_path):
    import torch
    from repro.train import build_model
    store = Store(tmp_path / "results", tmp_path / "cache")
    model = build_model(RUN)
    store.shipped_weights(RUN).parent.mkdir(parents=True)
    torch.save({k: v + 1 for k, v in model.state_dict().items()}, store.shipped_weights(RUN))
    fresh = build_model(RUN)
    assert store.load_weights(RUN, fresh)  # the cache is empty: read from results/weights/
    assert all(torch.equal(a, b + 1) for a, b in zip(fresh.state_dict().values(), model.state_dict().values()))
    assert not store.load_weights(RUN, fresh, epoch=3)  # only final weights are committed
    store.shipped_weights(RUN).write_bytes(b"garbage")
    assert not store.load_weights(RUN, fresh) and store.shipped_weights(RUN).exists()
