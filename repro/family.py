"""The Holm family: which claims' p-values are corrected together.

A property of the claims folder and the profile judged, never of what a command selects: `pytest -m claims -k X`,
`repro run X --until-decided` and a full `make reproduce` all correct within the same family, so a verdict
cannot change with which other claims the reader happened to pick (two claims judged alone have a smaller
family, hence a lower Holm threshold, than the same two among 25).

Default: one family, every claim of the folder that has the profile (each variant a member). A folder may
declare its families instead, in `families.yaml` beside its claims (every claim in exactly one family, so
none can be left out after the fact):

    families:
      hinton: [hinton-distilled, hinton-kd-helps, hinton-kd-recovers-gap]
      course: [course-student-beats-teacher, course-teacher]

Declare it before any result exists, like the checks: choosing families after seeing p-values is as much a
choice made after the data as choosing the claims. The profile's registration (repro/registration.py) records
each member's family when it is made; from then on the registered families are the ones Holm corrects within,
whatever families.yaml or the folder say later.
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .spec import SpecError

FILE = "families.yaml"
DEFAULT = "all"


class FamilyError(SpecError):
    """A bad families.yaml; the message is one line: file, key, what was expected."""


def declared(folder: str | Path, claim_ids) -> dict[str, str] | None:
    """claim id -> family name from FOLDER/families.yaml, or None where the folder declares none."""
    path = Path(folder) / FILE
    if not path.is_file():
        return None
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise FamilyError(f"{path}: not valid YAML ({type(err).__name__})") from None
    families = doc.get("families") if isinstance(doc, dict) else None
    if not isinstance(families, dict) or not families:
        raise FamilyError(f"{path}: families: expected a mapping of family name -> list of claim ids")
    known, member = set(claim_ids), {}
    for name, ids in families.items():
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise FamilyError(f"{path}: families.{name}: expected a list of claim ids")
        for claim in ids:
            if claim not in known:
                raise FamilyError(f"{path}: families.{name}: unknown claim '{claim[:64]}'")
            if claim in member:
                raise FamilyError(f"{path}: families.{name}: '{claim}' is also in family '{member[claim]}'")
            member[claim] = str(name)
    left = sorted(known - set(member))
    if left:
        raise FamilyError(f"{path}: families: every claim must be in one family; not in any: {', '.join(left)}")
    return member


def family_of(folder: str | Path, claims: dict, profile: str) -> dict[tuple[str, str], str]:
    """(claim, variant) -> family name for every claim of the folder with `profile`: what is judged together."""
    member = declared(folder, claims) or {}
    return {(c.id, v): member.get(c.id, DEFAULT) for c in claims.values() if profile in c.profiles
            for v in c.variants}


def describe(folder: str | Path, profile: str, families: dict[str, list[str]], declared_file: bool) -> str:
    """One line for the report's top and pytest's last lines: the family (or families) Holm corrected over, as the
    profile's registration fixed it (repro.registration: a member counts from its first test, then for good)."""
    families = {name: m for name, m in families.items() if name is not None}  # None: exploratory, in no family
    where = f"declared in {Path(folder) / FILE}" if declared_file else \
        f"every claim of {folder}/ with the {profile} profile (no {FILE} there)"
    total = sum(map(len, families.values()))
    sizes = "; ".join(f"{name}: {len(m)} registered" for name, m in families.items()) if len(families) > 1 or \
        declared_file else f"{total} registered member" + ("" if total == 1 else "s")
    return (f"Holm family: {sizes}, {where}, as registered (a member counts from its first test on, at p = 1 "
            "when untested later; members never tested are not counted); the same whichever claims a command selects")
