"""`repro list | validate | register | run | judge | verify | export | report`: thin wrappers over plan, run,
registration, verdict and report."""
# Imports here stay the standard library's: `repro --help` answers at once. The library (torch, scipy, pydantic)
# is imported after the arguments are parsed (main: registry.load_builtins, with Ctrl-C held), and by each command.
from __future__ import annotations

import argparse
import math
import os
import signal
import sys
from pathlib import Path



def _outputs(args) -> tuple[Path, Path]:
    """(results folder, reports folder) of the chosen claims folder (outputs.outputs)."""
    from .outputs import outputs
    return outputs(args.claims, args.out_dir, args.results)


def _claims(args) -> dict:
    from .spec import SpecError, load_claims
    claims = load_claims(args.claims)
    unknown = [c for c in getattr(args, "claim", []) or [] if c not in claims]
    if unknown:
        raise SpecError(f"unknown claim(s) {unknown}; known: {', '.join(claims)}")
    return {k: v for k, v in claims.items() if not getattr(args, "claim", None) or k in args.claim}


def cmd_list(args) -> int:
    """Every claim that loads; a spec that does not is its error lines (and exit status 1), not the end of
    the listing for the others."""
    from .plan import listing, resolve_profile
    from .spec import SpecError, load_claim, spec_files
    from .store import Store
    store = Store(_outputs(args)[0])  # a claims folder other than claims/ names its --out, as for run and report
    if args.stored_profiles:  # for `make reproduce`: judge every profile that has evidence
        from .report import judged_profiles
        print("\n".join(judged_profiles(_claims(args), store, resolve_profile(args.stored_profiles))))
        return 0
    if not Path(args.claims).is_dir():
        raise SpecError(f"{args.claims}: not a folder of claim specs")
    claims, failed = {}, []
    for path in spec_files(args.claims):
        try:
            claim = load_claim(path)
            claims[claim.id] = claim
        except SpecError as err:
            failed += err.lines
    unknown = [c for c in args.claim if c not in claims]
    if unknown:
        failed.append(f"unknown claim(s) {unknown}; known: {', '.join(claims)}")
    for claim in [c for k, c in claims.items() if not args.claim or k in args.claim]:
        print("\n".join(listing(claim, store)))
    for line in failed:
        print(f"error {line}", file=sys.stderr)
    return 1 if failed else 0


def cmd_validate(args) -> int:
    """Every spec file of every folder given (*.yaml and *.yml), every error of each file, one per line."""
    from .family import FILE as FAMILY_FILE, declared
    from .preflight import claim_problems
    from .spec import SpecError, load_claim, load_claims, spec_files
    paths = [Path(p) for p in args.paths] or [Path(args.claims)]
    failed = 0
    for path in paths:
        for file in spec_files(path) if path.is_dir() else [path]:
            try:
                problems = claim_problems(load_claim(file), file)  # plugin builders on a dummy batch
                for line in problems:
                    print(f"error {line}")
                failed += bool(problems)
                if not problems:
                    print(f"ok    {file}")
            except SpecError as err:
                for line in err.lines:
                    print(f"error {line}")
                failed += 1
        if path.is_dir() and (path / FAMILY_FILE).is_file():
            try:
                declared(path, {c.id for c in load_claims(path).values()})
                print(f"ok    {path / FAMILY_FILE}")
            except SpecError as err:
                print(f"error {err}")
                failed += 1
        if path.is_dir():
            weights = (".pt", ".pth")  # teacher_checkpoint files: checked for the specs that name them
            others = sorted(p.name for p in path.iterdir() if p.is_file()
                            and p.suffix not in (".yaml", ".yml", ".py", *weights))
            modules = sorted(p.name for p in path.iterdir() if p.is_file() and p.suffix == ".py")
            if modules:
                print(f"note  {path}: Python files, imported only for the specs that name them under `plugins:`: "
                      f"{', '.join(modules)}")
            if others:
                print(f"note  {path}: not specs (not .yaml/.yml), not checked: {', '.join(others)}")
    return 1 if failed else 0


def name_list(text: str) -> list[str]:
    """--arms A,B or --variants V,W: one or more names."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected names separated by commas, got {text[:40]!r}")
    return names


def positive(text: str) -> int:
    """--seeds N: a count, at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of seeds, at least 1, got {text[:20]!r}")
    return value


def minutes(text: str) -> float:
    """--max-minutes M: a finite number of minutes above 0 (nan would switch the limit off)."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"expected a finite number of minutes above 0, got {text[:20]!r}")
    return value


def cmd_run(args) -> int:
    """Train what the chosen claims lack (repro.session.train_missing), then the looks (repro.looks)."""
    if args.probe and not args.dry_run:  # --probe alone would train every run, the opposite of what it asks
        print("error: --probe times epochs for --dry-run's estimates; add --dry-run (nothing was trained)",
              file=sys.stderr)
        return 2
    if args.max_minutes is not None and not args.until_decided:
        print("error: --max-minutes limits --until-decided's looks; without --until-decided it would be ignored",
              file=sys.stderr)
        return 2
    from .nets import pick_device
    from .plan import NothingToRun, choose, resolve_profile
    from .session import Refused, dry_run, train_missing
    from .store import Store
    profile = resolve_profile(args.profile)
    try:
        device = pick_device(args.device)
    except ValueError as err:  # --device cuda where there is none: one line, before anything is planned
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.precision:  # for the plan (every arm's precision, so its run keys); pytest -m claims reads the same
        os.environ["REPRO_PRECISION"] = args.precision
    try:
        claims = choose(_claims(args), profile, args.variants, args.seeds, args.arms, args.until_decided)
        store = Store(_outputs(args)[0])
        if args.dry_run:  # what the plan would train and about how long, from stored timings; nothing is written
            print("\n".join(dry_run(claims, profile, store, args.arms, device, args.probe,
                                     args.claims if args.until_decided else None)))
            return 0
        signal.signal(signal.SIGTERM, _interrupt)  # a scheduler's kill stops as cleanly as Ctrl-C
        runner = train_missing(args.claims, claims, profile, store, device, arms=args.arms, executor=args.executor,
                               force=args.force, address=args.address, stack_seeds=args.stack_seeds)
        if not args.until_decided:
            return 0
        from .looks import until_decided
        return until_decided(claims, profile, store, runner, args.max_minutes, args.claims)
    except (NothingToRun, Refused, OSError) as err:  # OSError: a store entry of the wrong kind, a full disk
        print(f"error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted: every finished run is saved, and the run in progress keeps its last finished "
              "epoch; run the same command again to resume", file=sys.stderr)
        return 130


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def cmd_verify(args) -> int:
    """Retrain a sample of stored runs here and decide (repro/verify.py); the exit status is its verdict's."""
    from .plan import resolve_profile
    from .store import Store
    from .nets import pick_device
    from .verify import ERROR, verify
    profile = resolve_profile(args.profile)
    try:
        out = verify(_claims(args), profile, Store(_outputs(args)[0]), args.sample, pick_device(args.device),
                     draw=args.draw)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return ERROR
    except KeyboardInterrupt:
        print("\ninterrupted: nothing stored was changed", file=sys.stderr)
        return 130
    print("\n".join(out["lines"]))
    return out["status"]


def cmd_report(args) -> int:
    from .report import render
    from .verdicts_file import ReportError, load_verdicts
    from .outputs import check_outputs
    from .store import atomic_write
    if args.report_out and args.report_out.endswith(".html"):  # `report --out FILE.html`, as before
        html = Path(args.report_out)
    else:
        args.out_dir = args.report_out or args.out_dir
        html = None
    verdicts = args.verdicts or os.environ.get("REPRO_VERDICTS")
    results = args.results or os.environ.get("REPRO_RESULTS")
    if not (html and verdicts and results):  # some output is not named: it goes under the set's output folder
        results, reports = _outputs(args)
        verdicts, html = verdicts or reports / "verdicts.json", html or reports / "index.html"
    check_outputs(args.claims, html)
    claims, out, verdicts, results = _claims(args), html, Path(verdicts), Path(results)
    try:
        doc = load_verdicts(verdicts)
    except ReportError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    dropped = [v["claim"] for v in doc["verdicts"] if v["claim"] not in claims]
    if dropped:  # verdicts of claims outside --claims (another set, or deleted specs) are not this set's report
        print(f"note: left out {len(set(dropped))} claim(s) not in {args.claims}: {', '.join(sorted(set(dropped)))}")
    doc["verdicts"] = [v for v in doc["verdicts"] if v["claim"] in claims]
    try:
        html_text = render(doc, claims, results, Path(args.claims))
    except ReportError as err:
        print(f"error: {verdicts}: {err}", file=sys.stderr)
        return 2
    try:
        atomic_write(out, html_text.encode())
    except OSError as err:
        print(f"error: {out}: not writable ({err.strerror or type(err).__name__})", file=sys.stderr)
        return 2
    print(f"wrote {out}")
    return 0


def cmd_export(args) -> int:
    from .export import command
    from .spec import load_claims
    return command(args, lambda: _outputs(args), load_claims)


def cmd_register(args) -> int:
    """Record the decisive rules of every claim at a profile (every profile of the folder without --profile)
    before their results: wave 1, or a wave for claims new to the folder (repro.registration)."""
    from .registration import ensure, results_exist
    from .spec import load_claims
    from .store import Store
    claims = load_claims(args.claims)
    root = Store(_outputs(args)[0]).root
    profiles = [args.profile] if args.profile else sorted({p for c in claims.values() for p in c.profiles})
    status = 0
    for profile in profiles:
        reg = ensure(args.claims, claims, profile, root, add_new=True)
        print(reg.line())
        late = sorted(k for k, c in claims.items() if profile in c.profiles
                      and k not in {m["claim"] for m in reg.members.values()} and results_exist(root, profile, k))
        if late:
            print(f"  not registered (results stored before their registration, so exploratory only): {', '.join(late)}")
        status = max(status, 1 if reg.state == "tampered" else 0)
    return status


def cmd_judge(args) -> int:
    """Verdicts from stored results and observed values, printed (nothing trains, no verdicts file). Claims of
    the claims folder are judged as the report judges them (repro.verdict.judge_folder: the registered rule, the
    registered family); a spec file from elsewhere is judged alone, labelled exploratory."""
    from .judge import judge
    from .plan import resolve_profile
    from .spec import SpecError, load_claim, load_claims
    from .store import Store
    from .verdict import judge_folder
    folder = {p.resolve(): k for k, p in _spec_paths(args.claims).items()}
    files = [Path(c) for c in args.claim if c.endswith((".yaml", ".yml"))]
    ids = [c for c in args.claim if not c.endswith((".yaml", ".yml"))] + [folder[f.resolve()] for f in files
                                                                           if f.resolve() in folder]
    outside = [f for f in files if f.resolve() not in folder]
    verdicts, lines = [], []
    if ids or not files:  # claim ids of the claims folder (all of them when nothing is named)
        args.claim = ids
        chosen = set(_claims(args))
        known = sorted({p for c in _claims(args).values() for p in c.profiles})
        if args.profile != "auto" and known and args.profile not in known:  # all-observed claims have no profiles
            raise SpecError(f"unknown profile '{args.profile}'; the claims judged have: {', '.join(known)}")
        profile = resolve_profile(args.profile)
        judged = judge_folder(args.claims, load_claims(args.claims), profile, Store(_outputs(args)[0]))
        verdicts = [v for v in judged if v["claim"] in chosen]
        if judged:
            lines.append(_registration_line(judged[0]["registration"]))
        members = len(next((v["holm_family"] for v in judged if v.get("family")), []))
        lines.append(f"Holm family: the registration's ({members} members), whichever claims are named here")
    for v in verdicts:
        print(_verdict_lines(v))
    if outside:  # spec files outside the claims folder: no registration, so nothing confirmatory
        results = _outputs(args)[0] if args.out_dir or args.results else Path("results")
        for v in judge(*[load_claim(f) for f in outside], profile=args.profile, results=results):
            print(f"{'exploratory ' + v['status'] if v['status'] in ('REPRODUCED', 'NOT REPRODUCED') else v['status']:<14} "
                  f"{v['claim']} [{v['variant']}] (a spec outside {args.claims}/, not registered: Holm across these "
                  f"files only): {v.get('reason', '')}")
    for line in lines:
        print(line)
    counts = {s: sum(v["status"] == s for v in verdicts) for s in ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE",
                                                                    "NOT RUN")}
    if verdicts:
        print(", ".join(f"{n} {s}" for s, n in counts.items() if n) + " (confirmatory)")
    return 0


def _spec_paths(folder) -> dict:
    from .spec import SpecError, spec_files
    try:
        return {Path(p).stem: Path(p) for p in spec_files(folder)}
    except (SpecError, OSError):
        return {}


def _registration_line(reg: dict) -> str:
    when = f", recorded {reg['recorded']}" + (f" at commit {reg['git_commit'][:12]}" if reg.get("git_commit") else "")
    return f"registration: {reg['state']} ({reg['file']}{when if reg.get('recorded') else ''})" + (
        f"; {reg['note']}" if reg.get("note") else "")


def _verdict_lines(v: dict) -> str:
    """A verdict's line, then its secondary checks' and any exploratory verdict beside it, each labelled."""
    out = [f"{v['status']:<14} {v['claim']} [{v['variant']}]: {v.get('reason', '')}"]
    out += [f"{'':<14}   secondary check {s['secondary']}: {s['status']}: {s.get('reason', '')}"
            for s in v.get("secondary_checks", [])]
    for key in ("amendment", "exploratory"):
        if v.get(key):
            out.append(f"{'':<14}   {v[key]['line']}")
    return "\n".join(out)


def cmd_reference(args) -> int:
    from .reference import reference_markdown
    from .spec import read_regular
    from .store import atomic_write
    path, text = Path(args.path), reference_markdown()
    if args.check:
        try:  # a regular file of at most twice the reference's size: a pipe or /dev/zero is not waited on
            current = read_regular(path, 2 * len(text.encode()) + 4096).decode("utf-8", "replace") if path.exists() else ""
        except OSError as err:
            print(f"{path}: OUT OF DATE: not a readable reference ({err.strerror or type(err).__name__}); "
                  "run `repro reference`")
            return 1
        print(f"{path}: {'up to date' if current == text else 'OUT OF DATE: run `repro reference`'}")
        return 0 if current == text else 1
    try:  # atomic: an interrupted write leaves the old file whole, never a torn one
        atomic_write(path, text.encode())
    except OSError as err:
        print(f"error: {path}: not writable ({err.strerror or type(err).__name__}; expected a file path, "
              "e.g. docs/spec-reference.md)", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


def main(argv=None) -> int:
    try:
        return _main(argv)
    except KeyboardInterrupt:  # e.g. while torch is still importing, or while the parser is built (on a loaded
        print("\ninterrupted", file=sys.stderr)  # machine that takes a second): one line, before any work started
        return 130


def _main(argv) -> int:
    # The folder options work before or after the command (`repro --claims X run`, `repro run --claims X`).
    folders = argparse.ArgumentParser(add_help=False)
    folders.add_argument("--claims", default=argparse.SUPPRESS,
                         help="folder of claim specs (default: $REPRO_CLAIMS or claims)")
    folders.add_argument("--out", dest="out_dir", default=argparse.SUPPRESS,
                         help="output folder of that claims set: OUT/results, OUT/reports (default: $REPRO_OUT; "
                              "required for a claims folder other than ./claims, whose outputs are ./results, ./reports)")
    folders.add_argument("--results", default=argparse.SUPPRESS,
                         help="results folder (default: $REPRO_RESULTS or OUT/results)")
    parser = argparse.ArgumentParser(prog="repro", description=__doc__, parents=[folders])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="claims, arms, seeds and which results exist", parents=[folders])
    p.add_argument("claim", nargs="*")
    p.add_argument("--stored-profiles", metavar="PROFILE",
                   help="print only profile names, one a line: PROFILE (auto resolved) and every other profile but "
                        "smoke with stored results (what `make reproduce` judges)")
    p.set_defaults(fn=cmd_list)

    p = sub.add_parser("validate", help="check specs without running anything", parents=[folders])
    p.add_argument("paths", nargs="*", help="spec files or folders (default: the claims folder)")
    p.set_defaults(fn=cmd_validate)

    p = sub.add_parser("run", help="train every run the claims need that is not stored yet", parents=[folders])
    p.add_argument("claim", nargs="*", help="claim ids (default: all)")
    p.add_argument("--profile", default="auto",
                   help="a profile of the claims (this project's: smoke, quick, paper); auto = paper on a GPU, "
                        "quick on a CPU")
    p.add_argument("--seeds", type=positive, help="use only the first N seeds of the profile")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.add_argument("--precision", choices=["fp32", "bf16"],
                   help="train every arm in this precision instead of its spec's (as REPRO_PRECISION, which "
                        "pytest -m claims must then be given too). Without it, where bf16 is slow (a CPU without "
                        "native bf16) a variant that declares bf16 and is not stored yet trains as its fp32 twin")
    p.add_argument("--arms", type=name_list,
                   help="comma-separated: train only these arms (and the arms they learn from), e.g. the "
                        "baselines in one process while another trains the teacher")
    p.add_argument("--variants", type=name_list,
                   help="comma-separated: only these variants of the chosen claims (a run another variant shares "
                        "is still copied, not retrained)")
    p.add_argument("--force", action="store_true", help="re-run runs that are already stored")
    p.add_argument("--executor", default="local", choices=["local", "ray"],
                   help="local: in this process (default); ray: one Ray task per run (needs kd-repro[ray])")
    p.add_argument("--stack-seeds", action="store_true",
                   help="train an arm's seeds as one batched model where it can (dropout-free MLPs): for GPUs "
                        "and tiny nets, whose steps wait on per-op overhead; slower for 800-wide nets on a 2-core "
                        "CPU (make bench); same numbers to float rounding")
    p.add_argument("--address", help="with --executor ray: the cluster to join (default: start a local one)")
    p.add_argument("--until-decided", action="store_true",
                   help="claims whose profile declares `sequential:`: add seeds a group at a time until each is "
                        "decided or at its cap, with alpha spent across the looks (repro/stats/sequential.py)")
    p.add_argument("--max-minutes", type=minutes, help="with --until-decided: start no new look after this long")
    p.add_argument("--dry-run", action="store_true",
                   help="train nothing: list the runs (stored or to train) with minutes estimated from stored timings "
                        "(repro/cost.py)")
    p.add_argument("--probe", action="store_true",
                   help="with --dry-run: time one epoch here of runs no stored timing covers (trained and discarded)")
    p.set_defaults(fn=cmd_run)

    p = sub.add_parser("verify", help="retrain a sample of stored runs here and compare them with the stored ones",
                       parents=[folders], epilog="exit status: 0 verified; 1 FAILED (a run retrained on the hardware, "
                       "threads and versions it was stored with is not bitwise equal, or the runs retrained elsewhere "
                       "are not draws of the stored seeds' distribution); 2 error (e.g. --device cuda without CUDA); "
                       "3 stored files that could not be used (each named); 4 cannot decide (a run retrained "
                       "elsewhere whose arm has too few other stored seeds). Where several apply: 1, else 3, else 4.")
    p.add_argument("claim", nargs="*", help="claim ids (default: all)")
    p.add_argument("--profile", default="auto", help="the profile whose stored runs are sampled (default: auto)")
    p.add_argument("--sample", type=positive, default=3,
                   help="how many runs, drawn at random from the retrainable ones, one per arm first (default 3)")
    p.add_argument("--draw", type=int, metavar="N", help="replay the sample of an earlier verify (the draw it printed); "
                   "without it every verify draws afresh, so a forger cannot know which runs it will retrain")
    p.add_argument("--device", choices=["cpu", "cuda"])
    p.set_defaults(fn=cmd_verify)

    p = sub.add_parser("report", help="render OUT/reports/index.html from OUT/reports/verdicts.json and the results")
    p.add_argument("--claims", default=argparse.SUPPRESS, help="folder of claim specs (as before the command)")
    p.add_argument("--results", default=argparse.SUPPRESS, help="results folder (as before the command)")
    p.add_argument("--verdicts", help="default: $REPRO_VERDICTS or OUT/reports/verdicts.json")
    p.add_argument("--out", dest="report_out", help="output folder (as before the command), or a .html file to write")
    p.set_defaults(fn=cmd_report)

    p = sub.add_parser("export", help="the verdicts as a table: csv, md (GitHub), tex or json", parents=[folders])
    p.add_argument("--format", required=True, choices=["csv", "md", "tex", "json"])
    p.add_argument("-o", "--output", help="file to write (default: stdout)")
    p.add_argument("--profile", help="only this profile's verdicts")
    p.add_argument("--verdicts", help="default: $REPRO_VERDICTS or OUT/reports/verdicts.json")
    p.set_defaults(fn=cmd_export)

    p = sub.add_parser("judge", help="decide claims from stored results and observed values and print the verdicts "
                                     "(no pytest, nothing trains, no verdicts file)", parents=[folders])
    p.add_argument("claim", nargs="*", help="claim ids of the claims folder, or spec files (.yaml); default: all")
    p.add_argument("--profile", default="auto", help="the profile whose results decide trained arms (default auto)")
    p.set_defaults(fn=cmd_judge)

    p = sub.add_parser("register", help="record every claim's decisive rule and family at a profile before its "
                                        "results (results/<profile>/registration.lock)", parents=[folders])
    p.add_argument("--profile", help="one profile (default: every profile the claims declare)")
    p.set_defaults(fn=cmd_register)

    p = sub.add_parser("reference", help="write the spec reference (docs/spec-reference.md) from the schema and registries")
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if the file is out of date")
    p.add_argument("path", nargs="?", default="docs/spec-reference.md")
    p.set_defaults(fn=cmd_reference)

    args = parser.parse_args(argv)
    # The folder options are shared (SUPPRESS) between the main parser and every command, so that they work
    # before or after it; their defaults are filled here, since a default set on a shared option would let a
    # command's parser overwrite the value given before the command.
    args.claims = getattr(args, "claims", None) or os.environ.get("REPRO_CLAIMS", "claims")
    args.out_dir = getattr(args, "out_dir", None) or os.environ.get("REPRO_OUT")
    args.results = getattr(args, "results", None)
    try:
        from .registry import load_builtins
        load_builtins()  # torch, scipy and the registries' built-in entries, with Ctrl-C held until they are loaded
        from .spec import SpecError
        try:
            return args.fn(args)
        except SpecError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    except BrokenPipeError:  # `repro validate | head -1`: the reader left; stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error when Python flushes
        return 141  # 128 + SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
