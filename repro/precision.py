"""Whether bf16 is fast on this machine, what to do where it is not, and which precision a verdict's runs used.

Every shipped quick profile declares `precision: bf16`: on CPUs with AMX or avx512_bf16 (and on GPUs) a bf16
step is 2-4x faster than fp32, but on a CPU with AVX2 only bf16 is emulated and a matmul runs at about a
hundredth of fp32's speed (2 against 159 GFLOP/s on an AMD EPYC), so a bf16 run takes 10-13x fp32's time.

Where bf16 is slow, a variant that declares bf16 trains as its fp32 twin (every arm in fp32: other run keys,
never mixed with bf16 runs; repro.plan.twin_precision decides, from what is stored and, when training, this
probe). A verdict reads the stored results alone, so the shipped bf16 results are judged alike everywhere.
REPRO_PRECISION (`repro run --precision`) sets every arm's precision for planning and training, and then there is
no twin; a registered claim's confirmatory verdict is judged without it (as_declared), and each verdict says which
precision its runs used (`used_precision`).
"""
from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import os
import time
from pathlib import Path

import torch

from .spec import SpecError

PRECISIONS = ("fp32", "bf16")
SLOW_ABOVE = 1.5  # bf16 counts as slow where its matmul takes over 1.5x fp32's time (emulated: ~50-100x)
PROBE_SHAPE = (256, 1024, 1024)  # (batch, in, out) of the probe's linear layer: an MLP layer's size


class PrecisionError(SpecError):
    """REPRO_PRECISION (or --precision) is not a precision: one line, as a spec error is."""


_DECLARED = contextvars.ContextVar("precision_as_declared", default=False)


@contextlib.contextmanager
def as_declared():
    """Within it REPRO_PRECISION is not read: every arm at its spec's precision, or the fp32 twin by
    repro.plan.twin_precision's fixed rule (from what is stored). A confirmatory verdict's runs are its registered
    spec's; a precision set when judging would choose among the stored runs after seeing them (the bf16 or the fp32
    ones), or make every verdict NOT RUN ("stale"). repro.verdict.judge_folder judges the registered rule within it."""
    token = _DECLARED.set(True)
    try:
        yield
    finally:
        _DECLARED.reset(token)


def override() -> str | None:
    """The precision REPRO_PRECISION asks every arm to use, or None (each arm's own; always None in as_declared)."""
    value = "" if _DECLARED.get() else os.environ.get("REPRO_PRECISION", "").strip()
    if not value:
        return None
    if value not in PRECISIONS:
        raise PrecisionError(f"REPRO_PRECISION: expected one of {', '.join(PRECISIONS)}, got {value[:20]!r}")
    return value


def apply_override(arm, twin: str | None = None):
    """The arm with REPRO_PRECISION's precision if one is set, else with `twin`'s (repro.plan.twin_precision),
    else as declared (the plan calls this for every arm)."""
    chosen = override() or twin
    return arm if chosen is None or arm.precision == chosen else arm.model_copy(update={"precision": chosen})


def is_slow(device) -> bool:
    """Whether bf16 is slow here (a CPU without native bf16, by the remembered probe)."""
    return torch.device(device).type == "cpu" and bf16_slowdown(device) > SLOW_ABOVE


def probe_path() -> Path:
    return Path(os.environ.get("REPRO_CACHE", ".cache")) / "precision-probe.json"


def machine_id() -> str:
    """What decides bf16's speed: the CPU model and its bf16 instructions, the torch build, the thread count."""
    model, flags = "", set()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name") and not model:
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                break
    except OSError:
        import platform
        model = platform.processor() or platform.machine()
    bf16_flags = sorted(flags & {"avx512_bf16", "amx_bf16", "amx_tile", "avx512f", "avx2"})
    return f"{model} [{' '.join(bf16_flags)}] torch {torch.__version__}, {torch.get_num_threads()} threads"


def measure_bf16_slowdown() -> float:
    """bf16 autocast time over fp32 time of one linear layer's forward on this CPU (a fraction of a second;
    where bf16 is emulated the bf16 side stops after one call, which already says enough)."""
    n, k, m = PROBE_SHAPE
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(n, k, generator=g), torch.randn(m, k, generator=g)

    def seconds(precision: str, reps: int) -> float:
        best = float("inf")
        for _ in range(reps + 1):  # the first call warms up (allocations, kernel choice)
            start = time.perf_counter()
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
                torch.nn.functional.linear(x, w)
            best = min(best, time.perf_counter() - start)
            if best > 0.2:  # emulated bf16: one more call would add nothing
                break
        return best

    return seconds("bf16", 3) / max(seconds("fp32", 3), 1e-9)


def bf16_slowdown(device) -> float:
    """bf16 time over fp32 time here, measured once per machine and remembered in .cache/precision-probe.json.
    On a GPU that supports bf16 (every one since Ampere) it is taken as fast, with no probe."""
    device = torch.device(device)
    if device.type == "cuda":
        return 0.5 if torch.cuda.is_bf16_supported() else 10.0
    path, key = probe_path(), machine_id()
    try:
        known = json.loads(path.read_text())
    except (OSError, ValueError):
        known = {}
    entry = known.get(hashlib.sha256(key.encode()).hexdigest()[:16]) if isinstance(known, dict) else None
    if isinstance(entry, dict) and isinstance(entry.get("bf16_over_fp32"), (int, float)):
        return float(entry["bf16_over_fp32"])
    slowdown = measure_bf16_slowdown()
    known = known if isinstance(known, dict) else {}
    known[hashlib.sha256(key.encode()).hexdigest()[:16]] = {"machine": key, "bf16_over_fp32": round(slowdown, 3),
                                                            "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(known, indent=1))
        tmp.replace(path)
    except OSError:
        pass  # an unwritable cache only means probing again next time
    return slowdown


def slow_bf16_warning(runs: list, device) -> str | None:
    """The warning `repro run` prints before training bf16 runs where bf16 is slow, else None."""
    bf16 = [r for r in runs if r.arm.precision == "bf16"]
    if not bf16 or torch.device(device).type != "cpu":
        return None
    slowdown = bf16_slowdown(device)
    if slowdown <= SLOW_ABOVE:
        return None
    return (f"warning: bf16 is slow on this CPU (no native bf16: a bf16 matmul takes {slowdown:.0f}x fp32's time "
            f"here, measured once into {probe_path()}); the {len(bf16)} bf16 run(s) to train will take several times "
            f"(the shipped MNIST quick profiles measured 10-13x) as long as in fp32. They are bf16 because "
            "REPRO_PRECISION (--precision) asks for it, or because they are a later sequential look of a variant "
            "whose first seeds are stored in bf16 (an arm never mixes precisions). To train in fp32 instead: "
            "REPRO_PRECISION=fp32 for `repro run` (or `repro run --precision fp32`): other run keys, the variant's "
            "fp32 twin, which its verdict reads where its bf16 runs of the profile's seeds are not all stored, each "
            "verdict naming its precision")


def twin_note(jobs: list, device) -> str | None:
    """What `repro run` says before training claim variants as their fp32 twins (repro.plan.twin_precision), or None."""
    twins = sorted({f"{j.claim} [{j.variant}]" for j in jobs if j.twin})
    if not twins:
        return None
    return (f"note: bf16 is slow on this CPU (a bf16 matmul takes {bf16_slowdown(device):.0f}x fp32's time here, "
            f"measured once into {probe_path()}), so {len(twins)} claim variant(s) that declare bf16 and whose bf16 "
            f"runs are not all stored train in fp32 instead, every arm of each: {', '.join(twins)}. Their verdicts "
            "come from these fp32 runs and say so; `--precision bf16` trains the declared precision instead")


def before_training(jobs: list, device) -> list[str]:
    """What `repro run` (and `--until-decided`, once) says about precision before training `jobs` (repro.plan.Job):
    which variants train as fp32 twins, and the cost of bf16 runs where bf16 is slow."""
    todo = [j for j in jobs if not j.path.exists()]
    return [line for line in (twin_note(todo, device), slow_bf16_warning([j.run for j in todo], device)) if line]


def used_precision(results: dict[str, list[dict]]) -> str:
    """Which precision a verdict's stored runs used: one word where every arm agrees, else per arm; an arm whose
    runs differ (never by construction: the precision is in each run's key) is said to mix them."""
    per_arm = {arm: sorted({r.get("run", {}).get("arm", {}).get("precision", "?") for r in rs})
               for arm, rs in results.items()}
    mixed = [f"arm {arm} mixes {' and '.join(p)} runs" for arm, p in per_arm.items() if len(p) > 1]
    if mixed:
        return "; ".join(mixed)
    words = {arm: p[0] for arm, p in per_arm.items() if p}
    if len(set(words.values())) == 1:
        return next(iter(words.values()))
    return ", ".join(f"{arm} {p}" for arm, p in words.items())
