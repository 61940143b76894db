"""Spec errors and the few text rules every layer shares: one line per problem, `file: key: what was expected`."""
from __future__ import annotations

import re
import typing
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ValidationError

class SpecError(ValueError):
    """A spec is malformed. Each of `lines` is one line, `file: key: what was expected`; str() joins them."""

    def __init__(self, *lines: str):
        self.lines = [clip(line, 1000) for line in lines]  # inputs are clipped where echoed; this is a backstop
        super().__init__("\n".join(self.lines))


def clip(text: str, width: int = 60) -> str:
    """At most `width` characters on one line: an error never prints more than a line of the input."""
    text = " ".join(str(text).split()) if "\n" in str(text) or "\r" in str(text) else str(text)
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)
    return text if len(text) <= width else text[: width - 3] + "..."


def public_path(path: str | Path, keep: int = 6) -> str:
    """A path as verdicts, reports and provenance show it: relative to the working folder when inside it, else
    its last `keep` parts after '.../': never this machine's absolute path (a home folder, a user name)."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    if path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd())) or "."
    return str(Path("...", *path.parts[1:][-keep:]))


# One pattern for every name that becomes a folder of the results store (claim ids, arms, variants,
# profiles): letters, digits, '_', '.', '-', starting with a letter or digit (so no '.', '..', '',
# hidden or absolute names), at most 64 characters.
# Bidirectional controls (LRE, RLO, isolates, marks) in a spec's or verdict's text would reorder what a page or a
# table shows ("DECUDORPER TON" read as NOT REPRODUCED): the report and the exports print every text without them.
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters"


def _not_blank(value: str, expected: str) -> str:
    """A one-line text the report shows: blank (spaces only) is no text."""
    if not value.strip():
        raise ValueError(f"blank; expected {expected}")
    return value


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{clip(repr(name), 40)} is not a safe name ({NAME_RULE})")
    return name




class ParamErrors(ValueError):
    """Errors in a component's parameters, each (key path, message): _format prints one line per error."""

    def __init__(self, errors: list[tuple[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{k}: {m}" for k, m in errors))



def _message(error: dict) -> str:
    """pydantic's message for one error, with the offending value (clipped to a few words) unless it says it."""
    got, message = error.get("input"), error["msg"].removeprefix("Value error, ")
    shown = isinstance(got, dict) or error["type"] == "missing" or message.startswith(f"{got} ") or \
        (isinstance(got, str) and (repr(got) in message or clip(repr(got), 40) in message))
    return message if shown else f"{message} (got {clip(repr(got))})"


def _valid_keys(model, loc: tuple) -> list[str]:
    """The keys a model accepts at `loc` (its last part is the unknown key), for an 'Extra inputs' error."""
    annotation = model
    for part in loc[:-1]:
        while typing.get_origin(annotation) in (typing.Union, Annotated) or str(annotation).startswith("typing.Optional"):
            annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            field = annotation.model_fields.get(str(part))
            if field is None:
                return []
            annotation = field.annotation
        elif typing.get_origin(annotation) in (dict, list):
            annotation = typing.get_args(annotation)[-1]
        else:
            return []
    while typing.get_origin(annotation) in (typing.Union, Annotated):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    return list(annotation.model_fields) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else []


def _format(err: ValidationError, prefix: str = "", model=None) -> list[str]:
    """One line per error: `key: what was expected (got value)`."""
    lines = []
    for error in err.errors():
        loc = error["loc"][:-2] if error["loc"][-1:] == ("[key]",) else error["loc"]  # a bad dict key: its dict
        key = ".".join(clip(part, 40) for part in map(str, loc))
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, ParamErrors):
            lines += [f"{prefix}{key}.{sub}: {message}" for sub, message in cause.errors]
            continue
        message = _message(error)
        if error["type"] == "extra_forbidden" and model is not None:
            valid = _valid_keys(model, error["loc"])
            message += f"; valid keys: {', '.join(valid)}" if valid else ""
        lines.append(f"{prefix}{key or '(top level)'}: {message}")
    return lines



MAX_ERRORS = 20  # per file: beyond that, a count (a 5000-item list of wrong values is one mistake)


def capped(lines: list[str], path: Path) -> list[str]:
    if len(lines) <= MAX_ERRORS:
        return lines
    return lines[:MAX_ERRORS] + [f"{path}: ... and {len(lines) - MAX_ERRORS} more errors"]
