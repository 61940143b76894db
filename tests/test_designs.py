"""The sampling design is locked once its data have been looked at (repro.designs, issue 25 item 2): the first
judging with a stored first look records it; a later change on the same seeds is NOT RUN with the reason; a new
design on fresh seeds is recorded beside the old one. No run key changes (the record is beside the results)."""
from __future__ import annotations

import json

from repro import designs
from repro import verdict as V

from test_verdict import make_claim, store_all

VALUES = {"distilled": [80.0, 74, 85], "small": [146.0, 141, 151]}


def redesigned(claim, **profile):
    return claim.model_copy(update={"profiles": {"smoke": claim.profiles["smoke"].model_copy(update=profile)}})


def test_the_first_look_records_the_design_and_a_later_change_is_refused(tmp_path):
    """On the old code the re-declared design (sequential looks on the seeds already judged) was judged as if
    declared first: nothing was recorded and nothing refused."""
    from repro.spec import Sequential
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    store, _ = store_all(tmp_path, claim, VALUES)
    record = store.root / "smoke" / "toy" / "default" / designs.RECORD
    assert V.finalize([V.decide(claim, "default", "smoke", store)])[0]["status"] == "REPRODUCED"
    [entry] = json.loads(record.read_text())["designs"]
    assert entry["design"] == {"seeds": [0, 1, 2], "alpha": 0.05, "sequential": None}
    assert entry["hash"] == designs.digest(entry["design"])
    assert V.finalize([V.decide(claim, "default", "smoke", store)])[0]["status"] == "REPRODUCED"  # same design
    for changed in (redesigned(claim, sequential=Sequential(max_seeds=6, group=1)),
                    redesigned(claim, seeds=[0, 1])):
        v = V.finalize([V.decide(changed, "default", "smoke", store)])[0]
        assert v["status"] == "NOT RUN", v["reason"]
        assert v["reason"].startswith("the design changed after its data were looked at: recorded seeds [0, 1, 2], "
                                      "one fixed look, alpha 0.05, the spec now declares ")
        assert "a new design needs fresh seeds or a new profile" in v["reason"]
    alpha = claim.model_copy(update={"check": claim.check.model_copy(update={"alpha": 0.1})})
    assert "alpha 0.1 on seeds already judged" in V.decide(alpha, "default", "smoke", store)["reason"]
    assert len(json.loads(record.read_text())["designs"]) == 1


def test_a_new_design_on_fresh_seeds_is_recorded_beside_the_old_one(tmp_path):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    store, _ = store_all(tmp_path, claim, VALUES)
    V.decide(claim, "default", "smoke", store)
    fresh = redesigned(claim, seeds=[10, 11, 12, 13])
    assert designs.lock(store.root, fresh, "default", "smoke") is None
    recorded = json.loads((store.root / "smoke" / "toy" / "default" / designs.RECORD).read_text())["designs"]
    assert [r["design"]["seeds"] for r in recorded] == [[0, 1, 2], [10, 11, 12, 13]]
    assert designs.lock(store.root, claim, "default", "smoke") is None  # the first design is still judged


def test_nothing_is_recorded_before_the_first_look_is_stored_and_a_bad_record_is_refused(tmp_path):
    claim = make_claim(tmp_path, {"kind": "less", "arms": ["distilled", "small"]})
    store, paths = store_all(tmp_path, claim, VALUES)
    paths[("small", 2)].unlink()
    assert V.decide(claim, "default", "smoke", store)["status"] == "NOT RUN"
    record = store.root / "smoke" / "toy" / "default" / designs.RECORD
    assert not record.exists()
    record.write_text('{"designs": [{"design": {"seeds": [0]}, "hash": "forged"}]}')
    assert "the recorded design cannot be read" in designs.lock(store.root, claim, "default", "smoke")


def test_sequential_designs_lock_every_seed_up_to_the_cap():
    design = {"seeds": [0, 1, 2], "alpha": 0.05, "sequential": {"max_seeds": 7, "group": 2, "spending": "obf"}}
    assert designs.seeds_of(design) == set(range(7))
    assert designs.summary(design) == "seeds [0, 1, 2], sequential (obf, every 2 seeds up to 7), alpha 0.05"
