"""Verdicts as a table that travels: CSV, Markdown (GitHub), LaTeX, JSON.

    from repro.export import rows, export
    table = rows(verdicts)            # one dict per verdict (COLUMNS), numbers as numbers
    print(export(verdicts, "md"))     # or "csv", "tex", "json"

CSV and JSON carry every column with numbers at full precision (for a spreadsheet or a script); Markdown and
LaTeX carry the columns a reader scans (DISPLAY), numbers rounded. The text of a verdict comes from spec files
and verdicts.json, which anyone may write, so every format treats it as hostile: LaTeX specials are escaped so
the table compiles, Markdown pipes and markup are escaped so the table keeps its shape on GitHub, a CSV text cell
that a spreadsheet would run as a formula gets a leading apostrophe (OWASP's advice), and bidirectional
controls, which reorder what is shown, are dropped from every text format (JSON escapes them instead).
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .spec.errors import BIDI
from .wording import claimed_region, estimate_of, number, wording

FORMATS = ("csv", "md", "tex", "json")
COLUMNS = ("claim", "variant", "profile", "scale", "status", "verdict", "check", "metric", "units", "claimed",
           "claimed_low", "claimed_high", "estimand", "estimate", "ci_low", "ci_high", "ci_level", "p", "p_holm",
           "p_against", "p_against_holm", "seeds", "registration")
DISPLAY = ("claim", "variant", "profile", "scale", "verdict", "claimed", "measured", "p / Holm",
           "p against / Holm", "seeds", "registration")
CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _finite(x):
    return float(x) if number(x) else None  # JSON has no NaN or infinity; a missing number is null


def units(v: dict) -> str:
    """The units the verdict records: its observed arms' (values measured elsewhere say what they are)."""
    observed = v.get("observed") if isinstance(v.get("observed"), dict) else {}
    return "; ".join(dict.fromkeys(str(o["units"]) for o in observed.values() if isinstance(o, dict) and o.get("units")))


def claimed(v: dict) -> str:
    """What the claim says of the tested quantity: the verdict's hypothesis (it names the value and tolerance,
    margin or bound), else what the check's keys give."""
    if isinstance(v.get("hypothesis"), str) and v["hypothesis"]:
        return v["hypothesis"]
    if v.get("value") is not None:
        return f"{v['value']} ± {v.get('tolerance')}"
    if number(v.get("bound")):
        return f"{v.get('derived') or 'mean'} {'<=' if v.get('check') == 'at_most' else '>='} {v['bound']:g}"
    arms, check = [str(a) for a in v.get("arms") or []], v.get("check")
    if check in ("greater", "less") and len(arms) == 2:  # a verdict NOT RUN has no hypothesis: say it from the arms
        return f"{arms[0]} {'>' if check == 'greater' else '<'} {arms[1]}"
    if check == "equivalent" and number(v.get("margin")):
        return f"|difference| < {v['margin']:g} for every pair of {', '.join(arms)}"
    return f"{check} of {', '.join(arms)}" if arms else str(check or "")


def seeds(v: dict) -> int | None:
    """Seeds per arm; for observed arms (no seeds) the number of values, the largest arm's."""
    if isinstance(v.get("seeds"), list) and v["seeds"]:
        return len(v["seeds"])
    counts = [len(x) for x in (v.get("values") or {}).values() if isinstance(x, list)]
    return max(counts) if counts else None


def registration(v: dict, results: Path | None = None) -> str:
    """Whether the decision rule was fixed before the data: the verdict's registration (repro/registration.py:
    its wave, and whether results were stored before it; "not registered" for an exploratory claim), else, for a
    verdicts file judged before registrations existed, a design lock (repro/designs.py) beside the results."""
    reg, member = v.get("registration"), v.get("registered")
    if isinstance(member, dict) and isinstance(member.get("wave"), int):
        when = reg.get("recorded") if isinstance(reg, dict) and isinstance(reg.get("recorded"), str) else ""
        state = "registered after results" if member.get("after_results") else "registered before its data"
        tampered = "; tampered" if isinstance(reg, dict) and reg.get("state") == "tampered" else ""
        late = "; its compared runs predate it: no confirmatory verdict" \
            if str(v.get("reason", "")).startswith("no confirmatory verdict") else ""
        return f"{state} (wave {member['wave']}{', ' + when if when and member['wave'] == 1 else ''}){tampered}{late}"
    if isinstance(reg, dict) and reg.get("state"):
        return "not registered (exploratory)" if v.get("family", "") is None else str(reg["state"])
    for key in ("registration", "design_lock"):
        if isinstance(v.get(key), str) and v[key]:
            return v[key]
    names = [str(v.get(k, "")) for k in ("profile", "claim", "variant")]
    if results is None or not all(re.fullmatch(r"[\w.-]+", n) and n not in (".", "..") for n in names):
        return ""  # a name that is not one plain path component is never joined onto a folder
    path = Path(results).joinpath(*names, "design.lock")
    try:
        recorded = json.loads(path.read_text())["designs"][-1].get("recorded", "")
    except (OSError, ValueError, KeyError, IndexError, TypeError, AttributeError):
        return "design lock unreadable" if path.exists() else ""
    return f"design locked {recorded}".strip()


def row(v: dict, scales: dict | None = None, results: Path | None = None) -> dict:
    """One verdict as one row of COLUMNS."""
    tested = estimate_of(v)
    region = claimed_region(v)
    low, high = (_finite(region[1]), _finite(region[2])) if region else (None, None)
    scale = (scales or {}).get((v.get("claim"), v.get("profile")), "")
    return {
        "claim": str(v.get("claim", "")), "variant": str(v.get("variant", "")), "profile": str(v.get("profile", "")),
        "scale": scale, "status": str(v.get("status", "")), "verdict": wording(v), "check": str(v.get("check", "")),
        "metric": str(v.get("metric", "")), "units": units(v), "claimed": claimed(v),
        "claimed_low": low, "claimed_high": high, "estimand": tested[0] if tested else "",
        "estimate": _finite(tested[1]) if tested else None, "ci_low": _finite(tested[2]) if tested else None,
        "ci_high": _finite(tested[3]) if tested else None, "ci_level": _finite(v.get("ci_level")) if tested else None,
        "p": _finite(v.get("p")), "p_holm": _finite(v.get("p_holm")), "p_against": _finite(v.get("p_refute")),
        "p_against_holm": _finite(v.get("p_refute_holm")), "seeds": seeds(v), "registration": registration(v, results),
    }


def scales_of(claims: dict) -> dict:
    """(claim id, profile) -> the profile's scale label, from loaded claims."""
    return {(cid, p): prof.scale for cid, c in claims.items() for p, prof in (c.profiles or {}).items()}


def rows(verdicts, claims: dict | None = None, results: Path | None = None, profile: str | None = None) -> list[dict]:
    """One row per verdict (a verdicts.json document or its list of verdicts), of one profile if given."""
    listed = verdicts["verdicts"] if isinstance(verdicts, dict) else verdicts
    scales = scales_of(claims) if claims else {}
    return [row(v, scales, results) for v in listed if profile is None or v.get("profile") == profile]


# --- formats ------------------------------------------------------------------------------------------------

def fmt(x, digits: int = 4) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:.0f}" if 1e3 <= abs(x) < 1e9 else f"{x:.{digits}g}"  # counts: 1730, never 1.73e+03
    return str(x)


def display(r: dict) -> dict:
    """A row as the text a reader scans (DISPLAY): the interval beside its estimate, p beside its Holm p."""
    claimed = r["claimed"] + (f" ({r['units']})" if r["units"] else f" on {r['metric']}" if r["metric"] else "")
    measured = "–" if r["estimate"] is None else (
        f"{r['estimand']} = {fmt(r['estimate'])} [{fmt(r['ci_low'])}, {fmt(r['ci_high'])}]")
    return {**{k: "" if r[k] is None else str(r[k]) for k in ("claim", "variant", "profile", "scale", "verdict",
                                                                "seeds", "registration")},
            "claimed": claimed, "measured": measured, "p / Holm": f"{fmt(r['p'], 2)} / {fmt(r['p_holm'], 2)}",
            "p against / Holm": f"{fmt(r['p_against'], 2)} / {fmt(r['p_against_holm'], 2)}"}


def shown(text: str) -> str:
    """Text as a text format may print it: no bidi or control characters, one line."""
    return re.sub(r"\s*[\r\n\t\v\f\u2028\u2029]+\s*", " ", CONTROL.sub("", BIDI.sub("", text)))


def csv_cell(x):
    """A formula-looking text cell (= + - @ tab CR first) gets an apostrophe; numbers stay numbers."""
    if isinstance(x, str):
        x = BIDI.sub("", x)
        return "'" + x if x[:1] in ("=", "+", "-", "@", "\t", "\r") else x
    return "" if x is None else repr(x)


MD_SPECIAL = re.compile(r"([\\|`*_\[\]<&~])")


def md_cell(text: str) -> str:
    return MD_SPECIAL.sub(r"\\\1", shown(text)) or " "


TEX = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{",
       "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "<": r"\textless{}", ">": r"\textgreater{}",
       "|": r"\textbar{}", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "−": "-", "–": "--", "×": r"$\times$",
       "·": r"$\cdot$", "[": "{[}", "]": "{]}"}  # a bracket after a row's \\ would be read as its argument


def tex_escape(text: str) -> str:
    """Text for pdflatex: specials escaped, the few symbols verdicts use as math, and any other character
    outside Latin-1 (which pdflatex's default font encoding cannot set) shown as '?'."""
    return "".join(TEX.get(c, c if ord(c) < 0x100 else "?") for c in shown(text))


def to_csv(table: list[dict]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows([csv_cell(r[c]) for c in COLUMNS] for r in table)
    return out.getvalue()


def to_md(table: list[dict]) -> str:
    lines = ["| " + " | ".join(DISPLAY) + " |", "|" + "---|" * len(DISPLAY)]
    lines += ["| " + " | ".join(md_cell(display(r)[c]) for c in DISPLAY) + " |" for r in table]
    return "\n".join(lines) + "\n"


def to_tex(table: list[dict]) -> str:
    """A longtable (package longtable; it breaks across pages), narrow text columns wrapped."""
    widths = {"claim": "2.6cm", "variant": "1.6cm", "profile": "1.1cm", "scale": "3cm", "verdict": "3cm",
              "claimed": "3cm", "measured": "3.2cm", "registration": "2cm"}
    spec = "".join(f"p{{{widths[c]}}}" if c in widths else "l" for c in DISPLAY)
    head = " & ".join(tex_escape(c) for c in DISPLAY) + r" \\ \hline"
    body = [" & ".join(tex_escape(display(r)[c]) for c in DISPLAY) + r" \\" for r in table]
    return "\n".join([rf"\begin{{longtable}}{{{spec}}}", r"\hline", head, r"\endhead", *body, r"\hline",
                      r"\end{longtable}"]) + "\n"


def to_json(table: list[dict]) -> str:
    return json.dumps(table, indent=1, ensure_ascii=True, allow_nan=False) + "\n"


WRITERS = {"csv": to_csv, "md": to_md, "tex": to_tex, "json": to_json}


def export(verdicts, fmt: str, claims: dict | None = None, results: Path | None = None,
           profile: str | None = None) -> str:
    """The verdicts as one table in `fmt` (csv, md, tex or json)."""
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    return WRITERS[fmt](rows(verdicts, claims, results, profile))


def command(args, outputs, load_claims) -> int:
    """`repro export`: the verdicts file of the claims set (or --verdicts) as a table, to stdout or -o FILE.
    The specs give each profile's scale label; a set whose specs do not load is still exported, without it."""
    import os
    import sys

    from .verdicts_file import ReportError, load_verdicts
    from .spec import SpecError
    from .store import atomic_write
    results, reports = outputs()
    path = Path(args.verdicts or os.environ.get("REPRO_VERDICTS") or reports / "verdicts.json")
    try:
        doc = load_verdicts(path)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        claims = load_claims(args.claims)
    except SpecError as err:
        print(f"note: no scale labels ({str(err).splitlines()[0]})", file=sys.stderr)
        claims = {}
    if args.profile and not any(v.get("profile") == args.profile for v in doc["verdicts"]):
        print(f"note: no verdict of profile {args.profile!r} in {path}", file=sys.stderr)
    text = export(doc, args.format, claims, results, args.profile)
    if not args.output:
        sys.stdout.write(text)
        return 0
    try:
        atomic_write(Path(args.output), text.encode())
    except OSError as err:
        print(f"error: {args.output}: not writable ({err.strerror or type(err).__name__})", file=sys.stderr)
        return 2
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
