"""The registration (repro/registration.py, issue 33): no choice made after the data moves a confirmatory verdict.

Tiny claims folders (three `less` claims whose raw p are about 1e-4, 0.029 and 0.039: alone each is REPRODUCED,
in one Holm family of 3 only the first) with made-up results. Each test edits the folder the way the audit did
(judging one claim, deleting specs, editing a tolerance, re-declaring another claim's design, deleting every lock
and the registration) and checks that every confirmatory verdict is as before, with the change shown as an
amendment after the data or as tampering."""
from __future__ import annotations

import io
import shutil
import subprocess
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml

import conftest
from repro import registration as R
from repro import verdict as V
from repro.cli import main
from repro.plan import plan_claim
from repro.spec import load_claims
from repro.store import Store

SMALL = {"c-strong": [146.0, 141, 151], "c-medium": [84.0, 80, 88], "c-weak": [84.0, 79, 87]}
DISTILLED = [80.0, 74, 85]


def doc(name: str, **check) -> dict:
    return {"id": name, "source": {"file": "x.txt", "quote": "q"}, "statement": "s",
            "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                         "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
            "arms": {"small": {}, "distilled": {}},
            "check": {"kind": "less", "arms": ["distilled", "small"], "metric": "test_errors", "alpha": 0.05,
                      "justification": "why", **check},
            "profiles": {"smoke": {"seeds": [0, 1, 2], "scale": "toy"}}}


def write(folder: Path, spec: dict) -> None:
    (folder / f"{spec['id']}.yaml").write_text(yaml.safe_dump(spec))


def store_results(tmp_path, claims: dict, values: dict, stamp: str | dict | None) -> Store:
    """Every planned run of each claim, filed as `repro run` would (its provenance stamped when registered).
    `stamp`: one for every run, or {arm: stamp} (an arm not in it carries none)."""
    store = Store(tmp_path / "results", tmp_path / "cache")
    for name, per_arm in values.items():
        for arm, runs in plan_claim(claims[name], "default", "smoke").items():
            mark = stamp.get(arm) if isinstance(stamp, dict) else stamp
            for i, r in enumerate(runs):
                path = store.path("smoke", name, "default", arm, r)
                store.save(path, r, conftest.made_up_result(r, per_arm[arm][i]),
                           {"torch": "2.x", "git_commit": None, **({"registration": mark} if mark else {})})
    return store


def registered_folder(tmp_path, specs=None, values=None, made=None):
    """A claims folder registered before its results (wave 1), then its results trained under the registration.
    `made`: the folder, already holding other files (a plugin)."""
    folder = made or tmp_path / "claims"
    folder.mkdir(exist_ok=True)
    for spec in specs or [doc(name) for name in SMALL]:
        write(folder, spec)
    claims = load_claims(folder)
    reg = R.ensure(folder, claims, "smoke", tmp_path / "results")
    assert reg.state == "registered" and not reg.waves[0]["after_results"]
    values = values or {name: {"distilled": DISTILLED, "small": small} for name, small in SMALL.items()}
    return folder, store_results(tmp_path, claims, values, reg.stamp)


def unregistered_folder(tmp_path):
    """The same folder with its results stored before any registration (unstamped, as the shipped ones)."""
    folder = tmp_path / "claims"
    folder.mkdir()
    for name in SMALL:
        write(folder, doc(name))
    values = {n: {"distilled": DISTILLED, "small": s} for n, s in SMALL.items()}
    return folder, store_results(tmp_path, load_claims(folder), values, None)


def judged(folder, store) -> dict:
    return {v["claim"]: v for v in V.judge_folder(folder, load_claims(folder), "smoke", store)}


def headline(verdicts: dict) -> dict:
    return {k: (v["status"], v.get("p_holm")) for k, v in verdicts.items()}


def test_judge_of_one_claim_gives_the_reports_verdict(tmp_path):
    """`repro judge c-medium` corrected within the ids it was given: REPRODUCED (Holm p = raw p 0.029), where the
    report, correcting over the folder's family of 3, says INCONCLUSIVE (Holm 0.057)."""
    folder, store = registered_folder(tmp_path)
    report = judged(folder, store)["c-medium"]
    assert report["status"] == "INCONCLUSIVE" and report["p"] < 0.05 <= report["p_holm"]
    out = io.StringIO()
    with redirect_stdout(out):
        assert main(["judge", "c-medium", "--claims", str(folder), "--out", str(tmp_path / "out"),
                     "--results", str(tmp_path / "results"), "--profile", "smoke"]) == 0
    first = out.getvalue().splitlines()[0]
    assert first == f"INCONCLUSIVE   c-medium [default]: {report['reason']}", out.getvalue()
    assert "registration: registered" in out.getvalue()


def test_removing_unrelated_specs_leaves_every_verdict(tmp_path):
    """Deleting c-strong and c-weak shrank the family to c-medium alone: INCONCLUSIVE -> REPRODUCED. Registered,
    they stay in it, judged from the copy of their spec in the registration, so every verdict is as before."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    (folder / "c-strong.yaml").unlink()
    (folder / "c-weak.yaml").unlink()
    after = judged(folder, store)
    assert headline(after) == before and before["c-medium"][0] == "INCONCLUSIVE"
    assert after["c-strong"]["reason"].startswith("[its spec (or variant) is no longer in the claims folder")
    assert len(after["c-medium"]["holm_family"]) == 3


def test_a_deleted_spec_that_cannot_be_rebuilt_stays_in_its_family_at_p_1(tmp_path, monkeypatch):
    folder, store = registered_folder(tmp_path)
    judged(folder, store)  # the data are looked at: every member is recorded as tested
    (folder / "c-strong.yaml").unlink()
    (folder / "c-weak.yaml").unlink()
    monkeypatch.setattr(R.Registration, "claim", lambda self, *args: None)
    after = judged(folder, store)
    assert after["c-strong"]["status"] == "NOT RUN" and after["c-medium"]["status"] == "INCONCLUSIVE"
    assert len(after["c-medium"]["holm_family"]) == 3


def test_a_registered_claim_made_not_run_stays_in_its_family(tmp_path):
    folder, store = registered_folder(tmp_path)
    assert judged(folder, store)["c-medium"]["status"] == "INCONCLUSIVE"  # looked at: all three tested
    for path in (tmp_path / "results" / "smoke" / "c-weak").rglob("seed*.json"):
        path.unlink()
    after = judged(folder, store)
    assert after["c-weak"]["status"] == "NOT RUN" and after["c-medium"]["status"] == "INCONCLUSIVE"
    assert len(after["c-medium"]["holm_family"]) == 3 and after["c-weak"]["p_holm"] == 1


def test_a_member_never_tested_joins_its_family_at_its_first_test_and_never_leaves(tmp_path):
    """A registered claim whose runs were never made (a GPU profile, weights this machine cannot have) is not
    counted at p = 1 for ever (that would only cost every other claim power); its first test adds it, recorded in
    the registration, and from then on removing its results leaves it in at p = 1."""
    folder, store = registered_folder(tmp_path, values={n: {"distilled": DISTILLED, "small": SMALL[n]}
                                                        for n in ("c-strong", "c-medium")})
    first = judged(folder, store)
    assert first["c-weak"]["status"] == "NOT RUN" and first["c-medium"]["status"] == "REPRODUCED"
    assert sorted(first["c-medium"]["holm_family"]) == ["c-medium[default]", "c-strong[default]"]
    reg = R.load(tmp_path / "results", "smoke")
    assert reg.tested == {"c-strong[default]", "c-medium[default]"} and reg.waves[-1]["members"] == {}
    store_results(tmp_path, load_claims(folder), {"c-weak": {"distilled": DISTILLED, "small": SMALL["c-weak"]}},
                  reg.stamp)
    assert judged(folder, store)["c-medium"]["status"] == "INCONCLUSIVE"  # the family grew to 3
    for path in (tmp_path / "results" / "smoke" / "c-weak").rglob("seed*.json"):
        path.unlink()
    again = judged(folder, store)
    assert again["c-medium"]["status"] == "INCONCLUSIVE" and len(again["c-medium"]["holm_family"]) == 3


def test_deleting_a_tested_record_from_the_registration_is_tampering(tmp_path):
    import json
    folder, store = registered_folder(tmp_path)
    judged(folder, store)
    path = tmp_path / "results" / "smoke" / R.FILE
    doc = json.loads(path.read_text())
    doc["waves"][-1]["tested"].remove("c-weak[default]")
    path.write_text(json.dumps(doc))
    assert R.load(tmp_path / "results", "smoke").state == "tampered"


def test_editing_a_tolerance_after_the_data_is_an_amendment(tmp_path):
    """`matches` 90 +- 1 on values 80, 81, 79 is NOT REPRODUCED; the tolerance edited to 15 after the data made it
    REPRODUCED silently. Now the registered verdict stands and the edit is an exploratory amendment beside it."""
    spec = doc("c-match", kind="matches", arms=["distilled"], value=90.0, tolerance=1.0)
    folder, store = registered_folder(tmp_path, [spec], {"c-match": {"distilled": [80.0, 81, 79]}})
    assert judged(folder, store)["c-match"]["status"] == "NOT REPRODUCED"
    spec["check"]["tolerance"] = 15.0
    write(folder, spec)
    v = judged(folder, store)["c-match"]
    assert v["status"] == "NOT REPRODUCED"
    amendment = v["amendment"]
    assert amendment["status"] == "exploratory REPRODUCED" and "check.tolerance" in amendment["why"]
    assert amendment["line"].startswith("amendment after data: check.tolerance edited since the registration")
    assert v["holm_family"] == ["c-match[default]"]  # the amendment is in no family
    out = io.StringIO()
    with redirect_stdout(out):
        main(["judge", "c-match", "--claims", str(folder), "--out", str(tmp_path / "out"),
              "--results", str(tmp_path / "results"), "--profile", "smoke"])
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("NOT REPRODUCED c-match [default]")
    assert lines[1].strip().startswith("amendment after data: check.tolerance") and "exploratory REPRODUCED" in lines[1]


def test_editing_an_arm_or_moving_a_claim_off_its_profile_after_the_data_is_an_amendment(tmp_path):
    """An arm edited after the data (distilled trained 2 epochs, not 1) changes its run keys: judged from the edited
    spec, c-strong was NOT RUN ("stale"), its registered verdict gone with no amendment shown, and a re-run under the
    edit would have been confirmatory. Taking the profile out of c-weak's spec made it NOT RUN too. Now the runs of
    the spec as registered are judged, and each edit is an amendment."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    edited = doc("c-strong")
    edited["arms"]["distilled"] = {"epochs": 2}
    write(folder, edited)
    moved = doc("c-weak")
    moved["profiles"] = {"other": moved["profiles"]["smoke"]}
    write(folder, moved)
    after = judged(folder, store)
    assert headline(after) == before and before["c-strong"][0] == "REPRODUCED"
    assert after["c-strong"]["amendment"]["why"].startswith("amendment after data: arms.distilled edited since")
    assert after["c-strong"]["amendment"]["status"] == "NOT RUN"  # its runs at 2 epochs are not stored
    assert "arms (the spec no longer plans" in after["c-weak"]["amendment"]["why"]


def test_a_precision_set_when_judging_moves_no_verdict(tmp_path, monkeypatch):
    """REPRO_PRECISION=bf16 when judging fp32 results planned bf16 runs: every member NOT RUN ("missing"), the
    registered verdicts gone, and where both precisions are stored it picked which runs decide. Now the registered
    runs decide, and the override's verdict is an amendment."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    monkeypatch.setenv("REPRO_PRECISION", "bf16")
    after = judged(folder, store)
    assert headline(after) == before
    assert "REPRO_PRECISION=bf16" in after["c-strong"]["amendment"]["why"]
    assert after["c-strong"]["amendment"]["status"] == "NOT RUN"


def test_editing_observed_values_after_the_registration_is_an_amendment(tmp_path):
    """Observed values (measured elsewhere, in the spec or a file beside it) 80, 81, 79 against 90 +- 1: NOT
    REPRODUCED. Edited to 90, 90.1, 89.9, 90.05, 89.95 after the registration they made it REPRODUCED with nothing
    shown: they are registered with the rule now, judged as registered, and the edit is an amendment."""
    spec = doc("c-obs", kind="matches", arms=["rerun"], value=90.0, tolerance=1.0)
    observed = {"metric": "test_errors", "units": "errors", "provenance": "elsewhere", "values": [80.0, 81, 79]}
    spec["arms"] = {"rerun": {"observed": observed}}
    folder, store = registered_folder(tmp_path, [spec], {"c-obs": {}})  # nothing trains
    assert judged(folder, store)["c-obs"]["status"] == "NOT REPRODUCED"
    spec["arms"]["rerun"]["observed"] = {**observed, "values": [90.0, 90.1, 89.9, 90.05, 89.95]}
    write(folder, spec)
    v = judged(folder, store)["c-obs"]
    assert v["status"] == "NOT REPRODUCED"
    assert v["amendment"]["why"].startswith("amendment after data: observed.rerun edited")
    assert v["amendment"]["status"] == "exploratory REPRODUCED"


def test_runs_of_edited_plugin_code_are_not_the_registered_experiment(tmp_path):
    """A plugin's code is in its runs' keys: edited after the registration (here a model's width), its stored runs
    went stale and runs of the new code, re-run under the same registration, decided the claim with nothing shown
    (REPRODUCED -> INCONCLUSIVE here). The plugin's hash is registered with the rule now: the member is NOT RUN with
    the reason, at p = 1 in its family, and the new code's verdict is an amendment."""
    import uuid
    tag = uuid.uuid4().hex[:8]  # a model name registered once per process
    plugin = ("from torch import nn\nfrom repro.registry import MODELS\n\n"
              f"@MODELS.register('net_{tag}')\ndef net(in_shape, num_classes):\n"
              "    return nn.Sequential(nn.Flatten(), nn.LazyLinear(num_classes))  # width 1\n")
    spec = doc("c-strong")
    spec["plugins"] = ["mine.py"]
    spec["arms"]["distilled"] = {"model": {"name": f"net_{tag}"}}
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "mine.py").write_text(plugin)
    folder, store = registered_folder(tmp_path, [spec], {"c-strong": {"distilled": DISTILLED,
                                                                      "small": SMALL["c-strong"]}}, made=folder)
    assert judged(folder, store)["c-strong"]["status"] == "REPRODUCED"
    (folder / "mine.py").write_text(plugin.replace("# width 1", "# width 1, edited"))
    stamp = R.load(tmp_path / "results", "smoke").stamp
    store_results(tmp_path, load_claims(folder), {"c-strong": {"distilled": SMALL["c-strong"],
                                                               "small": SMALL["c-strong"]}}, stamp)  # re-run
    v = judged(folder, store)["c-strong"]
    assert v["status"] == "NOT RUN" and "its plugin code (mine.py) changed since the registration" in v["reason"]
    assert v["amendment"]["why"].startswith("amendment after data: code.mine.py edited")
    assert v["holm_family"] == ["c-strong[default]"]


def test_redeclaring_another_claims_design_leaves_every_verdict(tmp_path):
    """c-weak re-declared at alpha 0.2 on its judged seeds: on the old code its design lock made it NOT RUN, which
    took it out of the family and made c-medium REPRODUCED (Holm over 2). Now both are judged as registered."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    write(folder, doc("c-weak", alpha=0.2))
    after = judged(folder, store)
    assert headline(after) == before
    assert after["c-weak"]["amendment"]["status"] == "exploratory REPRODUCED"
    assert "check.alpha" in after["c-weak"]["amendment"]["why"]


def git(folder: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(folder), "-c", "user.email=t@t", "-c", "user.name=t", *args], check=True,
                   capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_deleting_every_lock_and_the_registration_and_changing_alpha_is_tampering(tmp_path):
    """design.lock deleted re-opened a looked-at design. Now the registration is committed: deleted (every lock
    too) and c-weak's alpha changed, the profile is judged under the committed registration, as before, with the
    tampering said on every verdict and the alpha change shown as an amendment."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered, results")
    for lock in (tmp_path / "results").rglob("design.lock"):
        lock.unlink()
    (tmp_path / "results" / "smoke" / R.FILE).unlink()
    write(folder, doc("c-weak", alpha=0.2))
    after = judged(folder, store)
    assert headline(after) == before
    assert all(v["reason"].startswith("[registration tampered: ") for v in after.values())
    assert after["c-weak"]["registration"]["state"] == "tampered" and "committed in" in after["c-weak"]["reason"]
    assert after["c-weak"]["amendment"]["status"] == "exploratory REPRODUCED"
    assert not (tmp_path / "results" / "smoke" / R.FILE).exists()  # never a fresh start


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_registration_rewritten_and_committed_is_tampering(tmp_path):
    """The registration's `tested` wave cut off and c-weak's results deleted, both committed: only the newest
    committed version was checked, so the cut file passed and the family shrank to 2 (c-medium INCONCLUSIVE ->
    REPRODUCED). Every committed version must extend the one committed before it."""
    import json
    folder, store = registered_folder(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered, results")
    before = headline(judged(folder, store))  # appends the tested wave
    git(tmp_path, "commit", "-qam", "judged")
    path = tmp_path / "results" / "smoke" / R.FILE
    doc = json.loads(path.read_text())
    doc["waves"] = doc["waves"][:1]  # still a valid chain: nothing in the file shows the cut
    path.write_text(json.dumps(doc))
    shutil.rmtree(tmp_path / "results" / "smoke" / "c-weak")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "cut")
    after = judged(folder, store)
    assert after["c-medium"]["status"] == before["c-medium"][0] == "INCONCLUSIVE"
    assert len(after["c-medium"]["holm_family"]) == 3
    assert after["c-medium"]["registration"]["state"] == "tampered"
    assert "does not extend the one committed before it" in after["c-medium"]["reason"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_committed_results_edited_or_deleted_since_are_judged_as_committed(tmp_path):
    """Results rewritten with other numbers and a valid checksum (c-medium's small arm made worse: INCONCLUSIVE ->
    REPRODUCED; one of them marked assume-unchanged first, which git diff then skips) and a result deleted with the
    deletion committed (c-weak: INCONCLUSIVE -> NOT RUN) moved verdicts with nothing shown. Now the results as git
    first committed them are judged, and every verdict says so."""
    folder, store = registered_folder(tmp_path)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered, results")
    before = headline(judged(folder, store))
    stamp = f"smoke:{R.load(tmp_path / 'results', 'smoke').waves[0]['hash'][:16]}"
    hidden = sorted((tmp_path / "results" / "smoke" / "c-medium").rglob("small/seed0-*.json"))
    git(tmp_path, "update-index", "--assume-unchanged", *map(str, hidden))  # git diff no longer looks at it
    store_results(tmp_path, load_claims(folder), {"c-medium": {"distilled": DISTILLED, "small": [120.0, 116, 124]}},
                  stamp)
    victim = next((tmp_path / "results" / "smoke" / "c-weak").rglob("seed0-*.json"))
    git(tmp_path, "rm", "-q", str(victim))
    git(tmp_path, "commit", "-qm", "a seed dropped")
    after = judged(folder, store)
    assert headline(after) == before and before["c-medium"][0] == "INCONCLUSIVE"
    assert all(v["reason"].startswith("[results tampered: results changed after git committed them") for v in
               after.values())
    assert len(after["c-medium"]["results_changed"]) == 4  # c-medium's 3 small runs edited, c-weak's seed 0 deleted


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize("hide", ["nested repository", "GIT_DIR"])
def test_git_history_cannot_be_hidden_by_a_nested_repository_or_git_variables(tmp_path, monkeypatch, hide):
    """`git init results/smoke` (a repository with no history inside the checkout) or GIT_DIR=/nowhere made git
    answer for another repository: a registration deleted where results carry no stamp was a fresh start, today's
    specs registered anew. git is now asked of the outermost repository holding the folder, with no GIT_* variable."""
    folder, store = unregistered_folder(tmp_path)
    before = headline(judged(folder, store))  # registered after its (unstamped) results
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered after results")
    (tmp_path / "results" / "smoke" / R.FILE).unlink()
    if hide == "GIT_DIR":
        monkeypatch.setenv("GIT_DIR", str(tmp_path / "nowhere"))
    else:
        git(tmp_path / "results" / "smoke", "init", "-q")
    after = judged(folder, store)
    assert after["c-medium"]["registration"]["state"] == "tampered" and headline(after) == before


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_checkout_inside_an_outer_repository_is_read_from_its_own_history(tmp_path):
    """A researcher's home folder kept in git (dotfiles) holds the checkout: asking the outermost repository, which
    has no history of it, switched every check off, so a committed result edited with its checksum recomputed moved
    the verdict silently. The outermost repository WITH history of the folder is asked."""
    import json
    from repro.store import checksum
    project = tmp_path / "home" / "project"
    project.mkdir(parents=True)
    git(tmp_path / "home", "init", "-q")
    (tmp_path / "home" / ".bashrc").write_text("# dotfiles\n")
    git(tmp_path / "home", "add", ".bashrc")
    git(tmp_path / "home", "commit", "-qm", "dotfiles")
    folder, store = unregistered_folder(project)
    before = headline(judged(folder, store))
    git(project, "init", "-q")
    git(project, "add", "-A")
    git(project, "commit", "-qm", "results, registered after them")
    victim = sorted((project / "results" / "smoke" / "c-medium").rglob("seed0-*.json"))[0]
    payload = json.loads(victim.read_text())
    for numbers in (payload["final"], payload["epochs"][-1]):
        numbers["test_errors"] = 0 if "distilled" in str(victim) else 99
    payload["checksum"] = checksum(payload)
    victim.write_text(json.dumps(payload))
    after = judged(folder, store)
    assert headline(after) == before
    assert "results tampered" in after["c-medium"].get("reason", "") + json.dumps(after["c-medium"]), after["c-medium"]


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_replace_ref_does_not_stand_in_for_the_committed_registration(tmp_path):
    """`git replace` made git show a forged registration (c-weak's check reversed, hashes recomputed) in place of the
    committed one, so the forged file in the checkout "extended the committed version". Replace refs are not read."""
    import json
    folder, store = unregistered_folder(tmp_path)  # no stamp to betray it
    judged(folder, store)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered after results, judged")
    path = tmp_path / "results" / "smoke" / R.FILE
    doc_ = json.loads(path.read_text())
    previous = None
    for wave in doc_["waves"]:
        for member in wave["members"].values():
            member["rule"]["check"]["arms"] = member["rule"]["check"]["arms"][::-1]
        wave["previous"] = previous
        wave["hash"] = previous = R.digest(wave)
    out = lambda *a: subprocess.run(["git", "-C", str(tmp_path), *a], check=True, capture_output=True,  # noqa: E731
                                    text=True).stdout.strip()
    old = out("rev-parse", f"HEAD:results/smoke/{R.FILE}")
    path.write_text(json.dumps(doc_))
    out("replace", old, out("hash-object", "-w", str(path)))
    assert judged(folder, store)["c-weak"]["registration"]["state"] == "tampered"


def test_a_deleted_registration_without_git_is_tampering_never_a_fresh_start(tmp_path):
    folder, store = registered_folder(tmp_path)
    (tmp_path / "results" / "smoke" / R.FILE).unlink()
    write(folder, doc("c-weak", alpha=0.2))
    after = judged(folder, store)
    assert {v["status"] for v in after.values()} == {"NOT RUN"}
    assert all("registration tampered" in v["reason"] and "carry its stamp" in v["reason"] for v in after.values())
    assert not (tmp_path / "results" / "smoke" / R.FILE).exists()


def test_an_edited_registration_is_tampering(tmp_path):
    folder, store = registered_folder(tmp_path)
    path = tmp_path / "results" / "smoke" / R.FILE
    path.write_text(path.read_text().replace('"alpha": 0.05', '"alpha": 0.2'))
    assert R.load(tmp_path / "results", "smoke").state == "tampered"
    assert {v["status"] for v in judged(folder, store).values()} == {"NOT RUN"}


def test_a_claim_added_after_its_data_is_exploratory_and_outside_the_family(tmp_path):
    """A second claim file with another check on the same runs, added after the registration: exploratory."""
    folder, store = registered_folder(tmp_path)
    before = headline(judged(folder, store))
    write(folder, doc("c-late", arms=["distilled", "small"]))
    claims = load_claims(folder)
    store_results(tmp_path, claims, {"c-late": {"distilled": DISTILLED, "small": SMALL["c-strong"]}}, None)
    after = judged(folder, store)
    assert {k: headline(after)[k] for k in before} == before
    late = after["c-late"]
    assert late["status"] == "INCONCLUSIVE" and late["reason"].startswith("not registered before its data")
    assert late["exploratory"]["status"] == "exploratory REPRODUCED" and late["family"] is None
    assert "c-late[default]" not in after["c-medium"]["holm_family"]


def test_a_wave_registered_before_copied_old_runs_is_not_confirmatory(tmp_path):
    """Registered in a new wave before its folder had results, then fed runs trained under the earlier wave."""
    folder, store = registered_folder(tmp_path)
    write(folder, doc("c-late"))
    claims = load_claims(folder)
    reg = R.ensure(folder, claims, "smoke", tmp_path / "results", add_new=True)
    assert [w["wave"] for w in reg.waves] == [1, 2]
    old = f"smoke:{reg.waves[0]['hash'][:16]}"  # the stamp of wave 1: data seen before wave 2
    store_results(tmp_path, claims, {"c-late": {"distilled": DISTILLED, "small": SMALL["c-strong"]}}, old)
    late = judged(folder, store)["c-late"]
    assert late["status"] == "INCONCLUSIVE" and "before this member was registered in wave 2" in late["reason"]


def test_an_automatic_registration_after_results_keeps_todays_verdicts_and_says_so(tmp_path):
    folder, store = unregistered_folder(tmp_path)
    claims = load_claims(folder)
    plain = V.finalize([V.decide_guarded(c, "default", "smoke", store, record=False) for c in claims.values()])
    after = judged(folder, store)
    assert {v["claim"]: (v["status"], v["p_holm"]) for v in plain} == headline(after)
    reg = R.load(tmp_path / "results", "smoke")
    assert reg.state == "registered after results" and reg.waves[0]["after_results"]
    assert after["c-medium"]["registration"]["state"] == "registered after results"


def test_results_copied_under_a_new_profile_name_are_not_confirmatory(tmp_path):
    """Results carry no profile: unstamped ones (stored before any registration, as the shipped ones) copied under a
    new profile name (smoke2, smoke's twin) got a fresh registration "after results" with today's rules and a family
    of the copied claims alone: c-medium, INCONCLUSIVE at smoke (Holm over 3), was REPRODUCED at smoke2. Runs stored
    under a profile registered before are data seen under that registration: no confirmatory verdict."""
    import time
    folder, store = unregistered_folder(tmp_path)
    assert judged(folder, store)["c-medium"]["status"] == "INCONCLUSIVE"  # registered after its results
    time.sleep(1.1)  # a registration is recorded to the second
    spec = doc("c-medium")
    spec["profiles"]["smoke2"] = spec["profiles"]["smoke"]
    write(folder, spec)
    shutil.copytree(tmp_path / "results" / "smoke" / "c-medium", tmp_path / "results" / "smoke2" / "c-medium",
                    ignore=shutil.ignore_patterns("design.lock"))
    v, = [v for v in V.judge_folder(folder, load_claims(folder), "smoke2", store) if v["claim"] == "c-medium"]
    assert v["status"] == "INCONCLUSIVE" and "stored under the smoke profile too" in v["reason"]
    assert v["exploratory"]["status"] == "exploratory REPRODUCED"
    assert judged(folder, store)["c-medium"]["status"] == "INCONCLUSIVE"  # smoke itself as before


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_copy_profile_that_claims_an_earlier_time_does_not_unseat_the_committed_one(tmp_path):
    """The copy's registration rewritten to say it was recorded first would make the original's runs "seen under" the
    copy's: which registration came first is read from git where it can be (the committed one first)."""
    import json
    folder = tmp_path / "claims"
    folder.mkdir()
    write(folder, doc("c-strong"))
    store = store_results(tmp_path, load_claims(folder), {"c-strong": {"distilled": DISTILLED,
                                                                       "small": SMALL["c-strong"]}}, None)
    assert judged(folder, store)["c-strong"]["status"] == "REPRODUCED"
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-qm", "registered after results")
    spec = doc("c-strong")
    spec["profiles"]["smoke2"] = spec["profiles"]["smoke"]
    write(folder, spec)
    shutil.copytree(tmp_path / "results" / "smoke", tmp_path / "results" / "smoke2",
                    ignore=shutil.ignore_patterns("design.lock", R.FILE))
    V.judge_folder(folder, load_claims(folder), "smoke2", store)  # registers smoke2 after its (copied) results
    path = tmp_path / "results" / "smoke2" / R.FILE
    doc_ = json.loads(path.read_text())
    previous = None
    for wave in doc_["waves"]:
        wave.update(recorded="2000-01-01T00:00:00+00:00", previous=previous)
        wave["hash"] = previous = R.digest(wave)
    path.write_text(json.dumps(doc_))
    assert judged(folder, store)["c-strong"]["status"] == "REPRODUCED"


def test_secondary_checks_keep_run_keys_and_join_the_family(tmp_path):
    """A non-inferiority secondary ("distilled no worse than small by more than 5 errors": at_most on the
    difference) beside the primary: the same runs and keys, its own registered verdict, one more family member."""
    plain = doc("c-strong")
    both = doc("c-strong")
    both["secondary_checks"] = [{"kind": "at_most", "derived": "difference", "arms": ["distilled", "small"],
                                 "metric": "test_errors", "bound": 5.0, "alpha": 0.05, "justification": "no worse"}]
    folder, store = registered_folder(tmp_path, [both], {"c-strong": {"distilled": DISTILLED,
                                                                      "small": SMALL["c-strong"]}})
    claims = load_claims(folder)
    (tmp_path / "p").mkdir()
    write(tmp_path / "p", plain)
    keys = lambda c: {a: [r.key for r in rs] for a, rs in plan_claim(c, "default", "smoke").items()}  # noqa: E731
    assert keys(claims["c-strong"]) == keys(load_claims(tmp_path / "p")["c-strong"])
    v = judged(folder, store)["c-strong"]
    assert v["status"] == "REPRODUCED"
    secondary, = v["secondary_checks"]
    assert secondary["status"] == "REPRODUCED" and secondary["holm_family"] == ["c-strong[default]",
                                                                               "c-strong[default] secondary 1"]
    rule = R.load(tmp_path / "results", "smoke").members["c-strong[default]"]["rule"]
    assert rule["secondary_checks"][0]["bound"] == 5.0


def test_results_without_a_stamp_under_a_registration_made_before_them_are_not_confirmatory(tmp_path):
    """Registered before any result, then fed results that carry no registration (trained elsewhere, earlier)."""
    folder = tmp_path / "claims"
    folder.mkdir()
    write(folder, doc("c-strong"))
    claims = load_claims(folder)
    assert R.ensure(folder, claims, "smoke", tmp_path / "results").state == "registered"
    store = store_results(tmp_path, claims, {"c-strong": {"distilled": DISTILLED, "small": SMALL["c-strong"]}}, None)
    v = judged(folder, store)["c-strong"]
    assert v["status"] == "INCONCLUSIVE" and "stored before its registration" in v["reason"]
    assert v["exploratory"]["status"] == "exploratory REPRODUCED"


def gated_folder(tmp_path, secondary: bool = False):
    """Registered before its results, a claim whose precondition compares a `teacher` arm the check does not:
    the teacher's runs were stored before the registration (no stamp, as hinton-only-7-8's shared teacher),
    the check's runs under it. `secondary`: a secondary check compares the teacher too."""
    spec = doc("c-strong")
    spec["arms"]["teacher"] = {}
    spec["preconditions"] = [{"kind": "less", "arms": ["teacher", "small"], "metric": "test_errors", "alpha": 0.05,
                              "justification": "a teacher better than the small net"}]
    if secondary:
        spec["secondary_checks"] = [{"kind": "less", "arms": ["teacher", "distilled"], "metric": "test_errors",
                                     "alpha": 0.05, "justification": "the teacher beats its student"}]
    folder = tmp_path / "claims"
    folder.mkdir()
    write(folder, spec)
    claims = load_claims(folder)
    reg = R.ensure(folder, claims, "smoke", tmp_path / "results")
    values = {"c-strong": {"distilled": DISTILLED, "small": SMALL["c-strong"], "teacher": [60.0, 62, 61]}}
    return folder, store_results(tmp_path, claims, values, {"distilled": reg.stamp, "small": reg.stamp})


def test_runs_only_a_precondition_reads_may_predate_the_rule(tmp_path):
    """The check's runs were all trained under the registration; the precondition's teacher was there before it.
    The rule was fixed before the data it tests, so the verdict is confirmatory, and it says where its gate's
    runs came from. A secondary check is a test in the family: its runs count as the check's do."""
    folder, store = gated_folder(tmp_path)
    v = judged(folder, store)["c-strong"]
    assert v["status"] == "REPRODUCED" and v["preconditions"][0]["held"]
    assert "only its preconditions compare (teacher) predate its rule" in v["registered"]["gated"]
    shutil.rmtree(tmp_path / "claims")
    shutil.rmtree(tmp_path / "results")
    folder, store = gated_folder(tmp_path, secondary=True)
    v = judged(folder, store)["c-strong"]
    assert v["status"] == "INCONCLUSIVE" and "stored before its registration" in v["reason"]
    assert "secondary_checks" not in v and "gated" not in v["registered"]


def test_the_report_shows_the_registration_and_the_amendment_labelled(tmp_path):
    import html
    from repro.report import render
    spec = doc("c-match", kind="matches", arms=["distilled"], value=90.0, tolerance=1.0)
    folder, store = registered_folder(tmp_path, [spec], {"c-match": {"distilled": [80.0, 81, 79]}})
    spec["check"]["tolerance"] = 15.0
    write(folder, spec)
    verdicts = V.judge_folder(folder, load_claims(folder), "smoke", store)
    page = html.unescape(render({"profile": "smoke", "verdicts": conftest._plain(verdicts)}, load_claims(folder)))
    assert "registration: registered (" in page and "1 verdict(s) with an amendment after the data" in page
    assert "amendment after data (exploratory)" in page and "exploratory REPRODUCED" in page
    # the headline is the registered rule's; the amendment's verdict never appears as a badge
    assert 'class="badge bad">NOT REPRODUCED<' in page and 'class="badge ok">REPRODUCED<' not in page
