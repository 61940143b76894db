"""Claim assembly: a spec file (and its `base:`) -> a validated Claim, every arm resolved for every
variant and profile; a folder of specs -> claims. Plugins and observed values are read here."""
from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from ..features import check_paths_cheaply
from ..metrics import REDUCERS, recorded_keys
from ..plugins import load_plugins
from .checkpoint import checkpoint_file_problem
from .errors import SpecError, _format, capped, clip
from .observed import load_observed, units_problem
from .reader import read_yaml
from .arm import Arm
from .schema import Claim, deep_merge

def base_file(path: Path, base) -> Path:
    """`base:` names a file inside the claims folder (the spec's folder), by a relative path."""
    folder = path.parent.resolve()
    target = (path.parent / base).resolve() if isinstance(base, str) and base and not Path(base).is_absolute() else None
    if target is None or not target.is_relative_to(folder) or not target.is_file():
        raise SpecError(f"{path}: base: expected the relative path of a file inside the spec's folder "
                        f"(e.g. _shared/source.yaml), got {clip(repr(base))}")
    return path.parent / target.relative_to(folder)


def load_claim(path: str | Path) -> Claim:
    """`base: _shared/x.yaml` (relative to the spec) merges the claim over a shared file, so claims of
    one source define their common arms (and hence share teacher runs) once. One level, no logic.
    Raises SpecError with one line per error found."""
    path = Path(path)
    return claim_from_raw(read_yaml(path), path)


def claim_from_raw(raw: dict, path: Path) -> Claim:
    """A claim from its spec as a dict (what the YAML reader gives), checked as load_claim checks a file;
    `path` names it in errors, and its folder is where `base:`, plugins and observed files are found."""
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: (top level): expected a mapping of claim fields, got {type(raw).__name__}")
    raw = dict(raw)
    if "base" in raw:
        base_path = base_file(path, raw.pop("base"))
        base = read_yaml(base_path)
        if "base" in base:
            raise SpecError(f"{base_path}: base: a shared file cannot have a base itself")
        raw = deep_merge(base, raw)
    plugin_errors, modules = load_plugins(raw.get("plugins"), path)  # before the arms: they name what it registers
    if plugin_errors:
        raise SpecError(*plugin_errors)
    try:
        claim = Claim.model_validate(raw, context={"plugins": modules})
    except ValidationError as err:
        raise SpecError(*capped([f"{path}: {line}" for line in _format(err, model=Claim)], path)) from None
    claim._path = path.resolve()
    errors: dict[str, str] = {}  # one line per distinct problem, with the first combination that shows it
    if claim.id != path.stem:
        errors["id"] = f"{path}: id: expected '{clip(path.stem)}' (the file name), got '{claim.id}'"
    try:
        order = claim.teacher_order()
    except ValueError as err:
        raise SpecError(*errors.values(), f"{path}: {clip(err, 200)}") from None
    claim._observed, observed_errors = load_observed(claim, path.parent)
    errors.update({line: f"{path}: {line}" for line in observed_errors})
    resolved: dict[tuple[str, str, str], Arm] = {}
    also: dict[str, list[str]] = {}  # an arm problem -> the other arms that have it too
    for variant in claim.variants:
        for profile in claim.profiles:
            for arm in [a for a in order if not claim.is_observed(a)]:
                try:
                    resolved[arm, variant, profile] = claim.resolve(arm, variant, profile)
                except ValidationError as err:
                    context = f"arms.{arm} (variant '{variant}', profile '{profile}')."
                    for line in _format(err, model=Arm):  # "(top level)" of an arm: a rule across its keys
                        where = context.removesuffix(".") + line.removeprefix("(top level)") \
                            if line.startswith("(top level):") else context + line
                        # one line per problem (the first arm, variant and profile that show it), naming
                        # every other arm that has it too (two arms with one unknown model: both named)
                        if line in errors and arm not in also.setdefault(line, []) and f"arms.{arm} " not in errors[line]:
                            also[line].append(arm)
                        errors.setdefault(line, f"{path}: {where}")
    for (arm, variant, profile), spec in resolved.items():  # a teacher epoch its run never reaches
        teacher = resolved.get((spec.teacher, variant, profile)) if spec.teacher_epoch else None
        if teacher is not None and spec.teacher_epoch > teacher.epochs:
            errors.setdefault(f"teacher_epoch.{arm}", f"{path}: arms.{arm} (variant '{variant}', profile '{profile}')."
                              f"teacher_epoch: {spec.teacher_epoch} is beyond the last epoch ({teacher.epochs}) of its "
                              f"teacher '{spec.teacher}'")
    for (arm, variant, profile), spec in resolved.items():  # a checkpoint teacher's file and hash (repro/teachers.py)
        if spec.teacher_checkpoint is not None:
            ckpt = spec.teacher_checkpoint
            problem = checkpoint_file_problem(ckpt.file, ckpt.sha256, path.parent)
            if problem:
                errors.setdefault(f"checkpoint.{ckpt.file}.{ckpt.sha256}", f"{path}: arms.{arm} (variant '{variant}', "
                                  f"profile '{profile}').teacher_checkpoint.{problem}")
    for (arm, variant, profile), spec in resolved.items():  # feature paths the models lack (repro/features.py)
        teacher = resolved.get((spec.teacher, variant, profile)) if spec.features else None
        teacher_model = spec.teacher_checkpoint.model if spec.features and spec.teacher_checkpoint else \
            teacher.model if teacher is not None else None
        problem = check_paths_cheaply(spec.features, spec.model, teacher_model) if teacher_model is not None else None
        if problem:
            errors.setdefault(f"features.{arm}.{problem}", f"{path}: arms.{arm} (variant '{variant}', profile "
                              f"'{profile}').{problem}")
    for where, check in [("check", claim.check)] + [(f"preconditions.{i}", c) for i, c in enumerate(claim.preconditions)] \
            + [(f"secondary_checks.{i}", c) for i, c in enumerate(claim.secondary_checks)]:
        for (arm, variant), (obs, _) in claim.observed.items():
            if arm in check.arms and check.metric != obs.metric:
                errors.setdefault(f"{where}.observed.{arm}", f"{path}: {where}.metric: '{clip(check.metric, 40)}', but "
                                  f"arm '{arm}' is observed as '{obs.metric}' (the check reads its values as that metric)")
        if (problem := units_problem(claim, check)) is not None:
            errors.setdefault(f"{where}.units", f"{path}: {where}.arms: {problem}")
        if check.paired and any(claim.is_observed(a) for a in check.arms):
            errors.setdefault(f"{where}.paired", f"{path}: {where}.paired: observed values carry no seeds to pair "
                              "by; leave `paired` unset (the comparison is unpaired)")
        for (arm, variant, profile), spec in resolved.items():
            problem = metric_problem(check.metric, spec) if arm in check.arms else None
            if problem:
                errors.setdefault(f"{where}.{problem}", f"{path}: {where}.metric: {problem} "
                                                        f"(arm '{arm}', variant '{variant}', profile '{profile}')")
    for line, arms in also.items():
        if arms:
            errors[line] += f" (the same in arm{'s' if len(arms) > 1 else ''} {', '.join(arms)})"
    if errors:
        raise SpecError(*capped(list(errors.values()), path))
    return claim


def metric_problem(metric: str, arm: Arm) -> str | None:
    """Why a run of `arm` will not record `metric` (repro.metrics), or None."""
    reducer, _, key = metric.rpartition(":")
    epoch_keys, final_keys = recorded_keys(teacher=arm.has_teacher, bias_shift=arm.bias_shift is not None,
                                           holdout=bool(arm.data.params.get("holdout")),
                                           checkpoint=arm.teacher_checkpoint is not None)
    if reducer and reducer not in REDUCERS:
        return f"unknown reducer '{clip(reducer, 30)}' in '{clip(metric, 40)}'; known: {', '.join(REDUCERS)}"
    known = epoch_keys if reducer else epoch_keys + final_keys
    if key not in known:
        return f"'{clip(key, 40)}' is not recorded by this run{' per epoch' if reducer else ''}; known: {', '.join(known)}"
    if reducer and arm.eval_every > 1 and key in TEST_KEYS:
        return (f"'{clip(metric, 40)}' reduces a test key over the epochs, but eval_every: {arm.eval_every} scores "
                "the test set only every few epochs (use eval_every: 1, or a metric of the last epoch)")
    return None


TEST_KEYS = ("test_errors", "test_acc", "test_loss", "logit_gap", "fidelity")  # scored on the test set


SPEC_SUFFIXES = (".yaml", ".yml")


def spec_files(folder: str | Path) -> list[Path]:
    # families.yaml declares the folder's Holm families (repro.family), not a claim
    return sorted(p for p in Path(folder).iterdir() if p.suffix in SPEC_SUFFIXES and not p.name.startswith(".")
                  and p.name != "families.yaml")


def load_claims(folder: str | Path = "claims") -> dict[str, Claim]:
    """Every claim of a folder (*.yaml and *.yml); a bad file is reported with every other bad file."""
    if not Path(folder).is_dir():
        raise SpecError(f"{folder}: not a folder of claim specs")
    paths = spec_files(folder)
    if not paths:
        raise SpecError(f"{folder}: no claim specs (*.yaml) found")
    claims, errors = {}, []
    for path in paths:
        try:
            claim = load_claim(path)
        except SpecError as err:
            errors += err.lines
            continue
        if claim.id in claims:
            errors.append(f"{path}: id: '{claim.id}' is also the id of another spec in {folder}")
        claims[claim.id] = claim
    if errors:
        raise SpecError(*errors)
    return claims
