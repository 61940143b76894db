"""verdicts.json (+ claim specs) -> one self-contained HTML file. Computes no statistics: it shows them."""
from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import jinja2

from .store import atomic_write

BADGE = {"REPRODUCED": "ok", "NOT REPRODUCED": "bad", "INCONCLUSIVE": "warn", "NOT RUN": "none"}


class ReportError(ValueError):
    pass


def figure_png(fig) -> str:
    import matplotlib.pyplot as plt
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def per_seed_figure(verdict: dict) -> str | None:
    """Each arm's per-seed values of the check's metric, with the mean."""
    values = verdict.get("values")
    if not values:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.2, 2.6))
    for i, (arm, vs) in enumerate(values.items()):
        finite = [v for v in vs if v is not None and math.isfinite(v)]
        ax.scatter([i] * len(finite), finite, s=28, alpha=0.75, zorder=3)
        if finite:
            mean = sum(finite) / len(finite)
            ax.hlines(mean, i - 0.25, i + 0.25, color="black", lw=2, zorder=4)
    ax.set_xticks(range(len(values)), list(values))
    ax.set_xlim(-0.6, len(values) - 0.4)
    ax.set_ylabel(verdict["metric"])
    ax.set_title(f"{verdict['claim']} [{verdict['variant']}]: per seed, bar = mean", fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return figure_png(fig)


def load_verdicts(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        raise ReportError(f"{path}: no verdicts yet; run `pytest -m claims` first") from None
    except json.JSONDecodeError as err:
        raise ReportError(f"{path}: not valid JSON ({err}); re-run `pytest -m claims`") from None
    if not isinstance(doc, dict) or "verdicts" not in doc:
        raise ReportError(f"{path}: expected keys 'verdicts' and 'profile' (written by `pytest -m claims`)")
    return doc


def render(doc: dict, claims: dict) -> str:
    env = jinja2.Environment(loader=jinja2.PackageLoader("repro", "templates"),
                             autoescape=True, undefined=jinja2.StrictUndefined)
    env.filters["num"] = lambda x, fmt=".3g": "–" if x is None or (isinstance(x, float) and not math.isfinite(x)) \
        else format(x, fmt)
    verdicts = doc["verdicts"]
    counts = {status: sum(v["status"] == status for v in verdicts) for status in BADGE}
    rows = []
    for v in verdicts:
        claim = claims.get(v["claim"])
        profile = claim.profiles.get(v["profile"]) if claim else None
        rows.append({"v": v, "claim": claim, "profile": profile, "badge": BADGE[v["status"]],
                     "variant": claim.variants[v["variant"]] if claim and v["variant"] in claim.variants else None,
                     "figure": per_seed_figure(v)})
    return env.get_template("index.html.j2").render(doc=doc, rows=rows, counts=counts, badge=BADGE)


def write_report(verdicts_path: Path, results: Path, out: Path, claims: dict) -> Path:
    html = render(load_verdicts(verdicts_path), claims)
    atomic_write(out, html.encode())
    return out
