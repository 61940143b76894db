"""The registration: every rule that decides a profile's verdicts, recorded before its results are judged.

One committed file per results folder and profile, `<results>/<profile>/registration.lock` (JSON; like design.lock
its name does not end in .json, so nothing that walks result files reads it). Per claim and variant
(a *member*) it holds the rule that decides the verdict: the check (kind, metric and reducer, arms, direction
`better`, value / margin / tolerance / bound, alpha, pairing), the secondary checks, the preconditions, the seeds
and the sequential design, whether the numbers are comparable with the source's, its observed arms' values
(`observed`) and its plugin files' hashes (`code`) where it has some (registrations before they were recorded lack
them, and are not compared on them), and the Holm family the member is corrected with. It grows in waves, each chained to the one before and hashed:

    {"format": 1, "profile": "quick",
     "waves": [{"wave": 1, "recorded": "2026-05-01T10:00:00+00:00", "git_commit": "5ad618c..." | null,
                "after_results": true,       # results of this profile were stored before this wave
                "previous": null,            # hash of the wave before
                "members": {"hinton-teacher[as_described]": {"claim": "hinton-teacher", "variant": "as_described",
                            "family": "all", "after_results": true, "rule": {"check": {...}, "seeds": [...], ...}}},
                "specs": {"hinton-teacher": {...the whole validated spec...}},  # to judge it if its file is deleted
                "hash": "<sha256 of the wave's canonical JSON without this key>"}]}

Wave 1 is written by `repro register`, or automatically by the first `repro run` or judging of a profile that has
none (marked "registered after results" when results were already stored: the rule is then today's spec, and the
report says so). A later wave registers claims new to the folder before their data (`repro register`, or `repro
run` of them); a claim whose results are stored already is not added, and is judged exploratory only.

Every result trained afterwards carries `provenance.registration` = "<profile>:<first 16 hex of the last wave's
hash>" (no run key changes), so a registration edited or deleted is *tampered*, never a fresh start: a wave whose
hash does not match, a result stamped with a wave the file lacks, a file that does not extend the version
committed in git, or a committed version that does not extend the one committed before it (a rewrite committed).
Judging then uses the newest good committed version git still has; without one, every verdict of the
profile is NOT RUN with the reason. Existing design.lock files (repro/designs.py) are committed evidence: wave 1
registers the design they recorded where the spec's differs.
"""
from __future__ import annotations

import datetime
import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from .designs import RECORD as LOCK_FILE
from .store import atomic_write

FILE = "registration.lock"
FORMAT = 1
TEXT_ONLY = ("justification", "also_reported")  # shown in the report, decide nothing: editable after the data
OBSERVED_FAMILY = "observed-only"  # claims of observed arms alone: one family of their own, in no profile's


def member_key(claim_id: str, variant: str) -> str:
    return f"{claim_id}[{variant}]"


def rule_of(claim, variant: str, profile: str) -> dict:
    """Everything of the spec that decides this member's verdict at `profile` (what is registered)."""
    prof = claim.profiles.get(profile)
    dump = [c.model_dump(mode="json") for c in claim.secondary_checks]
    # observed arms' values are evidence known before the rule, often read from a file beside the spec: registered
    # with it, so editing them after is an amendment (only where there are some: other rules are as before)
    observed = {arm: list(values) for (arm, v), (_, values) in claim.observed.items() if v == variant}
    code = _code(claim, variant, profile)  # plugin files its runs call: an edit makes other runs (see judge_folder)
    return {"check": claim.check.model_dump(mode="json"), "secondary_checks": dump,
            "preconditions": [c.model_dump(mode="json") for c in claim.preconditions],
            "seeds": list(prof.seeds) if prof else None,
            "sequential": prof.sequential.model_dump(mode="json") if prof and prof.sequential else None,
            "comparable": claim.numbers_comparable(variant, profile)[0],
            **({"observed": observed} if observed else {}), **({"code": code} if code else {})}


LATER = ("observed", "code")  # parts of a rule recorded only where a claim has them, and by later versions


def _code(claim, variant: str, profile: str) -> dict:
    """{plugin file: hash} of the plugin code the member's runs call (repro.plugins.code_hashes; {} for built-ins)."""
    runs = _planned(claim, variant, profile, None)
    return {name: h for rs in (runs or {}).values() for r in rs[:1] for name, h in r.code.items()}


def _flat(x, prefix: str = "") -> dict:
    if isinstance(x, dict):
        return {k: v for key, val in x.items() if key not in TEXT_ONLY for k, v in _flat(val, f"{prefix}{key}.").items()}
    if isinstance(x, list) and any(isinstance(i, dict) for i in x):
        return {k: v for i, val in enumerate(x) for k, v in _flat(val, f"{prefix}{i}.").items()} or {prefix[:-1]: []}
    return {prefix[:-1]: x}


def changes(registered: dict, current: dict) -> list[str]:
    """The decisive keys (dotted, e.g. `check.tolerance`) where the current spec differs from its registration. A
    part of the rule that the registration did not record (LATER: a version before it was recorded) is not compared."""
    a, b = _flat(registered), _flat({k: v for k, v in current.items() if k in registered or k not in LATER})
    return sorted(k for k in a.keys() | b.keys() if a.get(k, "<none>") != b.get(k, "<none>"))


def as_registered(claim, variant: str, rule: dict, profile: str):
    """The claim as registered for `variant`: its current arms and variants (their configs are in the run keys),
    with the registered checks, preconditions, seeds, design and comparability."""
    from .spec import Check, Comparable, Sequential
    update = {"check": Check.model_validate(rule["check"]),
              "secondary_checks": [Check.model_validate(c) for c in rule["secondary_checks"]],
              "preconditions": [Check.model_validate(c) for c in rule["preconditions"]]}
    observed = {**claim.observed, **{(arm, variant): (claim.observed[arm, variant][0], values)
                                     for arm, values in rule.get("observed", {}).items()
                                     if (arm, variant) in claim.observed}}
    if profile in claim.profiles and rule["seeds"] is not None:
        seq = rule["sequential"]
        kept = {"seeds": rule["seeds"], "sequential": Sequential.model_validate(seq) if seq else None}
        if claim.numbers_comparable(variant, profile)[0] != rule["comparable"]:  # `comparable:` edited since
            kept["comparable"] = Comparable(numbers=rule["comparable"], why="as registered")
            update["variants"] = {**claim.variants, variant: claim.variants[variant].model_copy(
                update={"comparable": None})}
        update["profiles"] = {**claim.profiles, profile: claim.profiles[profile].model_copy(update=kept)}
    judged = claim.model_copy(update=update)
    judged._observed = observed  # the registered values of its observed arms
    return judged


def _planned(claim, variant: str, profile: str, seeds) -> dict | None:
    """Arm -> the runs the member's verdict reads at `seeds`, or None where the spec cannot plan them there."""
    from .plan import plan_claim
    try:
        return plan_claim(claim, variant, profile, seeds)
    except (KeyError, ValueError, TypeError):  # e.g. the profile or an arm taken out of the spec
        return None


def _runs(claim, variant: str, profile: str, seeds) -> dict | None:
    """Arm -> the run keys the member's verdict reads at `seeds`, or None where the spec cannot plan them there."""
    runs = _planned(claim, variant, profile, seeds)
    return None if runs is None else {arm: [r.key for r in rs] for arm, rs in runs.items()}


def runs_edited(registered, current, variant: str, profile: str, seeds) -> list[str]:
    """`arms.<name>` for each arm whose runs at the registered seeds are not the registered spec's: an arm's
    config (loss, epochs, data, teacher...), the profile or variant that shapes it, or a `base:` file edited after
    the registration. Its run keys change, so judging the current spec would make the member NOT RUN ("stale")
    and hide its registered verdict; repro.verdict.judge_folder judges the registered copy instead."""
    if registered is None or registered is current or registered.model_dump() == current.model_dump():
        return []  # nothing registered to compare with, or the same spec (the usual case: no plan needed)
    before = _runs(registered, variant, profile, seeds)
    if before is None:  # nothing registered to compare with
        return []
    now = _runs(current, variant, profile, seeds)
    if now is None:
        return [f"arms (the spec no longer plans this variant's runs at the {profile} profile)"]
    return [f"arms.{arm}" for arm in sorted(before.keys() | now.keys()) if before.get(arm) != now.get(arm)]


def digest(wave: dict) -> str:
    return hashlib.sha256(json.dumps({k: v for k, v in wave.items() if k != "hash"}, sort_keys=True).encode()).hexdigest()


def _git(folder: Path, *args: str) -> str | None:
    """git's output for `args` run in `folder`, or None. Asked of the outermost repository holding the folder that
    has history of it (else the innermost), with no GIT_* variable of the environment: `git init results/quick` (a
    repository with no history made inside the checkout) or GIT_DIR=/nowhere would otherwise hide the history every
    tampering check reads."""
    folder = Path(folder).absolute()
    tops = [d for d in reversed([folder, *folder.parents]) if (d / ".git").exists()]  # outermost first
    # Nested repositories: the outermost one that has history here. A home folder kept in git (dotfiles) holding the
    # checkout has none, and asking it would switch every check off; an empty one made inside the checkout is inner.
    top = next((t for t in tops[:-1] if _run_git(t, folder, "log", "-1", "--format=%H", "--", ".")), None) \
        if len(tops) > 1 else None
    top = top or (tops[-1] if tops else None)
    return None if top is None else _run_git(top, folder, *args)


def _run_git(top: Path, folder: Path, *args: str) -> str | None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    try:
        # no replace refs (`git replace` shows another object in a commit's place); files read with cat-file, raw
        out = subprocess.run(["git", "--no-replace-objects", f"--git-dir={top / '.git'}", f"--work-tree={top}", "-C",
                              str(folder), *args], capture_output=True, text=True, timeout=20, env=env)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def _valid(doc, profile: str) -> str | None:
    """What is wrong with a registration document, or None."""
    if not isinstance(doc, dict) or doc.get("profile") != profile or not isinstance(doc.get("waves"), list) \
            or not doc["waves"]:
        return f"not a registration of profile '{profile}'"
    previous = None
    for i, wave in enumerate(doc["waves"]):
        if not isinstance(wave, dict) or wave.get("hash") != digest(wave):
            return f"wave {i + 1}'s hash does not match its content (edited after it was recorded)"
        if wave.get("previous") != previous or wave.get("wave") != i + 1:
            return f"wave {i + 1} does not follow wave {i} (a wave removed or reordered)"
        previous = wave["hash"]
    return None


def read(path: Path, profile: str) -> tuple[list | None, str]:
    """(waves, "") or (None, what is wrong with the file)."""
    if not path.exists():
        return None, "missing"
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        return None, f"unreadable ({type(err).__name__})"
    wrong = _valid(doc, profile)
    return (None, wrong) if wrong else (doc["waves"], "")


def _version(path: Path, commit: str, profile: str) -> list | None:
    """The waves of the file as `commit` has it, or None (absent there, or not a valid registration)."""
    text = _git(path.parent, "cat-file", "blob", f"{commit}:./{path.name}")
    try:
        doc = json.loads(text) if text else None
    except ValueError:
        return None
    return doc["waves"] if doc is not None and _valid(doc, profile) is None else None


def committed(path: Path, profile: str) -> tuple[list | None, str, str]:
    """The newest valid version of the file that git has committed (anywhere in its history): (waves, commit, "");
    or, where a commit on HEAD's line holds a version that does not extend the one committed before it (the file
    rewritten with recomputed hashes, or its last waves cut, and committed), the version before that commit:
    (waves, its commit, the rewriting commit). Only the first-parent line is walked, so two branches that each
    appended a wave are not mistaken for a rewrite; a merge that drops either's wave is one."""
    if not path.parent.exists():
        return None, "", ""
    line = _git(path.parent, "log", "--first-parent", "--format=%H", "--", path.name)
    good: tuple[list, str] | None = None
    for commit in reversed((line or "").split()):  # oldest first
        waves = _version(path, commit, profile)
        if waves is None:  # absent (a deletion committed) or invalid there: the next version is held to the last good
            continue
        if good is not None and waves[:len(good[0])] != good[0]:
            return good[0], good[1], commit
        good = (waves, commit)
    log = _git(path.parent, "log", "--all", "--format=%H", "--", path.name)
    for commit in (log or "").split():
        waves = _version(path, commit, profile)
        if waves is not None:
            return waves, commit, ""
    return None, "", ""


RESULT_NAME = re.compile(r"seed\d+-([0-9a-f]{12})\.json")


def changed_results(root: Path, profile: str) -> dict[Path, tuple[str, object]]:
    """Result files of the profile that git committed and that were deleted or edited since, in the checkout or in
    a later commit: path -> (how, a function giving its text as first committed, or None). A result is written once (its
    name is its run's key), so any later change to a committed one changes evidence already stored: the seed least
    favourable deleted (a sequential claim then falls back to an earlier look), a number edited and the checksum
    recomputed. Judging reads the first committed version (repro.store.Store.find) and says so. Empty without git."""
    folder = Path(root) / profile
    log = _git(folder, "log", "--format=%x00%H", "--name-status", "--no-renames", "--relative", "--", ".") \
        if folder.is_dir() else None
    added, changed = {}, {}
    for block in (log or "").split("\0")[1:]:  # newest commit first
        commit, *lines = block.strip().split("\n")
        for status, _, name in (line.partition("\t") for line in lines if line):
            if not RESULT_NAME.fullmatch(Path(name).name):
                continue
            if status == "A":
                added[name] = commit  # the oldest add is the last one seen
            else:
                changed.setdefault(name, f"{'deleted' if status == 'D' else 'edited'} in commit {commit[:12]}")
    now = _git(folder, "diff", "HEAD", "--name-status", "--no-renames", "--relative", "--", ".") if added else None
    for status, _, name in (line.partition("\t") for line in (now or "").splitlines()):
        if name in added and status != "A":
            changed[name] = "deleted in the checkout" if status == "D" else "edited in the checkout"
    # a file marked assume-unchanged (tag in lower case) or skip-worktree (S) is one git diff does not look at
    hidden = _git(folder, "ls-files", "-v", "--", ".") if added else None
    for tag, _, name in (line.partition(" ") for line in (hidden or "").splitlines()):
        if name in added and (tag.islower() or tag == "S"):
            changed.setdefault(name, "hidden from git diff (update-index) in the checkout")
    # read when a verdict needs one (most are stale runs of old keys, deleted on purpose and never looked up)
    return {folder / name: (how, lambda name=name: _git(folder, "cat-file", "blob", f"{added[name]}:./{name}"))
            for name, how in changed.items() if name in added}


def _stamped(root: Path, profile: str) -> Path | None:
    """A result of the profile stamped with one of its registrations (proof that one existed)."""
    needle = f'"registration": "{profile}:'
    for path in sorted((root / profile).glob("*/*/*/seed*-*.json")):
        try:
            if needle in path.read_text(encoding="utf-8", errors="replace"):
                return path
        except OSError:
            continue
    return None


def results_exist(root: Path, profile: str, claim_id: str | None = None) -> bool:
    folder = root / profile / claim_id if claim_id else root / profile
    pattern = "*/*/seed*-*.json" if claim_id else "*/*/*/seed*-*.json"
    return folder.is_dir() and next(folder.glob(pattern), None) is not None


@dataclass
class Registration:
    profile: str
    path: Path
    waves: list | None  # None: no registration yet, or a tampered one with nothing to recover
    state: str  # "none" | "registered" | "registered after results" | "tampered"
    note: str = ""
    _others: dict | None = field(default=None, repr=False)  # registered_before's cache

    @property
    def members(self) -> dict[str, dict]:
        return {k: {**m, "wave": w["wave"]} for w in self.waves or [] for k, m in w["members"].items()}

    @property
    def tested(self) -> set[str]:
        """Members (and secondary checks, by repro.verdict.member_name) that judging has found tested at least
        once: they stay in their family, at p = 1 if untested later, so removing their results, their spec or
        their design never shrinks it. A member never tested yet (its runs not made: a GPU profile, weights this
        machine cannot have) is not counted until its first test, which can only make the family larger."""
        return {name for w in self.waves or [] for name in w.get("tested", [])}

    @property
    def stamp(self) -> str | None:
        return f"{self.profile}:{self.waves[-1]['hash'][:16]}" if self.waves else None

    def claim(self, claim_id: str, folder=None):
        """The claim as its spec was registered (a spec deleted from the folder, or whose arms were edited, is judged
        from this), or None. Rebuilt in the claims `folder` where given, which holds its plugins and observed files."""
        from .spec import Claim, SpecError, claim_from_raw
        spec = next((w["specs"][claim_id] for w in reversed(self.waves or []) if claim_id in w.get("specs", {})), None)
        try:
            if spec is not None and folder is not None:
                return claim_from_raw(spec, Path(folder) / f"{claim_id}.yaml")
            return Claim.model_validate(spec) if spec is not None else None
        except (SpecError, ValueError):  # e.g. a plugin's file gone from the folder
            return None

    def registered_before(self, keys) -> str | None:
        """Another profile of this results folder, registered before this one, that stores one of the runs `keys`
        (results carry no profile: the same run filed under a new profile name has the same key), or None. Results
        that carry no stamp are evidence for a registration made after them only where they were seen under none."""
        if self._others is None:
            mine, self._others = _made(self.path, self.waves or [{}]), {}
            for path in sorted(self.path.parent.parent.glob(f"*/{FILE}")):
                waves, _ = read(path, path.parent.name)
                if path.parent.name != self.profile and waves and _made(path, waves) < mine:
                    self._others[path.parent.name] = {m[1] for f in path.parent.glob("*/*/*/seed*-*.json")
                                                      if (m := RESULT_NAME.fullmatch(f.name))}
        return next((name for name, known in self._others.items() if any(k[:12] in known for k in keys)), None)

    def wave_of(self, stamp: str) -> int | None:
        return next((w["wave"] for w in self.waves or [] if stamp == f"{self.profile}:{w['hash'][:16]}"), None)

    def describe(self) -> dict:
        """For verdicts.json and the report: the state, when, against which commit, and any tampering."""
        first = (self.waves or [{}])[0]
        return {"state": self.state, "file": str(self.path), "waves": len(self.waves or []),
                "recorded": first.get("recorded"), "git_commit": first.get("git_commit"),
                "after_results": bool(first.get("after_results")), "note": self.note}

    def line(self) -> str:
        if not self.waves:
            return f"registration of the {self.profile} profile: {self.state}" + (f": {self.note}" if self.note else "")
        d = self.describe()
        when = f"recorded {d['recorded']}" + (f" at commit {d['git_commit'][:12]}" if d["git_commit"] else "")
        return (f"registration of the {self.profile} profile: {self.state} ({len(self.members)} members, "
                f"{d['waves']} wave{'s' if d['waves'] > 1 else ''}, {when}; {self.path})"
                + (f"; {self.note}" if self.note else ""))

    def data_age(self, member: dict, stamps: list[str], keys=()) -> str | None:
        """Why the member's results (stamped `stamps`, the compared runs' `keys`) cannot be confirmatory evidence for
        its rule (they were there, or seen under another registration, before the rule was registered), or None."""
        for stamp in stamps:
            if not stamp:  # trained before registrations existed: evidence only where wave 1 said so
                other = self.registered_before(keys)
                if other:
                    return (f"its runs are stored under the {other} profile too, registered before this one: results "
                            "copied under a new profile name were seen under that registration")
                if member["wave"] == 1 and member.get("after_results"):
                    continue
                return "results stored before its registration (they carry none)"
            wave = self.wave_of(stamp)
            if wave is None:
                return f"results trained under another registration ({stamp})"
            if wave < member["wave"]:
                return f"results trained under wave {wave}, before this member was registered in wave {member['wave']}"
        return None


def _made(path: Path, waves: list) -> tuple:
    """When a registration was made, to order two: first when git first committed it (one not committed yet comes
    after every committed one), then the time its wave 1 records, which its file alone states and could forge."""
    log = (_git(path.parent, "log", "--diff-filter=A", "--format=%ct", "--", path.name) or "").split()
    return (0, int(log[-1])) if log else (1, 0), waves[0].get("recorded") or ""


def load(root: str | Path, profile: str) -> Registration:
    """The registration of `profile` in the results folder `root`, checked against git and the results' stamps."""
    path = Path(root) / profile / FILE
    waves, problem = read(path, profile)
    past, commit, rewritten = committed(path, profile)
    if waves is not None and not rewritten and (past is None or waves[:len(past)] == past):
        return Registration(profile, path, waves, "registered after results" if waves[0]["after_results"]
                            else "registered")
    if waves is None and problem == "missing" and past is None:
        stamped = _stamped(Path(root), profile)
        if stamped is None:
            return Registration(profile, path, None, "none")
        problem = f"missing, but results carry its stamp (e.g. {stamped.relative_to(root)}): it was deleted"
    if rewritten:
        problem = (f"{problem}; " if waves is None else "") + (f"commit {rewritten[:12]} holds a version that does not "
                                                              "extend the one committed before it (rewritten or cut)")
    why = f"{path}: {problem or 'does not extend the version committed in git'}"
    if past is not None:
        return Registration(profile, path, past, "tampered",
                            f"{why}; judged under the registration committed in {commit[:12]} (restore it: "
                            f"`git checkout {commit[:12]} -- {path}`)")
    return Registration(profile, path, None, "tampered", f"{why}; restore it from git: nothing is judged under a "
                                                         "registration that cannot be read")


def _locked(root: Path, claim, variant: str, profile: str, rule: dict) -> dict:
    """The rule with the design an existing design.lock recorded, where the spec declares another (the lock is
    committed evidence of the design the data were looked at under)."""
    path = root / profile / claim.id / variant / LOCK_FILE
    try:
        designs = [r["design"] for r in json.loads(path.read_text())["designs"]]
    except (OSError, ValueError, KeyError, TypeError):
        return rule
    mine = {"seeds": rule["seeds"], "alpha": rule["check"]["alpha"], "sequential": None if not rule["sequential"]
            else {k: rule["sequential"][k] for k in ("max_seeds", "group", "spending")}}
    if not designs or mine in designs:
        return rule
    last = designs[-1]
    return {**rule, "seeds": last["seeds"], "check": {**rule["check"], "alpha": last["alpha"]},
            "sequential": last["sequential"]}


def _members(folder, claims: dict, profile: str, root: Path, only=None) -> dict:
    from .family import family_of
    family = family_of(folder, claims, profile)
    out = {}
    for c in claims.values():
        if (profile not in c.profiles and c.profiles) or (only is not None and c.id not in only):
            continue
        for v in c.variants:
            rule = _locked(root, c, v, profile, rule_of(c, v, profile))
            out[member_key(c.id, v)] = {"claim": c.id, "variant": v, "rule": rule,
                                        "family": family.get((c.id, v), OBSERVED_FAMILY),
                                        "after_results": results_exist(root, profile, c.id)}
    return out


def record_tested(reg: Registration, names: set[str]) -> None:
    """Append a wave that registers no rule but records members first found tested (Registration.tested)."""
    new = sorted(names - reg.tested)
    if new and reg.waves and reg.state != "tampered":
        _append(reg, {}, reg.path.parent.parent, {}, tested=new)


def _append(reg: Registration, members: dict, root: Path, claims: dict, tested: list[str] | None = None) -> None:
    waves = reg.waves or []
    specs = {m["claim"]: claims[m["claim"]].model_dump(mode="json") for m in members.values()}
    commit = _git(root if root.exists() else Path("."), "rev-parse", "HEAD")
    wave = {"wave": len(waves) + 1, "previous": waves[-1]["hash"] if waves else None, "members": members,
            "specs": specs,
            "recorded": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": commit.strip() if commit else None,
            "after_results": any(m["after_results"] for m in members.values()) if members else bool(tested),
            **({"tested": tested} if tested else {})}
    wave["hash"] = digest(wave)
    reg.waves = waves + [wave]
    reg.state = "registered after results" if reg.waves[0]["after_results"] else "registered"
    try:
        atomic_write(reg.path, json.dumps({"format": FORMAT, "profile": reg.profile, "waves": reg.waves}, indent=1,
                                          sort_keys=True).encode())
    except OSError as err:  # a read-only store: judged under it all the same, and said
        reg.note = f"not written ({err.strerror or type(err).__name__}): run `repro register` where it can be"


def ensure(folder, claims: dict, profile: str, root: str | Path, add_new: bool = False) -> Registration:
    """The profile's registration, written now where it has none (wave 1: every claim of the folder with the
    profile, marked after results where results are stored). `add_new`: also a wave for claims new to the folder
    whose results are not stored yet (before their data); those with results stay unregistered (exploratory)."""
    root = Path(root)
    reg = load(root, profile)
    if reg.state == "none":
        _append(reg, _members(folder, claims, profile, root), root, claims)
    elif add_new and reg.state != "tampered":
        known = {m["claim"] for m in reg.members.values()}
        new = [k for k, c in claims.items() if k not in known and not results_exist(root, profile, k)]
        members = _members(folder, claims, profile, root, only=new) if new else {}
        if members:
            _append(reg, members, root, claims)
    return reg
