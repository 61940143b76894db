"""Observed arms: per-seed numbers measured elsewhere, judged by the same checks as trained arms.

An arm that holds `observed:` is not trained; its values stand in for runs:

    arms:
      rerun:
        observed:
          metric: top1                      # the name the check's `metric` uses
          units: "% top-1 accuracy, CIFAR-100 test set"
          values: [76.20, 75.80, 75.89, 75.85, 76.15]   # or file: runs.csv (+ column: top1)
          provenance: "mdistiller issue #7: five runs of the ResNet32x4 -> ResNet8x4 KD recipe"

The values come inline or from a file beside the spec (inside its folder): a CSV with a header row (the
column named `column`, default the metric), or JSON (a list of numbers, a list of objects holding the
column, or an object with a list under it). They are read when the spec loads, so `repro validate` reports
a missing file, a missing column or a non-number with the file and row. An observed arm takes nothing from
`defaults` or a variant's or profile's `all:`; a variant may give it other values under `arms:`
(`variants.<v>.arms.<arm>.observed`); profiles do not change it (its runs were not made at a profile).

Observed values carry no seeds, so a check that compares an observed arm is unpaired (Welch, not paired
by seed); `paired: true` there is an error. A claim whose compared arms are all observed needs no
profile and is decided the same at any profile. Each verdict names its observed arms with their metric,
units, count and provenance, and the report marks them as external evidence.
"""
from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..registry import CHECKS
from .errors import _format
from .schema import deep_merge, is_observed

MAX_VALUES = 10_000


class Observed(BaseModel):
    """Numbers measured elsewhere for one arm (one per seed or run), with what they are and where they come from."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    metric: str = Field(min_length=1, max_length=64, description="the metric's name, as the check's `metric` writes it")
    units: str = Field(min_length=1, description="what a value is, e.g. '% top-1 accuracy on the CIFAR-100 test set'")
    provenance: str = Field(min_length=1, description="one line: who measured these values, how, and where they are "
                            "published")
    values: Optional[list[float]] = Field(None, min_length=1, max_length=MAX_VALUES,
                                          description="the values, one per run")
    file: Optional[str] = Field(None, description="or: a CSV or JSON file beside the spec holding them")
    column: Optional[str] = Field(None, description="the file's column (CSV) or key (JSON); default: the metric")

    @field_validator("values", mode="before")
    @classmethod
    def _finite(cls, v):
        for x in v if isinstance(v, list) else []:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValueError(f"expected finite numbers, found {str(x)[:30]!r}")
        return v

    @model_validator(mode="after")
    def _one_source(self):
        if (self.values is None) == (self.file is None):
            raise ValueError("observed: give the values inline (`values: [...]`) or in a file (`file: runs.csv`), "
                             "exactly one of them")
        if self.column is not None and self.file is None:
            raise ValueError("observed: `column` names a column of `file`; inline values have none")
        return self


class ObservedError(ValueError):
    """A file of observed values that cannot be used; the message names the file and what is wrong."""


def _number(value, where: str) -> float:
    if isinstance(value, bool):
        raise ObservedError(f"{where}: expected a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ObservedError(f"{where}: expected a number, got {str(value)[:30]!r}") from None
    if not math.isfinite(x):
        raise ObservedError(f"{where}: expected a finite number, got {value!r}")
    return x


def read_file(path: Path, column: str) -> list[float]:
    """The values of `column` in a CSV (header row) or JSON file."""
    shown = path.name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ObservedError(f"{shown}: no such file beside the spec") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ObservedError(f"{shown}: not readable as UTF-8 text ({type(err).__name__})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise ObservedError(f"{shown}: not valid JSON (line {err.lineno}: {err.msg})") from None
        if isinstance(data, dict):
            data = data.get(column)
        if isinstance(data, list) and all(isinstance(x, dict) for x in data) and data:
            if any(column not in x for x in data):
                raise ObservedError(f"{shown}: an entry lacks '{column}'")
            data = [x[column] for x in data]
        if not isinstance(data, list) or not data:
            raise ObservedError(f"{shown}: expected a list of numbers, a list of objects with '{column}', or an "
                                f"object with a list under '{column}'")
        values = [_number(x, f"{shown}: entry {i}") for i, x in enumerate(data)]
    elif path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        if not rows or column not in rows[0]:
            found = ", ".join(rows[0]) if rows else "no rows"
            raise ObservedError(f"{shown}: no column '{column}' (found {found[:80]}); name it with `column:`")
        values = [_number(row[column], f"{shown}: row {i + 2}, column '{column}'") for i, row in enumerate(rows)]
    else:
        raise ObservedError(f"{shown}: expected a .csv or .json file")
    if len(values) > MAX_VALUES:
        raise ObservedError(f"{shown}: {len(values)} values; at most {MAX_VALUES}")
    return values


def observed_layers(claim, arm: str, variant: str) -> dict:
    """The arm's own `observed:` with a variant's override of it (nothing from defaults or `all:`)."""
    raw = claim.arms[arm]
    extra = sorted(set(raw) - {"observed"})
    if extra:
        raise ValueError(f"an observed arm is not trained, so it takes only `observed:`, not {extra}")
    override = claim.variants[variant].arms.get(arm, {})
    if set(override) - {"observed"}:
        raise ValueError(f"variants.{variant}.arms.{arm}: an observed arm takes only `observed:`, "
                         f"not {sorted(set(override) - {'observed'})}")
    return deep_merge(raw, override)["observed"]


def load_observed(claim, folder: Path) -> tuple[dict, list[str]]:
    """(arm, variant) -> (Observed, values) for every observed arm and variant of a claim, and error lines
    (`key: what was expected`) for those that cannot be read."""
    out, errors = {}, []
    for arm in [a for a, raw in claim.arms.items() if is_observed(raw)]:
        for variant in claim.variants:
            where = f"arms.{arm}.observed" + (f" (variant '{variant}')" if len(claim.variants) > 1 else "")
            try:
                obs = Observed.model_validate(observed_layers(claim, arm, variant))
            except ValidationError as err:
                errors += [f"{where}.{line}" if not line.startswith("(top level)") else
                           f"{where}{line.removeprefix('(top level)')}" for line in _format(err, model=Observed)]
                continue
            except ValueError as err:
                errors.append(f"arms.{arm}: {err}")
                continue
            if obs.values is not None:
                out[arm, variant] = (obs, list(obs.values))
                continue
            target = (folder / obs.file).resolve()
            if Path(obs.file).is_absolute() or not target.is_relative_to(folder.resolve()):
                errors.append(f"{where}.file: expected a file inside the spec's folder, named relative to it")
                continue
            try:
                out[arm, variant] = (obs, read_file(folder / obs.file, obs.column or obs.metric))
            except ObservedError as err:
                errors.append(f"{where}.file: {err}")
    return out, list(dict.fromkeys(errors))


def pseudo_results(claim, arm: str, variant: str) -> list[dict]:
    """The observed values as result-shaped records, one per value, so the checks read them as they read
    runs (`final[metric]`; distinct keys, since each value is its own run)."""
    obs, values = claim.observed[arm, variant]
    return [{"key": f"observed:{arm}:{i}", "status": "done", "final": {obs.metric: v}, "epochs": [],
             "wall_s": 0.0, "device": "external", "observed": True,
             "provenance": {"torch": None, "python": None, "git_commit": None}} for i, v in enumerate(values)]


def describe(claim, variant: str, arms) -> dict:
    """What a verdict records of its observed arms: metric, units, count and provenance (external evidence)."""
    out = {}
    for arm in arms:
        if (arm, variant) in claim.observed:
            obs, values = claim.observed[arm, variant]
            out[arm] = {"metric": obs.metric, "units": obs.units, "n": len(values), "provenance": obs.provenance,
                        **({"file": obs.file} if obs.file else {})}
    return out


def unpaired(check):
    """A check that compares an observed arm: unpaired where the kind has the choice (observed values carry no
    seeds to pair by)."""
    fn = CHECKS.get(check.kind)
    if "paired" in getattr(fn, "needs", ()) + getattr(fn, "optional", ()) and check.paired is None:
        return check.model_copy(update={"paired": False})
    return check
