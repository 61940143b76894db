"""Precision that fits the machine: the bf16 probe, the warning, REPRO_PRECISION, and the precision a verdict names."""
from __future__ import annotations

import json

import pytest
import torch

from repro import precision
from repro.plan import plan_claim
from repro.spec import load_claim

HINTON = "claims/hinton-kd-helps.yaml"


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("REPRO_PRECISION", "")  # unset for the test, and restored after it


def quick_runs():
    return plan_claim(load_claim(HINTON), "as_described", "quick")


def test_the_probe_runs_once_per_machine_and_is_remembered(monkeypatch):
    calls = []
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: calls.append(1) or 40.0)
    assert precision.bf16_slowdown("cpu") == 40.0 and precision.bf16_slowdown("cpu") == 40.0
    assert len(calls) == 1
    [entry] = json.loads(precision.probe_path().read_text()).values()
    assert entry["bf16_over_fp32"] == 40.0 and "torch" in entry["machine"]
    monkeypatch.setattr(precision, "machine_id", lambda: "another CPU [avx2]")
    precision.bf16_slowdown("cpu")
    assert len(calls) == 2 and len(json.loads(precision.probe_path().read_text())) == 2


def test_a_damaged_probe_file_is_measured_again(monkeypatch):
    precision.probe_path().parent.mkdir(parents=True)
    precision.probe_path().write_text("{not json")
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 0.4)
    assert precision.bf16_slowdown("cpu") == 0.4


def test_the_real_probe_is_short_and_finds_a_ratio():
    slowdown = precision.measure_bf16_slowdown()
    assert 0 < slowdown < 1000


@pytest.mark.parametrize("slowdown, warned", [(40.0, True), (0.4, False)])
def test_bf16_runs_are_announced_where_bf16_is_slow_with_the_cost_and_the_override(slowdown, warned, monkeypatch):
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: slowdown)
    runs = [r for rs in quick_runs().values() for r in rs]
    assert {r.arm.precision for r in runs} == {"bf16"}
    text = precision.slow_bf16_warning(runs, "cpu")
    assert (text is not None) == warned
    if warned:
        assert "40x" in text and f"the {len(runs)} bf16 run(s)" in text and "REPRO_PRECISION=fp32" in text
    fp32 = [r.model_copy(update={"arm": r.arm.model_copy(update={"precision": "fp32"})}) for r in runs]
    assert precision.slow_bf16_warning(fp32, "cpu") is None
    assert precision.slow_bf16_warning([], "cpu") is None


def test_the_probe_never_changes_a_run_key(monkeypatch):
    """Stored results stay valid wherever they are judged: a slow-bf16 machine plans the same keys."""
    before = {arm: [r.key for r in rs] for arm, rs in quick_runs().items()}
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 80.0)
    precision.bf16_slowdown("cpu")
    assert {arm: [r.key for r in rs] for arm, rs in quick_runs().items()} == before


def test_repro_precision_sets_every_arm_and_gives_the_keys_of_a_spec_that_declares_it(monkeypatch, tmp_path):
    declared_bf16 = quick_runs()
    monkeypatch.setenv("REPRO_PRECISION", "fp32")
    overridden = quick_runs()
    assert all(r.arm.precision == "fp32" and (r.teacher is None or r.teacher.arm.precision == "fp32")
               for rs in overridden.values() for r in rs)
    assert all(a.key != b.key for arm in overridden for a, b in zip(overridden[arm], declared_bf16[arm]))
    # the same runs benchmarks/precision.py trains from a copy of the specs with fp32 written in
    folder = hinton_claims(tmp_path / "claims", "      precision: bf16\n", "      precision: fp32\n")
    monkeypatch.setenv("REPRO_PRECISION", "")
    declared_fp32 = plan_claim(load_claim(folder / "hinton-kd-helps.yaml"), "as_described", "quick")
    assert {a: [r.key for r in rs] for a, rs in declared_fp32.items()} == \
        {a: [r.key for r in rs] for a, rs in overridden.items()}


def test_a_bad_repro_precision_is_one_clear_line(monkeypatch, capsys):
    from repro.cli import main
    monkeypatch.setenv("REPRO_PRECISION", "fp16")
    with pytest.raises(precision.PrecisionError, match="REPRO_PRECISION: expected one of fp32, bf16, got 'fp16'"):
        quick_runs()
    assert main(["list", "hinton-kd-helps"]) == 2
    err = capsys.readouterr().err
    assert err.strip().count("\n") == 0 and "REPRO_PRECISION" in err


def test_repro_run_warns_before_training_bf16_where_it_is_slow(monkeypatch, tmp_path, capsys):
    from repro.cli import main
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 40.0)
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    args = ["run", "hinton-teacher", "--profile", "smoke", "--seeds", "1", "--device", "cpu"]
    assert main(args) == 0  # the smoke profile is fp32: nothing to say
    assert "bf16 is slow" not in capsys.readouterr().err
    assert main(args + ["--precision", "bf16"]) == 0
    assert capsys.readouterr().err.count("warning: bf16 is slow on this CPU") == 1
    assert main(args + ["--precision", "bf16"]) == 0  # stored now: nothing left to train, nothing to say
    assert "bf16 is slow" not in capsys.readouterr().err


def test_each_verdict_names_the_precision_its_runs_used(monkeypatch, tmp_path):
    from repro.cli import main
    from repro.store import Store
    from repro.verdict import decide
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    claim = load_claim("claims/hinton-teacher.yaml")
    for chosen in ("fp32", "bf16"):
        monkeypatch.setenv("REPRO_PRECISION", chosen)
        assert main(["run", "hinton-teacher", "--profile", "smoke", "--device", "cpu"]) == 0
        verdict = decide(claim, "as_described", "smoke", Store(tmp_path / "results"))
        assert verdict["used_precision"] == chosen
    run = {"run": {"arm": {"precision": "fp32"}}}
    assert precision.used_precision({"a": [run], "b": [{"run": {"arm": {"precision": "bf16"}}}]}) == "a fp32, b bf16"
    assert "arm a mixes bf16 and fp32 runs" in precision.used_precision(
        {"a": [run, {"run": {"arm": {"precision": "bf16"}}}]})


@pytest.mark.parametrize("override", ["", "fp32"])
def test_until_decided_warns_before_its_first_look_that_trains_bf16_where_it_is_slow(monkeypatch, tmp_path, capsys,
                                                                                       override):
    """A variant declared bf16 whose first look was stored in bf16 (where bf16 was fast) adds bf16 seeds at its later
    looks here, where bf16 is slow (an arm never mixes precisions): warned once, before the first look. So with
    REPRO_PRECISION=fp32 too: judging reads the registered bf16 runs, and fp32 looks never joined them (the loop
    trained them, judged, and asked for them again). (Not REPRO_PRECISION=bf16 on an fp32 spec: a precision set when
    judging does not choose the registered runs.)"""
    from test_sequential import SPEC, write_spec
    from repro.cli import main
    slowdown = [1.0]
    monkeypatch.setattr(precision, "bf16_slowdown", lambda device: slowdown[0])
    claims = write_spec(tmp_path / "claims", {**SPEC, "defaults": {**SPEC["defaults"], "precision": "bf16"}})
    args = ["--claims", str(claims), "--out", str(tmp_path / "out"), "run", "--profile", "smoke"]
    assert main(args) == 0
    assert "bf16 is slow" not in capsys.readouterr().err
    slowdown[0] = 40.0
    monkeypatch.setenv("REPRO_PRECISION", override)
    assert main(args + ["--until-decided"]) == 0  # the profile's seeds are stored: only the looks train
    out = capsys.readouterr()
    assert "until-decided: next looks" in out.out and out.err.count("warning: bf16 is slow") == 1


def hinton_claims(folder, old: str, new: str):
    """claims/hinton-kd-helps.yaml and its shared base copied into `folder`, with `old` (once) in the base made `new`."""
    import shutil
    from pathlib import Path
    (folder / "_shared").mkdir(parents=True)
    base = Path("claims/_shared/hinton-mnist.yaml").read_text()
    assert base.count(old) == 1, old
    (folder / "_shared/hinton-mnist.yaml").write_text(base.replace(old, new))
    shutil.copy(HINTON, folder)
    return folder


def bf16_smoke_claims(folder):
    """The Hinton claims with their smoke profile declaring bf16, as the quick profiles do."""
    return hinton_claims(folder, "      epochs: 3\n", "      epochs: 3\n      precision: bf16\n")


def stored_precisions(out):
    return sorted({json.loads(p.read_text())["run"]["arm"]["precision"] for p in (out / "results").rglob("seed*.json")})


def test_where_bf16_is_slow_a_bf16_variant_trains_its_fp32_twin_and_says_so(monkeypatch, tmp_path, capsys):
    """Issue 23: on a CPU without native bf16 a run that declares bf16 takes about fp32's time by itself, every arm
    of the variant (its teacher too) in fp32; the verdict comes from those runs and names them."""
    from repro.cli import main
    from repro.store import Store
    from repro.verdict import decide
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 40.0)
    claims, out = bf16_smoke_claims(tmp_path / "claims"), tmp_path / "out"
    args = ["--claims", str(claims), "--out", str(out), "run", "--profile", "smoke", "--seeds", "2", "--device", "cpu"]
    assert main(args) == 0
    err = capsys.readouterr().err
    assert err.count("note: bf16 is slow on this CPU") == 1 and "hinton-kd-helps [as_described]" in err
    assert "warning: bf16 is slow" not in err  # nothing trains in bf16
    assert stored_precisions(out) == ["fp32"]
    claim = load_claim(claims / "hinton-kd-helps.yaml")
    claim = claim.model_copy(update={"profiles": {**claim.profiles, "smoke": claim.profiles["smoke"].model_copy(
        update={"seeds": [0, 1]})}})
    verdict = decide(claim, "as_described", "smoke", Store(out / "results"))
    assert verdict["status"] != "NOT RUN" and verdict["used_precision"] == "fp32" and "fp32 twin" in verdict["precision_twin"]
    # judged on a machine where bf16 is fast, the same stored runs give the same verdict: judging never probes
    monkeypatch.setattr(precision, "bf16_slowdown", lambda device: pytest.fail("judging consulted the probe"))
    again = decide(claim, "as_described", "smoke", Store(out / "results"))
    assert again["run_keys"] == verdict["run_keys"] and again["p"] == verdict["p"]


def test_a_variant_with_some_bf16_runs_stored_trains_all_of_its_twin_never_mixing(monkeypatch, tmp_path, capsys):
    from repro.cli import main
    claims, out = bf16_smoke_claims(tmp_path / "claims"), tmp_path / "out"
    args = ["--claims", str(claims), "--out", str(out), "run", "--profile", "smoke", "--device", "cpu"]
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 0.5)  # an AMX machine trains seed 0
    assert main(args + ["--seeds", "1"]) == 0 and stored_precisions(out) == ["bf16"]
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "avx2-cache"))  # an AVX2 machine goes on with the store
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 40.0)
    capsys.readouterr()
    assert main(args + ["--seeds", "2"]) == 0
    assert "note: bf16 is slow" in capsys.readouterr().err
    from repro.plan import plan_claim
    from repro.store import Store
    store = Store(out / "results")
    twin = plan_claim(load_claim(claims / "hinton-kd-helps.yaml"), "as_described", "smoke", [0, 1], precision="fp32")
    assert all(store.path("smoke", "hinton-kd-helps", "as_described", arm, r).exists() for arm, rs in twin.items() for r in rs)
    # the bf16 seed-0 runs stay stored, unused until their variant's seeds are all there in bf16
    assert stored_precisions(out) == ["bf16", "fp32"]


def test_declared_precision_wins_where_every_declared_run_is_stored_and_the_override_has_no_twin(monkeypatch, tmp_path):
    from repro.plan import twin_precision
    from repro.store import Store
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 40.0)
    claim = load_claim(bf16_smoke_claims(tmp_path / "claims") / "hinton-kd-helps.yaml")
    store = Store(tmp_path / "results")
    assert twin_precision(claim, "as_described", "smoke", store) is None  # judging, nothing stored: as declared
    assert twin_precision(claim, "as_described", "smoke", store, "cpu") == "fp32"  # training on a slow CPU
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 0.5)
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "amx-cache"))
    assert twin_precision(claim, "as_described", "smoke", store, "cpu") is None
    monkeypatch.setenv("REPRO_PRECISION", "bf16")
    monkeypatch.setenv("REPRO_CACHE", str(tmp_path / "avx2-cache"))
    monkeypatch.setattr(precision, "measure_bf16_slowdown", lambda: 40.0)
    assert twin_precision(claim, "as_described", "smoke", store, "cpu") is None  # asked for: trained as asked
    monkeypatch.setenv("REPRO_PRECISION", "")
    # every declared run stored: declared, on every machine
    from repro.plan import plan_claim
    for arm, runs in plan_claim(claim, "as_described", "smoke").items():
        for r in runs:
            path = store.path("smoke", claim.id, "as_described", arm, r)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("{}")
    assert twin_precision(claim, "as_described", "smoke", store, "cpu") is None
    assert twin_precision(claim, "as_described", "smoke", store) is None
