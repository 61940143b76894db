"""Shared test setup: a deterministic hypothesis profile, and the claims plumbing.

`pytest -m claims` runs one test per claim and variant (tests/test_claims.py) plus the loss
invariants (tests marked `invariant`); at the end of the session the verdicts and the invariant
outcomes go to one JSON file (REPRO_VERDICTS, default reports/verdicts.json) that `repro report`
renders, so the report and pytest can never disagree.
"""
from __future__ import annotations

import datetime
import json
import math
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# derandomize: the same examples every run, so a failure reproduces and CI is not flaky.
settings.register_profile("repro", derandomize=True, deadline=None, max_examples=60,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("repro")

INVARIANTS: list[dict] = []
VERDICTS: dict = {}
SELECTED: list = []  # (claim, variant) that pytest selected: their lines are printed; every verdict is written


def claims_outputs() -> tuple[Path, Path]:
    """(results folder, verdicts file) of the claims set pytest judges (REPRO_CLAIMS, REPRO_OUT), as `repro` has them."""
    from repro.outputs import check_outputs, outputs
    claims = os.environ.get("REPRO_CLAIMS", "claims")
    results, reports = outputs(claims, os.environ.get("REPRO_OUT"))
    verdicts = Path(os.environ.get("REPRO_VERDICTS") or reports / "verdicts.json")
    check_outputs(claims, verdicts)  # never the shipped verdicts for another set, never inside a claims folder
    return results, verdicts


def made_up_result(run, test_errors: float = 3, **final) -> dict:
    """A result a store accepts for `run` (tests): one epoch per epoch of its arm, the final metrics the last
    epoch's (`test_errors` there, plus `final`'s keys in every epoch)."""
    epochs = [{"epoch": e, "test_errors": test_errors, **final} for e in range(1, run.arm.epochs + 1)]
    return {"status": "done", "epochs": epochs, "final": dict(epochs[-1]), "wall_s": 1.0, "device": "cpu"}


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("invariant"):
            item.add_marker(pytest.mark.claims)


def shipped_claims() -> bool:
    """Is the claims set being judged this checkout's own claims/? kd-repro's loss self-tests belong in its
    report, not in the report of a user's own claims folder."""
    return Path(os.environ.get("REPRO_CLAIMS", "claims")).resolve() == Path("claims").resolve()


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        marker = getattr(report, "keywords", {}).get("invariant")
        if marker and shipped_claims():
            INVARIANTS.append({"test": report.nodeid, "outcome": report.outcome,
                               "detail": str(report.longrepr)[-800:] if report.failed else ""})


def _plain(value):
    """JSON without NaN/inf (the report and other tools read it): those become null."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def pytest_sessionfinish(session):
    # Only a claims session (it computed verdicts) writes the file: `make test` runs the invariants
    # too, and must not replace the committed verdicts with a file that has none.
    if not VERDICTS:
        return
    from repro.spec import SpecError
    from repro.store import atomic_write
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    try:
        path = claims_outputs()[1]
        before = _previous(path)
        profile = VERDICTS["profile"]
        # One file for every profile judged: this session replaces its own profile's verdicts and keeps the
        # others' (the report shows the paper verdict of a claim beside its quick one).
        kept = [v for v in before.get("verdicts", []) if isinstance(v, dict) and v.get("profile") != profile]
        judged = {**(before.get("judged") if isinstance(before.get("judged"), dict) else {}), profile: now}
        families = {**(before.get("families") if isinstance(before.get("families"), dict) else {}),
                    profile: {"text": VERDICTS.get("holm_family_text", ""), "families": VERDICTS.get("holm_families", {})}}
        registrations = {**(before.get("registrations") if isinstance(before.get("registrations"), dict) else {}),
                         **({profile: VERDICTS["registration"]} if VERDICTS.get("registration") else {})}
        doc = {"generated": now, "profile": profile, "judged": {p: judged[p] for p in sorted(judged)},
               "families": {p: families[p] for p in sorted(families)}, "verdicts": kept + VERDICTS["verdicts"],
               "registrations": {p: registrations[p] for p in sorted(registrations)},
               "invariants": INVARIANTS or before.get("invariants", [])}
        atomic_write(path, json.dumps(_plain(doc), indent=1, sort_keys=True).encode())
    except (OSError, SpecError) as err:  # a folder, an unwritable place: one line; the verdicts are printed below
        where = f"{path}: not writable ({err.strerror or type(err).__name__})" if isinstance(err, OSError) else err
        VERDICTS["not_written"] = f"error: verdicts not written: {where}"
        session.exitstatus = 2


def _previous(path: Path) -> dict:
    """The verdicts file as it was, if it is one (anything else is replaced whole)."""
    from repro.spec import read_regular
    try:  # a regular file of bounded size only: a named pipe there would hang the session's end
        doc = json.loads(read_regular(path, 64 * 2 ** 20))
    except (OSError, ValueError):
        return {}
    return doc if isinstance(doc, dict) and isinstance(doc.get("verdicts"), list) else {}


def pytest_report_teststatus(report, config):
    """A claim test is counted as its verdict, not as passed/failed/skipped, so pytest's last line reads
    e.g. "2 REPRODUCED, 1 NOT REPRODUCED, 40 invariants held" (exit status unchanged: NOT REPRODUCED fails)."""
    if "test_claim[" in report.nodeid and (report.when == "call" or report.skipped):
        if report.skipped:
            status = str(report.longrepr[-1]).removeprefix("Skipped: ") if isinstance(report.longrepr, tuple) else ""
            return status, "s", status
        status = "REPRODUCED" if report.passed else "NOT REPRODUCED"
        return status, "." if report.passed else "F", status
    if getattr(report, "keywords", {}).get("invariant") and report.when == "call":
        return ("invariants held" if report.passed else "invariants broken"), "." if report.passed else "F", \
            report.outcome.upper()


def pytest_terminal_summary(terminalreporter):
    """One line per selected claim and variant with its verdict (passes included), as verdicts.json has it, the
    Holm family they were corrected in (the folder's, whatever was selected), and the count of each verdict."""
    if not VERDICTS.get("verdicts"):
        return
    terminalreporter.section(f"claim verdicts ({VERDICTS.get('profile')} profile)")
    chosen = set(SELECTED)
    shown = [v for v in VERDICTS["verdicts"] if not chosen or (v["claim"], v["variant"]) in chosen]
    from repro.cli import _registration_line, _verdict_lines
    for v in shown:  # with its secondary checks, and any exploratory verdict beside it (labelled)
        terminalreporter.write_line(_verdict_lines(v))
    counts = {}
    for v in shown:
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    if VERDICTS.get("registration"):
        terminalreporter.write_line(_registration_line(VERDICTS["registration"]))
    if VERDICTS.get("holm_family_text"):
        rest = len(VERDICTS["verdicts"]) - len(shown)
        terminalreporter.write_line(VERDICTS["holm_family_text"] + (
            f" (the {rest} verdicts not selected were decided too, and written with these)" if rest else ""))
    terminalreporter.write_line("verdicts: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if VERDICTS.get("not_written"):
        terminalreporter.write_line(VERDICTS["not_written"])
