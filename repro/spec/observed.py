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
a missing file, a missing column or a non-number with the file and row. The file must be a regular file
of UTF-8 text (a spreadsheet's byte-order mark is fine) of at most 4 MB; a CSV is comma-separated with one field
per header column in every row and the column named once; JSON numbers are numbers, not strings. The arms
one check compares must state the same `units`, and `metric`, `units` and `provenance` are never blank. An observed arm takes nothing from
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
from .errors import _format, clip
from .reader import TooBig, read_regular
from .schema import deep_merge, is_observed

MAX_VALUES = 10_000
MAX_FILE_BYTES = 4 << 20  # a file of at most MAX_VALUES numbers (a few columns each) is far smaller
MAX_JSON_DEPTH = 16  # [..] or {"column": [..]} or [{"column": x}, ..] is 3 deep; deeper is not a table of runs
MAX_MAGNITUDE = 1e100  # no metric is this large; beyond it sums of squares overflow float64 and every p is NaN


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

    @field_validator("metric", "units", "provenance")
    @classmethod
    def _not_blank(cls, v):
        if not v.strip():
            raise ValueError("blank; expected a line of text")
        return v

    @field_validator("values", mode="before")
    @classmethod
    def _finite(cls, v):
        for x in v if isinstance(v, list) else []:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
                raise ValueError(f"expected finite numbers, found {str(x)[:30]!r}")
            if abs(x) > MAX_MAGNITUDE:
                raise ValueError(f"{x:.3g} is beyond +-{MAX_MAGNITUDE:.0e}, not a metric's value")
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



def _number(value, where: str, text_ok: bool = False) -> float:
    """A finite number; a CSV cell is text by nature (text_ok), a JSON string is not a number."""
    if isinstance(value, bool):
        raise ObservedError(f"{where}: expected a number, got a boolean ({str(value).lower()})")
    if isinstance(value, str) and not text_ok:
        raise ObservedError(f"{where}: expected a number, got {str(value)[:30]!r}"
                            + (" (a JSON string; write the number without quotes)" if isinstance(value, str) else ""))
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ObservedError(f"{where}: expected a number, got {str(value)[:30]!r}") from None
    if not math.isfinite(x):
        raise ObservedError(f"{where}: expected a finite number, got {value!r}")
    if abs(x) > MAX_MAGNITUDE:
        raise ObservedError(f"{where}: {x:.3g} is beyond +-{MAX_MAGNITUDE:.0e}, not a metric's value")
    return x


def _depth(data, limit: int) -> int:
    """Nesting depth of parsed JSON, iteratively (no recursion to exhaust), stopping past `limit`."""
    deepest, todo = 0, [(data, 1)]
    while todo:
        node, depth = todo.pop()
        if isinstance(node, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            todo += [(x, depth + 1) for x in (node.values() if isinstance(node, dict) else node)]
    return deepest


def _no_duplicate_keys(pairs):
    keys = [k for k, _ in pairs]
    if len(set(keys)) < len(keys):
        raise ObservedError(f"duplicate key {next(k for k in keys if keys.count(k) > 1)[:40]!r} in one object")
    return dict(pairs)


def _read_json(shown: str, text: str, column: str) -> list[float]:
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as err:
        raise ObservedError(f"{shown}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except ObservedError as err:
        raise ObservedError(f"{shown}: {err}") from None
    except RecursionError:
        raise ObservedError(f"{shown}: nested more than {MAX_JSON_DEPTH} levels deep") from None
    if _depth(data, MAX_JSON_DEPTH) > MAX_JSON_DEPTH:
        raise ObservedError(f"{shown}: nested more than {MAX_JSON_DEPTH} levels deep")
    if isinstance(data, dict):
        data = data.get(column)
    if isinstance(data, list) and all(isinstance(x, dict) for x in data) and data:
        if any(column not in x for x in data):
            raise ObservedError(f"{shown}: an entry lacks '{column}'")
        data = [x[column] for x in data]
    if not isinstance(data, list) or not data:
        raise ObservedError(f"{shown}: expected a list of numbers, a list of objects with '{column}', or an "
                            f"object with a list under '{column}'")
    return [_number(x, f"{shown}: entry {i}") for i, x in enumerate(data)]


def _read_csv(shown: str, text: str, column: str) -> list[float]:
    rows = list(csv.reader(io.StringIO(text)))
    while rows and not any(cell.strip() for cell in rows[-1]):
        rows.pop()  # trailing blank lines
    if not rows:
        raise ObservedError(f"{shown}: empty; expected a header row and one row per run")
    header = [h.strip() for h in rows[0]]
    if len(header) == 1 and any(sep in header[0] for sep in ";\t"):
        sep = ";" if ";" in header[0] else "tab"
        raise ObservedError(f"{shown}: the header has one column '{header[0][:40]}': values separated by {sep}? "
                            "expected comma-separated values")
    if header.count(column) > 1:
        raise ObservedError(f"{shown}: the header names column '{column}' {header.count(column)} times; "
                            "which one holds the values is ambiguous")
    if column not in header:
        raise ObservedError(f"{shown}: no column '{column}' (found {', '.join(header)[:80]}); name it with `column:`")
    at = header.index(column)
    for i, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise ObservedError(f"{shown}: row {i} has {len(row)} fields, the header {len(header)}")
    if len(rows) < 2:
        raise ObservedError(f"{shown}: a header row but no values")
    return [_number(row[at].strip(), f"{shown}: row {i}, column '{column}'", text_ok=True)
            for i, row in enumerate(rows[1:], start=2)]


def read_file(path: Path, column: str) -> list[float]:
    """The values of `column` in a CSV (header row) or JSON file: a regular file, UTF-8 (a BOM is allowed)."""
    shown = path.name
    if path.suffix.lower() not in (".json", ".csv"):
        raise ObservedError(f"{shown}: expected a .csv or .json file")
    try:
        data = read_regular(path, MAX_FILE_BYTES)
    except FileNotFoundError:
        raise ObservedError(f"{shown}: no such file beside the spec") from None
    except TooBig as err:
        raise ObservedError(f"{shown}: {err.size} bytes; an observed-values file is at most {MAX_FILE_BYTES} bytes") from None
    except OSError as err:
        raise ObservedError(f"{shown}: not readable ({clip(err.strerror or type(err).__name__)})") from None
    try:
        text = data.decode("utf-8-sig")  # a spreadsheet's CSV often starts with a byte-order mark
    except UnicodeDecodeError:
        raise ObservedError(f"{shown}: not readable as UTF-8 text") from None
    if "\x00" in text:
        raise ObservedError(f"{shown}: not a text file (it contains NUL bytes)")
    reader = _read_json if path.suffix.lower() == ".json" else _read_csv
    values = reader(shown, text, column)
    if len(values) > MAX_VALUES:
        raise ObservedError(f"{shown}: {len(values)} values; at most {MAX_VALUES}")
    return values


def units_problem(claim, check) -> str | None:
    """Observed arms that one check compares must be in the same units: values in % against fractions would
    be compared as they are. None when they agree (compared without case, spaces or trailing punctuation)."""
    same = lambda u: " ".join(u.casefold().split()).rstrip(".")  # noqa: E731
    for variant in claim.variants:
        units = {arm: claim.observed[arm, variant][0].units for arm in check.arms if (arm, variant) in claim.observed}
        if len({same(u) for u in units.values()}) > 1:
            shown = ", ".join(f"'{a}' in '{clip(u, 40)}'" for a, u in units.items())
            return f"the observed arms it compares are in different units ({shown}); convert them to one unit"
    return None


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
