"""The HTML report: what it shows, that it shows spec text as text, that it needs no network, and that
it renders whatever a verdict carries (new keys shown, absent keys tolerated). No training: the
stored results are written here with made-up numbers through the real Store."""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from pathlib import Path

import pytest
import yaml

from repro import figures
from repro.cli import main as repro_main
from repro.plan import plan_claim
from repro.report import ReportError, load_verdicts, render, write_report
from repro.spec import load_claim
from repro.store import Store

ROOT = Path(__file__).resolve().parents[1]
CLAIM_ID = "hinton-kd-helps"
DEVICE = "GPU NVIDIA Test 80GB"


@pytest.fixture(scope="module")
def claim():
    return load_claim(ROOT / "claims" / f"{CLAIM_ID}.yaml")


def copy_spec(claim_id: str, folder: Path) -> Path:
    """claims/<id>.yaml and the shared file it builds on (`base:`), alone in a folder: the test does not
    depend on the other specs of the project."""
    src = ROOT / "claims" / f"{claim_id}.yaml"
    base = yaml.safe_load(src.read_text()).get("base")
    for rel in [f"{claim_id}.yaml"] + ([base] if base else []):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "claims" / rel, folder / rel)
    return folder


def store_results(root: Path, claim, variant: str, profile: str = "smoke") -> dict[str, list[str]]:
    """Made-up per-epoch results for every run of one variant; returns arm -> run keys."""
    store, keys = Store(root), {}
    for arm, runs in plan_claim(claim, variant, profile).items():
        for i, run in enumerate(runs):
            epochs = [{"epoch": e, "lr": 0.05, "train_loss": 2.0 / e + 0.1 * i, "train_hard": 2.0 / e, "train_soft": 0.1,
                       "train_acc": 0.2 * e, "test_errors": 200 - 10 * e - i, "test_acc": 0.8 + 0.01 * e + i / 1000,
                       "test_errors_per_class": [200 - 10 * e - i] + [0] * 9} for e in range(1, run.arm.epochs + 1)]
            store.save(store.path(profile, claim.id, variant, arm, run), run,
                       {"status": "done", "epochs": epochs, "final": epochs[-1], "wall_s": 10.0, "device": DEVICE},
                       {"git_commit": "abc123", "python": "3.11.7", "torch": "9.9.9", "command": "repro run",
                        "created": "2026-01-01T00:00:00+00:00"})
        keys[arm] = [r.key for r in runs]
    return keys


def verdict(variant="as_described", status="REPRODUCED", **extra) -> dict:
    return {"claim": CLAIM_ID, "variant": variant, "profile": "smoke", "check": "less", "metric": "test_errors",
            "arms": ["distilled", "small"], "alpha": 0.05, "margin": None, "justification": "one-sided at 5%",
            "status": status, "reason": "distilled - small: -12.5 [-20, -5]", "p": 0.0123, "p_holm": 0.0246,
            "test": "paired t", "statistic": -5.25, "df": 2.0, "diff": -12.5, "ci": [-20.0, -5.0],
            "effect_size": -2.75, "values": {"distilled": [180, 181, 182], "small": [195, 193, 194]},
            "seeds": [0, 1, 2], "preconditions": [
                {"check": "less", "arms": ["teacher", "small"], "metric": "test_errors", "held": True, "p": 0.004,
                 "justification": "a teacher no better than the student has nothing to transfer",
                 "values": {"teacher": [150, 151, 152], "small": [195, 193, 194]}}],
            "wall_s": 90.0, "run_keys": {}, "devices": [DEVICE], "versions": ["torch 9.9.9, python 3.11.7"],
            "commits": ["abc123"], **extra}


@pytest.fixture(scope="module")
def smoke_doc(claim, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    verdicts = [verdict("as_described", run_keys=store_results(tmp / "results", claim, "as_described")),
                verdict("as_written", status="INCONCLUSIVE", p=0.3, p_holm=0.3,
                        run_keys=store_results(tmp / "results", claim, "as_written"))]
    copy_spec(CLAIM_ID, tmp / "claims")
    doc = {"generated": "2026-11-25T20:00:00+00:00", "profile": "smoke", "verdicts": verdicts, "invariants": [
        {"test": "tests/test_losses.py::test_kl_non_negative", "outcome": "passed", "detail": ""},
        {"test": "tests/test_losses.py::test_t_squared", "outcome": "failed", "detail": "AssertionError: 3 != 4"}]}
    (tmp / "verdicts.json").write_text(json.dumps(doc))
    return tmp, doc


@pytest.fixture(scope="module")
def html(smoke_doc, claim):
    tmp, doc = smoke_doc
    return render(doc, {CLAIM_ID: claim}, tmp / "results", tmp / "claims")


def test_spec_text_with_html_is_shown_as_text(claim):
    hostile = claim.model_copy(update={
        "statement": "<script>alert('statement')</script> & <b>bold</b>",
        "source": claim.source.model_copy(update={"quote": '<img src=x onerror="alert(1)">', "file": "<i>f</i>.txt"})})
    page = render({"profile": "smoke", "verdicts": [verdict(reason="<em>reason</em>")]}, {CLAIM_ID: hostile})
    assert "<script" not in page and "<img src=x" not in page and "<b>bold" not in page and "<em>" not in page
    assert "&lt;script&gt;alert(&#39;statement&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in page
    assert "&lt;i&gt;f&lt;/i&gt;.txt" in page and "&lt;em&gt;reason&lt;/em&gt;" in page


def test_page_is_self_contained(html):
    links = re.findall(r'\b(?:src|href)\s*=\s*"([^"]*)"', html)
    assert links and all(link.startswith(("data:image/png;base64,", "#")) for link in links), links
    assert not re.search(r"<link|<script|@import|url\(|https?://", html)


def test_summary_has_badges_counts_environment_and_smoke_stamp(html, smoke_doc):
    summary = html[html.index('id="summary"'):html.index('class="claim"')]
    for variant, status in (("as_described", "REPRODUCED"), ("as_written", "INCONCLUSIVE")):
        assert f'href="#{CLAIM_ID}--smoke--{variant}"' in summary
        assert f">{status}</span>" in summary
    counts = {label: int(n) for n, label in
              re.findall(r'<span class="n">(\d+)</span><span class="label">([A-Z ]+)</span>', summary)}
    assert '<span class="n">smoke</span><span class="label">profile</span>' in summary
    assert counts == {"REPRODUCED": 1, "NOT REPRODUCED": 0, "INCONCLUSIVE": 1, "NOT RUN": 0}
    assert "Smoke profile: not evidence" in html and summary.count("not evidence") >= 3
    assert DEVICE in summary and "torch 9.9.9" in summary and "python 3.11.7" in summary
    assert "abc123" in summary and "2026-11-25T20:00:00+00:00" in summary
    block = html[html.index(f'id="claim-{CLAIM_ID}"'):]
    assert "machinery check only" not in summary and "machinery check only" in block  # the scale: in the claim's section
    # teacher and small are shared by both variants: 12 distinct runs of 10 s, not 18
    assert "2.0 min over 12 distinct runs" in summary


def test_no_smoke_stamp_for_other_profiles(claim):
    page = render({"profile": "quick", "verdicts": [verdict(profile="quick")]}, {CLAIM_ID: claim})
    assert "not evidence" not in page.lower()


def test_claim_block_shows_everything_a_reviewer_checks(html, claim):
    block = html[html.index(f'id="claim-{CLAIM_ID}"'):html.index('id="invariants"')]
    for text in (claim.statement[:40], claim.source.file, "paired t: statistic -5.25, df 2",
                 "0.0123 / 0.0246", "distilled - small, 90% CI", "-12.5 [-20, -5]", "-2.75 (standardised mean",
                 "none: any effect counts", "one-sided at 5%", ">195<", ">152<", "seed 2",
                 "held</span> precondition teacher less small", "a teacher no better than the student",
                 claim.variants["as_written"].description[:40], claim.variants["as_described"].description[:40],
                 *claim.profiles["smoke"].deviations[:1]):
        assert text.replace("'", "&#39;") in block, text
    # variants side by side in one block
    assert block.count('<article class="variant') == 2


def test_figures_per_seed_and_learning_curves_from_stored_results(html):
    images = re.findall(r'<img src="data:image/png;base64,([^"]+)" alt="([^"]*)"', html)
    alts = [alt for _, alt in images]
    assert sum(a.startswith("Per-seed values") for a in alts) == 2
    assert sum(a.startswith("Learning curves") for a in alts) == 2
    assert not any("temperature" in a for a in alts)  # only one arm carries a T here
    assert all(len(data) > 1000 for data, _ in images)


def test_verdict_keys_unknown_or_absent_are_tolerated(claim):
    doc = {"profile": "smoke", "verdicts": [
        verdict(check="matches", arms=["distilled"], values={"distilled": [70, 75, 77]}, value=74, tolerance=5,
                diff=None, ci=None, companion={"test": "permutation", "p": 0.031}, ci_level=0.9),
        verdict(variant="as_written", check="best_of", arms=["distilled", "small", "teacher"], diff=None, ci=[],
                values={"distilled": [1, 2, 3], "small": [4, 5, 6], "teacher": [0, 1, None]}),
        {"claim": "gone-claim", "variant": "default", "profile": "smoke", "status": "NOT RUN",
         "reason": "MNIST not found under data/MNIST/raw", "p": None, "preconditions": []},
        {"claim": "odd", "variant": "x", "profile": "smoke", "status": "SOMETHING NEW", "reason": "?"}]}
    page = render(doc, {CLAIM_ID: claim}, Path("/nonexistent"))
    assert "74 ± 5" in page and "companion" in page and "permutation" in page and "0.031" in page
    assert "MNIST not found under data/MNIST/raw" in page and "No spec for this claim" in page
    assert "SOMETHING NEW" in page


def test_keys_of_the_newer_checks_get_their_own_rows(claim):
    v = verdict(check="at_least", hypothesis="recovered fraction >= 0.9", estimand="recovered fraction",
                estimate=0.8, estimate_ci=[0.7, 0.9], diff=-0.1, ci=[-0.2, 0.0], p_refute=0.04, paired=True,
                test="t on N - bound x D", companion={"test": "sign-flip permutation", "p": 0.125,
                                                             "p_floor": 0.125, "exact": True, "n_permutations": 8},
                pairs=[{"comparison": "T4 < T20", "p": 0.01, "companion_p": 0.125}])
    page = render({"profile": "smoke", "verdicts": [v]}, {CLAIM_ID: claim})
    for text in ("recovered fraction &gt;= 0.9", "t on N - bound x D: statistic -5.25, df 2, paired by seed",
                 "recovered fraction, 90% CI</th><td>0.8 [0.7, 0.9] against 0.9",
                 "sign-flip permutation: p = 0.125 (smallest possible p 0.125, 8 permutations, exact)",
                 "p against the claim</th><td>0.04", "pair T4 &lt; T20</th><td>p: 0.01; companion_p: 0.125"):
        assert text in page, text
    assert "estimate ci" not in page  # shown once, in its own row, not again as an unknown key


def test_temperature_figure_for_arms_that_differ_by_T(claim):
    arms = {f"T{t}": {**claim.arms["distilled"], "loss": {"name": "hinton", "alpha": 0.7, "T": t}}
            for t in (1, 4, 20)}
    sweep = claim.model_copy(update={"arms": {"teacher": claim.arms["teacher"], **arms},
                                     "variants": {"as_described": claim.variants["as_described"].model_copy(
                                         update={"arms": {}})}})
    v = verdict(check="best_of", arms=list(arms), diff=None, ci=None, preconditions=[],
                values={"T1": [30, 31, 29], "T4": [20, 22, 21], "T20": [27, 26, 28]})
    page = render({"profile": "smoke", "verdicts": [v]}, {CLAIM_ID: sweep})
    assert 'alt="The check&#39;s metric against the distillation temperature' in page


def test_source_value_is_drawn_as_a_reference_line(monkeypatch):
    drawn = []
    real = figures.reference_line
    monkeypatch.setattr(figures, "reference_line", lambda ax, v, **kw: (drawn.append(v.get("value")), real(ax, v, **kw)))
    v = verdict(check="matches", arms=["distilled"], values={"distilled": [70, 75, 77]}, value=74, tolerance=5)
    assert figures.per_seed(v, {}).startswith("data:image/png;base64,")
    assert drawn == [74]


def test_per_batch_curves_are_drawn_at_their_fraction_of_the_epoch():
    run = [{"epoch": 1, "step_acc": [0.1, 0.2, 0.3, 0.4]}, {"epoch": 2, "step_acc": [0.5, 0.6, 0.7, 0.8]}]
    xs, ys = figures.series(run, "step_acc")
    assert xs == [0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0] and ys[-1] == pytest.approx(0.8)
    assert figures.learning_curves({"a": [run, run]}, ["step_acc"], {}, {}) is not None
    assert figures.learning_curves({"a": [run[:1]]}, ["train_loss"], {}, {}) is None


def test_invariants_and_provenance(html, smoke_doc):
    tmp, doc = smoke_doc
    inv = html[html.index('id="invariants"'):html.index('id="provenance"')]
    assert "test_kl_non_negative" in inv and ">passed<" in inv and ">failed<" in inv and "3 != 4" in inv
    assert "1 of 2 passed" in inv
    prov = html[html.index('id="provenance"'):]
    assert "make reproduce PROFILE=smoke" in prov and "pytest -m claims" in prov and "repro report" in prov
    for spec in (tmp / "claims").rglob("*.yaml"):  # the spec and the shared file it builds on
        assert hashlib.sha256(spec.read_bytes()).hexdigest() in prov
    for v in doc["verdicts"]:
        for keys in v["run_keys"].values():
            assert all(f'title="{k}">{k[:12]}<' in prov for k in keys)


def test_bad_verdict_files_are_clear_errors(tmp_path):
    with pytest.raises(ReportError, match="run `pytest -m claims` first"):
        load_verdicts(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ReportError, match="not valid JSON"):
        load_verdicts(tmp_path / "bad.json")
    (tmp_path / "inv.json").write_text(json.dumps({"invariants": []}))
    with pytest.raises(ReportError, match="no 'verdicts'"):
        load_verdicts(tmp_path / "inv.json")


def test_cli_writes_a_readable_report(smoke_doc, tmp_path):
    tmp, _ = smoke_doc
    out = tmp_path / "index.html"
    assert repro_main(["--claims", str(tmp / "claims"), "--results", str(tmp / "results"), "report",
                       "--verdicts", str(tmp / "verdicts.json"), "--out", str(out)]) == 0
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # not the private mode of atomic_write's temp file
    assert f'id="claim-{CLAIM_ID}"' in out.read_text()
    assert write_report(tmp / "verdicts.json", tmp / "results", out, {}).exists()  # no specs: still renders


def test_a_verdict_at_a_scale_not_comparable_with_the_source_is_marked(claim):
    why = "30 of the paper's 1000 epochs <b>"
    v = verdict(status="INCONCLUSIVE", check="matches", profile="quick", not_comparable=why)
    page = render({"profile": "quick", "verdicts": [v]}, {CLAIM_ID: claim}, Path("/nonexistent"))
    assert page.count("scale not comparable") == 2  # the summary row and the claim's own section
    assert "30 of the paper&#39;s 1000 epochs &lt;b&gt;" in page and "never NOT REPRODUCED" in page
    plain = render({"profile": "quick", "verdicts": [verdict(status="INCONCLUSIVE", profile="quick")]},
                   {CLAIM_ID: claim}, Path("/nonexistent"))
    assert "scale not comparable" not in plain


def test_a_group_sequential_verdict_shows_its_looks_and_their_path(claim):
    v = verdict(status="REPRODUCED", profile="quick", next_look=9,
                looks=[{"seeds": 5, "p": 0.04, "p_refute": 0.96, "boundary": 0.0037},
                       {"seeds": 7, "p": 0.002, "p_refute": 0.998, "boundary": 0.0104}],
                sequential={"looks": [5, 7, 9, 11], "boundaries": [0.0037, 0.0104, 0.0162, 0.0198],
                            "spending": "obf", "seeds_used": 7, "decided_at": 2, "stopped_at": 2})
    page = render({"profile": "quick", "verdicts": [v]}, {CLAIM_ID: claim}, Path("/nonexistent"))
    assert "obf spending over looks at 5, 7, 9, 11 seeds per arm; 2 taken; crossed its boundary at look 2" in page
    assert "look 2 (7 seeds)" in page and "Group-sequential looks" in page
    assert "next look at 9" not in page  # decided: no next look to take


def test_each_profile_with_verdicts_is_shown_paper_first_with_its_scale_and_its_holm_family_once():
    teacher = load_claim(ROOT / "claims" / "hinton-teacher.yaml")
    matches = dict(check="matches", arms=["teacher"], value=67.0, tolerance=20.0, estimand="mean(teacher)",
                   reference=67.0, also_reported=[{"value": 64.0, "by": "source 004's final version, one run"}])
    quick = verdict("as_described", status="INCONCLUSIVE", profile="quick", estimate=136.2,
                    estimate_ci=[129.9, 142.5], holm_family=["hinton-teacher[as_described]", "other[x]"],
                    holm_policy="Holm across the family", **{**matches, "claim": "hinton-teacher"})
    paper = verdict("as_described", status="REPRODUCED", profile="paper", estimate=71.0, estimate_ci=[65.0, 77.0],
                    holm_family=["hinton-teacher[as_described]"], holm_policy="Holm across the family",
                    **{**matches, "claim": "hinton-teacher"})
    page = render({"profile": "quick", "verdicts": [quick, paper]}, {"hinton-teacher": teacher})
    summary = page[page.index('id="summary"'):page.index('class="claim"')]
    rows = summary[summary.index("<tbody>"):summary.index("</table>")]
    assert rows.index(">paper<") < rows.index(">quick<")  # the source's protocol first
    # the summary: what a reader decides on; the scale and the other published numbers are in the sections
    assert "reduced: 30 (teacher)" not in rows and "source 004&#39;s final version" not in rows
    assert ">67 ± 20<" in rows
    assert "mean(teacher) = 71 [65, 77]" in rows and "mean(teacher) = 136.2 [129.9, 142.5]" in rows
    facts = page[page.index('id="claim-hinton-teacher"'):]
    assert "the source&#39;s protocol: 1000 epochs" in facts and "reduced: 30 (teacher)" in facts  # each labelled
    # the paper profile as a reproduction study: the claim's number, the source's own one-run number beside it
    studied = page[page.index('id="reproduction"'):page.index('id="claim-hinton-teacher"')]
    assert ">67 ± 20<" in studied and "<b>64</b> <span class=\"muted\">source 004&#39;s final version, one run" in studied
    top = page[:page.index('id="summary"')]
    assert top.index('id="holm-family-paper"') < top.index('id="holm-family-quick"')
    assert "hinton-teacher[as_described], other[x]" in top  # each profile's own family, as its verdicts name it
    block = page[page.index('id="claim-hinton-teacher"'):page.index('id="invariants"')]
    assert "Holm family" not in block  # stated once per report, not in every block
    assert block.index('id="hinton-teacher--paper--as_described"') < block.index('id="hinton-teacher--quick--as_described"')
    assert "also reported" in block and "paper profile" in block and "quick profile" in block


def test_a_bound_or_derived_quantity_is_named_in_the_summary():
    from repro.report import claimed_and_measured
    v = {"check": "at_least", "derived": "recovered_fraction", "bound": 0.5, "estimand": "recovered_fraction(t, s, d)",
         "estimate": 0.848, "estimate_ci": [0.735, 0.963], "reference": 0.5, "diff": 0.348, "ci": [0.235, 0.463]}
    assert claimed_and_measured(v) == ("recovered_fraction ≥ 0.5", "recovered_fraction(t, s, d) = 0.848 [0.735, 0.963]")


def test_the_holm_family_is_stated_once_at_the_top(claim):
    """Issue 24 item 5: the family was a row repeated in every variant's table; now one line under the title."""
    members = [f"{CLAIM_ID}[as_described]", f"{CLAIM_ID}[as_written]"]
    doc = {"profile": "quick", "holm_families": {"all": members},
           "holm_family_text": "Holm family: 2 tested claims, every claim of claims/ with the quick profile",
           "verdicts": [verdict(v, profile="quick", holm_family=members, family="all")
                        for v in ("as_described", "as_written")]}
    page = render(doc, {CLAIM_ID: claim})
    top = page[:page.index('id="summary"')]
    assert 'id="holm-family-quick"' in top and "Holm family: 2 tested claims, every claim of claims/" in top
    assert ", ".join(members) in top
    assert page.count("Holm family") == 1


# --- issue 26: a malformed verdicts.json is one line naming the entry and key, never a traceback -------

def good_verdict(**changes) -> dict:
    return {**verdict(), **changes}


def without(key):
    v = verdict()
    v.pop(key)
    return v


MALFORMED = [  # (case, file content, the line after "error: <file>: ")
    ("empty-entry", {"verdicts": [{}]}, "verdicts.0.claim: expected a claim id, got null"),
    ("verdicts-not-a-list", {"verdicts": {"a": 1}}, "verdicts: expected a list of verdicts, got dict"),
    ("top-level-a-list", [verdict()], "(top level): expected a mapping with a 'verdicts' list, got list"),
    ("top-level-a-number", 3, "(top level): expected a mapping with a 'verdicts' list, got int"),
    ("entry-a-string", {"verdicts": ["REPRODUCED"]}, "verdicts.0: expected a verdict (a mapping), got str"),
    ("claim-a-number", {"verdicts": [good_verdict(claim=5)]}, "verdicts.0.claim: expected a claim id, got 5"),
    ("unknown-status", {"verdicts": [good_verdict(status="MAYBE")]},
     'verdicts.0.status: expected one of REPRODUCED, NOT REPRODUCED, INCONCLUSIVE, NOT RUN, got "MAYBE"'),
    ("alpha-a-string", {"verdicts": [good_verdict(alpha="0.05")]}, 'verdicts.0.alpha: expected a number, got "0.05"'),
    ("values-a-string", {"verdicts": [good_verdict(values="many")]},
     'verdicts.0.values: expected arm -> list of numbers, got "many"'),
    ("values-of-strings", {"verdicts": [good_verdict(values={"a": ["1"]})]},
     'verdicts.0.values: expected arm -> list of numbers, got {"a": ["1"]}'),
    ("preconditions-numbers", {"verdicts": [good_verdict(preconditions=[1])]},
     "verdicts.0.preconditions: expected a list of preconditions, each with held, arms and p, got [1]"),
    ("ci-three-numbers", {"verdicts": [good_verdict(ci=[1, 2, 3])]},
     "verdicts.0.ci: expected [low, high] or null, got [1, 2, 3]"),
    ("seeds-strings", {"verdicts": [good_verdict(seeds=["0"])]}, 'verdicts.0.seeds: expected a list of seeds, got ["0"]'),
    ("run-keys-a-list", {"verdicts": [good_verdict(run_keys=["k"])]},
     'verdicts.0.run_keys: expected arm -> list of run keys, got ["k"]'),
    ("arms-a-string", {"verdicts": [good_verdict(arms="a,b")]}, 'verdicts.0.arms: expected a list of arm names, got "a,b"'),
    ("looks-numbers", {"verdicts": [good_verdict(looks=[1, 2])]}, "verdicts.0.looks: expected a list of looks, got [1, 2]"),
    ("next-look-a-string", {"verdicts": [good_verdict(next_look="7")]},
     'verdicts.0.next_look: expected a number of seeds or null, got "7"'),
    ("waiting-a-number", {"verdicts": [good_verdict(waiting={"distilled": 4})]},
     'verdicts.0.waiting: expected arm -> list of seeds, got {"distilled": 4}'),
    ("waiting-seed-strings", {"verdicts": [good_verdict(waiting={"distilled": ["4"]})]},
     'verdicts.0.waiting: expected arm -> list of seeds, got {"distilled": ["4"]}'),
    ("invariants-a-string", {"verdicts": [], "invariants": "all passed"}, "invariants: expected a list of test outcomes"),
    ("binary", b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "not valid JSON ("),
    ("empty-file", b"", "not valid JSON ("),
]


@pytest.mark.parametrize("case", MALFORMED, ids=[c[0] for c in MALFORMED])
def test_a_malformed_verdicts_file_is_one_line(case, smoke_doc, tmp_path, capsys):
    _, content, line = case
    tmp, _ = smoke_doc
    path = tmp_path / "verdicts.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    assert repro_main(["--claims", str(tmp / "claims"), "--results", str(tmp / "results"), "report",
                       "--verdicts", str(path), "--out", str(tmp_path / "index.html")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}: {line}") and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "index.html").exists()


@pytest.mark.parametrize("kind", ["folder", "named-pipe"])
def test_a_verdicts_path_that_is_not_a_file_is_one_line(kind, smoke_doc, tmp_path, capsys):
    tmp, _ = smoke_doc
    path = tmp_path / "verdicts.json"
    path.mkdir() if kind == "folder" else os.mkfifo(path)
    assert repro_main(["--claims", str(tmp / "claims"), "--results", str(tmp / "results"), "report",
                       "--verdicts", str(path), "--out", str(tmp_path / "index.html")]) == 2
    what = "a folder" if kind == "folder" else "a named pipe"
    assert capsys.readouterr().err == (f"error: {path}: not readable ({what}, not a regular file); expected the "
                                       "verdicts file `pytest -m claims` writes\n")


@pytest.mark.parametrize("change", [
    {"alpha": None}, {"claim": CLAIM_ID, "metric": "$\\frac{1}{$"}, {"arms": ["$x^$", "small"]},
    {"values": {"$\\alpha$ arm": [1, 2, 3], "small": [3, 4, 5]}}])
def test_verdicts_without_alpha_or_with_tex_in_their_text_render(change, claim):
    """A missing alpha and mathtext ('$\\frac') in a text field raised inside matplotlib or the page."""
    doc = {"profile": "smoke", "verdicts": [{k: v for k, v in verdict(**change).items() if v is not None}]}
    assert "<html" in render(doc, {CLAIM_ID: claim})


def test_an_html_output_that_is_a_folder_is_one_line(smoke_doc, tmp_path, capsys):
    tmp, _ = smoke_doc
    (tmp_path / "index.html").mkdir()
    assert repro_main(["--claims", str(tmp / "claims"), "--results", str(tmp / "results"), "report",
                       "--verdicts", str(tmp / "verdicts.json"), "--out", str(tmp_path / "index.html")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'index.html'}: not writable (Is a directory)\n"


# --- issue 26: spec text cannot reorder the page, widen it, or show a local path ----------------------

RLO, PDF = "\u202e", "\u202c"


def test_bidi_overrides_in_spec_text_cannot_reorder_the_page(claim):
    """A right-to-left override made 'DECUDORPER TON' read as NOT REPRODUCED in a deviation."""
    profile = claim.profiles["smoke"].model_copy(update={"deviations": [f"fewer epochs {RLO}DECUDORPER TON{PDF}"],
                                                         "scale": f"{RLO}tiny"})
    hostile = claim.model_copy(update={"statement": f"\u2066claim{RLO} text\u2069", "profiles": {
        **claim.profiles, "smoke": profile}})
    page = render({"profile": "smoke", "verdicts": [verdict(reason=f"reason {RLO}desrever")]}, {CLAIM_ID: hostile})
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)
    assert "fewer epochs DECUDORPER TON" in page and "reason desrever" in page


def test_a_very_long_word_wraps_instead_of_widening_the_page(claim):
    page = render({"profile": "smoke", "verdicts": [verdict(reason="x" * 20000)]},
                  {CLAIM_ID: claim.model_copy(update={"statement": "y" * 20000})})
    assert "y" * 20000 in page and "overflow-wrap: anywhere" in page


def test_the_spec_hash_table_shows_no_absolute_path(smoke_doc, claim):
    tmp, doc = smoke_doc  # tmp is an absolute folder outside the working folder, as `--claims /abs/...` is
    page = render(doc, {CLAIM_ID: claim}, tmp / "results", tmp / "claims")
    assert f"claims/{CLAIM_ID}.yaml" in page and str(tmp) not in page


def test_a_profile_a_claim_has_no_stored_run_of_is_left_out(claim, tmp_path):
    """The paper profile of a claim nobody trained at it is not a block of NOT RUN beside the quick verdict."""
    quick = verdict(profile="quick", run_keys=store_results(tmp_path / "results", claim, "as_described", "quick"))
    paper = verdict(profile="paper", status="NOT RUN", reason="results for arm 'teacher' seed 0 are missing")
    page = render({"profile": "quick", "verdicts": [quick, paper]}, {CLAIM_ID: claim}, tmp_path / "results")
    assert f'id="{CLAIM_ID}--quick--as_described"' in page and f'id="{CLAIM_ID}--paper--as_described"' not in page
    alone = render({"profile": "paper", "verdicts": [paper]}, {CLAIM_ID: claim}, tmp_path / "results")
    assert f'id="{CLAIM_ID}--paper--as_described"' in alone  # its only verdict: shown, with the reason


# --- issue 37: the summary's counts are pytest's; the paper profile as a reproduction study -------------------

def tile_counts(page: str) -> dict[str, dict[str, int]]:
    summary = page[page.index('id="summary"'):page.index('<table class="summary">')]
    out = {}
    for profile, tiles in re.findall(r'<span class="n">([\w-]+)</span><span class="label">profile</span></div>(.*?)\n</div>',
                                     summary, re.S):
        out[profile] = {label: int(n) for n, label in
                        re.findall(r'<span class="n">(\d+)</span><span class="label">([A-Z ]+)</span>', tiles)}
    return out


def test_the_cards_count_every_verdict_pytest_reported_listed_or_not(claim, tmp_path):
    """The audit found '0 NOT RUN' on a card where pytest reported 2: NOT RUN verdicts of a profile with no stored
    run are not listed (no block of NOT RUN beside the quick verdict), and the card counted only the listed ones."""
    quick = [verdict(v, profile="quick", run_keys=store_results(tmp_path / "results", claim, v, "quick"))
             for v in ("as_described", "as_written")]
    paper = [verdict(v, profile="paper", status="NOT RUN", reason="results for arm 'teacher' seed 0 are missing")
             for v in ("as_described", "as_written")]
    quick_missing = verdict("as_described", profile="quick", status="NOT RUN", claim="other-claim",
                            reason="results missing")
    doc = {"profile": "quick", "verdicts": [*quick, *paper, quick_missing,
                                            verdict("as_written", profile="quick", status="NOT RUN", claim="other-claim",
                                                    reason="results missing")]}
    page = render(doc, {CLAIM_ID: claim}, tmp_path / "results")
    assert f'id="{CLAIM_ID}--paper--as_described"' not in page  # not listed ...
    reported = {p: {s: sum(v["profile"] == p and v["status"] == s for v in doc["verdicts"])
                    for s in ("REPRODUCED", "NOT REPRODUCED", "INCONCLUSIVE", "NOT RUN")} for p in ("paper", "quick")}
    assert tile_counts(page) == reported  # ... but counted, as pytest -m claims reported them
    assert reported["paper"]["NOT RUN"] == 2 and "2 not listed: no run stored at this profile" in page
    assert f"{len(doc['verdicts'])} verdicts over" in page


def test_the_summary_row_is_claim_claimed_measured_verdict_with_direction_and_one_p(claim):
    v = verdict(status="NOT REPRODUCED", check="matches", arms=["teacher"], metric="test_acc", value=0.963,
                tolerance=0.01, estimand="mean(teacher)", estimate=0.9824, estimate_ci=[0.9814, 0.9834],
                reference=0.963, values={"teacher": [0.982, 0.9823, 0.9818, 0.9831, 0.9828]}, p=1.0, p_holm=1.0,
                p_refute=1.56e-05, p_refute_holm=0.00014,
                also_reported=[{"value": 0.97, "by": "a later version, one run"}],
                devices=["CPU AMD EPYC, 1 threads", "CPU Intel(R) Xeon(R) Processor, 1 threads"])
    page = render({"profile": "paper", "verdicts": [{**v, "profile": "paper"}]}, {CLAIM_ID: claim})
    summary = page.split('<table class="summary">')[1].split("</table>")[0]
    header = re.findall(r"<th>([^<]*)</th>", summary.split("</thead>")[0])
    assert header == ["claim", "profile", "variant", "verdict", "claimed", "measured [CI]", "p"]
    assert "above the claimed band by 0.0094" in summary and "+1.94 points" in summary
    assert "better than the source&#39;s number" in summary
    assert ">0.00014<br>" in summary and "1.56e-05" not in summary  # one p, the one that decided it
    assert "a later version" not in summary and "held</span>" not in summary  # the rest is in the sections
    studied = page[page.index('id="reproduction"'):page.index(f'id="claim-{CLAIM_ID}"')]
    assert "source " in studied and claim.source.file in studied
    assert "<b>0.97</b>" in studied and "a later version, one run" in studied  # the other published number
    assert "teacher: 0.982, 0.9823, 0.9818, 0.9831, 0.9828" in studied  # per seed
    assert "trained on 2 machine kinds (CPU AMD EPYC, 1 threads; CPU Intel(R) Xeon(R) Processor" in studied
    assert "mean(teacher) = 0.9824 [0.9814, 0.9834]" in studied and "+1.94 points" in studied
    for deviation in claim.profiles["paper"].deviations:  # the protocol differences, the spec's own
        assert deviation.replace("'", "&#39;") in studied


def test_the_study_names_every_paper_claim_not_run_under_its_source_even_a_source_with_no_run(claim, tmp_path):
    """The committed study listed 'Not run: hinton-omit-3' (a folder of copied runs) but not hinton-only-7-8 or the
    temperature claims of the same source (no folder yet), and no line at all for the sources none of whose claims
    had run: the not-run list came from the shown blocks, which leave out a profile with no stored run."""
    other = claim.model_copy(update={"id": "vit-claim", "source": claim.source.model_copy(update={"file": "003_vit.txt"})})
    ran = verdict(profile="paper", run_keys=store_results(tmp_path / "results", claim, "as_described", "paper"))
    waiting = [verdict("as_written", profile="paper", status="NOT RUN", reason="results missing"),
               {**verdict(profile="paper", status="NOT RUN", reason="results missing"), "claim": "vit-claim"},
               {**verdict(profile="quick"), "claim": "vit-claim"}]
    page = render({"profile": "paper", "verdicts": [ran, *waiting]}, {CLAIM_ID: claim, "vit-claim": other},
                  tmp_path / "results")
    studied = page[page.index('id="reproduction"'):page.index("</section>", page.index('id="reproduction"'))]
    assert f"Not run at this profile: {CLAIM_ID} [as_written]." in studied
    assert "source 003 · 003_vit.txt" in studied  # a source with no paper run at all: named, its claims listed
    assert "None of this source&#39;s claims run at this profile yet: vit-claim [as_described]." in studied
    assert studied.count('<table class="study">') == 1  # a table only where there are results
    assert studied.index(claim.source.file) < studied.index("003_vit.txt")  # sources with results first


def test_the_study_says_what_an_inconclusive_sequential_verdict_waits_for(claim, tmp_path):
    """A reproduction study's reader asks what the next look needs: its seeds per arm, and which seeds are stored
    already beyond the last complete look (not judged: a look is taken once all its seeds are stored)."""
    keys = store_results(tmp_path / "results", claim, "as_described", "paper")
    waiting = verdict(profile="paper", status="INCONCLUSIVE", run_keys=keys, next_look=5,
                      waiting={"distilled": [4], "small": [3, 4]})
    decided = verdict("as_written", profile="paper", run_keys=keys, next_look=5)  # decided: no next look shown
    page = render({"profile": "paper", "verdicts": [waiting, decided]}, {CLAIM_ID: claim}, tmp_path / "results")
    studied = page[page.index('id="reproduction"'):page.index("</section>", page.index('id="reproduction"'))]
    assert studied.count("next look: 5 seeds per arm") == 1
    assert ("next look: 5 seeds per arm; stored beyond the last look, not judged yet: distilled seed 4, "
            "small seeds 3, 4") in studied


def test_no_study_without_a_paper_verdict(claim):
    page = render({"profile": "smoke", "verdicts": [verdict()]}, {CLAIM_ID: claim})
    assert 'id="reproduction"' not in page


def test_bidi_controls_are_stripped_from_the_new_sections_too(claim):
    profile = claim.profiles["paper"].model_copy(update={"deviations": [f"one run {RLO}NUR TON{PDF}"]})
    hostile = claim.model_copy(update={"profiles": {**claim.profiles, "paper": profile}})
    v = verdict(profile="paper", also_reported=[{"value": 64.0, "by": f"source {RLO}400 ecruos\u2067"}],
                holm_family=[f"{CLAIM_ID}[as_described]"])
    page = render({"profile": "paper", "families": {"paper": {"text": f"Holm family {RLO}x", "families": {
        f"a{RLO}": [f"{CLAIM_ID}[as_described]"]}}}, "verdicts": [v]}, {CLAIM_ID: hostile})
    assert not re.search("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]", page)
    assert "one run NUR TON" in page and "source 400 ecruos" in page


def test_no_absolute_path_of_the_claims_folder_anywhere_on_the_page(smoke_doc, claim):
    """A verdicts file judged with `--claims /abs/claims` names the folder in its Holm family line and reasons."""
    tmp, doc = smoke_doc
    folder = tmp / "claims"
    hostile = {**doc, "families": {"smoke": {"text": f"Holm family: 2 tested claims, every claim of {folder}/ with "
                                             "the smoke profile", "families": {}}},
               "verdicts": [{**v, "reason": f"corrupt result in {folder}/x.yaml and {Path.cwd()}/results/y.json"}
                            for v in doc["verdicts"]]}
    page = render(hostile, {CLAIM_ID: claim}, tmp / "results", folder)
    assert str(tmp) not in page and str(folder) not in page and str(Path.cwd()) not in page
    assert "every claim of .../claims/ with the smoke profile" in page and "corrupt result in .../claims/x.yaml" in page
    assert "and results/y.json" in page


def test_the_compute_line_adds_the_teachers_retrained_for_their_weights():
    """A teacher retrained on a fresh machine for its students' sake costs hours (3.5 h each for Hinton's at
    paper) that no stored run's wall_s holds: the compute line left them out in silence. Counted once per
    retrain, however many students record it; a record without a usable time is counted, its time not."""
    from repro.report import retrains

    def student(*records):
        return {"provenance": {"torch": "2.14.1", "teacher_retrained": list(records)}}

    def record(key, wall_s, on="CPU AMD EPYC, 1 threads", errors=60):
        return {"key": key, "retrained": {"test_errors": errors}, "retrained_on": on, "retrained_wall_s": wall_s}

    assert retrains([student(), {"provenance": {"torch": "2.14.1"}}]) == ""
    one = record("aaa", 12600.0)
    assert retrains([student(one), student(one)]) == "; plus 1 teacher retrained for its weights (3.5 h)"
    runs = [student(one, record("bbb", 7200)), student(record("bbb", 7200)),
            student(record("aaa", 12600.0, on="CPU Intel Xeon, 1 threads", errors=61)),  # another retrain of aaa
            student({"key": "ccc", "bitwise_equal": None, "retrained": None}),  # killed before its comparison
            *[student(record(f"x{i}", bad)) for i, bad in enumerate([None, "3600", -5.0, float("inf"), True])]]
    assert retrains(runs) == ("; plus 8 teachers retrained for their weights (9.0 h; 5 more of unrecorded time, "
                              "not counted)")
    untimed = {k: v for k, v in one.items() if k != "retrained_wall_s"}  # recorded before times were kept
    assert retrains([student(untimed)]) == "; plus 1 teacher retrained for its weights (time not recorded, not counted)"


def test_the_paper_table_shows_a_member_without_a_confirmatory_verdict():
    """hinton-only-7-8 at paper, its first look stored, had no confirmatory verdict (compared runs older than its
    registration): such a verdict carries no `devices`, and the reproduction table's row raised UndefinedError, so
    `make reproduce` wrote no page at all."""
    from repro.spec import load_claims
    root = Path(__file__).resolve().parents[1]
    doc = json.loads((root / "reports" / "verdicts.json").read_text())
    i, v = next((i, v) for i, v in enumerate(doc["verdicts"]) if (v["claim"], v["profile"]) == ("hinton-teacher", "paper"))
    kept = ("claim", "variant", "profile", "check", "metric", "arms", "alpha", "margin", "registration", "registered")
    doc["verdicts"][i] = {**{k: v[k] for k in kept if k in v}, "status": "INCONCLUSIVE", "p": float("nan"),
                          "preconditions": [], "reason": "no confirmatory verdict: results stored before its "
                          "registration (they carry none)", "exploratory": v}
    html = render(doc, load_claims(root / "claims"))
    assert "no confirmatory verdict: results stored before its registration" in html
