"""Stored-state faults: a damaged teacher checkpoint, resume file or done pointer is a one-line warning
naming the file, then that run is retrained with the same seed and the same numbers; no moment of a
kill loses a finished run; nothing is written outside the results root and cache."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from repro.plan import Job, plan_claim
from repro.run import LocalExecutor
from repro.spec import load_claim
from repro.store import OutsideStore, Store
from repro.train import train

from conftest import made_up_result

CPU = torch.device("cpu")
CLAIM = load_claim("claims/hinton-kd-helps.yaml")
RUNS = plan_claim(CLAIM, "as_described", "smoke")
STUDENT = RUNS["distilled"][0]
TEACHER = STUDENT.teacher


def quiet_executor(tmp_path, **kw):
    return LocalExecutor(Store(tmp_path / "results", tmp_path / "cache"), CPU, log=lambda msg: None, **kw)


def without_time(result):
    return {k: v for k, v in result.items() if k != "wall_s"}


def weights(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


DAMAGES = {
    "truncated": lambda path, other: path.write_bytes(path.read_bytes()[: path.stat().st_size // 2]),
    "garbage": lambda path, other: path.write_bytes(os.urandom(3000)),
    "empty": lambda path, other: path.write_bytes(b""),
    "mismatched": lambda path, other: path.write_bytes(other.read_bytes()),  # another run's file
}


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_teacher_checkpoint_is_retrained_with_the_same_numbers(damage, tmp_path, capfd):
    executor = quiet_executor(tmp_path)
    first = weights(executor.trained_model(TEACHER))
    executor.trained_model(RUNS["small"][0])  # another run's weights: a file of the wrong shapes
    path = executor.store.checkpoint_path(TEACHER)
    DAMAGES[damage](path, executor.store.checkpoint_path(RUNS["small"][0]))
    capfd.readouterr()

    again = weights(executor.trained_model(TEACHER))
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: damaged weights (") \
        and err[0].endswith("); retraining the run")
    assert again.keys() == first.keys() and all(torch.equal(again[k], first[k]) for k in first)


@pytest.mark.parametrize("damage", DAMAGES)
def test_a_damaged_resume_file_is_retrained_from_epoch_1_with_the_same_numbers(damage, tmp_path, capfd):
    run = RUNS["small"][0]
    clean, _ = train(run, CPU, resume_path=tmp_path / "clean.pt")
    path, other = tmp_path / "state.pt", tmp_path / "other.pt"
    train(run, CPU, resume_path=path)  # a complete resume file to damage
    train(RUNS["teacher"][0], CPU, resume_path=other)  # a wider net's resume file
    DAMAGES[damage](path, other)
    capfd.readouterr()

    result, _ = train(run, CPU, resume_path=path)
    err = capfd.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: {path}: damaged resume file (") \
        and err[0].endswith("); retraining the run from epoch 1 (same seed, same numbers)")
    assert without_time(result) == without_time(clean)


def test_a_damaged_done_pointer_is_warned_about_and_the_result_still_found(tmp_path, capfd):
    store = Store(tmp_path / "results", tmp_path / "cache")
    path = store.path("smoke", "c", "v", "small", STUDENT)
    store.save(path, STUDENT, made_up_result(STUDENT), {})
    pointer = tmp_path / "cache" / "done" / STUDENT.key
    for content in (b"\xff\xfe\x00garbage", str(tmp_path / "elsewhere.json").encode()):
        pointer.parent.mkdir(parents=True, exist_ok=True)
        pointer.write_bytes(content)
        assert store.done(STUDENT.key)["key"] == STUDENT.key  # found by its key in the results folder
        err = capfd.readouterr().err.splitlines()
        assert len(err) == 1 and err[0].startswith(f"warning: {pointer}: not a usable pointer to a result (")


class Killed(BaseException):
    pass


def test_a_kill_between_training_and_saving_the_result_loses_no_epoch(tmp_path, monkeypatch):
    """Killed after the run's last epoch but before its result file is durable: the resume file is
    still there, so the next `repro run` stores the same result without training a step."""
    run = RUNS["small"][0]
    clean, _ = train(run, CPU)
    job = Job("smoke", CLAIM.id, "as_described", "small", run, Store(tmp_path / "results").path(
        "smoke", CLAIM.id, "as_described", "small", run))
    executor = quiet_executor(tmp_path)
    real_save = Store.save

    def killed_save(self, *args):
        raise Killed

    monkeypatch.setattr(Store, "save", killed_save)
    with pytest.raises(Killed):
        executor.submit([job])
    assert executor.store.state_path(run).exists() and not job.path.exists()

    monkeypatch.setattr(Store, "save", real_save)
    steps = []
    monkeypatch.setattr("repro.train.EpochTally.add", lambda self, *a: steps.append(a))
    executor.submit([job])
    assert steps == [] and not executor.store.state_path(run).exists()
    stored = executor.store.find(job.path)
    assert stored["epochs"] == clean["epochs"] and stored["final"] == clean["final"]


@pytest.mark.parametrize("names", [
    ("smoke", "c", "v", "../../../../x"), ("smoke", "c", "v", "/abs/path"), ("smoke", "c", "..", "a"),
    ("smoke", "c", ".", "a"), ("smoke", "", "v", "a"), ("..", "c", "v", "a"), ("smoke", "c/../..", "v", "a"),
    ("smoke", "c", "v", "a\\..\\b"), ("smoke", "c", "v", ".hidden"), ("smoke", "c", "v\n", "a"),
])
def test_no_name_makes_the_store_write_outside_its_root(names, tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    with pytest.raises(OutsideStore, match="is not a safe name"):
        store.path(*names, STUDENT)
    assert not (tmp_path / "results").exists()


def test_the_store_refuses_paths_that_resolve_outside_its_root(tmp_path):
    store = Store(tmp_path / "results", tmp_path / "cache")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "link").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    for outside in (tmp_path / "x.json", tmp_path / "results" / ".." / "x.json", tmp_path / "results" / "link" / "x.json",
                    tmp_path / "cache" / "x.json"):
        with pytest.raises(OutsideStore, match="refusing to write there"):
            store.save(outside, STUDENT, {"status": "done", "epochs": [], "final": {}, "wall_s": 0, "device": "cpu"}, {})
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == []


def test_every_planned_result_of_every_claim_lies_inside_the_results_root(tmp_path):
    from repro.plan import plan
    from repro.spec import load_claims
    store = Store(tmp_path / "results", tmp_path / "cache")
    claims = list(load_claims("claims").values())
    for profile in ("smoke", "quick", "paper"):
        for job in plan(claims, profile, store):
            assert job.path.resolve().is_relative_to((tmp_path / "results").resolve())


# --- issue 26: output folders (no set writes another's shipped results or reports, nor inside claims/) ---

def claims_sets(root: Path) -> Path:
    """A checkout-like folder: the shipped claims/ and examples/claims/ (one valid spec each) and a user's
    my/claims; returns the user's claims folder. Tests chdir here, so nothing near the real checkout moves."""
    import shutil
    for folder in ("claims", "examples/claims", "my/claims"):
        (root / folder / "_shared").mkdir(parents=True)
        shutil.copy("claims/hinton-kd-helps.yaml", root / folder)
        shutil.copy("claims/_shared/hinton-mnist.yaml", root / folder / "_shared")
    return root / "my" / "claims"


PROTECTED_OUTPUTS = [  # (command line, environment, the path in the one error line, where it lies)
    (["--claims", "my/claims", "--out", "."], {}, "results", "inside the shipped results/ (of claims/)"),
    (["--claims", "my/claims", "--out", "results"], {}, "results/results", "inside the shipped results/ (of claims/)"),
    (["--claims", "my/claims", "--out", "reports"], {}, "reports/results", "inside the shipped reports/ (of claims/)"),
    (["--claims", "my/claims", "--out", "examples"], {}, "examples/results",
     "inside the shipped examples/results/ (of examples/claims/)"),
    (["--claims", "my/claims", "--out", "claims/x"], {}, "claims/x/results", "inside the claims folder claims/"),
    (["--claims", "my/claims", "--out", "my/claims/out"], {}, "my/claims/out/results",
     "inside the claims folder my/claims/"),
    (["--claims", "my/claims", "--out", "elsewhere/../results"], {}, "elsewhere/../results/results",
     "inside the shipped results/ (of claims/)"),
    (["--claims", "my/claims"], {"REPRO_OUT": "."}, "results", "inside the shipped results/ (of claims/)"),
    (["--claims", "my/claims", "--out", "my"], {"REPRO_RESULTS": "results"}, "results",
     "inside the shipped results/ (of claims/)"),
    (["--claims", "my/claims", "--out", "my", "--results", "results/quick"], {}, "results/quick",
     "inside the shipped results/ (of claims/)"),
    (["--claims", "claims", "--out", "examples"], {}, "examples/results",
     "inside the shipped examples/results/ (of examples/claims/)"),
    (["--claims", "examples/claims", "--out", "."], {}, "results", "inside the shipped results/ (of claims/)"),
    ([], {"REPRO_CLAIMS": "my/claims", "REPRO_OUT": "reports/.."}, "reports/../results",
     "inside the shipped results/ (of claims/)"),
]


@pytest.mark.parametrize("case", PROTECTED_OUTPUTS, ids=[" ".join(c[0]) + " " + str(c[1]) for c in PROTECTED_OUTPUTS])
def test_no_output_is_the_shipped_results_or_reports_or_inside_claims(case, tmp_path, monkeypatch, capsys):
    argv, env, path, where = case
    claims_sets(tmp_path)
    monkeypatch.chdir(tmp_path)
    for k in ("REPRO_OUT", "REPRO_RESULTS", "REPRO_CLAIMS", "REPRO_VERDICTS"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("repro.store.Store.probe", lambda self: pytest.fail(f"probed {self.root}"))
    monkeypatch.setattr("repro.run.LocalExecutor.submit", lambda self, jobs: pytest.fail("trained"))
    from repro.cli import main
    for command in (["run", "--profile", "smoke"], ["report"], ["list"]):
        assert main(argv + command) == 2, command
        err = capsys.readouterr().err
        claims = argv[argv.index("--claims") + 1] if "--claims" in argv else env.get("REPRO_CLAIMS", "claims")
        tail = ("outputs go to a folder of their own" if "claims folder" in where else
                f"the outputs of {claims} go to a folder of their own, e.g. --out my")
        assert err == f"error: {path}: {where}; {tail}\n", command
    assert not (tmp_path / "results").exists() and not (tmp_path / "reports").exists()


def test_the_shipped_sets_write_their_own_outputs_and_examples_need_no_out(tmp_path, monkeypatch, capsys):
    from repro.outputs import outputs
    claims_sets(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    assert outputs("claims", None) == (Path("results"), Path("reports"))
    assert outputs("examples/claims", None) == (Path("examples/results"), Path("examples/reports"))
    assert outputs("claims", "my") == (Path("my/results"), Path("my/reports"))
    assert outputs("my/claims", "my") == (Path("my/results"), Path("my/reports"))


def test_repro_list_on_the_examples_finds_their_stored_runs(capsys, monkeypatch):
    """`repro list --claims examples/claims` (no --out): the examples' own results, not 0 of every run."""
    from repro.cli import main
    monkeypatch.delenv("REPRO_OUT", raising=False)
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    assert main(["--claims", "examples/claims", "list", "born-again-beats-teacher"]) == 0
    counts = [line.split("results ")[-1] for line in capsys.readouterr().out.splitlines() if "results " in line]
    assert counts and all(c.split("/")[0] == c.split("/")[1] != "0" for c in counts), counts


# --- issue 26: a result is used only if it is what its file claims ------------------------------------

def stored(tmp_path, run=STUDENT, **result):
    """A store with `run`'s made-up result, its path, and a function that rewrites the file with a
    recomputed checksum (what a careful forger or a buggy script does)."""
    import json
    from repro.store import checksum
    store = Store(tmp_path / "results", tmp_path / "cache")
    path = store.path("smoke", CLAIM.id, "as_described", "distilled", run)
    store.save(path, run, {**made_up_result(run, 40, test_acc=0.9, train_loss=0.5), **result},
               {"created": "2026-01-01T00:00:00+00:00"})

    def forge(edit, to=path):
        payload = json.loads(path.read_text())
        edit(payload)
        payload["checksum"] = checksum(payload)
        to.parent.mkdir(parents=True, exist_ok=True)
        to.write_text(json.dumps(payload))
        return to
    return store, path, forge


def _set(*keys, value):
    def edit(payload):
        target = payload
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
    return edit


def _all_epochs(key, value):
    def edit(payload):
        for e in payload["epochs"]:
            e[key] = value
        payload["final"][key] = value
    return edit


N_TEST = STUDENT.arm.data.params.get("n_test", 256)
FORGERIES = [  # (case, edit, the reason after "<path>: ")
    ("final-edited", _set("final", "test_errors", value=1),
     "final.test_errors: 1 is not the last epoch's 40 (final metrics are that epoch's)"),
    ("final-missing-a-key", lambda p: p["final"].pop("test_acc"),
     "final.test_acc: null is not the last epoch's 0.9 (final metrics are that epoch's)"),
    ("fewer-epochs", lambda p: p.update(epochs=p["epochs"][:1]),
     f"epochs: 1 epochs stored, its run trains {STUDENT.arm.epochs}"),
    ("more-epochs", lambda p: p.update(epochs=p["epochs"] + p["epochs"][-1:]),
     f"epochs: {STUDENT.arm.epochs + 1} epochs stored, its run trains {STUDENT.arm.epochs}"),
    ("no-epochs", lambda p: p.update(epochs=[]), f"epochs: 0 epochs stored, its run trains {STUDENT.arm.epochs}"),
    ("more-errors-than-images", _all_epochs("test_errors", N_TEST + 1),
     f"epochs.0.test_errors: {N_TEST + 1} is not a possible count (a whole number from 0 to {N_TEST})"),
    ("negative-errors", _all_epochs("test_errors", -3),
     f"epochs.0.test_errors: -3 is not a possible count (a whole number from 0 to {N_TEST})"),
    ("fractional-errors", _all_epochs("test_errors", 2.5),
     f"epochs.0.test_errors: 2.5 is not a possible count (a whole number from 0 to {N_TEST})"),
    ("accuracy-above-1", _all_epochs("test_acc", 1.5), "epochs.0.test_acc: 1.5 is not an accuracy (0 to 1)"),
    ("nan-errors-in-a-finished-run", _all_epochs("test_errors", float("nan")),
     "epochs.0.test_errors: NaN in a finished run, where a number is needed"),
    ("null-loss-in-a-finished-run", _all_epochs("train_loss", None),
     "epochs.0.train_loss: null in a finished run, where a number is needed"),
    ("run-spec-rewritten", _set("run", "arm", "data", "params", "n_train", value=128),
     f"key: {STUDENT.key[:12]}... is not the hash of its stored run spec"),
    ("not-a-run-spec", _set("run", "arm", value={"model": "mlp"}), "run: not a valid run spec ("),
]


@pytest.mark.parametrize("case", FORGERIES, ids=[c[0] for c in FORGERIES])
def test_a_result_that_is_not_what_its_file_claims_is_refused_and_rerun(case, tmp_path):
    from repro.store import CorruptResult
    _, edit, reason = case
    store, path, forge = stored(tmp_path)
    forge(edit)
    with pytest.raises(CorruptResult) as err:
        store.find(path, STUDENT.key)
    assert str(err.value).startswith(f"{path}: {reason}") and str(err.value).endswith("; delete it to re-run")
    job = Job("smoke", CLAIM.id, "as_described", "distilled", STUDENT, path)
    assert not quiet_executor(tmp_path)._stored(job)  # repro run trains it again


def test_a_result_copied_to_another_profile_with_its_key_rewritten_is_refused(tmp_path):
    """The issue's forgery: a quick result copied under another run, key field rewritten, checksum recomputed."""
    from repro.store import CorruptResult
    other = RUNS["distilled"][1]
    store, path, forge = stored(tmp_path)
    target = store.path("smoke", CLAIM.id, "as_described", "distilled", other)
    forge(lambda p: (p.update(key=other.key), p["run"].update(seed=other.seed)), to=target)
    with pytest.raises(CorruptResult, match=r"is not the hash of its stored run spec"):
        store.find(target, other.key)


def test_a_diverged_run_may_stop_early_and_is_still_used(tmp_path):
    nan = float("nan")
    run = STUDENT
    epochs = [{"epoch": 1, "test_errors": 200, "test_acc": 0.2, "train_loss": nan}]
    store, path, _ = stored(tmp_path, status="diverged", epochs=epochs, final=dict(epochs[0]))
    assert store.find(path, run.key)["status"] == "diverged"


def test_a_best_epoch_result_must_report_its_best_epoch(tmp_path):
    from repro.store import CorruptResult
    run = STUDENT.model_copy(update={"arm": STUDENT.arm.model_copy(update={"select": "best"})})
    epochs = [{"epoch": e, "test_errors": round(100 * (1 - acc)), "test_acc": acc, "train_loss": 0.5}
              for e, acc in zip(range(1, run.arm.epochs + 1), [0.5, 0.9, 0.7, 0.6, 0.6][: run.arm.epochs])]
    store = Store(tmp_path / "results", tmp_path / "cache")
    path = store.path("smoke", CLAIM.id, "as_described", "distilled", run)
    store.save(path, run, {"status": "done", "epochs": epochs, "final": dict(epochs[1]), "wall_s": 1, "device": "cpu"}, {})
    assert store.find(path, run.key)["final"]["test_acc"] == 0.9
    store.save(path, run, {"status": "done", "epochs": epochs, "final": dict(epochs[-1]), "wall_s": 1, "device": "cpu"}, {})
    with pytest.raises(CorruptResult, match=r"final.epoch: .* is not the best epoch's 2"):
        store.find(path, run.key)


RESULT_FILES = [  # (case, how to replace the result file, the reason after "<path>: ")
    ("symlink-out-of-the-store", lambda path, tmp: (tmp.joinpath("elsewhere.json").write_text(path.read_text()),
                                                     path.unlink(), path.symlink_to(tmp / "elsewhere.json")),
     "a symlink, not a result file; delete it to re-run"),
    ("named-pipe", lambda path, tmp: (path.unlink(), os.mkfifo(path)), "not readable (a named pipe, not a regular file)"),
    ("folder", lambda path, tmp: (path.unlink(), path.mkdir()), "not readable (a folder, not a regular file)"),
    ("sparse-giant", lambda path, tmp: open(path, "ab").truncate(3 << 30),
     "3221225472 bytes, over the 67108864 a result may have"),
    ("binary", lambda path, tmp: path.write_bytes(b"\xff\xfe\x00\x01" * 100), "not readable as JSON ("),
]


@pytest.mark.parametrize("case", RESULT_FILES, ids=[c[0] for c in RESULT_FILES])
def test_a_result_file_of_the_wrong_kind_is_not_run_and_the_other_verdicts_are_decided(case, tmp_path):
    """A symlinked result made `pytest -m claims` write no verdict at all; a pipe hung it."""
    import signal
    from repro.verdict import decide_all
    _, damage, reason = case
    store = Store(tmp_path / "results", tmp_path / "cache")
    for arm, runs in RUNS.items():
        for i, run in enumerate(runs):
            store.save(store.path("smoke", CLAIM.id, "as_described", arm, run), run,
                       made_up_result(run, {"teacher": 20, "small": 60, "distilled": 40}.get(arm, 50) + i), {})
    path = store.path("smoke", CLAIM.id, "as_described", "small", RUNS["small"][1])
    damage(path, tmp_path)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("hung")))
    signal.alarm(20)
    try:
        verdicts = {v["variant"]: v for v in decide_all({CLAIM.id: CLAIM}, "smoke", store)}
    finally:
        signal.alarm(0)
    bad = verdicts["as_described"]
    shown = f"results/smoke/{CLAIM.id}/as_described/small/{path.name}"
    assert bad["status"] == "NOT RUN" and bad["reason"].startswith(f"corrupt result, re-run it: .../{shown}: {reason}")
    assert str(tmp_path) not in bad["reason"]
    assert all(v["status"] != "NOT RUN" or "missing" in v["reason"] for k, v in verdicts.items() if k != "as_described")


def test_every_committed_result_loads_under_the_integrity_checks():
    """Every result in results/ and examples/results/ is still used (its key, epochs, final metrics, counts)."""
    from pathlib import Path as P
    from repro.spec import load_claims
    paths = sorted(P("results").rglob("*.json")) + sorted(P("examples/results").rglob("*.json"))
    assert len(paths) > 400
    load_claims("examples/claims")  # imports the plugins its claims name, as judging them does
    for path in paths:
        Store.load(path)


# --- issue 26: cache entries and outputs of the wrong kind are one line, before anything trains --------

CACHE_DAMAGE = [
    ("locks-is-a-file", lambda cache: (cache / "locks").write_text("x"), "locks"),
    ("done-is-a-file", lambda cache: (cache / "done").write_text("x"), "done"),
    ("state-is-a-file", lambda cache: (cache / "state").write_text("x"), "state"),
    ("checkpoints-is-a-file", lambda cache: (cache / "checkpoints").write_text("x"), "checkpoints"),
]


@pytest.mark.parametrize("case", CACHE_DAMAGE, ids=[c[0] for c in CACHE_DAMAGE])
def test_a_cache_entry_of_the_wrong_kind_is_one_line_before_training(case, tmp_path, monkeypatch, capsys):
    from repro.cli import main
    _, damage, name = case
    (tmp_path / "cache").mkdir()
    damage(tmp_path / "cache")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("repro.run.LocalExecutor.submit", lambda self, jobs: pytest.fail("trained"))
    assert main(["--results", str(tmp_path / "results"), "run", "hinton-kd-helps", "--profile", "smoke"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'cache' / name}: is a file, not a folder (results, the "
                                       "cache and its locks, done, state, checkpoints are folders)\n")


def test_a_lock_that_is_a_folder_is_one_line(tmp_path, monkeypatch, capsys):
    from repro.cli import main
    lock = tmp_path / "cache" / "locks" / f"{RUNS['teacher'][0].key}.lock"
    lock.mkdir(parents=True)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    assert main(["--results", str(tmp_path / "results"), "run", "hinton-kd-helps", "--profile", "smoke"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == f"error: {lock}: is a folder, not a lock file; remove it" and "Traceback" not in "\n".join(err)


# --- issue 26: two `repro run --force` on one store train each run once --------------------------------

def test_two_force_runs_on_one_store_do_not_train_a_run_twice(tmp_path):
    run = RUNS["small"][0]
    job = Job("smoke", CLAIM.id, "as_described", "small", run, Store(tmp_path / "results").path(
        "smoke", CLAIM.id, "as_described", "small", run))
    second = quiet_executor(tmp_path, force=True)  # started first, waiting on the lock while the other trains
    first = quiet_executor(tmp_path, force=True)
    assert first.submit([job])["counts"]["trained"] == 1
    assert second.submit([job])["counts"] == {"trained": 0, "cached": 1, "failed": 0}
    stale = quiet_executor(tmp_path, force=True)
    stale.started = "9999"  # a --force started after the result was stored redoes it, as --force promises
    assert stale.submit([job])["counts"]["trained"] == 1


def test_provenance_keeps_no_absolute_path(monkeypatch):
    from repro.run import provenance
    monkeypatch.setattr("sys.argv", ["repro", "--claims", "/home/alice/secret/my/claims", "run",
                                     "--out=/home/alice/secret/out", "c1"])
    command = provenance()["command"]
    assert command == "repro --claims .../my/claims run --out=.../secret/out c1" and "alice" not in command


# --- issue 26: the verdicts file, `pytest -m claims` after a bad spec, `repro reference` -----------------

def claims_session(tmp_path, env: dict, *args) -> "subprocess.CompletedProcess":
    import subprocess
    import sys
    return subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                           "tests/test_claims.py", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "REPRO_PROFILE": "smoke",
                               "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
                               **env})


def test_a_verdicts_path_that_is_a_folder_loses_no_verdict(tmp_path):
    """REPRO_VERDICTS a folder: every verdict is still computed and printed, then one line, exit 2 (was an
    INTERNALERROR that lost them all)."""
    (tmp_path / "verdicts.json").mkdir()
    done = claims_session(tmp_path, {"REPRO_VERDICTS": str(tmp_path / "verdicts.json")}, "-k", "hinton-kd-helps")
    out = done.stdout + done.stderr
    assert "INTERNALERROR" not in out and "Traceback" not in out, out[-3000:]
    assert "NOT RUN        hinton-kd-helps [as_described]" in out
    assert f"error: verdicts not written: {tmp_path / 'verdicts.json'}: not writable (Is a directory)" in out
    assert done.returncode == 2


def test_a_bad_spec_under_pytest_m_claims_is_its_line_without_a_conftest_traceback(tmp_path):
    import shutil
    claims = tmp_path / "claims"
    shutil.copytree("claims", claims)
    (claims / "hinton-kd-helps.yaml").write_text((claims / "hinton-kd-helps.yaml").read_text()
                                                 .replace("statement:", "epochs_typo: 3\nstatement:", 1))
    done = claims_session(tmp_path, {"REPRO_CLAIMS": str(claims), "REPRO_OUT": str(tmp_path / "out")})
    out = done.stdout + done.stderr
    assert "CollectReport" not in out and "INTERNALERROR" not in out, out[-3000:]
    assert f"{claims}/hinton-kd-helps.yaml: epochs_typo: Extra inputs are not permitted" in out


def test_report_hooks_take_collect_reports():
    from _pytest.reports import CollectReport
    import conftest
    report = CollectReport("tests/test_claims.py", "failed", "SpecError: ...", [])
    assert conftest.pytest_report_teststatus(report, None) is None


@pytest.mark.parametrize("target", ["folder", "/dev/zero", "named-pipe"])
def test_repro_reference_to_or_from_a_non_file_is_one_line(target, tmp_path, capsys):
    import signal
    from repro.cli import main
    path = tmp_path / "ref.md"
    if target == "folder":
        path.mkdir()
    elif target == "named-pipe":
        os.mkfifo(path)
    else:
        path = Path(target)
    signal.signal(signal.SIGALRM, lambda *a: (_ for _ in ()).throw(TimeoutError("hung")))
    signal.alarm(20)
    try:
        assert main(["reference", "--check", str(path)]) == 1
        checked = capsys.readouterr()
        rc = main(["reference", str(path)]) if target == "folder" else None
    finally:
        signal.alarm(0)
    kind = {"folder": "a folder", "/dev/zero": "a device", "named-pipe": "a named pipe"}[target]
    assert checked.out == f"{path}: OUT OF DATE: not a readable reference ({kind}, not a regular file); run `repro reference`\n"
    if target == "folder":
        assert rc == 2 and capsys.readouterr().err == (f"error: {path}: not writable (Is a directory; expected a file "
                                                       "path, e.g. docs/spec-reference.md)\n")


def test_an_interrupted_repro_reference_leaves_the_old_file_whole(tmp_path, monkeypatch):
    from pathlib import Path as P
    from repro.cli import main
    path = tmp_path / "ref.md"
    path.write_text("the old reference\n" * 100)

    def torn_write(self, text, *a, **kw):  # what a kill halfway through a plain write leaves
        with open(self, "w") as f:
            f.write(text[: len(text) // 2])
        raise KeyboardInterrupt

    monkeypatch.setattr(P, "write_text", torn_write)
    monkeypatch.setattr(os, "fsync", lambda fd: (_ for _ in ()).throw(KeyboardInterrupt))
    assert main(["reference", str(path)]) == 130
    assert path.read_text() == "the old reference\n" * 100 and [p.name for p in tmp_path.iterdir()] == ["ref.md"]


def test_pytest_m_claims_never_writes_the_shipped_verdicts_for_another_set(tmp_path, monkeypatch):
    import conftest
    from repro.spec import SpecError
    claims_sets(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    monkeypatch.setenv("REPRO_CLAIMS", "my/claims")
    monkeypatch.setenv("REPRO_OUT", "my")
    monkeypatch.setenv("REPRO_VERDICTS", "reports/verdicts.json")
    with pytest.raises(SpecError, match=r"^reports/verdicts.json: inside the shipped reports/ \(of claims/\)"):
        conftest.claims_outputs()
    monkeypatch.setenv("REPRO_VERDICTS", "my/claims/verdicts.json")
    with pytest.raises(SpecError, match=r"^my/claims/verdicts.json: inside the claims folder my/claims/"):
        conftest.claims_outputs()
    monkeypatch.setenv("REPRO_VERDICTS", "my/reports/v.json")
    assert conftest.claims_outputs() == (Path("my/results"), Path("my/reports/v.json"))


HOSTILE_FILES_SCRIPT = r"""
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # reading /dev/zero or a 3 GB file to the end dies here
from pathlib import Path
from repro.cli import main
from repro.store import CorruptResult, Store
tmp = Path(sys.argv[1])
os.mkfifo(tmp / "pipe.yaml")
with open(tmp / "sparse.yaml", "wb") as f:
    f.truncate(3 << 30)
codes = [main(["validate", "/dev/zero"]), main(["validate", str(tmp / "pipe.yaml")]),
         main(["validate", str(tmp / "sparse.yaml")]), main(["reference", "--check", "/dev/zero"]),
         main(["reference", "--check", str(tmp / "pipe.yaml")]),
         main(["--claims", "claims", "report", "--verdicts", "/dev/zero", "--results", str(tmp),
               "--out", str(tmp / "index.html")])]
for name in ("pipe.yaml", "sparse.yaml"):
    try:
        Store.load(tmp / name)
    except CorruptResult as err:
        print("result", err)
print("codes", codes)
"""


def test_hostile_files_fail_fast_under_a_memory_limit(tmp_path):
    """Pipes, /dev/zero and a sparse 3 GB file as specs, references, verdicts and results, in a process limited
    to 6 GB of address space: one line each, no traceback, no hang."""
    import subprocess
    import sys
    done = subprocess.run([sys.executable, "-c", HOSTILE_FILES_SCRIPT, str(tmp_path)], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "OMP_NUM_THREADS": "1"})
    out = done.stdout + done.stderr
    assert done.returncode == 0 and "Traceback" not in out and "MemoryError" not in out, out[-3000:]
    assert "codes [1, 1, 1, 1, 1, 2]" in out
    assert f"error {tmp_path}/pipe.yaml: not readable (a named pipe, not a regular file)" in out
    assert f"error {tmp_path}/sparse.yaml: 3221225472 bytes; a spec is at most 1048576 bytes" in out
    assert "error: /dev/zero: not readable (a device, not a regular file); expected the verdicts file" in out
    assert f"result {tmp_path}/sparse.yaml: 3221225472 bytes, over the 67108864 a result may have" in out


def test_a_store_folder_linked_out_of_the_store_is_refused_by_run_and_not_run_by_the_verdict(tmp_path, monkeypatch,
                                                                                            capsys):
    from repro.cli import main
    from repro.verdict import decide_all
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "results" / "smoke").mkdir(parents=True)
    (tmp_path / "results" / "smoke" / CLAIM.id).symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr("repro.run.LocalExecutor.submit", lambda self, jobs: pytest.fail("trained"))
    assert main(["--results", str(tmp_path / "results"), "run", CLAIM.id, "--profile", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and "refusing to write there" in err
    verdicts = decide_all({CLAIM.id: CLAIM}, "smoke", Store(tmp_path / "results", tmp_path / "cache"))
    assert {v["status"] for v in verdicts} == {"NOT RUN"}
    assert all(v["reason"].startswith("the results folder of arm '") and str(tmp_path) not in v["reason"]
               for v in verdicts)
