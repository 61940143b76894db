"""verdicts.json read back for the report and export: a regular file of at most 64 MB, valid JSON, and every key
they read of the right kind; anything else is one line naming the entry and the key (ReportError)."""
from __future__ import annotations

import json
from pathlib import Path

from .spec import clip, read_regular

STATUSES = ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE", "NOT RUN")


class ReportError(ValueError):
    pass


MAX_VERDICTS_BYTES = 64 << 20


def _num_or_null(x) -> bool:
    return x is None or (isinstance(x, (int, float)) and not isinstance(x, bool))


def _strings(x) -> bool:
    return isinstance(x, list) and all(isinstance(a, str) for a in x)


def _per_arm(x) -> bool:
    return isinstance(x, dict) and all(isinstance(vs, list) and all(_num_or_null(v) for v in vs) for vs in x.values())


# The verdict keys the page reads, with what each must be: a verdicts.json written by hand, by an older
# version or damaged is one line naming the entry and key, not a traceback halfway through the page.
VERDICT_KEYS = {
    "claim": (lambda x: isinstance(x, str) and x != "", "a claim id"),
    "variant": (lambda x: isinstance(x, str) and x != "", "a variant name"),
    "profile": (lambda x: isinstance(x, str), "a profile name"),
    "status": (lambda x: x in STATUSES, f"one of {', '.join(STATUSES)}"),
    "check": (lambda x: isinstance(x, str), "a check kind"), "metric": (lambda x: isinstance(x, str), "a metric"),
    "reason": (lambda x: isinstance(x, str), "a text"), "justification": (lambda x: isinstance(x, str), "a text"),
    "arms": (_strings, "a list of arm names"), "seeds": (lambda x: isinstance(x, list) and all(
        isinstance(s, int) for s in x), "a list of seeds"),
    "alpha": (_num_or_null, "a number"), "margin": (_num_or_null, "a number or null"),
    "p": (_num_or_null, "a number or null"), "p_holm": (_num_or_null, "a number or null"),
    "ci": (lambda x: x is None or (isinstance(x, list) and len(x) == 2 and all(map(_num_or_null, x))),
           "[low, high] or null"),
    "values": (_per_arm, "arm -> list of numbers"),
    "run_keys": (lambda x: isinstance(x, dict) and all(_strings(v) for v in x.values()), "arm -> list of run keys"),
    "preconditions": (lambda x: isinstance(x, list) and all(isinstance(p, dict) and isinstance(p.get("held"), bool)
                      and _strings(p.get("arms")) and _num_or_null(p.get("p")) and _per_arm(p.get("values", {}))
                      for p in x), "a list of preconditions, each with held, arms and p"),
    "looks": (lambda x: isinstance(x, list) and all(isinstance(look, dict) for look in x), "a list of looks"),
    "sequential": (lambda x: x is None or isinstance(x, dict), "a mapping"),
    "next_look": (lambda x: x is None or (isinstance(x, int) and not isinstance(x, bool)), "a number of seeds or null"),
    "waiting": (lambda x: x is None or (isinstance(x, dict) and all(isinstance(s, list) and all(
        isinstance(n, int) and not isinstance(n, bool) for n in s) for s in x.values())), "arm -> list of seeds"),
}


def verdicts_error(doc) -> str | None:
    """What is wrong with a verdicts document's shape, as `key: expected ...`, or None."""
    if not isinstance(doc, dict):
        return f"(top level): expected a mapping with a 'verdicts' list, got {type(doc).__name__}"
    if "verdicts" not in doc:
        return ("no 'verdicts' in it (a session that ran only tests other than the claims wrote it); run "
                "`pytest -m claims` to write the verdicts")
    if not isinstance(doc["verdicts"], list):
        return f"verdicts: expected a list of verdicts, got {type(doc['verdicts']).__name__}"
    if not isinstance(doc.get("invariants", []), list) or not all(isinstance(t, dict) for t in doc.get("invariants", [])):
        return "invariants: expected a list of test outcomes"
    for i, v in enumerate(doc["verdicts"]):
        if not isinstance(v, dict):
            return f"verdicts.{i}: expected a verdict (a mapping), got {type(v).__name__}"
        for key, (ok, expected) in VERDICT_KEYS.items():
            if (key in v or key in ("claim", "variant")) and not ok(v.get(key)):
                return f"verdicts.{i}.{key}: expected {expected}, got {clip(json.dumps(v.get(key)), 40)}"
    return None


def load_verdicts(path: Path) -> dict:
    try:
        doc = json.loads(read_regular(path, MAX_VERDICTS_BYTES))
    except FileNotFoundError:
        raise ReportError(f"{path}: no verdicts yet; run `pytest -m claims` first") from None
    except OSError as err:
        raise ReportError(f"{path}: not readable ({err.strerror or type(err).__name__}); expected the verdicts "
                          "file `pytest -m claims` writes") from None
    except (ValueError, RecursionError) as err:  # not JSON, not UTF-8 (a binary file)
        raise ReportError(f"{path}: not valid JSON ({clip(err, 80)}); re-run `pytest -m claims`") from None
    wrong = verdicts_error(doc)
    if wrong:
        raise ReportError(f"{path}: {wrong}")
    return doc
