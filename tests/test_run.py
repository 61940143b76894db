"""Executing plans: concurrent runs on one store, interrupts, and runs shared between claims."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def env_for(tmp_path):
    return {**os.environ, "REPRO_RESULTS": str(tmp_path / "results"), "REPRO_CACHE": str(tmp_path / "cache"),
            "OMP_NUM_THREADS": "1"}


def repro_process(env, *args):
    return subprocess.Popen([sys.executable, "-m", "repro.cli", "run", "--profile", "smoke", *args], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_on_one_store_train_each_run_once(tmp_path):
    env = env_for(tmp_path)
    procs = [repro_process(env, "hinton-kd-helps") for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    trained = sum(out.count(": done, test_errors") for out, _ in outputs)
    files = list((tmp_path / "results").rglob("*.json"))
    keys = {json.loads(f.read_text())["key"] for f in files}
    assert trained == len(keys) == 12  # 3 teacher + 3 small + 3 x 2 distilled variants, each once
    assert len(files) == 18 and not list((tmp_path / "results").rglob("*.tmp"))


def test_sigterm_stops_cleanly_and_the_next_run_resumes(tmp_path):
    env = env_for(tmp_path)
    proc = repro_process(env, "hinton-kd-helps")
    results = tmp_path / "results"
    deadline = time.time() + 300
    while len(list(results.rglob("*.json"))) < 2 and time.time() < deadline:
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "run the same command again to resume" in err
    kept = {p: p.read_text() for p in results.rglob("*.json")}
    assert kept

    again = repro_process(env, "hinton-kd-helps")
    out, _ = again.communicate(timeout=600)
    assert again.returncode == 0
    assert all(p.read_text() == text for p, text in kept.items())  # finished runs untouched
    assert len(list(results.rglob("*.json"))) == 18


def test_a_student_distils_from_the_teachers_epoch_k_weights_without_retraining_it(tmp_path):
    """teacher_epoch: k: the teacher's run (same key as without it) keeps its epoch-k weights as it passes;
    the student's teacher is exactly a k-epoch run of the teacher (constant LR: the first k epochs agree)."""
    import torch
    from repro.plan import plan
    from repro.run import LocalExecutor
    from repro.spec import load_claim
    from repro.store import Store
    from repro.train import train
    claim = load_claim(ROOT / "claims/hinton-kd-helps.yaml")
    plain_teacher = claim.resolve("teacher", "as_described", "smoke")
    arms = {**claim.arms, "distilled": {**claim.arms["distilled"], "teacher_epoch": 2}}
    claim = claim.model_copy(update={"arms": arms, "variants": {"as_described": claim.variants["as_described"]},
                                     "profiles": {"smoke": claim.profiles["smoke"].model_copy(update={"seeds": [0]})}})
    store = Store(tmp_path / "results", tmp_path / "cache")
    jobs = plan([claim], "smoke", store)
    teacher_job = next(j for j in jobs if j.arm == "teacher")
    assert teacher_job.run.arm == plain_teacher  # the teacher's run (and key) does not change
    logs = []
    summary = LocalExecutor(store, torch.device("cpu"), log=logs.append).submit(jobs)
    assert summary["counts"]["trained"] == 3 and not any("retraining" in line for line in logs), logs
    kept = torch.load(store.checkpoint_path(teacher_job.run, 2), weights_only=True)
    _, two_epochs = train(teacher_job.run.model_copy(update={"arm": plain_teacher.model_copy(update={"epochs": 2})}),
                          torch.device("cpu"))
    for name, value in two_epochs.state_dict().items():
        torch.testing.assert_close(kept[name], value)
    final = torch.load(store.checkpoint_path(teacher_job.run), weights_only=True)
    assert any(not torch.equal(final[k], kept[k]) for k in kept)  # epoch 2 is not the final teacher
    student = next(j for j in jobs if j.arm == "distilled")
    stored = json.loads(student.path.read_text())
    assert "fidelity" in stored["final"]
    again, _ = train(student.run, torch.device("cpu"), teacher=two_epochs)  # taught by the 2-epoch teacher
    assert again["epochs"] == stored["epochs"]


def test_arms_plans_only_those_arms_and_what_they_learn_from(tmp_path):
    """`repro run --arms`: the vit-cifar baselines in one process while another trains the teacher."""
    from repro.plan import plan
    from repro.spec import load_claims
    from repro.store import Store
    claims = load_claims(ROOT / "claims")
    chosen = [claims[c] for c in ("vit-test-gain", "deit-hard-beats-soft")]
    store = Store(tmp_path / "results", tmp_path / "cache")
    every = plan(chosen, "quick", store)
    assert {j.arm for j in plan(chosen, "quick", store, ["baseline"])} == {"baseline"}
    baselines = [j for j in every if j.arm == "baseline"]
    assert [j.path for j in plan(chosen, "quick", store, ["baseline"])] == [j.path for j in baselines]
    hard = plan(chosen, "quick", store, ["student_hard"])  # a student brings its teacher; vit-test-gain has none
    assert {(j.claim, j.arm) for j in hard} == {("deit-hard-beats-soft", "teacher"), ("deit-hard-beats-soft", "student_hard")}
    as_written = plan([claims["vit-test-gain"]], "quick", store, ["student"])  # init_from brings the baseline
    assert {j.arm for j in as_written if j.variant == "as_written"} == {"teacher", "baseline", "student"}


def _kd_helps_seed0(tmp_path):
    """hinton-kd-helps [as_described] at smoke, seed 0, planned into a fresh store: (store, jobs)."""
    from repro.plan import plan
    from repro.spec import load_claim
    from repro.store import Store
    claim = load_claim(ROOT / "claims/hinton-kd-helps.yaml")
    claim = claim.model_copy(update={"variants": {"as_described": claim.variants["as_described"]},
                                     "profiles": {"smoke": claim.profiles["smoke"].model_copy(update={"seeds": [0]})}})
    store = Store(tmp_path / "results", tmp_path / "cache")
    jobs = plan([claim], "smoke", store)
    return store, jobs


def _kd_helps_trained(tmp_path):
    """The same, trained: (store, jobs by arm, the teacher's weights as bytes)."""
    import torch
    from repro.run import LocalExecutor
    store, jobs = _kd_helps_seed0(tmp_path)
    LocalExecutor(store, torch.device("cpu"), log=lambda _: None).submit(jobs)
    return store, {j.arm: j for j in jobs}, store.checkpoint_path(jobs[0].run).read_bytes()


def test_a_run_another_process_holds_is_put_off_with_the_runs_that_learn_from_it(tmp_path):
    """Two `repro run`s share a plan instead of queueing behind each other: the teacher held elsewhere is
    skipped, with its student, until the rest is done; then it is waited for (here: trained, once freed)."""
    import contextlib
    import torch
    from repro.run import LocalExecutor
    store, jobs = _kd_helps_seed0(tmp_path)
    assert [j.arm for j in jobs] == ["teacher", "small", "distilled"]
    elsewhere = contextlib.ExitStack()
    assert elsewhere.enter_context(store.lock(jobs[0].run.key))
    with store.lock(jobs[0].run.key, wait=False) as held:
        assert not held
    logs = []

    def log(line):
        logs.append(line)
        if line.startswith("  another process is training"):
            elsewhere.close()  # the other process finishes (here: gives up) while this one trains the rest

    summary = LocalExecutor(store, torch.device("cpu"), log=log).submit(jobs)
    trained = [line.split(":")[0] for line in logs if line.startswith("training ")]
    assert trained == ["training hinton-kd-helps/as_described/small seed 0",
                       "training hinton-kd-helps/as_described/teacher seed 0",
                       "training hinton-kd-helps/as_described/distilled seed 0"], logs
    assert summary["counts"] == {"trained": 3, "cached": 0, "failed": 0}
    assert not any("retraining" in line for line in logs)  # the student waited for its teacher's run


def test_put_off_runs_are_taken_as_they_come_free_not_waited_for_in_order(tmp_path):
    """Both held elsewhere at first: the teacher (with the student that learns from it) and the small net. Once
    the teacher is free, this process trains it and its student while the small net is still held, and only
    then waits for it (session 45: two processes that both put off a teacher then queued behind each other's
    students one run at a time, one core idle for each student's 25 minutes)."""
    import contextlib
    import threading
    import torch
    from repro.run import LocalExecutor
    store, jobs = _kd_helps_seed0(tmp_path)
    teacher_elsewhere, small_elsewhere = contextlib.ExitStack(), contextlib.ExitStack()
    assert teacher_elsewhere.enter_context(store.lock(jobs[0].run.key))
    assert small_elsewhere.enter_context(store.lock(jobs[1].run.key))
    threading.Timer(60.0, small_elsewhere.close).start()  # else a process that waits in order waits for ever
    logs = []

    def log(line):
        logs.append(line)
        if line.startswith("  another process is training hinton-kd-helps/as_described/small"):
            teacher_elsewhere.close()  # the other process is done with the teacher (here: gives up)
        if line.startswith("training hinton-kd-helps/as_described/distilled"):
            small_elsewhere.close()

    summary = LocalExecutor(store, torch.device("cpu"), log=log).submit(jobs)
    trained = [line.split(":")[0].split("/")[-1] for line in logs if line.startswith("training ")]
    assert trained == ["teacher seed 0", "distilled seed 0", "small seed 0"], logs
    assert summary["counts"] == {"trained": 3, "cached": 0, "failed": 0}
    assert sum(line.startswith("  another process is training") for line in logs) == 2  # each said once


def test_a_teacher_another_process_retrains_is_waited_for_and_loaded_not_retrained_twice(tmp_path):
    """Two `repro run`s whose students need the same stored teacher without cached weights both retrained it:
    hours paid twice, into one shared resume file. Now the second waits for the first's lock and loads."""
    import contextlib
    import threading
    import torch
    from repro.run import LocalExecutor
    store, job, weights = _kd_helps_trained(tmp_path)
    teacher = job["teacher"].run
    store.checkpoint_path(teacher).unlink()
    elsewhere = contextlib.ExitStack()
    assert elsewhere.enter_context(store.lock(teacher.key))

    def the_other_process_finishes():
        store.checkpoint_path(teacher).write_bytes(weights)
        elsewhere.close()

    threading.Timer(1.0, the_other_process_finishes).start()
    logs = []
    model = LocalExecutor(store, torch.device("cpu"), log=logs.append).trained_model(teacher)
    assert not any("retraining" in line for line in logs), logs
    saved = torch.load(store.checkpoint_path(teacher), weights_only=True)
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())


def test_a_student_whose_teacher_another_process_retrains_is_put_off_until_the_rest_is_done(tmp_path):
    """While another process retrains a stored teacher for its weights, its student waits behind the other runs
    of the plan instead of blocking on the teacher's lock (or retraining it a second time)."""
    import contextlib
    import threading
    import torch
    from repro.run import LocalExecutor
    store, job, weights = _kd_helps_trained(tmp_path)
    store.checkpoint_path(job["teacher"].run).unlink()
    for arm in ("small", "distilled"):
        job[arm].path.unlink()
        (store.cache / "done" / job[arm].run.key).unlink()
    elsewhere = contextlib.ExitStack()
    assert elsewhere.enter_context(store.lock(job["teacher"].run.key))
    threading.Timer(30.0, elsewhere.close).start()  # without the put-off the student would wait for ever
    logs = []

    def log(line):
        logs.append(line)
        if line.startswith("  another process is (re)training"):
            store.checkpoint_path(job["teacher"].run).write_bytes(weights)  # the other process finishes
            elsewhere.close()

    summary = LocalExecutor(store, torch.device("cpu"), log=log).submit([job["teacher"], job["distilled"], job["small"]])
    trained = [line.split(":")[0] for line in logs if line.startswith("training ")]
    assert trained == ["training hinton-kd-helps/as_described/small seed 0",
                       "training hinton-kd-helps/as_described/distilled seed 0"], logs
    assert not any("retraining" in line for line in logs), logs
    assert summary["counts"] == {"trained": 2, "cached": 1, "failed": 0}


def test_a_retrained_teacher_is_compared_with_its_stored_result_in_each_students_provenance(tmp_path):
    """A fresh clone (or a new machine) has a teacher's result but not its weights: the teacher is retrained for
    its students. Bitwise the same on this machine; a stored result from other hardware (here: an edited
    number) differs, and the student's provenance and the log say which happened."""
    import torch
    from repro.run import LocalExecutor
    from repro.store import Store
    store, jobs = _kd_helps_seed0(tmp_path)
    LocalExecutor(store, torch.device("cpu"), log=lambda _: None).submit(jobs)
    teacher, student = (next(j for j in jobs if j.arm == arm) for arm in ("teacher", "distilled"))

    def student_again(edit_teacher=None):
        store.checkpoint_path(teacher.run).unlink()
        student.path.unlink()
        (store.cache / "done" / student.run.key).unlink()
        if edit_teacher:
            _as_if_stored_elsewhere(teacher, 1e-4)
        logs = []
        LocalExecutor(store, torch.device("cpu"), log=logs.append).submit(jobs)
        # through Store.load: the stored result must be usable, its records pass the schema check
        return Store.load(student.path)["provenance"]["teacher_retrained"], logs

    (same,), logs = student_again()
    assert same["bitwise_equal"] and same["key"] == teacher.run.key[:12], same
    assert same["retrained_wall_s"] > 0  # hours at paper scale that no stored run's wall_s holds
    retrain = f"{teacher.run.key[:12]} seed 0 (retrained for its weights)"  # hours at paper scale: progress shown
    assert f"training {retrain}: {teacher.run.arm.epochs} epochs" in logs, logs
    assert any(line.startswith(f"  {retrain} epoch {teacher.run.arm.epochs}/") for line in logs), logs
    assert not any("differs from its stored result" in line for line in logs)
    (other,), logs = student_again(edit_teacher=True)
    assert not other["bitwise_equal"] and other["stored"]["test_loss"] == pytest.approx(other["retrained"]["test_loss"] + 1e-4)
    [note] = [line for line in logs if "differs from its stored result" in line]
    assert f"(test_loss {other['stored']['test_loss']} stored, {other['retrained']['test_loss']} now)" in note, note
    # the student's own progress starts after its teacher's retrain: their lines do not interleave
    order = [line.split(":")[0] for line in logs if line.startswith("training ")]
    assert order == [f"training {retrain}", "training hinton-kd-helps/as_described/distilled seed 0"], logs


def _as_if_stored_elsewhere(teacher, delta: float) -> None:
    """Shift the stored teacher's final test_loss, checksum kept valid: a result trained on other hardware."""
    from repro.store import checksum
    payload = json.loads(teacher.path.read_text())
    for numbers in (payload["final"], payload["epochs"][-1]):
        numbers["test_loss"] += delta
    payload["checksum"] = checksum({k: v for k, v in payload.items() if k != "checksum"})
    teacher.path.write_text(json.dumps(payload))


def test_a_teacher_retrained_by_an_earlier_process_is_named_by_the_students_a_later_one_trains(tmp_path, capsys):
    """Hinton's distilled seed 3 learned from teacher 3's weights, retrained on this EPYC by the session before
    (the stored teacher is a Xeon run), and its provenance did not say so: the comparison lived in the retraining
    process's memory only. It is now kept beside the weights; a kill between the weights and the comparison, or a
    later process, still gives each student the fact of the retrain; a record made against another stored result
    does not apply, and an unreadable one is said, not dropped."""
    import torch
    from repro.run import LocalExecutor
    from repro.store import Store
    store, jobs = _kd_helps_trained(tmp_path)[:2]
    teacher, student = jobs["teacher"], jobs["distilled"]
    job_list = list(jobs.values())

    def fresh_student(first_process) -> dict:
        store.checkpoint_path(teacher.run).unlink(missing_ok=True)
        student.path.unlink()
        (store.cache / "done" / student.run.key).unlink()
        try:
            first_process(LocalExecutor(store, torch.device("cpu"), log=lambda _: None))
        except SystemExit:
            pass  # killed
        assert store.checkpoint_path(teacher.run).exists()  # the first process left the retrained weights
        LocalExecutor(store, torch.device("cpu"), log=lambda _: None).submit(job_list)  # a later process
        return Store.load(student.path)["provenance"]  # usable: the records pass the schema check

    _as_if_stored_elsewhere(teacher, 1e-4)
    (record,) = fresh_student(lambda first: first.trained_model(teacher.run))["teacher_retrained"]
    assert record["key"] == teacher.run.key[:12] and record["bitwise_equal"] is False
    assert record["stored"]["test_loss"] == pytest.approx(record["retrained"]["test_loss"] + 1e-4)

    def killed_after_the_weights(first):
        real = first._record_retrain
        first._record_retrain = lambda run, stored, result=None: real(run, stored) if result is None else \
            (_ for _ in ()).throw(SystemExit("killed"))  # killed once the weights are saved, before the comparison
        first.trained_model(teacher.run)
    (pending,) = fresh_student(killed_after_the_weights)["teacher_retrained"]
    assert pending["bitwise_equal"] is None and pending["retrained"] is None and pending["stored"] == record["stored"]

    _as_if_stored_elsewhere(teacher, 1e-4)  # the stored result changed since (a --force re-run): not its record
    assert store.retrain_record(teacher.run) is None
    store.retrain_record_path(teacher.run).write_text("{not json")
    damaged = store.retrain_record(teacher.run)
    assert damaged["bitwise_equal"] is None and "unreadable" in damaged["record"]
    assert "unreadable retrain record" in capsys.readouterr().err


def test_progress_lines_say_how_long_is_left_at_the_rate_of_this_process(tmp_path, monkeypatch):
    """An hours-long run in a log file said how long it had run, not how long it had to go. A resumed run's
    rate is that of the epochs trained here (a resume at epoch 745 of 1000 must not divide by 745)."""
    import repro.run as run_mod
    from repro.run import LocalExecutor
    from repro.store import Store
    clock = iter([0.0, 13.0, 26.0, 39.0, 52.0])  # the progress's start, then 13 s per epoch
    monkeypatch.setattr(run_mod.time, "perf_counter", lambda: next(clock))
    monkeypatch.setattr(run_mod, "PROGRESS_EVERY_S", 0.0)
    lines = []
    executor = LocalExecutor(Store(tmp_path / "results", tmp_path / "cache"), torch.device("cpu"), log=lines.append)
    with executor._progress("t seed 1", "t", 1000) as on_epoch:
        for epoch in (746, 747, 748, 1000):
            on_epoch({"epoch": epoch, "train_loss": 0.04, "test_acc": 0.99})
    assert lines[1] == "  t seed 1 epoch 746/1000: train_loss 0.0400, test_acc 0.9900, 13s, about 55.0 min left"
    assert lines[3].endswith("39s, about 54.6 min left")  # 13 s x 252 epochs
    assert lines[4].endswith("52s")  # the last epoch: nothing left to estimate
