"""The docs for writing one's own claims: the generated spec reference is current and complete, the
guide's minimal spec is valid, the README links both, and the worked examples load."""
from __future__ import annotations

import re
from pathlib import Path

from repro.reference import meaning, reference_markdown
from repro.spec import (Arm, BiasShift, Check, Claim, Comparable, Optimizer, Profile, Schedule, Sequential, Source,
                        Variant, load_claim, load_claims)

REFERENCE = Path("docs/spec-reference.md")
GUIDE = Path("docs/writing-claims.md")


def test_the_committed_reference_is_what_repro_reference_writes():
    assert REFERENCE.read_text() == reference_markdown(), "docs/spec-reference.md is out of date: run `repro reference`"


def test_every_schema_key_has_a_meaning_in_the_reference():
    for model in (Arm, Check, Claim, Optimizer, Profile, Schedule, Source, Variant, BiasShift, Comparable, Sequential):
        for name in model.model_fields:
            assert meaning(model, name).strip(), f"{model.__name__}.{name} has no description: add one in repro/spec/schema.py"
    text = reference_markdown()
    for name in Arm.model_fields:
        assert re.search(rf"^\| `{name}` \|.*\| [^|]*\w[^|]* \|$", text, re.M), name


def test_every_registered_name_alias_metric_and_derived_quantity_is_listed():
    from repro.metrics import EPOCH_KEYS, REDUCERS
    from repro.registry import CHECKS, DATASETS, LOSSES, MODELS
    from repro.stats import DERIVED
    text = reference_markdown()
    from repro.plugins import from_plugin  # other tests' plugins register names of their own in this process
    own = [n for r in (DATASETS, MODELS) for n in r.names() if not from_plugin(r.get(n))]
    names = [*CHECKS.names(), *own, *EPOCH_KEYS, *DERIVED]
    names += [n for loss in LOSSES.names() if not from_plugin(LOSSES.get(loss)) for n in (loss, *LOSSES.aliases_of(loss))]
    assert all(f"`{n}`" in text for n in names), [n for n in names if f"`{n}`" not in text]
    assert all(f"`{r}:`" in text for r in REDUCERS)


def test_the_guides_minimal_spec_is_valid_and_the_readme_links_both_docs(tmp_path):
    block = re.search(r"```yaml\n(# my/claims/(\S+)\.yaml\n.*?)```", GUIDE.read_text(), re.S)
    (tmp_path / f"{block.group(2)}.yaml").write_text(block.group(1))
    claim = load_claim(tmp_path / f"{block.group(2)}.yaml")
    assert claim.resolve("distilled", "default", "tiny").loss.name == "kd_batchmean"
    readme = Path("README.md").read_text()
    assert "docs/writing-claims.md" in readme and "docs/spec-reference.md" in readme


def test_the_worked_examples_load_and_use_what_they_needed():
    claims = load_claims("examples/claims")
    assert len(claims) >= 3
    arms = [c.resolve(a, v, "tiny") for c in claims.values() for v in c.variants for a in c.arms
            if not c.is_observed(a)]
    assert any(a.teacher_epoch for a in arms) and any(a.loss.params.get("label_smoothing") for a in arms)
    assert any(c.check.kind == "at_most" and c.check.metric == "fidelity" for c in claims.values())
    assert any(a.model.name == "lenet5" for a in arms) and any(a.teacher_view == "fixed" and a.jitter_px for a in arms)
    assert any(c.observed and not c.profiles for c in claims.values())  # the plugin, fixed-teacher, observed examples
