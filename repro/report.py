"""verdicts.json (+ claim specs + stored results) -> one self-contained HTML file.

Computes no statistics: it shows what `pytest -m claims` decided, and draws the stored runs
(per-epoch curves) those verdicts were decided from. Every verdict key it does not know is still
shown, as a row of its variant's table, so the output of a new check kind is never hidden.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import math
import subprocess
from pathlib import Path

import jinja2
import markupsafe
import yaml

from . import figures
from .cost import span
from .metrics import is_seconds
from .wording import explain, look_text, miss
from .spec import clip, public_path, read_regular
from .spec.errors import BIDI
from .verdicts_file import ReportError, load_verdicts  # noqa: F401  (read here, and by export)
from .store import CorruptResult, Store, atomic_write

BADGE = {"REPRODUCED": "ok", "NOT REPRODUCED": "bad", "INCONCLUSIVE": "warn", "NOT RUN": "none"}
# Verdict keys with a place of their own on the page; any other key is listed as it is.
SHOWN = {"claim", "variant", "profile", "check", "metric", "arms", "alpha", "margin", "justification", "status",
         "reason", "decision", "p", "p_greater", "p_holm", "test", "statistic", "df", "diff", "ci", "ci_level",
         "effect_size", "se", "seeds_to_decide", "value", "tolerance", "values", "seeds", "preconditions",
         "wall_s", "run_keys", "devices", "versions", "commits", "hypothesis", "estimand", "estimate", "estimate_ci",
         "reference", "p_refute", "paired", "companion", "pairs", "p_refute_holm", "holm_family", "holm_policy",
         "seeds_support", "seeds_refute", "looks", "sequential", "next_look", "p_look", "p_refute_look",
         "not_comparable", "conditional_on", "observed", "unconverged", "family", "used_precision", "precision_twin",
         # repro.registration: shown as rows of their own (below) and in the banner at the top
         "registration", "registered", "registrations", "check_registrations", "amendment", "exploratory",
         "secondary_checks", "estimate_ci_alone", "ci_level_alone"}
LABELS = {"holm_family": "Holm family (p-values corrected together)", "diverged": "diverged runs per arm"}
# Keys every verdict from verdict.py has; a hand-made or older verdicts.json may lack them.
DEFAULTS = {"check": "", "metric": "", "arms": [], "alpha": None, "margin": None, "justification": "",
            "reason": "", "preconditions": [], "status": "NOT RUN", "profile": "unknown"}
CURVE_KEYS = ("step_acc", "train_loss", "train_acc", "test_acc")  # after the check's own metric; 3 at most
NOT_VERSIONS = {"command", "created", "git_commit", "teacher_retrained"}


def plain_text(value, paths: tuple[tuple[str, str], ...] = ()):
    """jinja's finalize: each printed value with bidi controls removed and each absolute folder in `paths`
    written as it is shown (escaping then happens as usual)."""
    if not isinstance(value, str):
        return value
    text = BIDI.sub("", value)
    for absolute, shown in paths:
        text = text.replace(absolute, shown)
    return markupsafe.Markup(text) if isinstance(value, markupsafe.Markup) else text


def private_paths(claims_dir: Path) -> tuple[tuple[str, str], ...]:
    """(absolute path, how the page shows it) for the claims folder (as given and resolved) and the working
    folder: a verdicts file judged with `--claims /home/me/claims` names the folder in its Holm family line and
    reasons, and the page must not print this machine's absolute paths (a home folder, a user name)."""
    pairs = {}
    for folder in (Path(claims_dir), Path(claims_dir).resolve()):
        if folder.is_absolute() and len(folder.parts) > 1:
            pairs[str(folder)] = public_path(Path(claims_dir).resolve(), 1)
    cwd = Path.cwd()
    if len(cwd.parts) > 1:
        pairs[str(cwd) + "/"] = ""
        pairs[str(cwd)] = "."
    return tuple(sorted(pairs.items(), key=lambda kv: -len(kv[0])))  # longest first: a folder before its parent


def num(x, fmt: str = ".3g") -> str:
    if isinstance(x, bool) or x is None:
        return "–" if x is None else str(x)
    if isinstance(x, float):
        if not math.isfinite(x):
            return "–"
        if fmt.endswith("g") and 1e3 <= abs(x) < 1e9:  # counts such as test errors: 1730, never 1.73e+03
            return f"{x:.0f}"
        return format(x, fmt)
    if isinstance(x, int):
        return str(x)
    if isinstance(x, (list, tuple)):
        return "[" + ", ".join(num(v, fmt) for v in x) + "]"
    if isinstance(x, dict):
        return "; ".join(f"{k}: {num(v, fmt)}" for k, v in x.items())
    return str(x)


def load_runs(results: Path, v: dict) -> dict[str, list[dict]]:
    """Arm -> the stored results behind a verdict (its run keys), read from
    results/<profile>/<claim>/<variant>/<arm>/seed<N>-<key12>.json. Unreadable files are left out."""
    runs: dict[str, list[dict]] = {}
    for arm, keys in (v.get("run_keys") or {}).items():
        folder = results / v["profile"] / v["claim"] / v["variant"] / arm
        runs[arm] = []
        for key in keys:
            for path in sorted(folder.glob(f"seed*-{key[:12]}.json")):
                try:
                    found = Store.load(path)
                except CorruptResult:
                    continue
                if found["key"] == key:
                    runs[arm].append(found)
                    break
    return runs


def stat_rows(v: dict) -> list[tuple[str, str]]:
    """(label, text) for every statistic the verdict carries."""
    rows = [("hypothesis", v["hypothesis"])] if v.get("hypothesis") else []
    if isinstance(v.get("unconverged"), dict):
        rows.append(("unconverged runs", ", ".join(f"{arm}: {n}" for arm, n in v["unconverged"].items())
                     + " (training loss still fell over 5% in the last epoch: the budget, not the method, may decide)"))
    for arm, o in (v.get("observed") or {}).items() if isinstance(v.get("observed"), dict) else []:
        if isinstance(o, dict):  # observed arms (repro/spec/observed.py): evidence from elsewhere, named as such
            rows.append((f"external evidence: {arm}", f"{o.get('n')} values of {o.get('metric')} ({o.get('units')}), "
                         f"measured elsewhere, not trained here"
                         + (f" (from {o['file']})" if o.get("file") else "") + f": {o.get('provenance')}"))
    if "test" in v:
        paired = ", paired by seed" if v.get("paired") and "paired" not in str(v["test"]) else ""
        rows.append(("test", f"{v['test']}: statistic {num(v.get('statistic'))}, df {num(v.get('df'))}{paired}"))
    if "p" in v:
        rows.append(("p raw / Holm", f"{num(v.get('p'))} / {num(v.get('p_holm'))}"))
    if "p_refute" in v:
        holm = f" / Holm {num(v['p_refute_holm'])}" if "p_refute_holm" in v else " (not corrected for multiplicity)"
        rows.append(("p against the claim", f"{num(v['p_refute'])}{holm} (small = the claimed effect is ruled out)"))
    if isinstance(v.get("companion"), dict):
        c = v["companion"]
        detail = [f"smallest possible p {num(c['p_floor'])}" if "p_floor" in c else "",
                  f"{c['n_permutations']} permutations" if c.get("n_permutations") else "",
                  "exact" if c.get("exact") else ""]
        rows.append(("distribution-free companion", f"{c.get('test', '')}: p = {num(c.get('p'))}"
                     + (f" ({', '.join(d for d in detail if d)})" if any(detail) else "")))
    tested = figures.estimate_of(v)
    if tested:
        what, est, lo, hi, ref = tested
        level = v.get("ci_level") or 1 - 2 * (v.get("alpha") or 0.025)
        rows.append((f"{what}, {level:.0%} CI", f"{num(est, '.4g')} [{num(lo, '.4g')}, {num(hi, '.4g')}]"
                     + (f" against {num(ref, '.4g')}" if ref else "")))
    if "effect_size" in v:
        rows.append(("effect size", f"{num(v['effect_size'])} (standardised mean difference)"))
    if v.get("value") is not None:
        tol = f" ± {num(v['tolerance'])}" if v.get("tolerance") is not None else ""
        rows.append(("source's value", f"{num(v['value'])}{tol}"))
    elif v.get("tolerance") is not None:
        rows.append(("tolerance", num(v["tolerance"])))
    for other in reported(v):
        rows.append(("also reported", f"{num(other['value'], '.4g')}: {other['by']}"))
    rows.append(("margin", f"{num(v['margin'])}" if v.get("margin") is not None else "none: any effect counts"))
    if v.get("seeds_to_decide"):
        rows.append(("seeds to decide", f"about {num(v['seeds_to_decide'])} per arm at this effect size, at the "
                     "Holm level the claim faces"))
    seq = v.get("sequential")
    if isinstance(seq, dict) and v.get("looks"):
        crossed = seq.get("decided_at")
        rows.append(("group-sequential", f"{seq.get('spending')} spending over looks at "
                     f"{', '.join(map(str, seq.get('looks', [])))} seeds per arm; {len(v['looks'])} taken"
                     + (f"; crossed its boundary at look {crossed}" if crossed else "; no boundary crossed")
                     + (f"; next look at {v['next_look']} seeds" if v.get("next_look") and v.get("status") == "INCONCLUSIVE"
                        else "")))
        for i, look in enumerate(v["looks"], 1):
            rows.append((f"look {i} ({look.get('seeds')} seeds)", look_text(look)))
    if v.get("used_precision"):
        rows.append(("precision", str(v["used_precision"]) + (f" ({v['precision_twin']})" if v.get("precision_twin") else "")))
    if v.get("conditional_on"):
        rows.append(("conditional on", f"the one run of {', '.join(v['conditional_on'])} (reused for every seed)"))
    for pair in v.get("pairs") or []:
        if isinstance(pair, dict):
            rows.append((f"pair {pair.get('comparison', '')}", num({k: x for k, x in pair.items() if k != "comparison"})))
    rows += registration_rows(v)
    rows += [(LABELS.get(key, key.replace("_", " ")), num(v[key])) for key in sorted(v)
             if key not in SHOWN and v[key] not in (None, "", [], {})]
    return rows


def registration_rows(v: dict) -> list[tuple[str, str]]:
    """The rule the verdict was judged under (repro.registration), its secondary checks, and any exploratory
    verdict beside it: always with its label, never as a headline."""
    rows = []
    reg = v.get("registered") if isinstance(v.get("registered"), dict) else None
    if reg:
        rows.append(("registered rule", f"wave {reg.get('wave')}, {reg.get('state')}"
                     + ("; its results were stored before the registration (today's spec was registered)"
                        if reg.get("after_results") else "") + (f"; {reg['gated']}" if reg.get("gated") else "")))
    for s in v.get("secondary_checks") or [] if isinstance(v.get("secondary_checks"), list) else []:
        if isinstance(s, dict):
            rows.append((f"secondary check {s.get('secondary')} (in the family)", f"{s.get('status')}: {s.get('reason', '')}"))
    if isinstance(v.get("estimate_ci_alone"), list):
        rows.append(("interval before Holm", f"[{num(v['estimate_ci_alone'][0], '.4g')}, "
                     f"{num(v['estimate_ci_alone'][1], '.4g')}] (not at the Holm level the claim faced)"))
    for key, label in (("amendment", "amendment after data (exploratory)"),
                       ("exploratory", "exploratory verdict (not confirmatory)")):
        if isinstance(v.get(key), dict):
            rows.append((label, str(v[key].get("line", ""))))
    return rows


def reported(v: dict) -> list[dict]:
    """The verdict's `also_reported` numbers that are well formed (a hand-made verdicts file may hold anything)."""
    others = v.get("also_reported") if isinstance(v.get("also_reported"), list) else []
    return [o for o in others if isinstance(o, dict) and figures.number(o.get("value")) and isinstance(o.get("by"), str)]


def claimed_and_measured(v: dict) -> tuple[str, str]:
    """The summary's two cells: what the claim says (the source's number ± tolerance, a bound, or the
    hypothesis), with other published numbers for it; and the measured quantity, named, with its interval."""
    if v.get("value") is not None and not isinstance(v.get("value"), list):
        claimed = num(v["value"], ".4g") + (f" ± {num(v['tolerance'], '.3g')}" if v.get("tolerance") is not None else "")
    elif v.get("bound") is not None:
        claimed = f"{v.get('derived') or 'mean'} {'≤' if v.get('check') == 'at_most' else '≥'} {num(v['bound'], '.3g')}"
    else:
        claimed = str(v.get("hypothesis") or v.get("check") or "")
    tested = figures.estimate_of(v)
    if not tested:
        return claimed, "–"
    what, est, lo, hi, _ = tested
    return claimed, f"{what} = {num(est, '.4g')} [{num(lo, '.4g')}, {num(hi, '.4g')}]"


def one_p(v: dict) -> tuple[str, str]:
    """The summary's one p value, (label, text): the Holm-corrected p of the side that decided the verdict (the p
    against the claim for NOT REPRODUCED, the p for the claim otherwise), the raw one where none was corrected."""
    against = v.get("status") == "NOT REPRODUCED" and figures.number(v.get("p_refute"))
    raw, holm = (v.get("p_refute"), v.get("p_refute_holm")) if against else (v.get("p"), v.get("p_holm"))
    if figures.number(holm):
        return ("against the claim, Holm" if against else "Holm"), num(holm)
    if figures.number(raw):
        return ("against the claim, not corrected" if against else "not corrected"), num(raw)
    return "", "–"


def failed_preconditions(v: dict) -> int:
    return sum(isinstance(p, dict) and p.get("held") is False for p in v.get("preconditions") or [])


PROFILE_ORDER = {"paper": 0, "quick": 1, "smoke": 9}  # the source's protocol first; machinery checks last


def profile_rank(name: str) -> tuple[int, str]:
    return PROFILE_ORDER.get(name, 5), name


def judged_profiles(claims: dict, store, asked: str) -> list[str]:
    """The profiles `make reproduce` judges (`repro list --stored-profiles`), in report order: `asked`, and every
    other profile but smoke that the claims declare and the store holds results of."""
    names = {p for c in claims.values() for p in c.profiles if p != "smoke"
             and any((store.root / p / c.id).rglob("seed*.json"))}
    return sorted(names | {asked}, key=profile_rank)


def seed_table(v: dict) -> tuple[list, list[tuple[str, list, bool]]]:
    """Seeds, and (arm, values, is a compared arm) for the check's arms then precondition-only arms."""
    values = [(arm, vs, True) for arm, vs in (v.get("values") or {}).items()]
    for pre in v.get("preconditions") or []:
        values += [(arm, vs, False) for arm, vs in (pre.get("values") or {}).items()
                   if arm not in {a for a, _, _ in values}]
    return v.get("seeds") or list(range(max((len(vs) for _, vs, _ in values), default=0))), values


def temperatures(claim, v: dict) -> dict[str, float]:
    """Arm -> the distillation temperature T of its loss, for the arms the check compares."""
    out = {}
    for arm in v.get("values") or {}:
        try:
            t = claim.resolve(arm, v["variant"], v["profile"]).loss.params.get("T")
        except Exception:  # a spec changed since the verdict: no temperature figure, not a broken report
            continue
        if isinstance(t, (int, float)):
            out[arm] = float(t)
    return out


def _component(c) -> str:
    """`{name, params}` as one short text: `mlp hidden=[32]`."""
    if not isinstance(c, dict):
        return "–"
    params = c.get("params") or {}
    return " ".join([str(c.get("name", "?"))] + [f"{k}={json.dumps(v, separators=(',', ':'))}"
                                                  for k, v in sorted(params.items())])


def rests_on_row(arm: str, run: dict, stored: bool) -> dict:
    """What one arm's run is (a stored result's `run`, or the run the spec plans): model, data, loss with its
    parameters, teacher(s), feature paths, the transfer set, and the sha256 of each plugin file and checkpoint."""
    spec = run.get("arm") or {}
    teachers = spec.get("teachers") or {}
    if teachers:
        teacher = ", ".join(f"{t} ×{w:g}" if len(set(teachers.values())) > 1 else t for t, w in teachers.items())
        teacher += f" ({spec.get('teacher_aggregate', 'logits')})"
    elif spec.get("teacher"):
        teacher = spec["teacher"] + (f" @ epoch {spec['teacher_epoch']}" if spec.get("teacher_epoch") else "")
    elif spec.get("teacher_checkpoint"):
        ckpt = spec["teacher_checkpoint"]
        teacher = f"checkpoint {ckpt.get('file')} ({_component(ckpt.get('model'))})"
    else:
        teacher = "–"
    features = spec.get("features") or {}
    hashes = dict(run.get("code") or {})
    if spec.get("teacher_checkpoint"):
        hashes[str(spec["teacher_checkpoint"].get("file"))] = str(spec["teacher_checkpoint"].get("sha256"))
    transfer = [f"trains on {spec['train_on']}" if spec.get("train_on", "kept") != "kept" else "",
                "no labels" if spec.get("labels", "used") == "none" else ""]
    return {"arm": arm, "model": _component(spec.get("model")), "data": _component(spec.get("data")),
            "transfer": ", ".join(t for t in transfer if t), "loss": _component(spec.get("loss")), "teacher": teacher,
            "features": " → ".join(", ".join(features.get(k) or []) for k in ("student", "teacher")) if features else "",
            "hashes": sorted(hashes.items()), "stored": stored}


def rests_on(v: dict, claim, runs: dict) -> list[dict]:
    """One row per arm the verdict rests on (its compared arms and what they learn from): from a stored result
    behind it where there is one, else from the spec's plan (seed runs not stored yet)."""
    rows, planned = {}, {}
    if claim is not None and v.get("profile") in claim.profiles and v.get("variant") in claim.variants:
        try:
            from .plan import plan_claim
            planned = plan_claim(claim, v["variant"], v["profile"])
        except Exception:  # noqa: BLE001 -- a spec changed since the verdict: show what is stored
            planned = {}
    for arm in list(planned) + [a for a in runs if a not in planned]:
        stored = (runs.get(arm) or [None])[0]
        if stored is not None:
            rows[arm] = rests_on_row(arm, stored["run"], True)
        elif planned.get(arm):
            rows[arm] = rests_on_row(arm, planned[arm][0].model_dump(mode="json"), False)
    return list(rows.values())


def variant_block(v: dict, claim, runs: dict, colors: dict) -> dict:
    figs = []
    if (uri := figures.per_seed(v, colors)):
        figs.append(("Per-seed values; right: the tested quantity with its interval", uri))
    if (uri := figures.sequential_path(v)):
        figs.append(("Group-sequential looks: p at each look against the boundary it was tested at", uri))
    if claim is not None and (uri := figures.by_temperature(v, temperatures(claim, v), colors)):
        figs.append(("The check's metric against the distillation temperature", uri))
    curves = {arm: [r["epochs"] for r in rs] for arm, rs in runs.items() if rs}
    keys = list(dict.fromkeys([figures.metric_key(v.get("metric", "")), *CURVE_KEYS]))
    if (uri := figures.learning_curves(curves, keys, colors, v)):
        figs.append(("Learning curves per arm: mean over seeds, band = min to max", uri))
    variant = claim.variants.get(v["variant"]) if claim else None
    profile = claim.profiles.get(v["profile"]) if claim else None
    return {"v": v, "badge": BADGE.get(v.get("status"), "none"), "stats": stat_rows(v), "seeds": seed_table(v),
            "description": variant.description if variant else "", "figures": figs,
            "scale": profile.scale if profile else "", "comparable": profile.comparable if profile else None,
            "claimed_measured": claimed_and_measured(v), "explain": explain(v), "miss": miss(v), "p": one_p(v),
            "failed": failed_preconditions(v), "reported": reported(v),
            "deviations": list(profile.deviations) if profile else [], "rests_on": rests_on(v, claim, runs)}


def retrains(runs: list[dict]) -> str:
    """The teachers retrained for their weights (a fresh machine has a teacher's result, not its weights), as the
    students that learnt from them record it: hours that are no stored run's wall_s. Counted once per retrain
    (teacher, machine, numbers), whichever students share it; a record without a time (kept before retrains
    recorded theirs) is counted as a retrain, its time not."""
    seen = {}
    for run in runs:
        for r in run["provenance"].get("teacher_retrained") or []:
            if r.get("retrained") is not None:
                seen[(r["key"], str(r.get("retrained_on")), json.dumps(r["retrained"], sort_keys=True))] = r
    if not seen:
        return ""
    timed = [float(r["retrained_wall_s"]) for r in seen.values() if is_seconds(r.get("retrained_wall_s"))]
    n, untimed = len(seen), len(seen) - len(timed)
    time = ("time not recorded, not counted" if not timed else span(sum(timed))
            + (f"; {untimed} more of unrecorded time, not counted" if untimed else ""))
    return f"; plus {n} teacher{'s' if n > 1 else ''} retrained for {'their' if n > 1 else 'its'} weights ({time})"


def environment(doc: dict, all_runs: dict[str, dict], claims_dir: Path) -> dict:
    verdicts = doc["verdicts"]
    runs = list(all_runs.values())
    versions: dict[str, set] = {}
    for r in runs:
        for lib, ver in r["provenance"].items():
            if lib not in NOT_VERSIONS:
                versions.setdefault(lib, set()).add(str(ver))
    wanted = {k for v in verdicts for ks in (v.get("run_keys") or {}).values() for k in ks}
    ids = list(dict.fromkeys(v["claim"] for v in verdicts))
    return {
        "hardware": sorted({d for v in verdicts for d in v.get("devices", [])} | {r["device"] for r in runs}),
        "versions": [f"{lib} {', '.join(sorted(vs))}" for lib, vs in sorted(versions.items())]
        or sorted({x for v in verdicts for x in v.get("versions", [])}),
        "run_commits": sorted({str(r["provenance"].get("git_commit") or "not recorded") for r in runs}),
        "compute": span(sum(r["wall_s"] for r in runs)), "n_runs": len(runs), "missing": len(wanted - set(all_runs)),
        "retrains": retrains(runs),
        "commit": git_commit(), "rendered": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "spec_hashes": {cid: spec_hashes(claims_dir, cid) for cid in ids},
    }


def spec_hashes(claims_dir: Path, claim_id: str) -> list[tuple[str, str]]:
    """(file, sha256) of claims/<id>.yaml and of the shared file it names as its `base`, if any."""
    path, out = claims_dir / f"{claim_id}.yaml", []
    while path.is_file() and len(out) < 2:
        try:
            data = read_regular(path, 1 << 20)
        except OSError:
            break
        out.append((public_path(path, 2), hashlib.sha256(data).hexdigest()))
        try:
            base = (yaml.safe_load(data.decode("utf-8")) or {}).get("base")
        except (yaml.YAMLError, AttributeError, UnicodeDecodeError):
            base = None
        path = path.parent / str(base) if base else Path()
    return out or [(public_path(claims_dir / f"{claim_id}.yaml", 2), "spec file not found")]


def git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        # reports/ is what `make reproduce` is writing right now: only changes elsewhere make the code dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!reports"],
                               capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown (git not available)"
    if head.returncode:
        return "unknown (not a git checkout)"
    return head.stdout.strip() + (" (with uncommitted changes)" if dirty.stdout.strip() else "")


def render(doc: dict, claims: dict, results: Path | None = None, claims_dir: Path = Path("claims")) -> str:
    paths = private_paths(claims_dir)
    env = jinja2.Environment(loader=jinja2.PackageLoader("repro", "templates"), autoescape=True,
                             undefined=jinja2.StrictUndefined, finalize=lambda value: plain_text(value, paths))
    env.filters["num"] = num
    verdicts = [{**DEFAULTS, **v} for v in doc["verdicts"]]
    judged = list(verdicts)  # what pytest -m claims reported: the counts are of these, shown or not
    if results is not None:  # a profile a claim has no stored run of (a paper profile not trained) is not shown
        verdicts = [v for v in verdicts if v["status"] != "NOT RUN" or only_profile(verdicts, v)
                    or has_runs(results, v)]
    # Claims in the order they first appear; within a claim the paper profile first, then quick, then the rest
    first = {c: i for i, c in reversed(list(enumerate(v["claim"] for v in verdicts)))}
    verdicts.sort(key=lambda v: (first[v["claim"]], profile_rank(str(v["profile"]))))  # stable: variants keep order
    doc = {**doc, "verdicts": verdicts}
    groups: dict[str, dict] = {}
    all_runs: dict[str, dict] = {}
    for v in verdicts:
        claim = claims.get(v["claim"])
        group = groups.setdefault(v["claim"], {
            "id": v["claim"], "claim": claim, "blocks": [], "v": v, "profiles": {},
            "colors": figures.arm_colors(list(claim.arms) if claim else list(v.get("run_keys") or {}))})
        group["profiles"].setdefault(v["profile"], claim.profiles.get(v["profile"]) if claim else None)
        try:
            runs = load_runs(results, v) if results is not None else {}
            all_runs.update({r["key"]: r for rs in runs.values() for r in rs})
            group["blocks"].append(variant_block(v, claim, runs, group["colors"]))
        except (TypeError, ValueError, KeyError, AttributeError, IndexError) as err:  # a shape no check foresaw
            raise ReportError(f"verdict {clip(v['claim'], 40)} [{clip(v['variant'], 40)}]: cannot be shown "
                              f"({type(err).__name__}: {clip(err, 80)})") from None
    for group in groups.values():  # summary-table row spans: one cell per claim, and per profile within it
        blocks = group["blocks"]
        for i, b in enumerate(blocks):
            b["claim_span"] = len(blocks) if i == 0 else 0
            same = [x for x in blocks if x["v"]["profile"] == b["v"]["profile"]]
            b["profile_span"] = len(same) if same[0] is b else 0
    profiles = sorted({str(v["profile"]) for v in verdicts}, key=profile_rank)
    holm = families(doc, verdicts, profiles)
    cards = sorted({str(v["profile"]) for v in judged}, key=profile_rank)  # a profile none of whose verdicts is listed too
    counts = {p: {status: sum(v["status"] == status and v["profile"] == p for v in judged) for status in BADGE}
              for p in cards}
    unlisted = {p: sum(v["profile"] == p for v in judged) - sum(v["profile"] == p for v in verdicts) for p in cards}
    return env.get_template("index.html.j2").render(
        doc=doc, groups=list(groups.values()), counts=counts, unlisted=unlisted, badge=BADGE, profiles=profiles,
        n_judged=len(judged), study=study(list(groups.values()), judged, claims), cards=cards,
        families=holm, glance=glance(verdicts, holm), registrations=registrations(doc, verdicts, profiles),
        policy=next((v["holm_policy"] for v in verdicts if isinstance(v.get("holm_policy"), str)), ""), env=environment(doc, all_runs, claims_dir),
        smoke=profiles == ["smoke"])


STUDY_PROFILE = "paper"


def study(groups: list[dict], judged: list[dict], claims: dict) -> list[dict]:
    """The paper profile as a reproduction study, per source: each claim's number (the source's, or the paper's
    it quotes), the other published numbers for it, this profile's per-seed values and interval side by side,
    the protocol differences, and for a NOT REPRODUCED which way and by how much it missed. Every paper verdict
    pytest reported is named under its source, so a claim not run yet (its blocks not shown: no stored run) and a
    source none of whose claims ran are still listed, as not run."""
    sources: dict[str, dict] = {}

    def entry(claim) -> dict:
        name = claim.source.file if claim else "source not recorded (no spec)"
        label = f"source {name[:3]} · {name}" if name[:3].isdigit() else name
        return sources.setdefault(name, {"source": name, "label": label, "rows": [], "not_run": [],
                                         "differences": {}})
    for g in groups:
        for b in g["blocks"]:
            v = b["v"]
            if v["profile"] != STUDY_PROFILE or v["status"] == "NOT RUN":
                continue
            s = entry(g["claim"])
            s["rows"].append({"id": g["id"], "b": b})
            for d in [*b["deviations"], *([b["description"]] if b["description"] else [])]:
                s["differences"].setdefault(d, []).append(f"{g['id']} [{v['variant']}]")
    for v in judged:  # in pytest's order, the not-run ones included
        if v["profile"] == STUDY_PROFILE and v["status"] == "NOT RUN":
            entry(claims.get(v["claim"]))["not_run"].append(f"{v['claim']} [{v['variant']}]")
    return list(sources.values())  # the sources with results first, in the claims' order, then the rest


def glance(verdicts: list[dict], holm: dict[str, dict]) -> dict[str, list[tuple[str, str]]]:
    """Per profile, (family, forest plot) for each Holm family, its members in the family's order: the page's
    first picture, every claim of the family at once."""
    out = {}
    for p, entry in holm.items():
        by_id = {f"{v['claim']}[{v['variant']}]": v for v in verdicts if v["profile"] == p}
        figs = [(name, figures.forest([by_id[m] for m in members if m in by_id],
                                      f"{p} profile · Holm family {name}: each claim's tested quantity with its "
                                      "interval, on its own scale; shaded: where the claim holds; dashed: its "
                                      "threshold")) for name, members in entry["families"].items()]
        out[p] = [(name, uri) for name, uri in figs if uri]
    return out


def has_runs(results: Path, v: dict) -> bool:
    folder = Path(results) / str(v["profile"]) / str(v["claim"])
    return folder.is_dir() and next(folder.rglob("seed*.json"), None) is not None


def only_profile(verdicts: list[dict], v: dict) -> bool:
    """Whether `v` is its claim's only verdict (a claim NOT RUN everywhere still gets its block, with the reason)."""
    return all(w["profile"] == v["profile"] for w in verdicts if w["claim"] == v["claim"])


def registrations(doc: dict, verdicts: list[dict], profiles: list[str]) -> dict[str, str]:
    """Per profile, one line on its registration (repro.registration): registered before its results, after them
    (today's spec registered), or tampered; and how many verdicts carry an amendment after the data."""
    recorded = doc.get("registrations") if isinstance(doc.get("registrations"), dict) else {}
    out = {}
    for p in profiles:
        reg = recorded.get(p) or next((v["registration"] for v in verdicts if v["profile"] == p
                                       and isinstance(v.get("registration"), dict)), None)
        if not isinstance(reg, dict):
            out[p] = "no registration recorded in these verdicts (judged before registrations existed)"
            continue
        when = f", recorded {reg.get('recorded')}" + (f" at commit {str(reg['git_commit'])[:12]}" if reg.get(
            "git_commit") else "") if reg.get("recorded") else ""
        amended = sum(isinstance(v.get("amendment"), dict) for v in verdicts if v["profile"] == p)
        late = sum(isinstance(v.get("exploratory"), dict) for v in verdicts if v["profile"] == p)
        out[p] = (f"registration: {reg.get('state')} ({reg.get('file')}{when})"
                  + (": the rules are the specs as they were when it was made, after results were stored"
                     if reg.get("state") == "registered after results" else "")
                  + (f"; {reg.get('note')}" if reg.get("note") else "")
                  + (f"; {amended} verdict(s) with an amendment after the data (exploratory, shown beside them)"
                     if amended else "")
                  + (f"; {late} claim(s) without a confirmatory verdict (exploratory only)" if late else ""))
    return out


def families(doc: dict, verdicts: list[dict], profiles: list[str]) -> dict[str, dict]:
    """Per profile, the Holm families its verdicts were corrected in (stated once, at the top): as pytest -m claims
    recorded them (`families`: {profile: {text, families}}), else as the verdicts name them."""
    recorded = doc.get("families") if isinstance(doc.get("families"), dict) else {}
    if doc.get("holm_family_text") and doc.get("profile") not in recorded:  # a file of one profile
        recorded = {**recorded, doc["profile"]: {"text": doc["holm_family_text"], "families": doc.get("holm_families")}}
    out = {}
    for p in profiles:
        entry = recorded.get(p) if isinstance(recorded.get(p), dict) else {}
        named = entry.get("families") if isinstance(entry.get("families"), dict) else {}
        if not named:
            members = next((v["holm_family"] for v in verdicts if v["profile"] == p
                            and isinstance(v.get("holm_family"), list)), [])
            named = {"all": members} if members else {}
        text = entry.get("text") if isinstance(entry.get("text"), str) and entry.get("text") else \
            f"Holm family of the {p} profile"
        out[p] = {"text": text, "families": {str(k): [str(m) for m in v] for k, v in named.items()
                                             if isinstance(v, list) and v}}
    return out


def write_report(verdicts_path: Path, results: Path, out: Path, claims: dict,
                 claims_dir: Path = Path("claims")) -> Path:
    html = render(load_verdicts(verdicts_path), claims, results, claims_dir)
    atomic_write(out, html.encode())
    return out
