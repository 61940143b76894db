"""The Holm family is the claims folder's (repro.family), never the selection (issue 25 item 1, issue 24 item 5):
`pytest -m claims -k X` corrects X within the folder's family and keeps every verdict in verdicts.json;
a folder may declare its families in families.yaml; `repro run --until-decided` corrects as the report does."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from repro import verdict as V
from repro.family import FamilyError, declared, family_of
from repro.spec import load_claims

from test_verdict import store_all

ROOT = Path(__file__).resolve().parent.parent
# raw p about 1e-4, 0.029, 0.039 (less, paired by seed, 3 seeds): alone each is REPRODUCED; together Holm demotes
SMALL = {"c-strong": [146.0, 141, 151], "c-medium": [84.0, 80, 88], "c-weak": [84.0, 79, 87]}
DISTILLED = [80.0, 74, 85]


def claim_doc(name, seq=None):
    return {"id": name, "source": {"file": "x.txt", "quote": "q"}, "statement": "s",
            "defaults": {"data": {"name": "synthetic"}, "model": {"name": "mlp", "hidden": [4]},
                         "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1, "batch_size": 8},
            "arms": {"small": {}, "distilled": {}},
            "check": {"kind": "less", "arms": ["distilled", "small"], "metric": "test_errors", "alpha": 0.05,
                      "justification": "why"},
            "profiles": {"smoke": {"seeds": [0, 1, 2], "scale": "toy", **({"sequential": seq} if seq else {})}}}


def folder_of(tmp_path, names=SMALL):
    folder = tmp_path / "claims"
    folder.mkdir()
    for name in names:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(claim_doc(name)))
    claims = load_claims(folder)
    for name in names:
        store = store_all(tmp_path, claims[name], {"distilled": DISTILLED, "small": SMALL[name]})[0]
    return folder, claims, store


def test_judging_a_selection_keeps_the_folders_family_and_every_verdict(tmp_path):
    """On the old code `-k c-medium` made a family of one: REPRODUCED at Holm p = raw p, with the other verdicts
    gone from verdicts.json."""
    folder, claims, store = folder_of(tmp_path)
    full = {v["claim"]: v for v in V.judge_folder(folder, claims, "smoke", store)}
    assert full["c-medium"]["p"] < 0.05 <= full["c-medium"]["p_holm"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("REPRO_")}
    env.update(REPRO_CLAIMS=str(folder), REPRO_OUT=str(tmp_path / "out"), REPRO_RESULTS=str(tmp_path / "results"),
               REPRO_PROFILE="smoke", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                          "tests/test_claims.py", "-k", "c-medium"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=300)
    lines = out.stdout.splitlines()
    assert out.stdout.count("c-medium [default]") == 1 and "c-strong [default]" not in out.stdout, out.stdout
    family = lines.index("verdicts: 1 INCONCLUSIVE") - 1  # the summary's last lines, before pytest's own
    assert lines[family].startswith("Holm family: 3 registered members, every claim of"), out.stdout
    assert "the 2 verdicts not selected were decided too" in lines[family]
    doc = json.loads((tmp_path / "out" / "reports" / "verdicts.json").read_text())
    written = {v["claim"]: v for v in doc["verdicts"]}
    assert set(written) == set(SMALL)  # the file does not shrink to the selection
    assert written["c-medium"]["p_holm"] == pytest.approx(full["c-medium"]["p_holm"])
    assert written["c-medium"]["status"] == "INCONCLUSIVE"
    family = doc["families"]["smoke"]  # recorded per profile: the file holds every profile judged
    assert sorted(family["families"]["all"]) == ["c-medium[default]", "c-strong[default]", "c-weak[default]"]
    assert family["text"].startswith("Holm family: 3 registered members")


def test_a_declared_family_is_corrected_on_its_own(tmp_path):
    folder, claims, store = folder_of(tmp_path)
    (folder / "families.yaml").write_text(yaml.safe_dump(
        {"families": {"main": ["c-strong", "c-medium"], "side": ["c-weak"]}}))
    assert family_of(folder, claims, "smoke")[("c-weak", "default")] == "side"
    out = {v["claim"]: v for v in V.judge_folder(folder, claims, "smoke", store)}
    assert out["c-weak"]["holm_family"] == ["c-weak[default]"] and out["c-weak"]["status"] == "REPRODUCED"
    assert out["c-medium"]["p_holm"] == pytest.approx(out["c-medium"]["p"]) and out["c-medium"]["status"] == "REPRODUCED"
    assert V.families(list(out.values())) == {"main": ["c-medium[default]", "c-strong[default]"],
                                              "side": ["c-weak[default]"]}
    assert set(load_claims(folder)) == set(SMALL)  # families.yaml is not read as a claim


@pytest.mark.parametrize("doc,expected", [
    ({"families": {"a": ["c-strong", "c-medium"]}}, "families: every claim must be in one family; not in any: c-weak"),
    ({"families": {"a": list(SMALL), "b": ["c-weak"]}}, "families.b: 'c-weak' is also in family 'a'"),
    ({"families": {"a": list(SMALL) + ["nope"]}}, "families.a: unknown claim 'nope'"),
    ({"families": {"a": "c-weak"}}, "families.a: expected a list of claim ids"),
    ({"family": []}, "families: expected a mapping of family name -> list of claim ids"),
])
def test_a_bad_families_file_is_one_line_naming_file_and_key(tmp_path, doc, expected, capsys):
    from repro.cli import main
    folder = tmp_path / "claims"
    folder.mkdir()
    for name in SMALL:
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(claim_doc(name)))
    (folder / "families.yaml").write_text(yaml.safe_dump(doc))
    with pytest.raises(FamilyError, match=re.escape("families.yaml: " + expected)):
        declared(folder, SMALL)
    assert main(["validate", str(folder)]) == 1
    printed = capsys.readouterr().out
    assert f"error {folder / 'families.yaml'}: {expected}" in printed and "Traceback" not in printed


def test_until_decided_corrects_over_the_folders_family(tmp_path, monkeypatch):
    """A sequential claim whose p_seq passes Holm among the sequential claims alone but not among the folder's
    tested claims is INCONCLUSIVE in the report: the loop must train its next look (the old loop judged the
    sequential claims alone, called it decided and trained nothing)."""
    from repro.looks import until_decided
    from repro.store import Store
    folder = tmp_path / "claims"
    folder.mkdir()
    (folder / "seq.yaml").write_text(yaml.safe_dump(claim_doc("seq", {"max_seeds": 5, "group": 2})))
    for name in ("c-strong", "c-medium"):
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(claim_doc(name)))
    claims = load_claims(folder)
    # seq: strong enough to cross its first boundary (p_seq < 0.05) but not Holm's among 3
    data = {"seq": {"distilled": [80.0, 81, 81], "small": [87.0, 90, 92]},
            "c-strong": {"distilled": DISTILLED, "small": SMALL["c-strong"]},
            "c-medium": {"distilled": DISTILLED, "small": SMALL["c-medium"]}}
    stores = {name: store_all(tmp_path, claims[name], values)[0] for name, values in data.items()}
    store = stores["seq"]
    alone = V.finalize([V.decide(claims["seq"], "default", "smoke", store)])[0]
    assert alone["status"] == "REPRODUCED", alone["reason"]
    submitted = []

    class Executor:
        device = __import__("torch").device("cpu")

        def submit(self, jobs):
            submitted.extend(jobs)
            raise KeyboardInterrupt  # one round is enough to see what it trains

    with pytest.raises(KeyboardInterrupt):
        until_decided({"seq": claims["seq"]}, "smoke", store, Executor(), None, str(folder))
    assert {job.run.seed for job in submitted} == {0, 1, 2, 3, 4}  # the next look: 5 seeds (stored ones skipped)
