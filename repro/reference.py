"""docs/spec-reference.md, generated from the schema (repro/spec/arm.py, schema.py) and the registries: `repro
reference`.

Every key a spec can write, every dataset, model, loss, optimiser, schedule and check kind with its
parameters (from the builders' signatures) and meaning (their docstrings and field descriptions),
every metric and reducer (repro/metrics.py) and the derived quantities (repro/stats/checks.py). A test
fails when the committed file differs from what this writes, so the reference cannot go stale.
"""
from __future__ import annotations

import inspect
import typing

from pydantic import BaseModel

from . import data, losses, models, stats  # noqa: F401  (importing them fills the registries)
from .features import RUN_INPUTS
from .metrics import EPOCH_KEYS, FINAL_KEYS, REDUCERS
from .registry import CHECKS, DATASETS, LOSSES, MODELS
from .spec.observed import Observed
from .spec import Arm, BiasShift, Check, Claim, Comparable, Optimizer, Profile, Schedule, Sequential, Source, Variant

# Claim-level keys have no field descriptions in repro/spec/schema.py; their meaning is kept here, and
# tests/test_reference.py fails when a schema field has neither.
CLAIM_HELP = {
    "id": "the claim's name: lowercase letters, digits and '-'; must equal the file name without .yaml",
    "base": "a shared file (relative to the spec, e.g. _shared/mnist.yaml) merged under this spec; claims "
            "with the same base share arms, hence teacher runs",
    "source": "where the claim comes from: `file` and a verbatim `quote`",
    "statement": "the claim in one or two sentences, as the report shows it",
    "defaults": "arm keys every arm starts from",
    "arms": "arm name -> arm keys (over `defaults`); see Arm keys",
    "check": "the statistical question that decides the claim; see Check keys",
    "secondary_checks": "further checks (same keys) on the arms the check and preconditions compare, e.g. "
                        "non-inferiority beside superiority: each judged, registered and in the Holm family beside "
                        "the primary `check`, whose verdict stays the claim's headline; no run or key changes",
    "preconditions": "checks (same keys) that must hold before the claim is tested; if one does not, the verdict "
                     "is INCONCLUSIVE (a registered claim stays in its Holm family at p = 1)",
    "variants": "variant name -> overrides (`description`, `all`, `arms`); each variant is judged separately "
                "(default: one variant named 'default')",
    "profiles": "profile name -> `seeds`, `scale`, `deviations` and overrides (`all`, `arms`); names are yours "
                "(lowercase, digits, '-', '_'); none needed when every arm is observed; this project's are smoke (synthetic data, machinery only), quick "
                "(CPU-sized) and paper (the source's protocol); 'auto' is reserved",
    "plugins": "Python modules with the claim's own models, datasets and losses, registered with the "
               "built-ins' decorators: .py files relative to the spec's folder, or importable module names; only "
               "these are imported (docs/writing-claims.md, 'Your own models, datasets and losses')",
    "file": "the source document's file name",
    "quote": "the sentence(s) the claim rests on, verbatim",
    "description": "one line: what this variant changes and why",
    "all": "arm keys applied to every arm",
    "deviations": "how this profile departs from the source's protocol, one item each (the report lists them)",
    "seeds": "the seeds each arm is trained with (one run per seed)",
    "limits": "raised size limits for this claim (epochs, batch_size, width, resolution, examples), where it "
              "really means a size over the defaults",
    "comparable": "`{numbers: true|false, why: ...}`: whether this profile's (or variant's) absolute numbers can "
                  "be held against the source's; where not, a check against the source's own number (`matches`) is "
                  "never NOT REPRODUCED (default: comparable)",
    "sequential": "`{max_seeds, group, spending}`: judge group-sequentially, adding `group` seeds per look up to "
                  "`max_seeds` (`repro run --until-decided`), alpha spent over the looks (see Sequential)",
}
CHECK_HELP = {"kind": "the check kind (see Check kinds)", "metric": "the per-run number compared (see Metrics)",
              "arms": "the arms compared, in the order the kind reads them",
              "bound": "at_least: the value the derived quantity must reach or exceed; at_most: the value it must "
                       "not exceed"}
OVERRIDE_HELP = {"arms": "arm name -> arm keys applied to that arm only"}
FIELD_HELP = {  # per schema model, for fields without a description in repro/spec/arm.py or schema.py
    "Check": CHECK_HELP, "Variant": OVERRIDE_HELP, "Profile": OVERRIDE_HELP,
    "Optimizer": {"name": "sgd, adam or adamw (fused steps)", "lr": "learning rate", "momentum": "sgd momentum",
                  "weight_decay": "L2 weight decay"},
    "Schedule": {"name": "which schedule"},
    "BiasShift": {"classes": "the classes whose output biases are raised", "grid": "the bias values tried"},
}
RESERVED = {"in_shape", "num_classes", "student_logits", "targets", "teacher_logits", *RUN_INPUTS}


def type_name(t) -> str:
    origin, args = typing.get_origin(t), typing.get_args(t)
    if origin is typing.Literal:
        return " \\| ".join(f"`{a}`" for a in args)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(type_name(a) for a in args if a is not type(None))
    if origin is list:
        return f"list of {type_name(args[0])}"
    if origin is dict:
        return "mapping"
    if origin is typing.Annotated:
        return type_name(args[0])
    if isinstance(t, type) and issubclass(t, BaseModel):
        return {"Component": "component", "Optimizer": "optimizer", "Schedule": "schedule",
                "BiasShift": "bias shift", "Check": "check", "Source": "source"}.get(t.__name__, t.__name__)
    return getattr(t, "__name__", str(t))


def default_text(field) -> str:
    if field.is_required():
        return "required"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, dict) and all(isinstance(v, BaseModel) for v in value.values()):
        return ", ".join(f"`{k}`" for k in value) or "`{}`"
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=True) or value.model_dump()
        value = value.get("name", value) if isinstance(value, dict) else value
    if value is None:
        return "none"
    if isinstance(value, list) and len(value) > 6:
        return f"{len(value)} values, {value[0]} ... {value[-1]}"
    return f"`{value}`"


def cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def meaning(model: type[BaseModel], name: str) -> str:
    """A schema field's meaning: its description in repro/spec/arm.py or schema.py, else the tables here, else
    stats.KEY_HELP."""
    return (model.model_fields[name].description or FIELD_HELP.get(model.__name__, {}).get(name)
            or CLAIM_HELP.get(name) or stats.KEY_HELP.get(name, ""))


def fields_table(model: type[BaseModel]) -> list[str]:
    rows = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        rows.append(f"| `{name}` | {type_name(field.annotation)} | {default_text(field)} | {cell(meaning(model, name))} |")
    return rows


def doc_of(fn) -> str:
    return cell((inspect.getdoc(fn) or "").split("\n\n")[0])


def params_of(fn) -> str:
    out = []
    for name, p in inspect.signature(fn).parameters.items():
        if name in RESERVED:
            continue
        if p.kind == p.VAR_KEYWORD:  # e.g. timm: the architecture's own keyword arguments
            out.append("any keyword argument of the builder")
            continue
        out.append(f"`{name}`" if p.default is inspect.Parameter.empty else f"`{name}={p.default!r}`")
    return ", ".join(out) or "-"


def registry_table(registry, with_aliases: bool = False) -> list[str]:
    head = "| name | also accepted | parameters | what it is |" if with_aliases else "| name | parameters | what it is |"
    rows = [head, "|---|---|---|---|" if with_aliases else "|---|---|---|"]
    from .plugins import from_plugin
    for name in registry.names():
        fn = registry.get(name)
        if from_plugin(fn):  # a claim's own builder, imported in this process: not part of kd-repro's reference
            continue
        aliases = ", ".join(f"`{a}`" for a in registry.aliases_of(name)) or "-"
        rows.append(f"| `{name}` | {aliases} | {params_of(fn)} | {doc_of(fn)} |" if with_aliases
                    else f"| `{name}` | {params_of(fn)} | {doc_of(fn)} |")
    return rows


def checks_table() -> list[str]:
    rows = ["| kind | needs | optional | arms | what it tests |", "|---|---|---|---|---|"]
    for name in CHECKS.names():
        fn = CHECKS.get(name)
        low, high = getattr(fn, "arm_count", (1, None))
        arms = f"{low}" if low == high else f"{low}+" if high is None else f"{low}-{high}"
        rows.append(f"| `{name}` | {', '.join(f'`{k}`' for k in getattr(fn, 'needs', ())) or '-'} | "
                    f"{', '.join(f'`{k}`' for k in getattr(fn, 'optional', ())) or '-'} | {arms} | {doc_of(fn)} |")
    return rows


def reference_markdown() -> str:
    out = ["# Spec reference",
           "",
           "Generated by `repro reference` from repro/spec/arm.py and schema.py, the registries and repro/metrics.py; do not edit "
           "by hand (tests/test_reference.py fails when this file is out of date). How to write a claim: "
           "[writing-claims.md](writing-claims.md).",
           "",
           "## Claim keys (top level of a spec)",
           "",
           "| key | type | default | meaning |", "|---|---|---|---|",
           f"| `base` | path | none | {cell(CLAIM_HELP['base'])} |",
           *fields_table(Claim)[2:],
           "",
           "`source`:", "", *fields_table(Source),
           "",
           "A variant (`variants.<name>`):", "", *fields_table(Variant),
           "",
           "A profile (`profiles.<name>`):", "", *fields_table(Profile),
           "", "`comparable` (a profile's or a variant's):", "", *fields_table(Comparable),
           "", "`sequential` (" + cell(inspect.getdoc(Sequential)) + "):", "", *fields_table(Sequential),
           "",
           "Merge order for one arm: `defaults` <- `arms.<arm>` <- variant `all` <- variant `arms.<arm>` <- profile "
           "`all` <- profile `arms.<arm>`. Mappings merge key by key; a mapping written with a `name` (model, data, "
           "loss, optimizer, schedule) replaces the one below it whole, and a list replaces the list below it.",
           "",
           "An observed arm (`arms.<name>.observed`, repro/spec/observed.py: values measured elsewhere, not trained; "
           "nothing from `defaults` or `all:`):", "", *fields_table(Observed),
           "",
           "## Arm keys",
           "",
           *fields_table(Arm),
           "",
           "`optimizer`:", "", *fields_table(Optimizer),
           "",
           "`schedule` (" + cell(inspect.getdoc(Schedule)) + "):", "", *fields_table(Schedule),
           "",
           "`bias_shift`:", "", *fields_table(BiasShift),
           "",
           "## Datasets (`data: {name: ..., <parameter>: ...}`)",
           "",
           *registry_table(DATASETS),
           "",
           "## Models (`model: {name: ..., <parameter>: ...}`)",
           "",
           *registry_table(MODELS),
           "",
           "## Losses (`loss: {name: ..., <parameter>: ...}`)",
           "",
           "A loss is registered under its source's name; the names under \"also accepted\" say what it computes "
           "and give the same function. A run's key holds the name as written: use one spelling within a claims "
           "folder so runs are shared. `label_smoothing` smooths the hard-label CE term only.",
           "",
           *registry_table(LOSSES, with_aliases=True),
           "",
           "## Check keys (`check:` and each of `preconditions:`)",
           "",
           *fields_table(Check),
           "",
           "### Check kinds",
           "",
           *checks_table(),
           "",
           "### Derived quantities (`derived:` of at_least / at_most)",
           "",
           "| name | arms (in order) | formula |", "|---|---|---|",
           *[f"| `{name}` | {', '.join(d.roles)} | {cell(d.formula)} |" for name, d in stats.DERIVED.items()],
           "",
           "## Metrics (`metric:` of a check)",
           "",
           "A per-epoch key names the selected epoch's value (the last, or the best with `select: best`); "
           "`reducer:key` reduces the key's per-epoch series.",
           "",
           "| per-epoch key | meaning |", "|---|---|",
           *[f"| `{k}` | {cell(v)} |" for k, v in EPOCH_KEYS.items()],
           "",
           "| reducer | meaning |", "|---|---|",
           *[f"| `{k}:` | {cell(v)} |" for k, v in REDUCERS.items()],
           "",
           "| final-only key | meaning |", "|---|---|",
           *[f"| `{k}` | {cell(v)} |" for k, v in FINAL_KEYS.items()],
           ""]
    return "\n".join(out)
