"""Where a claims set's outputs go: its results and reports folders, and the shipped ones no other set may write.

Policy, not storage: the Store is handed a results folder and stores there; this module decides which folder
that is for a claims folder (--claims, --out, --results) and refuses outputs that would overwrite a shipped
set's committed evidence or land among specs.
"""
from __future__ import annotations

import os
from pathlib import Path

from .spec import clip


# The claims sets this checkout ships, each with the output folder of its committed results and report.
SHIPPED = {"claims": ".", "examples/claims": "examples"}


def shipped_out(claims_dir: str | Path) -> Path | None:
    """The output folder of a shipped claims set (claims -> ., examples/claims -> examples), or None."""
    here = Path(claims_dir).resolve()
    return next((Path(out) for claims, out in SHIPPED.items() if Path(claims).resolve() == here), None)


def protected_error(path: str | Path, claims_dir: str | Path) -> str | None:
    """Why the output `path` must not be written by this claims set, or None: it lies in (or is) a shipped set's
    results/ or reports/ and this is not that set, or it lies inside a claims folder (the shipped ones, or this
    set's own). A write there would replace committed evidence or the shipped verdicts, or land among specs."""
    target, own = Path(path).resolve(), shipped_out(claims_dir)
    for claims, out in SHIPPED.items():
        for folder in (Path(out) / "results", Path(out) / "reports"):
            if target.is_relative_to(folder.resolve()) and (own is None or own.resolve() != Path(out).resolve()):
                return (f"{clip(str(path), 80)}: inside the shipped {folder}/ (of {claims}/); the outputs of "
                        f"{clip(str(claims_dir), 60)} go to a folder of their own, e.g. --out my")
    for folder in {Path(claims_dir), *map(Path, SHIPPED)}:
        if target.is_relative_to(folder.resolve()):
            return f"{clip(str(path), 80)}: inside the claims folder {folder}/; outputs go to a folder of their own"
    return None


def check_outputs(claims_dir: str | Path, *paths: str | Path | None) -> None:
    """Raise SpecError for the first output path this claims set must not write (protected_error)."""
    from .spec import SpecError
    for path in paths:
        try:
            wrong = protected_error(path, claims_dir) if path is not None else None
        except (RuntimeError, OSError) as err:  # Path.resolve: a symlink loop (RuntimeError before 3.13)
            why = "a symlink loop" if "loop" in str(err).lower() else clip(getattr(err, "strerror", None) or str(err))
            wrong = f"{clip(str(path), 80)}: not a usable output folder ({why})"
        if wrong:
            raise SpecError(wrong)


def outputs(claims_dir: str | Path, out: str | Path | None, results: str | Path | None = None) -> tuple[Path, Path]:
    """(results folder, reports folder) of a claims folder: OUT/results (or `results`, or $REPRO_RESULTS) and
    OUT/reports (verdicts.json, index.html).

    A shipped claims set (claims/, examples/claims/) writes to its own results/ and reports/ by default; any
    other claims folder must name its own OUT (--out DIR or REPRO_OUT), so running one's own claims never
    touches the shipped verdicts or report, and its Holm family is that folder's claims alone. No set's
    outputs may be another shipped set's results/ or reports/, or lie inside a claims folder (check_outputs)."""
    if not out and shipped_out(claims_dir) is None:
        from .spec import SpecError
        raise SpecError(f"{claims_dir}: not the shipped claims folder: pass --out DIR (or set REPRO_OUT) for its "
                        "results, verdicts and report, e.g. --claims my/claims --out my")
    out = Path(out or shipped_out(claims_dir))
    paths = Path(results or os.environ.get("REPRO_RESULTS") or out / "results"), out / "reports"
    check_outputs(claims_dir, *paths)
    return paths
