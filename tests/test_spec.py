"""Specs load into typed objects; every malformed spec gets one line naming file, key and expectation."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from repro.spec import SpecError, deep_merge, load_claim, load_claims


def flattened(path: Path) -> dict:
    """A spec with its `base:` file merged in: one self-contained document to break in tests."""
    raw = yaml.safe_load(path.read_text())
    base = raw.pop("base", None)
    return deep_merge(yaml.safe_load((path.parent / base).read_text()), raw) if base else raw


GOOD = flattened(Path("claims/hinton-kd-helps.yaml"))


def write(tmp_path, doc, name="hinton-kd-helps") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return path


def edited(edit) -> dict:
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    edit(doc)
    return doc


def test_every_claim_in_the_repo_loads():
    claims = load_claims("claims")
    assert "hinton-kd-helps" in claims
    for claim in claims.values():
        assert {"smoke", "quick", "paper"} <= set(claim.profiles)


@pytest.mark.parametrize("edit,expected", [
    (lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
    (lambda d: d["arms"]["teacher"].update(epochs=-3), "arms.teacher (variant 'as_described', profile 'paper').epochs"),
    (lambda d: d["arms"]["teacher"].update(epochs="many"), "epochs: Input should be a valid integer"),
    (lambda d: d["arms"]["small"].update(model={"name": "transformer9000"}), "unknown model 'transformer9000'; known: mlp"),
    (lambda d: d["arms"]["small"]["model"].update(depth=3), "model 'mlp' takes no parameter ['depth']"),
    (lambda d: d["variants"]["as_described"]["arms"]["distilled"].update(loss={"name": "hinton", "alpha": 0.7}),
     "needs parameter(s) ['T']"),
    (lambda d: d["check"].update(kind="bigger"), "check.kind: unknown check 'bigger'"),
    (lambda d: d["check"].pop("justification"), "check.justification: Field required"),
    (lambda d: d["check"].update(arms=["distilled", "nobody"]), "check.arms: unknown arm 'nobody'"),
    (lambda d: d["profiles"]["quick"].update(seeds=[]), "profiles.quick.seeds: List should have at least 1 item"),
    (lambda d: d["arms"]["teacher"].update(teacher="distilled"), "teacher cycle"),
    (lambda d: d.update(id="other-name"), "id: expected 'hinton-kd-helps' (the file name)"),
])
def test_bad_specs_name_file_key_and_expectation(tmp_path, edit, expected):
    path = write(tmp_path, edited(edit))
    with pytest.raises(SpecError) as err:
        load_claim(path)
    message = str(err.value)
    assert message.startswith(str(path)) and expected in message and "\n" not in message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "id: x\narms: [unclosed\n")
    with pytest.raises(SpecError, match=r"line \d+: not valid YAML"):
        load_claim(path)


def test_yaml_is_read_safely(tmp_path):
    path = write(tmp_path, "id: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(SpecError, match="not valid YAML"):
        load_claim(path)


def test_variant_and_profile_overrides_merge_in_order():
    claim = load_claim("claims/hinton-kd-helps.yaml")
    quick_teacher = claim.resolve("teacher", "as_written", "quick")
    assert quick_teacher.epochs == 30 and quick_teacher.model.params["hidden"] == [1200, 1200]
    written = claim.resolve("distilled", "as_written", "paper")
    assert written.loss.name == "hinton_repro" and written.teacher_mode == "train"
    smoke = claim.resolve("small", "as_described", "smoke")
    assert smoke.data.name == "synthetic" and smoke.model.params["hidden"] == [16, 16]


def test_a_base_file_is_merged_under_the_claim(tmp_path):
    (tmp_path / "_shared").mkdir()
    doc = flattened(Path("claims/hinton-kd-helps.yaml"))
    shared = {k: doc.pop(k) for k in ("source", "defaults", "profiles")}
    (tmp_path / "_shared" / "b.yaml").write_text(yaml.safe_dump(shared))
    claim = load_claim(write(tmp_path, {"base": "_shared/b.yaml", **doc}))
    assert claim.profiles["quick"].seeds == shared["profiles"]["quick"]["seeds"]

    (tmp_path / "_shared" / "b.yaml").write_text(yaml.safe_dump({"base": "other.yaml", **shared}))
    with pytest.raises(SpecError, match="b.yaml: base: a shared file cannot have a base itself"):
        load_claim(tmp_path / "hinton-kd-helps.yaml")


BAD = sorted(Path("tests/bad-specs").glob("*.yaml"))


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_spec_corpus_gets_one_line_naming_file_and_key(path, capsys):
    """`repro validate` on each broken spec: one line, the file, the key, what was expected; no traceback."""
    from repro.cli import main
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert out.out.count("\n") == 1 and "Traceback" not in out.out + out.err
    assert out.out.startswith(f"error {path}: ") and expected in out.out


# --- issue 17: what one's own claims need, without changing any existing run key ----------------

RESULTS = sorted(Path("results").rglob("*.json"))


def test_every_committed_result_is_current_under_todays_spec_and_schema():
    """New optional fields (teacher_epoch, label_smoothing, free profile names, loss aliases) leave every
    committed run key as it was: each result's stored `run` re-validates into a RunSpec with the stored
    key, and the current spec of its claim still plans a run with that key at its place."""
    from repro.plan import plan_claim
    from repro.spec import RunSpec
    assert RESULTS, "no committed results to check"
    claims = load_claims("claims")
    planned: dict = {}
    for path in RESULTS:
        profile, claim, variant, arm = path.relative_to("results").parts[:4]
        stored = __import__("json").loads(path.read_text())
        assert RunSpec.model_validate(stored["run"]).key == stored["key"], path
        if (claim, variant, profile) not in planned:  # a sequential profile's looks add seeds up to its cap
            seq = claims[claim].profiles[profile].sequential
            seeds = claims[claim].profiles[profile].seeds_for(seq.max_seeds) if seq else None
            planned[(claim, variant, profile)] = plan_claim(claims[claim], variant, profile, seeds)
        assert stored["key"] in {r.key for r in planned[(claim, variant, profile)][arm]}, f"{path} is stale"


def test_profile_names_are_the_users_but_auto_is_reserved(tmp_path):
    doc = edited(lambda d: d["profiles"].update(tiny=d["profiles"].pop("quick")))
    assert "tiny" in load_claim(write(tmp_path, doc)).profiles
    for name, expected in [("auto", "'auto' is not a profile name"), ("Bad Name", r"profiles: String should match pattern .* \(got 'Bad Name'\)")]:
        doc = edited(lambda d: d["profiles"].update({name: d["profiles"].pop("quick")}))
        with pytest.raises(SpecError, match=expected):
            load_claim(write(tmp_path, doc))


def test_a_distillation_loss_without_a_teacher_is_a_validation_error_not_a_crash(tmp_path):
    doc = edited(lambda d: d["arms"]["small"].update(loss={"name": "kd_batchmean", "alpha": 0.5, "T": 4}))
    with pytest.raises(SpecError, match=r"arms.small .*'kd_batchmean' distils from a teacher, but the arm has no"):
        load_claim(write(tmp_path, doc))
    smoothed = edited(lambda d: d["arms"]["teacher"].update(loss={"name": "ce", "label_smoothing": 0.1}))
    assert load_claim(write(tmp_path, smoothed)).resolve("teacher", "as_described", "quick").loss.params == {
        "label_smoothing": 0.1}
    doc = edited(lambda d: d["arms"]["small"].update(teacher_epoch=3))
    with pytest.raises(SpecError, match="teacher_epoch: the arm has no 'teacher'"):
        load_claim(write(tmp_path, doc))


def test_a_loss_alias_gives_the_same_function_and_keeps_the_name_as_written():
    from repro.registry import LOSSES
    assert LOSSES.get("logit_mse") is LOSSES.get("hymenoptera") and LOSSES.get("kd_batchmean") is LOSSES.get("hinton")
    assert "logit_mse" not in LOSSES.names() and LOSSES.aliases_of("hymenoptera") == ["logit_mse"]
    claim = load_claim("claims/hinton-kd-helps.yaml")
    arm = claim.resolve("distilled", "as_described", "quick")
    assert arm.loss.name == "hinton"  # so the run keys of existing specs cannot move
    with pytest.raises(KeyError, match="aliases: .*logit_mse"):
        LOSSES.get("no_such_loss")


def test_a_profile_tunes_a_components_parameters_without_naming_it(tmp_path):
    """`all: {loss: {label_smoothing: 0.1}}` keeps the arm's loss, written as a mapping, as a string, or left at
    its default (ce), and only sets the parameter (it was refused for a nameless loss nobody wrote)."""
    def edit(d):
        d["arms"]["teacher"]["loss"] = "ce"  # as a string
        d["arms"]["small"].pop("loss", None)  # the default
        d["profiles"]["quick"].setdefault("all", {})["loss"] = {"label_smoothing": 0.1}
    claim = load_claim(write(tmp_path, edited(edit)))
    for arm, name in (("teacher", "ce"), ("small", "ce"), ("distilled", "hinton")):
        loss = claim.resolve(arm, "as_described", "quick").loss
        assert (loss.name, loss.params["label_smoothing"]) == (name, 0.1), arm
    assert claim.resolve("distilled", "as_described", "quick").loss.params["T"] == 20  # the rest kept
    assert "label_smoothing" not in claim.resolve("small", "as_described", "paper").loss.params


def test_teacher_view_fixed_on_a_dataset_read_from_files_is_a_validation_line(tmp_path):
    doc = flattened(Path("claims/hym-accuracy.yaml"))
    doc["arms"]["alpha05"].update(teacher_view="fixed", teacher_mode="eval")
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path, doc, "hym-accuracy"))
    assert any("teacher_view: 'fixed' keeps the teacher's predictions by image index, but dataset 'hymenoptera' is "
               "read from files batch by batch, not held in memory; use teacher_view: consistent" in line
               for line in err.value.lines), err.value.lines
