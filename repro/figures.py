"""The report's figures: small matplotlib (Agg) plots returned as inline PNG data URIs.

Each function takes plain numbers (a verdict dict, per-epoch records) and draws them; none
computes a statistic. Each returns None when there is nothing worth drawing.
"""
from __future__ import annotations

import base64
import io
import math
import re
import textwrap

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
# Labels are arm names and metrics from specs and verdicts.json: text, never TeX ("$\\frac" would raise mid-report)
matplotlib.rcParams["text.parse_math"] = False
import matplotlib.pyplot as plt  # noqa: E402

from .wording import estimate_of, number, same_boundary  # noqa: E402,F401  (the report reads them from here too)

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
REFERENCE = "#b8860b"  # the source's reported number
STYLE = {"font.size": 7.5, "axes.titlesize": 8, "axes.labelsize": 7.5, "legend.fontsize": 7,
         "xtick.labelsize": 7, "ytick.labelsize": 7, "axes.spines.top": False, "axes.spines.right": False}
CLAIMED_SIDE = {"less": "claim: < 0", "greater": "claim: > 0", "equivalent": "claim: within the margin",
                "matches": "claim: within the tolerance", "at_least": "claim: at least the bound"}


def metric_key(metric: str) -> str:
    """The per-epoch record key behind a check's metric ("train_loss:settle" -> "train_loss")."""
    return re.split(r"[:@ ]", metric, maxsplit=1)[0]


def finite(values) -> list[float]:
    return [float(v) for v in values or [] if isinstance(v, (int, float)) and math.isfinite(v)]


def to_png(fig) -> str:
    """The figure as an inline PNG of at most 256 colours (a line plot needs no more; 2.7x smaller than
    matplotlib's truecolour PNG, which keeps the committed page under 2 MB)."""
    from PIL import Image
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    image = Image.open(buf).convert("RGB").quantize(colors=256, method=Image.Quantize.MEDIANCUT)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def arm_colors(arms) -> dict[str, str]:
    return {arm: PALETTE[i % len(PALETTE)] for i, arm in enumerate(arms)}


def reference_line(ax, verdict: dict, horizontal: bool = True) -> None:
    """The source's number (a "matches" check's `value`), with its tolerance band when given."""
    value, tol = verdict.get("value"), verdict.get("tolerance")
    if not isinstance(value, (int, float)):
        return
    line, span = (ax.axhline, ax.axhspan) if horizontal else (ax.axvline, ax.axvspan)
    line(value, color=REFERENCE, ls="--", lw=1.2, label=f"source: {value:g}", zorder=2)
    if isinstance(tol, (int, float)) and tol > 0:
        span(value - tol, value + tol, color=REFERENCE, alpha=0.12, lw=0, zorder=1)


def per_seed(verdict: dict, colors: dict[str, str]) -> str | None:
    """Left: every seed's value per arm (the check's arms, then precondition-only arms such as the
    teacher), bar = mean, a seed's values joined across arms, the source's number as a reference.
    Right: the tested quantity with its interval."""
    values = dict(verdict.get("values") or {})
    for pre in verdict.get("preconditions") or []:
        for arm, vs in (pre.get("values") or {}).items():
            values.setdefault(arm, vs)
    if not any(finite(vs) for vs in values.values()):
        return None
    tested = estimate_of(verdict)
    checked = verdict.get("arms") or []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2 if tested else 1, figsize=(5.6 if tested else 3.6, 2.4),
                                 gridspec_kw={"width_ratios": [1.6, 1]} if tested else None, squeeze=False)
        ax = axes[0][0]
        arms = list(values)
        compared = [a for a in checked if a in values]
        lengths = {len(values[a]) for a in compared}
        paired = is_paired(verdict)
        if paired and len(compared) == 2 and len(lengths) == 1:  # the check pairs by seed: join each seed's values
            for i in range(lengths.pop()):
                ax.plot([arms.index(a) for a in compared], [values[a][i] for a in compared],
                        color="#bbb", lw=0.7, zorder=2)
        observed = verdict.get("observed") if isinstance(verdict.get("observed"), dict) else {}
        for i, arm in enumerate(arms):
            vs = finite(values[arm])
            ax.scatter([i] * len(vs), vs, s=22, color=colors.get(arm, "#555"), alpha=0.9 if arm in checked else 0.5,
                       zorder=3, edgecolor="white", linewidth=0.5)
            if vs:
                ax.hlines(sum(vs) / len(vs), i - 0.28, i + 0.28, color="black", lw=1.8, zorder=4)
            if not paired and arm in compared and len(vs) >= 2:  # independent samples: each its own interval
                mean, low, high = mean_interval(vs)
                ax.errorbar([i + 0.2], [mean], yerr=[[mean - low], [high - mean]], fmt="none", ecolor="black",
                            capsize=3, lw=1, zorder=4)
        reference_line(ax, verdict)
        per_arm = verdict.get("value")
        if isinstance(per_arm, list) and len(per_arm) == len(checked):  # one source number per arm
            for arm, value in zip(checked, per_arm):
                if number(value) and arm in arms:
                    i = arms.index(arm)
                    ax.hlines(value, i - 0.4, i + 0.4, color=REFERENCE, ls="--", lw=1.2, zorder=2,
                              label="source" if arm == checked[0] else None)
        ax.set_xticks(range(len(arms)), [f"{a}\n(observed)" if a in observed else a if a in checked
                                         else f"{a}\n(precondition)" for a in arms])
        ax.set_xlim(-0.6, len(arms) - 0.4)
        ax.set_ylabel(verdict.get("metric", ""))
        ax.set_title("per seed (bar = mean; lines join a seed)" if paired else
                     "independent values (bar = mean, whisker = its 95% CI)")
        ax.grid(axis="y", alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", frameon=False)
        if tested:
            interval(axes[0][1], verdict, values, *tested)
        fig.tight_layout()
        return to_png(fig)


def is_paired(verdict: dict) -> bool:
    """Whether the check paired the arms by seed (as the verdict records it; an older verdict, by its test)."""
    if isinstance(verdict.get("paired"), bool):
        return verdict["paired"]
    return str(verdict.get("test", "")).startswith("paired")


def mean_interval(values: list[float]) -> tuple[float, float, float]:
    """An arm's mean with its 95% t interval: a picture of one sample's spread, not the check's test (the
    check's own interval is the right-hand panel)."""
    import scipy.stats
    n, mean = len(values), sum(values) / len(values)
    sd = math.sqrt(sum((x - mean) ** 2 for x in values) / (n - 1))
    half = float(scipy.stats.t.ppf(0.975, n - 1)) * sd / math.sqrt(n)
    return mean, mean - half, mean + half


def interval(ax, verdict: dict, values: dict, what: str, est: float, lo: float, hi: float, ref: float) -> None:
    """The tested quantity, its interval, the reference it is compared with and the margin or tolerance."""
    level = verdict.get("ci_level") or 1 - 2 * (verdict.get("alpha") or 0.025)  # a hand-made verdict may lack it
    band = next((b for b in (verdict.get("margin"), verdict.get("tolerance")) if number(b) and b > 0), None)
    if band:
        ax.axhspan(ref - band, ref + band, color="#999", alpha=0.15, lw=0, label=f"±{band:g}")
    ax.axhline(ref, color="#666", lw=0.8, label=f"reference {ref:g}" if ref else None)
    if ref or band:  # beside the panel: inside, it would cover the interval
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    arms = verdict.get("arms") or []
    if len(arms) >= 2 and what.replace(" ", "") == f"{arms[0]}-{arms[1]}" and is_paired(verdict):
        d = [x - y for x, y in zip(values.get(arms[0], []), values.get(arms[1], [])) if number(x) and number(y)]
        ax.scatter([0] * len(d), d, s=16, color="#888", zorder=3)
    ax.errorbar([0.3], [est], yerr=[[est - lo], [hi - est]], fmt="o", color="black", capsize=4, zorder=4)
    ax.set_xlim(-0.6, 0.9)
    side = verdict.get("hypothesis") or CLAIMED_SIDE.get(verdict.get("check"), "")
    ax.set_xticks([0.3], [f"claim: {side}" if verdict.get("hypothesis") else side])
    ax.set_title(f"{what}, {level:.0%} CI")
    ax.grid(axis="y", alpha=0.3)


def series(run: list[dict], key: str) -> tuple[list[float], list[float]]:
    """(x, y) of one run: one point per epoch, or one per logged batch (a list per epoch, e.g. step_acc),
    placed at its fraction of the epoch and smoothed over about 1/10 epoch."""
    xs, ys = [], []
    for i, e in enumerate(run):
        epoch, value = e.get("epoch", i + 1), e.get(key)
        if isinstance(value, list):
            steps = finite(value)
            width = max(1, len(steps) // 10)
            smooth = [sum(steps[max(0, j - width + 1): j + 1]) / len(steps[max(0, j - width + 1): j + 1])
                      for j in range(len(steps))]
            xs += [epoch - 1 + (j + 1) / len(steps) for j in range(len(steps))]
            ys += smooth
        elif isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            xs.append(epoch)
            ys.append(float(value))
    return xs, ys


def learning_curves(curves: dict[str, list[list[dict]]], keys: list[str], colors: dict[str, str],
                    verdict: dict, max_panels: int = 3) -> str | None:
    """curves: arm -> one list of per-epoch records per seed. One panel per key: the mean over seeds
    and the min-max band (seeds are aligned by position: they log the same epochs and batches)."""
    panels = []
    for key in keys:
        drawn = {arm: [series(run, key) for run in runs] for arm, runs in curves.items()}
        drawn = {arm: [s for s in ss if len(s[0]) >= 2] for arm, ss in drawn.items()}
        if any(drawn.values()):
            panels.append((key, drawn))
    panels = panels[:max_panels]
    if not panels:
        return None
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, len(panels), figsize=(1.95 * len(panels) + 0.4, 2.2), squeeze=False)
        for ax, (key, drawn) in zip(axes[0], panels):
            for arm, ss in drawn.items():
                if not ss:
                    continue
                n = min(len(x) for x, _ in ss)
                xs, columns = ss[0][0][:n], list(zip(*(y[:n] for _, y in ss)))
                color = colors.get(arm, "#555")
                ax.plot(xs, [sum(c) / len(c) for c in columns], color=color, lw=1.4, label=arm)
                ax.fill_between(xs, [min(c) for c in columns], [max(c) for c in columns], color=color, alpha=0.18, lw=0)
            if key == metric_key(verdict.get("metric", "")):
                reference_line(ax, verdict)
            ax.set_title(f"{key} (per batch, smoothed)" if key == "step_acc" else key)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=5))
            ax.grid(alpha=0.3)
        handles, labels = axes[0][0].get_legend_handles_labels()
        for ax in axes[0][1:]:  # arms missing from the first panel
            for h, l in zip(*ax.get_legend_handles_labels()):
                if l not in labels:
                    handles.append(h)
                    labels.append(l)
        fig.tight_layout(rect=(0, 0, 1, 0.88))
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, bbox_to_anchor=(0.5, 1.0))
        return to_png(fig)


def by_temperature(verdict: dict, temperatures: dict[str, float], colors: dict[str, str]) -> str | None:
    """The check's metric against each arm's distillation temperature: seeds as dots, mean as a line."""
    values = verdict.get("values") or {}
    points = sorted((t, arm) for arm, t in temperatures.items() if arm in values and finite(values[arm]))
    if len({t for t, _ in points}) < 2:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 2.3))
        means = []
        for t, arm in points:
            vs = finite(values[arm])
            ax.scatter([t] * len(vs), vs, s=18, color=colors.get(arm, "#555"), alpha=0.8, zorder=3,
                       edgecolor="white", linewidth=0.5)
            means.append(sum(vs) / len(vs))
        ax.plot([t for t, _ in points], means, color="black", lw=1.2, marker="_", ms=12, zorder=4, label="mean")
        reference_line(ax, verdict)
        ts = sorted({t for t, _ in points})
        if min(ts) > 0 and max(ts) / min(ts) > 5:
            ax.set_xscale("log")
        ax.set_xticks(ts, [f"{t:g}" for t in ts])
        ax.minorticks_off()
        ax.set_xlabel("temperature T")
        ax.set_ylabel(verdict.get("metric", ""))
        ax.set_title(f"{verdict.get('metric', '')} against T")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="best")
        fig.tight_layout()
        return to_png(fig)


def sequential_path(verdict: dict) -> str | None:
    """A group-sequential claim's looks: the p for and against the claim at each look's seeds, on a log
    scale, against the boundary each look was tested at (crossing it decides)."""
    looks, seq = verdict.get("looks") or [], verdict.get("sequential") or {}
    if not looks or not seq:
        return None
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(3.4, 3.0))
        planned = seq.get("looks", [])
        bounds = seq.get("boundaries", [])
        against = seq.get("boundaries_refute", bounds)
        # each side is tested at its own boundary (an exact support side lifts its own): a p against the claim
        # drawn beside the support boundary alone reads as crossed when it is not
        if len(bounds) == len(against) and all(map(same_boundary, bounds, against)):
            ax.plot(planned, bounds, color="black", ls="--", lw=1, marker="_", ms=14, mew=2,
                    label="boundary (alpha spent at the look)")
        else:
            ax.plot(planned, bounds, color=PALETTE[2], ls="--", lw=1, marker="_", ms=14, mew=2,
                    label="boundary for the claim")
            ax.plot(planned, against, color=PALETTE[1], ls=":", lw=1, marker="_", ms=14, mew=2,
                    label="boundary against it")
        for key, color, label in (("p", PALETTE[2], "p for the claim"), ("p_refute", PALETTE[1], "p against it")):
            pts = [(look["seeds"], look[key]) for look in looks if number(look.get(key)) and look[key] > 0]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=4, color=color, lw=1.2, label=label)
        ax.set_yscale("log")
        # plain numbers: log ticks are mathtext ("$10^{-2}$"), which text.parse_math = False prints raw
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda y, _: f"{y:g}"))
        ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xticks(planned)
        ax.set_xlabel("seeds per arm at the look")
        ax.set_ylabel("p")
        decided = seq.get("decided_at")
        # crossing its own boundary need not end it (Holm's threshold may send it on): the look and its seeds
        crossed = looks[decided - 1] if isinstance(decided, int) and 0 < decided <= len(looks) else None
        ax.set_title(f"crossed at look {decided} ({crossed.get('seeds')} seeds)"
                     + (f"; {len(looks)} of {len(planned)} looks taken" if len(looks) > decided else "")
                     if crossed else f"undecided after {len(looks)} of {len(planned)} looks")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2)  # off the path
        fig.tight_layout()
        return to_png(fig)


VERDICT_COLOR = {"REPRODUCED": "#0a6b2a", "NOT REPRODUCED": "#b42318", "INCONCLUSIVE": "#b07d00", "NOT RUN": "#888"}


def forest(verdicts: list[dict], title: str) -> str | None:
    """One Holm family at a glance: a row per claim with its tested quantity and interval, each on its own
    claim's scale (a difference against 0 or its margin, a matched number against its band: the claims
    measure different things, so no axis is shared), the region where the claim holds shaded, its threshold
    dashed, the point coloured by the verdict and the verdict's words beside it."""
    from .wording import claimed_region, wording
    if not verdicts:
        return None
    n = len(verdicts)
    with plt.rc_context({**STYLE, "font.size": 8.5, "xtick.labelsize": 7.5}):
        fig, axes = plt.subplots(n, 1, figsize=(12.5, 0.9 + 0.42 * n), squeeze=False)
        fig.subplots_adjust(left=0.25, right=0.66, top=1 - 0.55 / (0.9 + 0.42 * n), bottom=0.35 / (0.9 + 0.42 * n),
                            hspace=0.9)
        for ax, v in zip(axes[:, 0], verdicts):
            color = VERDICT_COLOR.get(v.get("status"), "#888")
            tested, region = estimate_of(v), claimed_region(v)
            ax.text(-0.02, 0.62, f"{v.get('claim')} [{v.get('variant')}]", transform=ax.transAxes, ha="right",
                    va="center", fontsize=8.5)
            ax.text(-0.02, 0.0, tested[0] if tested else v.get("metric", ""), transform=ax.transAxes, ha="right",
                    va="center", fontsize=7, color="#6b7280")
            # wrapped to the room right of the axes: one long reason would widen the whole image and shrink it
            ax.text(1.02, 0.5, "\n".join(textwrap.wrap(wording(v), 64)), transform=ax.transAxes, ha="left",
                    va="center", fontsize=8, color=color, linespacing=1.1)
            ax.set_yticks([])
            for side in ("left", "right", "top"):
                ax.spines[side].set_visible(False)
            if not tested:
                ax.set_xticks([])
                ax.text(0.5, 0.5, "no estimate", transform=ax.transAxes, ha="center", va="center", color="#888")
                continue
            _, est, lo, hi, ref = tested
            marks = [x for x in (region[1], region[2]) if number(x)] if region else [ref]
            if region and region[0] == "sign" and number(v.get("margin")):  # a directional claim's refuting margin
                marks.append(ref + (v["margin"] if region[2] == math.inf else -v["margin"]))
            left, right = min([lo, est, *marks]), max([hi, est, *marks])
            pad = 0.12 * (right - left or abs(right) or 1.0)
            ax.set_xlim(left - pad, right + pad)
            if region:
                x0, x1 = ax.get_xlim()
                ax.axvspan(max(region[1], x0), min(region[2], x1), color=VERDICT_COLOR["REPRODUCED"], alpha=0.1, lw=0)
            for x in marks:
                ax.axvline(x, color="#333", ls="--", lw=0.9)
            ax.errorbar([est], [0.5], xerr=[[est - lo], [hi - est]], fmt="o", color=color, ms=5, capsize=3, lw=1.6)
            ax.set_ylim(0, 1)
            ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(nbins=4))
            ax.tick_params(axis="x", length=2, pad=1)
        fig.suptitle(title, x=0.02, ha="left", fontsize=9.5)
        return to_png(fig)
