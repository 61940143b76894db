"""repro verify against a hostile corpus: a tiny claim trained once into a scratch store (synthetic data, seconds),
copied per test and then forged, truncated, edited, swapped or linked. Each case is the exact line and exit status
`repro verify` gives it (repro/verify.py's module docstring says what is proved, README what is not)."""
from __future__ import annotations

import json
import math
import random
import shutil
from pathlib import Path

import pytest
import torch
from scipy import stats

from repro.cli import main
from repro.plan import plan
from repro.run import LocalExecutor
from repro.spec import load_claims
from repro.store import Store, checksum
from repro.verify import ERROR, FAILED, UNDECIDABLE, UNUSABLE, VERIFIED, choose, combined_test, differences

CPU = torch.device("cpu")
# Converged small MLPs on separable-enough synthetic data: arm sds of about 4 (teacher) and 10 (students) test
# errors over seeds 1-5, so a shift of 25 is a few sds, not a few hundred.
CLAIM = """
id: tiny-kd
source: {file: t.pdf, quote: "q"}
statement: a tiny distillation claim for repro verify's tests
defaults:
  data: {name: synthetic, n_train: 512, n_test: 1000, noise: 1.25}
  batch_size: 64
  optimizer: {name: sgd, lr: 0.2}
  epochs: 8
arms:
  teacher: {model: {name: mlp, hidden: [32]}}
  small: {model: {name: mlp, hidden: [8]}}
  student: {model: {name: mlp, hidden: [8]}, teacher: teacher, loss: {name: kd_batchmean, alpha: 0.5, T: 4}}
check: {kind: less, metric: test_errors, arms: [student, small], alpha: 0.05, justification: test}
profiles:
  tiny: {seeds: SEEDS, scale: "tiny", deviations: []}
"""
ELSEWHERE = "CPU Some Other Kind, 4 threads"


def write_claims(folder: Path, seeds: list[int]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "tiny-kd.yaml").write_text(CLAIM.replace("SEEDS", json.dumps(seeds)))
    return folder


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """The tiny claim's 15 runs (3 arms x 5 seeds), trained once on 1 thread."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("pristine")
    claims = load_claims(write_claims(root / "claims", [1, 2, 3, 4, 5]))
    store = Store(root / "out" / "results", root / "cache")
    LocalExecutor(store, CPU, log=lambda _: None).submit(plan(list(claims.values()), "tiny", store))
    return root


@pytest.fixture
def store(pristine, tmp_path, monkeypatch):
    """A copy of the pristine store to damage; `verify()` runs `repro verify` on it: (exit status, stdout, stderr)."""
    torch.set_num_threads(1)  # the thread count the runs were stored with (part of their `device`)
    shutil.copytree(pristine, tmp_path, dirs_exist_ok=True)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    return tmp_path


def run_verify(root: Path, capsys, *extra, draw: int | None = 0) -> tuple[int, str, str]:
    """`repro verify --sample 3` on the copy; the statistics these tests pin are those of one sample (draw 0)."""
    capsys.readouterr()
    code = main(["--claims", str(root / "claims"), "--out", str(root / "out"), "verify", "--profile", "tiny",
                 "--sample", "3", *(["--draw", str(draw)] if draw is not None else []), *extra])
    out, err = capsys.readouterr()
    return code, out, err


def results(root: Path, arm: str | None = None) -> list[Path]:
    return sorted((root / "out" / "results" / "tiny" / "tiny-kd" / "default").glob(f"{arm or '*'}/seed*.json"))


def forge(path: Path, edit) -> None:
    """Edit a stored result as a forger would: change it, then recompute its checksum so the store accepts it."""
    payload = json.loads(path.read_text())
    edit(payload)
    payload["checksum"] = checksum(payload)
    path.write_text(json.dumps(payload, indent=1, sort_keys=True))


def shift_errors(by: int):
    """Every epoch's test errors moved by `by` (never below 0: the store rejects an impossible count), with the
    numbers tied to them (accuracy, per-class errors) moved along, as a careful forger would."""
    def edit(payload):
        for m in [*payload["epochs"], payload["final"]]:
            m["test_errors"] = max(0, m["test_errors"] + by)
            m["test_acc"] = 1 - m["test_errors"] / 1000
            m["test_errors_per_class"] = [m["test_errors"]] + [0] * (len(m["test_errors_per_class"]) - 1)
    return edit


def elsewhere(payload):
    payload["device"] = ELSEWHERE


def last(out: str) -> str:
    return out.strip().splitlines()[-1]


def test_an_honest_store_retrained_on_its_own_hardware_is_bitwise_equal_and_nothing_stored_changes(store, capsys):
    before = {p: p.read_bytes() for p in (store / "out").rglob("*") if p.is_file()}
    code, out, _ = run_verify(store, capsys)
    assert code == VERIFIED, out
    assert last(out).endswith("VERIFIED: 3 of 3 runs bitwise equal where stored on this hardware, threads and versions")
    assert out.count("bitwise equal tiny-kd/default/") == 3  # one run of each arm
    assert {p: p.read_bytes() for p in (store / "out").rglob("*") if p.is_file()} == before


def test_values_lowered_with_the_checksum_recomputed_fail_on_the_same_hardware_listing_the_numbers(store, capsys):
    for path in results(store):
        forge(path, shift_errors(-25))
    code, out, _ = run_verify(store, capsys)
    assert code == FAILED
    assert "FAILED: 3 of 3 runs retrained on the hardware, threads and versions they were stored with are not " \
           "bitwise equal" in last(out)
    lines = out.splitlines()
    failed = [i for i, line in enumerate(lines) if line.startswith("FAILED, not bitwise equal tiny-kd/default/")]
    assert len(failed) == 3
    stored, fresh = (float(x) for x in
                     lines[failed[0]].split("test_errors stored ")[1].split(" (")[0].split(", retrained "))
    assert 0 < fresh - stored <= 25
    detail = [line for line in lines[failed[0] + 1:] if line.startswith("    test_errors: final stored ")][0]
    assert "8 of 8 epochs differ" in detail and "    test_acc: final stored " in out


def test_a_forged_teacher_fails_on_the_same_hardware(store, capsys):
    for path in results(store, "teacher"):
        forge(path, shift_errors(+40))
    code, out, _ = run_verify(store, capsys)
    assert code == FAILED and "FAILED: 1 of 3 runs retrained on the hardware" in last(out)
    [line] = [line for line in out.splitlines() if line.startswith("FAILED, not bitwise")]
    assert "/teacher seed" in line


def test_lowered_values_claiming_other_hardware_are_caught_by_the_combined_test(store, capsys):
    """The forger also rewrites `device`, so no bitwise equality is owed: the sampled runs are then tested
    together, against the spread of the stored seeds that were not retrained."""
    for path in results(store):
        forge(path, lambda p: (shift_errors(-25)(p), elsewhere(p)))
    code, out, _ = run_verify(store, capsys)
    assert code == FAILED, out
    assert "the runs retrained elsewhere are not draws of the stored seeds' distribution" in last(out)
    # +25 a run, or less where a count was clamped at 0
    assert "shift of test_errors over 3 runs retrained elsewhere: mean retrained - stored +2" in out
    assert out.count(f"stored elsewhere (device {ELSEWHERE} (here CPU ") == 3


def test_a_forged_teacher_claiming_other_hardware_is_caught_by_its_single_difference(store, capsys):
    """One run off alone, elsewhere: with 4 other seeds (3 df) and Bonferroni over 3 runs and 2 statistics it
    takes about 10 arm sds (+40 errors, 9 sds, gives p 0.051: not caught); +60 is 13."""
    for path in results(store):
        forge(path, lambda p: (shift_errors(+60)(p) if "/teacher/" in str(path) else None, elsewhere(p)))
    code, out, _ = run_verify(store, capsys)
    assert code == FAILED, out
    assert "largest single difference: tiny-kd/default/teacher seed" in out


def test_an_honest_store_from_other_hardware_is_consistent(store, capsys):
    for path in results(store):
        forge(path, elsewhere)
    code, out, _ = run_verify(store, capsys)
    assert code == VERIFIED, out
    assert "3 retrained elsewhere consistent with the stored seeds (p 1)" in last(out)


@pytest.mark.parametrize("seeds", [[1], [1, 2]])
@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_a_store_of_too_few_seeds_cannot_be_decided_elsewhere_and_is_bitwise_checked_here(store, capsys, where, seeds):
    """One seed, or two of which one is retrained: no arm has 2 stored seeds besides those retrained."""
    write_claims(store / "claims", seeds)
    for path in results(store):
        if int(path.name[4:].split("-")[0]) not in seeds:
            path.unlink()
        elif where == "elsewhere":
            forge(path, elsewhere)
    code, out, _ = run_verify(store, capsys)
    if where == "here":
        assert code == VERIFIED and "3 of 3 runs bitwise equal" in last(out)
    else:
        assert code == UNDECIDABLE, out
        assert last(out).endswith("CANNOT DECIDE: 3 of the 3 runs were retrained elsewhere and their arms have no "
                                  "spread to judge them by (a store with too few seeds)")
        assert out.count("cannot decide: fewer than 2 stored seeds of its arm besides those retrained") == 3


def damage_truncate(root):
    path = results(root, "small")[-1]
    path.write_bytes(path.read_bytes()[:200])
    return path, "not readable as JSON"


def damage_edit(root):
    path = results(root, "student")[-1]
    path.write_text(path.read_text().replace('"test_errors": ', '"test_errors": 1', 1))
    return path, "checksum mismatch (file was edited or truncated)"


def damage_swap_seed(root):
    a, b = results(root, "small")[1:3]
    shutil.move(a, b)  # seed 2's result now sits under seed 3's name
    return b, "holds the result of seed 2 run"


def damage_swap_arm(root):
    teacher = results(root, "teacher")[1]
    target = teacher.parent.parent / "small" / teacher.name  # the teacher's file, its own name, the small arm's folder
    shutil.copy(teacher, target)
    return target, f"holds run {teacher.name[6:18]} (seed 2), whose place is {teacher}: a result moved to another run's"


def damage_symlink(root):
    path = results(root, "teacher")[-1]
    copy = root / "elsewhere.json"
    shutil.move(path, copy)
    path.symlink_to(copy)
    return path, "a symlink, not a result file"


@pytest.mark.parametrize("damage", [damage_truncate, damage_edit, damage_swap_seed, damage_swap_arm, damage_symlink])
def test_every_file_it_cannot_use_is_named_and_the_exit_status_says_so(store, capsys, damage):
    path, why = damage(store)
    code, out, _ = run_verify(store, capsys)
    assert code == UNUSABLE, out
    assert f"UNUSABLE {path}: " in out and why in out.split(f"UNUSABLE {path}: ")[1].splitlines()[0]
    assert "UNUSABLE FILES: 1 stored files could not be used (named above)" in last(out)


def sampled(out: str) -> list[str]:
    return sorted(line.split(" (")[0].split("equal ")[-1].split("differs ")[-1] for line in out.splitlines()
                  if line.startswith(("bitwise equal tiny-kd", "FAILED, not bitwise", "differs tiny-kd")))


def test_each_verify_draws_its_sample_afresh_prints_the_draw_and_replays_it(store, capsys):
    code, out, _ = run_verify(store, capsys, draw=None)
    [line] = [x for x in out.splitlines() if x.startswith("sample: 3 of the 15 stored runs")]
    draw = int(line.split("(draw ")[1].split(";")[0])
    assert code == VERIFIED and "was given (--draw)" not in out
    replay_code, replay, _ = run_verify(store, capsys, draw=draw)
    assert replay_code == VERIFIED and sampled(replay) == sampled(out) and len(sampled(out)) == 3
    assert f"(draw {draw}, given; `--draw {draw}` replays it)" in replay
    assert f"note: draw {draw} was given (--draw), not drawn: a sample chosen by whoever ran it" in replay
    others = {tuple(sampled(run_verify(store, capsys, draw=d)[1])) for d in (1, 2, 3)}
    assert len(others | {tuple(sampled(out))}) > 1  # 125 possible samples of one run per arm: not one fixed sample


def test_students_of_an_uncached_teacher_are_counted_out_of_the_draw(store, capsys):
    for weights in (store / "cache").rglob("*.pt"):
        weights.unlink()  # every teacher's weights gone: only the teachers and the small nets can be retrained
    code, out, _ = run_verify(store, capsys)
    assert code == VERIFIED, out
    assert "sample: 3 of the 10 stored runs that can be retrained here" in out
    assert "note: 5 stored runs were not in the draw: their teacher's weights are not cached here" in out
    assert not any("/student seed" in x for x in sampled(out))


def marked_diverged(payload):
    """A finished run recast as one that diverged in epoch 1 (a stored run may stop early on a non-finite loss): a
    claim that its student fails, which a draw of only finished runs would never retrain."""
    first = {**payload["epochs"][0], "train_loss": math.nan}
    payload.update(status="diverged", epochs=[first], final=dict(first))


@pytest.mark.parametrize("where", ["here", "elsewhere"])
def test_runs_forged_as_diverged_are_drawn_and_retrained(store, capsys, where):
    for path in results(store, "student"):
        forge(path, lambda p: (marked_diverged(p), elsewhere(p) if where == "elsewhere" else None))
    code, out, _ = run_verify(store, capsys)
    assert "sample: 3 of the 15 stored runs" in out
    if where == "here":
        assert code == FAILED and "FAILED: 1 of 3 runs retrained on the hardware" in last(out), out
        assert "    status: stored diverged, retrained done" in out
    else:
        assert code == UNDECIDABLE, out
        assert "cannot decide: stored diverged, retrained done: no test_errors on both sides to compare" in out
        assert last(out).endswith("CANNOT DECIDE: 1 of the 3 runs were retrained elsewhere and 1 of them finished "
                                  "differently here and as stored (one of the two diverged; named above)")


class Job:
    def __init__(self, arm: str, seed: int):
        self.claim, self.variant, self.arm = "c", "v", arm
        self.run = type("Run", (), {"key": f"{arm}{seed}", "seed": seed, "teacher": None, "init_from": None,
                                    "teachers": ()})()


@pytest.mark.parametrize("n", [1, 2, 3, 5])
def test_the_draw_reaches_every_run_alike_whatever_wall_s_a_forger_wrote(n):
    """Two arms of 5 seeds; seed 4 of arm a claims it took a year, seed 0 of arm b a microsecond (a predictable
    sample, such as the cheapest of each arm, would never check the first and always the second). Over 4,000
    draws each run is drawn at its share: n/10 with one of every arm before a second of any, within 4 sds."""
    runs = [(Job(arm, seed), {"status": "done", "wall_s": {"a4": 3e7, "b0": 1e-6}.get(f"{arm}{seed}", 60.0)}, [])
            for arm in "ab" for seed in range(5)]
    rng, draws, counts = random.Random(0), 4000, {}
    for _ in range(draws):
        chosen, untrainable = choose(runs, n, None, rng)
        arms = [job.arm for job, _, _ in chosen]
        assert len(chosen) == n and untrainable == [] and abs(arms.count("a") - arms.count("b")) <= 1
        for job, _, _ in chosen:
            counts[job.run.key] = counts.get(job.run.key, 0) + 1
    share = n / 10
    for key in [f"{arm}{seed}" for arm in "ab" for seed in range(5)]:
        assert abs(counts.get(key, 0) / draws - share) <= 4 * math.sqrt(share * (1 - share) / draws), (key, counts)


def test_device_cuda_without_cuda_is_one_line(store, capsys, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code, out, err = run_verify(store, capsys, "--device", "cuda")
    assert code == ERROR and out == ""
    assert err.count("\n") == 1 and err.startswith("error: --device cuda: CUDA is not available on this machine")


def test_differences_are_listed_per_metric_stored_against_retrained():
    stored = {"status": "done", "epochs": [{"test_errors": 5, "lr": 0.1}, {"test_errors": 4, "lr": 0.1}],
              "final": {"test_errors": 4, "lr": 0.1}}
    fresh = {"status": "done", "epochs": [{"test_errors": 5, "lr": 0.1}, {"test_errors": 7, "lr": 0.1}],
             "final": {"test_errors": 7, "lr": 0.1}}
    assert differences(stored, stored) == []
    assert differences(stored, fresh) == ["test_errors: final stored 4, retrained 7; 1 of 2 epochs differ (first, "
                                          "epoch 2: stored 4, retrained 7)"]
    nan = {**stored, "final": {**stored["final"], "x": math.nan}}
    assert differences(nan, json.loads(json.dumps(nan))) == []  # NaN equals NaN here; 4 and 4.0 would not


def simulated_rows(rng: random.Random, shift: float, runs: int = 4, seeds: int = 5) -> list[dict]:
    """Rows as verify() makes them for one metric: each run's arm with its own sd, spread from `seeds - 1`
    stored seeds not retrained, retrained - stored a draw of N(shift, 2 sd^2)."""
    rows = []
    for i in range(runs):
        sd = [3.0, 10.0, 30.0, 1.0][i % 4]
        others = [rng.gauss(0, sd) for _ in range(seeds - 1)]
        mean = sum(others) / len(others)
        var = sum((x - mean) ** 2 for x in others) / (len(others) - 1)
        d = rng.gauss(shift * sd, sd * math.sqrt(2))
        t = d / math.sqrt(2 * var)
        rows.append({"run": f"r{i}", "arm_id": f"a{i}", "metric": "m", "d": d, "var": var, "df": seeds - 2, "t": t,
                     "p_one": 2 * stats.t.sf(abs(t), seeds - 2)})
    return rows


def test_the_combined_test_holds_its_level_under_the_null_and_finds_a_one_direction_shift():
    """Under the null (honest stored values, retrained elsewhere) FAILED at most alpha of the time, within 3
    simulation standard errors (5,000 draws: 0.0496 here); a shift of 3 arm sds in every run found most times."""
    rng = random.Random(0)
    null = sum(combined_test(simulated_rows(rng, 0.0))["p"] < 0.05 for _ in range(5000)) / 5000
    shifted = sum(combined_test(simulated_rows(rng, 3.0))["p"] < 0.05 for _ in range(500)) / 500
    assert null <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 5000) and shifted >= 0.45, (null, shifted)


def test_an_arm_without_other_seeds_is_left_out_of_the_test_not_counted_as_consistent():
    assert combined_test([{"run": "r", "arm_id": "a", "metric": "m", "d": 100.0, "var": math.nan, "df": 0,
                           "t": math.inf, "p_one": math.nan}]) == {"n": 0, "p": math.nan, "parts": []}
