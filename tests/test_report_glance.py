"""The report's first picture and its words (issue 37): a forest plot per Holm family and profile, the
verdict's direction in the summary, and observed arms drawn as independent samples. Rendered from the
shipped verdicts into memory; the committed report is not touched."""
from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image

import repro
from repro import figures
from repro.report import render
from repro.wording import explain

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = json.loads((ROOT / "reports" / "verdicts.json").read_text())


@pytest.fixture(scope="module")
def html():
    return render(SHIPPED, {})  # no specs, no results: the verdicts alone decide what the summary shows


def png(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


def test_a_forest_plot_for_every_family_of_every_profile_at_the_top(html):
    top = html.index('id="at-a-glance"')
    assert top < html.index('id="summary"')
    for profile, entry in SHIPPED["families"].items():
        for name in entry["families"]:
            m = re.search(rf'<figure class="forest" id="forest-{profile}-{name}"><img src="(data:image/png;base64,[^"]+)"',
                          html)
            assert m, (profile, name)
            width, height = png(m.group(1)).size
            assert width <= 1240 and height <= 1100  # one glance on a 1280 x 900 screen (with a short scroll)


def test_the_summary_says_which_way_each_verdict_points(html):
    summary = html[html.index('id="summary"'):html.index('<dl class="env">')]
    for v in SHIPPED["verdicts"]:
        if explain(v):
            assert explain(v).replace("'", "&#39;") in summary, v["claim"]
    assert "above the claimed band" in summary and "in the opposite direction" in summary


def test_the_forest_draws_a_row_per_member_and_tolerates_a_verdict_without_estimate():
    members = [v for v in SHIPPED["verdicts"] if v["profile"] == "paper" and v["status"] != "NOT RUN"]
    short = figures.forest(members[:3], "three")
    tall = figures.forest(members[:3] + [{"claim": "x", "variant": "y", "status": "NOT RUN"}], "four")
    assert png(tall).size[1] > png(short).size[1]
    assert figures.forest([], "none") is None


def draws_lines_between_arms(v: dict) -> bool:
    """Whether the per-seed panel joins values across arms (grey lines), by drawing it with a spy."""
    calls = []
    original = figures.plt.Axes.plot

    def spy(ax, *args, **kwargs):
        calls.append(kwargs.get("color"))
        return original(ax, *args, **kwargs)
    figures.plt.Axes.plot = spy
    try:
        assert figures.per_seed(v, figures.arm_colors(list(v["values"])))
    finally:
        figures.plt.Axes.plot = original
    return "#bbb" in calls


def test_observed_arms_are_independent_samples_not_seed_lines():
    doc = {"id": "obs2", "source": {"file": "f", "quote": "q"}, "statement": "s",
           "arms": {arm: {"observed": {"metric": "top1", "units": "%", "provenance": "p", "values": vals}}
                    for arm, vals in (("a", [76.2, 75.8, 75.9]), ("b", [75.1, 75.4, 75.0]))},
           "check": {"kind": "greater", "metric": "top1", "arms": ["a", "b"], "alpha": 0.05, "justification": "j"}}
    v, = repro.judge(doc)
    assert v["paired"] is False and not draws_lines_between_arms(v)
    paired = next(v for v in SHIPPED["verdicts"] if v.get("paired") is True and len(v.get("values", {})) == 2)
    assert draws_lines_between_arms(paired)
    assert figures.mean_interval([1.0, 2.0, 3.0]) == pytest.approx((2.0, 2.0 - 2.4841, 2.0 + 2.4841), abs=1e-3)


def test_a_miss_says_which_way_and_by_how_much_and_whether_it_is_the_better_side():
    """Issue 35 item 2: a teacher 1.9 points more accurate than the source's number is not a failure to train it."""
    from repro.wording import miss
    shipped = {(v["claim"], v["variant"], v["profile"]): v for v in SHIPPED["verdicts"]}
    teacher = miss(shipped["course-teacher", "corrected", "paper"])
    assert teacher.startswith("by 0.0094;") and "0.9824 against the source's 0.963: +0.0194 (+1.94 points)" in teacher
    assert "better than the source's number" in teacher
    assert miss(shipped["hinton-soft-weight", "as_described", "quick"]).startswith("by ")
    worse = {**shipped["course-teacher", "corrected", "paper"], "estimate": 0.94, "estimate_ci": [0.935, 0.945]}
    assert "worse than the source's number" in miss(worse) and "(-2.3 points)" in miss(worse)
    assert all(miss(v) == "" for v in SHIPPED["verdicts"] if v["status"] != "NOT REPRODUCED")
