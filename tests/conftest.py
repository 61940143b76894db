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


def claims_outputs() -> tuple[Path, Path]:
    """(results folder, verdicts file) of the claims set pytest judges (REPRO_CLAIMS, REPRO_OUT), as `repro` has them."""
    from repro.store import check_outputs, outputs
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


def pytest_runtest_logreport(report):
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        marker = getattr(report, "keywords", {}).get("invariant")
        if marker:
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
    doc = {"generated": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           **VERDICTS, "invariants": INVARIANTS}
    try:
        path = claims_outputs()[1]
        atomic_write(path, json.dumps(_plain(doc), indent=1, sort_keys=True).encode())
    except (OSError, SpecError) as err:  # a folder, an unwritable place: one line; the verdicts are printed below
        where = f"{path}: not writable ({err.strerror or type(err).__name__})" if isinstance(err, OSError) else err
        VERDICTS["not_written"] = f"error: verdicts not written: {where}"
        session.exitstatus = 2


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
    """One line per claim and variant with its verdict (passes included), as verdicts.json has it, and
    the count of each verdict."""
    if not VERDICTS.get("verdicts"):
        return
    terminalreporter.section(f"claim verdicts ({VERDICTS.get('profile')} profile)")
    for v in VERDICTS["verdicts"]:
        terminalreporter.write_line(f"{v['status']:<14} {v['claim']} [{v['variant']}]: {v['reason']}")
    counts = {}
    for v in VERDICTS["verdicts"]:
        counts[v["status"]] = counts.get(v["status"], 0) + 1
    terminalreporter.write_line("verdicts: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    if VERDICTS.get("not_written"):
        terminalreporter.write_line(VERDICTS["not_written"])
