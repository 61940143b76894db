"""What a plan will cost before it is paid: `repro run --dry-run` lists the runs and their minutes, here and on a GPU.

Each run to train gets two numbers, each marked "measured" or "estimated from ...":

here (the device `repro run` would train on), best first:
  1. measured: stored timings (`wall_s` of result files) of this machine kind (the CPU or GPU model; the thread
     count may differ and is shown): another seed of the same arm, its seconds as they are; else a run of the same
     model, dataset, batch size, precision and teacher or none, its seconds per epoch times this run's epochs;
  2. measured, with `--probe`: one epoch of one such run, trained here and thrown away (its teacher, if any, a
     freshly built net of the teacher's architecture: a step costs the same whatever the weights); where an epoch
     would take over a minute, a few steps on a stand-in of the data's shape and size per image, scaled to the
     epoch's steps and test images;
  3. estimated from stored timings of the same arm or model on another machine (shown), scaled by the two machine
     kinds' speed ratio where arms of the same model were timed on both (`speed_ratio`);
  4. estimated from FLOPs: the run's floating-point work (a forward pass of its model on one sample, counted by
     torch's FlopCounterMode: 3 of them per training image, 1 per test image per scored epoch, plus its teacher's
     forward passes, per step or once where its soft targets are cached) at the rate this machine kind reached in
     its stored runs (those of the same model and precision first; fp32 at half bf16's rate where only the other
     precision is stored);
  5. otherwise "?".
on a GPU: stored timings of a GPU (measured), else the FLOP model at the rate of stored GPU runs, else at the rate
of the paper ViT epoch that `make gpu-check` measured (a committed benchmarks/gpu-check-*.json), else at an
assumed H100 rate (GPU_ASSUMED, labelled as an assumption), each plus a fixed cost per step.
A run shared by several claims (a teacher) is counted once; the totals split measured from estimated.

Also the convergence rule `repro run` and the verdicts warn with (`unconverged`).
"""
from __future__ import annotations

import functools
import json
import math
import time
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

UNCONVERGED_DROP = 0.05  # relative fall of the training loss over the last epoch that counts as still learning


def unconverged(result: dict) -> str | None:
    """Why a finished run looks unconverged, or None. The rule: over its last epoch the mean training loss
    still fell by more than 5% of its value (train_loss[-2] - train_loss[-1] > 0.05 train_loss[-2]): a run
    stopped while it was still learning fast, whose test numbers measure the budget more than the method.
    Runs of one epoch, diverged runs and observed values are not judged."""
    epochs = result.get("epochs") or []
    if result.get("status") != "done" or len(epochs) < 2:
        return None
    try:
        before, last = float(epochs[-2]["train_loss"]), float(epochs[-1]["train_loss"])
    except (KeyError, TypeError, ValueError):
        return None
    if not (math.isfinite(before) and math.isfinite(last)) or before <= 0:
        return None
    drop = (before - last) / before
    if drop > UNCONVERGED_DROP:
        return (f"training loss still fell {drop:.0%} in its last epoch ({before:.4g} -> {last:.4g}, epoch "
                f"{len(epochs)}): unconverged by the rule of a fall over {UNCONVERGED_DROP:.0%}")
    return None




ROOT = Path(__file__).resolve().parents[1]
GPU_CHECKS = ROOT / "benchmarks"  # committed `make gpu-check` summaries, gpu-check-<device>.json (README: GPU check)
# fp32 against bf16 on a CPU with native bf16: ViT-tiny training steps on an AMD EPYC with avx512_bf16 (1 thread)
# took 1.95x (patch 8 at 32 px, batch 128) and 2.1x (patch 16 at 224 px, batch 16) bf16's time in fp32.
CPU_FP32_SLOWDOWN = 2.0
# No GPU has run `make gpu-check` yet: the rate a GPU estimate uses until one does (an assumption, said so on
# every line that uses it). ViT-tiny is narrow (192 wide), so an H100 reaches a fraction of its 67 TFLOP/s fp32
# peak (TF32 is off: torch's default); 15 TFLOP/s is about 2,000 ViT-tiny 224 px training images a second.
GPU_ASSUMED = {"device": "an NVIDIA H100", "fp32": 15e12, "bf16": 40e12, "step_s": 4e-4}
PROBE_FULL_EPOCH_S = 60.0  # --probe trains a whole epoch up to this estimate; beyond, PROBE_STEPS steps, scaled
PROBE_STEPS = 3
# Real sizes (train, test, image shape, classes): the FLOP model and the stand-ins need no data on disk.
SIZES = {"mnist": (60000, 10000, (1, 28, 28), 10), "fashion_mnist": (60000, 10000, (1, 28, 28), 10),
         "kmnist": (60000, 10000, (1, 28, 28), 10), "cifar10": (50000, 10000, (3, 32, 32), 10),
         "cifar100": (50000, 10000, (3, 32, 32), 100), "svhn": (73257, 26032, (3, 32, 32), 10),
         "hymenoptera": (244, 153, (3, 224, 224), 2)}


def _normal(arm: dict) -> dict:
    """An arm's config without its default values (as run keys hold it), so a field added since a result was
    stored does not make its arm look different."""
    from .spec import Arm
    defaults = {name: f.get_default(call_default_factory=True) for name, f in Arm.model_fields.items()}
    defaults = {k: v.model_dump(mode="json") if hasattr(v, "model_dump") else v for k, v in defaults.items()}
    return {k: v for k, v in arm.items() if k not in defaults or v != defaults[k]}


def _signature(arm: dict, loose: bool) -> str:
    """An arm's config as a key: whole (rule 1), or only what sets the cost of a step (rule 2)."""
    arm = _normal(arm)
    if not loose:
        return json.dumps(arm, sort_keys=True)
    keep = ("model", "data", "batch_size", "precision", "resolution", "compile", "cache_teacher_logits", "teacher_view")
    return json.dumps({k: arm.get(k) for k in keep}, sort_keys=True)


def kind_of(device: str) -> str:
    """The machine kind of a `device` string ("CPU AMD EPYC, 1 threads" -> "CPU AMD EPYC"): timings of one kind
    estimate each other (the thread count is shown, not matched)."""
    return device.split(", ")[0] if device.startswith("CPU") else device


def is_gpu(device: str) -> bool:
    return not device.startswith("CPU") and device != "?"


# --- stored timings ---------------------------------------------------------------------------------------------

@dataclass
class Stored:
    """One stored run's timing: what it was, how long it took, where."""
    run: dict
    seconds: float
    epochs: int
    device: str
    whole: str = ""  # its arm's signatures (rules 1 and 2), computed once
    cost: str = ""


def stored_timings(results_root: Path) -> list[Stored]:
    """Every finished run's timing in the store, each run once (a run shared by claims is stored in each of their
    folders: counted per copy, a teacher of five claims weighed five times in a mean). Unreadable files are
    skipped: a dry run reads, it does not judge."""
    out, seen = [], set()
    for path in sorted(Path(results_root).glob("*/*/*/*/seed*-*.json")):
        try:
            payload = json.loads(path.read_text())
            run, seconds, epochs = payload["run"], float(payload["wall_s"]), len(payload["epochs"])
            run["arm"]["model"]["name"]  # read by the costing below: a file without it is no run's timing
            whole, cost = _signature(run["arm"], False), _cost_key(run)
            device = str(payload.get("device", "?"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError):  # a file of any shape: skipped
            continue
        key = str(payload.get("key") or path)
        if key not in seen and math.isfinite(seconds) and seconds > 0 and epochs:
            seen.add(key)
            out.append(Stored(run, seconds, epochs, device, whole, cost))
    return out


def _cost_key(run: dict) -> str:
    return _signature(run["arm"], True) + f"|teacher={run.get('teacher') is not None}"


def from_stored(run, timings: list[Stored], where) -> tuple[float, str, str] | None:
    """(seconds, how, device) from stored runs of this arm (rule 1) or of its model and data (rule 2) on the devices
    `where(device)` accepts, or None."""
    arm = run.arm.model_dump(mode="json")
    whole = _signature(arm, False)
    same = [t for t in timings if where(t.device) and t.whole == whole]
    if same:
        return (sum(t.seconds for t in same) / len(same), f"{len(same)} stored run(s) of this arm", same[0].device)
    key = _signature(arm, True) + f"|teacher={run.teacher is not None}"
    similar = [t for t in timings if where(t.device) and t.cost == key]
    if similar:
        per_epoch = sum(t.seconds / t.epochs for t in similar) / len(similar)
        return (per_epoch * run.arm.epochs, f"{len(similar)} stored run(s) of this model and data, per epoch x "
                f"{run.arm.epochs}", similar[0].device)
    return None


def speed_ratio(run, timings: list[Stored], there: str, here: str) -> tuple[float, str] | None:
    """(seconds here per second there, how) for `run`: the geometric mean, over the arms timed on both machine kinds
    (each arm by rule 2's key) in `run`'s precision, of their per-epoch seconds here / there; the arms of `run`'s
    model as configured (widths and all) if any, else of its model family; None where no arm was timed on both.
    One machine's seconds taken as another's were off by 2x (an AMD EPYC run costed for an Intel Xeon that trains
    the same MLP in half its time); a small BN MLP's ratio is not an 800-800 MLP's, hence the configured model."""
    model, precision = run.arm.model.model_dump(mode="json"), run.arm.precision
    for same, what in ((lambda m: m == model, f"{model['name']} arm(s) of its widths"),
                       (lambda m: m["name"] == model["name"], f"{model['name']} arm(s)")):
        per_epoch: dict = {}
        for t in timings:
            machine, arm = kind_of(t.device), t.run["arm"]
            if machine in (there, here) and same(arm["model"]) and arm.get("precision", "fp32") == precision:
                per_epoch.setdefault(t.cost, {}).setdefault(machine, []).append(t.seconds / t.epochs)
        logs = [math.log(sum(k[here]) / len(k[here]) / (sum(k[there]) / len(k[there])))
                for k in per_epoch.values() if there in k and here in k]
        if logs:
            return math.exp(sum(logs) / len(logs)), f"this machine's speed against it on {len(logs)} {what} timed on both"
    return None


# --- the FLOP model ---------------------------------------------------------------------------------------------

def data_size(arm) -> tuple[int, int, tuple[int, int, int], int] | None:
    """(training images, test images, image shape, classes) of an arm's data, from the known sizes and its options;
    None for a dataset of unknown size."""
    p = arm.data.params
    if arm.data.name == "synthetic":
        n, n_test, shape, classes = p.get("n_train", 512), p.get("n_test", 256), tuple(p.get("shape", (1, 28, 28))), \
            p.get("num_classes", 10)
    elif arm.data.name in SIZES:
        n, n_test, shape, classes = SIZES[arm.data.name]
        if arm.data.name == "hymenoptera":
            shape = (3, p.get("resolution", 224), p.get("resolution", 224))
    else:
        return None
    if arm.data.name != "hymenoptera" and classes > 2:
        for key, sign in (("keep_classes", 1), ("omit_classes", -1)):
            if p.get(key):
                share = len(p[key]) / classes
                n, n_test = (round(n * share), round(n_test * share)) if sign > 0 else \
                    (round(n * (1 - share)), round(n_test * (1 - share)))
    n -= p.get("holdout", 0)
    n = min(n, p.get("train_subset") or n)
    n_test = min(n_test, p.get("test_subset") or n_test)
    return n, n_test, tuple(shape), classes


@functools.lru_cache(maxsize=64)
def _forward_flops(model_json: str, built: tuple, classes: int, fed: tuple) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    from .models import create_model
    model = json.loads(model_json)
    params = {k: v for k, v in model["params"].items() if k != "weights"}  # no download: the cost is the same
    for where in ("meta", "cpu"):  # meta: no memory, no arithmetic; a model whose init needs real numbers: cpu
        try:
            with torch.device(where), torch.no_grad(), FlopCounterMode(display=False) as counter:
                create_model(model["name"], built, classes, **params).eval()(torch.zeros(1, *fed))
            return float(counter.get_total_flops())
        except Exception:
            if where == "cpu":
                raise
    raise AssertionError("unreachable")


def forward_flops(arm, fed_shape=None) -> float | None:
    """FLOPs of one forward pass of the arm's model on one sample (at its own input shape, or `fed_shape` where a
    teacher sees its student's images); None where it cannot be counted."""
    size = data_size(arm)
    if size is None:
        return None
    shape = size[2] if arm.resolution is None else (size[2][0], arm.resolution, arm.resolution)
    model = json.dumps(arm.model.model_dump(mode="json"), sort_keys=True)
    for fed in ([tuple(fed_shape)] if fed_shape else []) + [shape]:
        try:
            return _forward_flops(model, tuple(shape), size[3], fed)
        except Exception:  # a net built for one input size fed another: count it at its own
            continue
    return None


@dataclass
class Work:
    """A run's floating-point work and steps (the FLOP model's unit)."""
    flops: float
    steps: int
    epoch_flops: float


def run_work(run, epochs: int | None = None) -> Work | None:
    """FLOPs of a whole run: per epoch 3 forward passes' worth per training image (forward + backward) and one per
    test image of a scored epoch; its teacher's forward passes on the student's images, every step, or once over
    the training images where its soft targets are cached; the teacher's test logits once."""
    arm = run.arm
    size, student = data_size(arm), forward_flops(arm)
    if size is None or student is None:
        return None
    n, n_test, shape, _ = size
    epochs = arm.epochs if epochs is None else epochs
    fed = shape if arm.resolution is None else (shape[0], arm.resolution, arm.resolution)
    scored = epochs // arm.eval_every + (epochs % arm.eval_every != 0)
    epoch = 3 * n * student
    once = 0.0
    ckpt = arm.teacher_checkpoint
    taught = run.teacher.arm if run.teacher is not None else arm.model_copy(update={"model": ckpt.model}) if ckpt else None
    if taught is not None:
        teacher = forward_flops(taught, fed)
        if teacher is None:
            return None
        if arm.cache_teacher_logits or arm.teacher_view == "fixed":
            once += n * teacher
        else:
            epoch += n * teacher
        once += n_test * teacher
    return Work(epochs * epoch + scored * n_test * student + once, epochs * math.ceil(n / arm.batch_size),
                epoch + n_test * student)


def _run_of(stored: Stored):
    from .spec import RunSpec
    try:
        return RunSpec.model_validate(stored.run)
    except Exception:
        return None


@dataclass
class Rate:
    """FLOP/s a machine kind reached, where from, and a cost per step (GPUs: launch and optimizer overhead)."""
    flops_per_s: dict  # precision -> FLOP/s
    source: str
    measured_on: str
    step_s: float = 0.0

    def seconds(self, run, work: Work) -> float:
        return work.flops / self.flops_per_s[run.arm.precision] + work.steps * self.step_s


def calibrate(run, timings: list[Stored], where, cache: dict) -> Rate | None:
    """The FLOP rate of the stored runs `where(device)` accepts that are most like `run`: same model and precision,
    else same model (the other precision converted), else same precision, else any."""
    rows = []
    for t in timings:
        if not where(t.device):
            continue
        key = json.dumps([t.run, t.epochs], sort_keys=True)
        if key not in cache:
            spec = _run_of(t)
            cache[key] = None if spec is None else run_work(spec, t.epochs)
        if cache[key] is not None:
            rows.append((t, cache[key]))
    if not rows:
        return None
    model, precision = run.arm.model.name, run.arm.precision
    tiers = [lambda t: t.run["arm"]["model"]["name"] == model and t.run["arm"].get("precision", "fp32") == precision,
             lambda t: t.run["arm"]["model"]["name"] == model,
             lambda t: t.run["arm"].get("precision", "fp32") == precision,
             lambda t: True]
    for tier in tiers:
        chosen = [(t, w) for t, w in rows if tier(t)]
        if chosen:
            break
    rates = {}
    for prec in ("fp32", "bf16"):
        same = [(t, w) for t, w in chosen if t.run["arm"].get("precision", "fp32") == prec]
        if same:
            rates[prec] = sum(w.flops for _, w in same) / sum(t.seconds for t, _ in same)
    converted = ""
    if "fp32" not in rates:
        rates["fp32"], converted = rates["bf16"] / CPU_FP32_SLOWDOWN, f"; fp32 at 1/{CPU_FP32_SLOWDOWN:g} of bf16's rate"
    if "bf16" not in rates:
        rates["bf16"], converted = rates["fp32"] * CPU_FP32_SLOWDOWN, f"; bf16 at {CPU_FP32_SLOWDOWN:g}x fp32's rate"
    models = sorted({t.run["arm"]["model"]["name"] for t, _ in chosen})
    precs = sorted({t.run["arm"].get("precision", "fp32") for t, _ in chosen})
    devices = sorted({t.device for t, _ in chosen})
    shown = ", ".join(f"{p} {rates[p] / 1e9:.3g}" for p in ("fp32", "bf16"))
    return Rate(rates, f"{shown} GFLOP/s, the rate of {len(chosen)} stored {'/'.join(models)} "
                f"{'/'.join(precs)} run(s) on {'; '.join(devices)}{converted}", devices[0])


def gpu_check_rate(folder: Path | None = None) -> Rate | None:
    """The GPU rate of the newest committed `make gpu-check` summary whose vit_paper_epoch section measured a paper
    ViT epoch on a GPU (not a dry run), or None."""
    found = []
    for path in sorted(Path(folder or GPU_CHECKS).glob("gpu-check-*.json")):
        try:
            summary = json.loads(path.read_text())
            section, env = summary["sections"]["vit_paper_epoch"], summary["sections"]["environment"]
            rate = float(section["flops_per_epoch"]) / float(section["epoch_s"])
            if env.get("dry_run") or not math.isfinite(rate) or rate <= 0:
                continue
        except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
            continue
        found.append((summary.get("started", ""), path, summary, section, env, rate))
    if not found:
        return None
    _, path, summary, section, env, rate = max(found, key=lambda f: f[0])
    precision = section.get("precision", "fp32")
    rates = {precision: rate, **({"bf16": rate * CPU_FP32_SLOWDOWN} if precision == "fp32" else
                                 {"fp32": rate / CPU_FP32_SLOWDOWN})}
    try:  # the sync-free 800-800 MLP's step: almost all of it is the per-step cost of launches and the optimizer
        loop = summary["sections"]["sync_free_loop"]
        step_s, step_from = min(loop["sync_free"]["epoch_s"][1:]) / loop["steps_per_epoch"], "measured"
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        step_s, step_from = GPU_ASSUMED["step_s"], "assumed"
    return Rate(rates, f"{rate / 1e12:.1f} TFLOP/s {precision}, the rate of the paper ViT epoch `make "
                f"gpu-check` measured on {env.get('device', '?')} ({path.name}; the other precision at "
                f"{CPU_FP32_SLOWDOWN:g}x), plus {step_s * 1e3:.2g} ms a step ({step_from})", env.get("device", "?"), step_s)


def assumed_gpu_rate() -> Rate:
    a = GPU_ASSUMED
    return Rate({"fp32": a["fp32"], "bf16": a["bf16"]},
                f"an ASSUMED rate of {a['device']}: {a['fp32'] / 1e12:g} TFLOP/s fp32, {a['bf16'] / 1e12:g} "
                f"bf16, plus {a['step_s'] * 1e3:g} ms a step (no GPU timing is stored and no benchmarks/gpu-check-*.json "
                "is committed: repro/cost.py GPU_ASSUMED)", f"{a['device']} at an assumed rate", a["step_s"])


# --- estimates ----------------------------------------------------------------------------------------------------

@dataclass
class Estimate:
    seconds: float | None
    measured: bool
    source: str  # "measured: ..." / "estimated from ..." / why there is none
    note: str | None = None  # a long source, said once under the list


class Estimator:
    """Estimates here and on a GPU for the runs of one dry run (calibrations computed once)."""

    def __init__(self, timings: list[Stored], here: str, gpu_rate: Rate | None = None):
        self.timings, self.device = timings, here
        self.cache: dict = {}
        self.gpu_rate = gpu_rate

    def here(self, run) -> Estimate:
        kind = kind_of(self.device)
        hit = from_stored(run, self.timings, lambda d: kind_of(d) == kind)
        if hit:
            return Estimate(hit[0], True, f"measured: {hit[1]} ({hit[2]})")
        # another machine kind's timings, one kind at a time (the most timed first): a mean over two would be neither's
        timed = Counter(kind_of(t.device) for t in self.timings)
        for other in sorted(set(timed) - {kind}, key=lambda k: (-timed[k], k)):
            hit = from_stored(run, self.timings, lambda d, other=other: kind_of(d) == other)
            if hit:
                source = f"estimated from {hit[1]} on another machine ({hit[2]})"
                ratio = speed_ratio(run, self.timings, other, kind)
                if ratio is None:
                    return Estimate(hit[0], False, source)
                return Estimate(hit[0] * ratio[0], False, f"{source}, x {ratio[0]:.2f}: {ratio[1]}")
        return self._by_flops(run, lambda d: kind_of(d) == kind, None, f"no stored timing on {kind} to rate its FLOPs by")

    def gpu(self, run) -> Estimate:
        hit = from_stored(run, self.timings, is_gpu)
        if hit:
            return Estimate(hit[0], True, f"measured: {hit[1]} ({hit[2]})")
        if self.gpu_rate is None:
            self.gpu_rate = gpu_check_rate() or assumed_gpu_rate()
        return self._by_flops(run, is_gpu, self.gpu_rate, "")

    def _by_flops(self, run, where, fallback: Rate | None, none_why: str) -> Estimate:
        work = run_work(run)
        if work is None:
            return Estimate(None, False, "no stored timing of this model and data, and its FLOPs cannot be counted")
        rate = calibrate(run, self.timings, where, self.cache)
        if rate is not None and fallback is not None:  # a GPU rated by stored GPU runs: the same cost per step
            rate.step_s = fallback.step_s
        rate = rate or fallback
        if rate is None:
            return Estimate(None, False, f"no stored timing of this model and data; {none_why}")
        return Estimate(rate.seconds(run, work), False, f"estimated from its {_flops(work.flops)}", rate.source)


def probe(run, device, steps: int = PROBE_STEPS) -> tuple[float, str]:
    """(seconds of one epoch of `run` here, how it was timed), with an untrained teacher of its architecture;
    nothing is stored. A run whose epoch the FLOP model puts over a minute is timed for `steps` steps on a stand-in
    of its data (same image shape and augmentation) and scaled to its steps and test images; a shorter one trains
    one whole epoch of its real data (loaded before the clock starts)."""
    size, work = data_size(run.arm), run_work(run, 1)
    if size is not None and size[0] > 4 * steps * run.arm.batch_size and (
            work is None or work.epoch_flops / 20e9 > PROBE_FULL_EPOCH_S):  # 20 GFLOP/s: a slow core's rate
        return probe_epoch_s(run, device, steps, min(size[1], run.arm.batch_size)), f"a {steps}-step probe here"
    from .nets import dataset_of
    from .teachers import stand_in as untrained_teacher
    from .train import train
    dataset_of(run.arm)
    teacher = untrained_teacher(run, device)
    one = run.model_copy(update={"arm": run.arm.model_copy(update={"epochs": 1, "select": "last"})})
    started = time.perf_counter()
    train(one, device, teacher)
    return time.perf_counter() - started, "a one-epoch probe here"


def stand_in(run, n_train: int, n_test: int, batch: int | None = None, max_side: int | None = None,
             native: bool = False):
    """`run` (and its teacher) on synthetic data of its images' shape and class count, `n_train` training and
    `n_test` test images: the same cost per step without the data on disk. Pretrained weights are not loaded, and
    nothing it learns from another run (init_from, teacher_epoch) is needed. `batch`, `max_side` and `native`
    (no resizing) shrink it further for dry runs of the machinery."""
    from .spec import Component
    _, _, shape, classes = data_size(run.arm)
    if max_side:
        shape = (shape[0], min(shape[1], max_side), min(shape[2], max_side))
    data = Component(name="synthetic", params={"n_train": n_train, "n_test": n_test, "shape": list(shape),
                                               "num_classes": classes})

    def swap(r):
        model = r.arm.model.model_copy(update={"params": {**r.arm.model.params, **(
            {"weights": "none"} if "weights" in r.arm.model.params else {})}})
        arm = r.arm.model_copy(update={"data": data, "model": model, "bias_shift": None, "select": "last",
                                       "teacher_epoch": None, "batch_size": batch or r.arm.batch_size,
                                       **({"resolution": None} if native else {})})
        return r.model_copy(update={"arm": arm, "teacher": swap(r.teacher) if r.teacher else None, "init_from": None})
    return swap(run)


def probe_epoch_s(run, device, steps: int, n_eval: int, warm: bool = False, resume_path: Path | None = None,
                  **shrink) -> float:
    """Seconds of one real epoch of `run` on `device`, from `steps` training steps and `n_eval` test images on a
    stand-in of its data: the training time per step times its steps per epoch, plus the evaluation per image times
    its test images. `warm`: train two such epochs and time the second (a GPU's first steps pay for warm-up);
    `resume_path`: write the per-epoch checkpoint a real run writes."""
    from .nets import dataset_of, predict
    from .teachers import stand_in as untrained_teacher
    from .train import train
    batch = shrink.get("batch") or run.arm.batch_size
    small = stand_in(run, steps * batch, n_eval, **shrink)
    small = small.model_copy(update={"arm": small.arm.model_copy(update={"epochs": 2 if warm else 1})})
    teacher = untrained_teacher(small, device)
    sync = (lambda: __import__("torch").cuda.synchronize()) if device.type == "cuda" else (lambda: None)
    marks = []
    if resume_path is not None:
        resume_path.unlink(missing_ok=True)
    dataset_of(small.arm)
    sync()
    marks.append(time.perf_counter())
    _, model = train(small, device, teacher, on_epoch=lambda m: (sync(), marks.append(time.perf_counter())),
                     resume_path=resume_path)
    sync()
    start = time.perf_counter()
    predict(model, dataset_of(small.arm), small.arm, device)
    sync()
    eval_s = time.perf_counter() - start
    train_s = max(marks[-1] - marks[-2] - eval_s, 0.0)
    n, n_test, _, _ = data_size(run.arm)
    return train_s / steps * math.ceil(n / run.arm.batch_size) + eval_s * n_test / n_eval


def _flops(flops: float) -> str:
    return f"{flops / 1e15:.3g} PFLOP" if flops >= 1e15 else f"{flops / 1e12:.3g} TFLOP"


def span(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.2g} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


def epochs_done(state: Path) -> int:
    """How many epochs an interrupted run's resume file holds (0: none, or a file train() would not resume from)."""
    if not state.is_file():
        return 0
    import torch
    try:
        return len(torch.load(state, weights_only=True, map_location="cpu")["history"])
    except Exception:  # noqa: BLE001 -- damaged or foreign: train() restarts such a run from epoch 1, so 0
        return 0


def dry_run(jobs: list, store, probe_device=None, device=None, tags: dict | None = None) -> list[str]:
    """The lines `repro run --dry-run` prints: every distinct run to train with its estimate here and on a GPU,
    where each comes from, then the totals (measured and estimated apart). A stored teacher whose weights are not
    in the cache (a fresh clone has results, not checkpoints) is retrained for its students, so it is listed too.
    `probe_device`: time an epoch here for runs no timing of this machine kind covers; `tags`: run key -> what is
    added to its line (e.g. " (next look)")."""
    import torch
    from .train import describe_device
    device = torch.device(device or probe_device or "cpu")
    here = describe_device(device)
    estimator = Estimator(stored_timings(store.root), here)
    probed: dict[str, tuple[float, str]] = {}
    lines, seen, to_train, stored = [], set(), 0, 0
    notes: dict[str, str] = {}
    totals = {"here": [0.0, 0.0, 0, 0, 0], "gpu": [0.0, 0.0, 0, 0, 0]}  # measured s, estimated s, runs of each, none

    def is_stored(job) -> bool:
        return job.path.exists() or store.done(job.run.key) is not None

    def shown(e: Estimate, total: list) -> str:
        if e.seconds is None:
            total[4] += 1
            return f"? ({e.source})"
        total[0 if e.measured else 1] += e.seconds
        total[2 if e.measured else 3] += 1
        if e.note:
            mark = notes.setdefault(e.note, "abcdefghijklmnopqrstuvwxyz"[len(notes) % 26])
            return f"~{span(e.seconds)} ({e.source} [{mark}])"
        return f"~{span(e.seconds)} ({e.source})"

    stored_keys = {job.run.key for job in jobs if is_stored(job)}
    retrain = {job.run.teacher.key for job in jobs if job.run.teacher is not None and job.run.key not in stored_keys
               and job.run.teacher.key in stored_keys and not store.checkpoint_path(job.run.teacher).exists()}
    for job in jobs:
        run, where = job.run, f"{job.claim}/{job.variant}/{job.arm} seed {job.run.seed}"
        if run.key in seen:  # a run shared by several claims, variants or seeds: once
            continue
        seen.add(run.key)
        where += (tags or {}).get(run.key, "")
        if run.key in retrain:
            where += " (stored, but its weights are not cached: retrained for its students)"
        elif run.key in stored_keys:
            stored += 1
            continue
        to_train += 1
        mine = estimator.here(run)
        if not (mine.measured) and probe_device is not None:
            group = _cost_key(run.model_dump(mode="json"))
            if group not in probed:
                probed[group] = probe(run, probe_device)
            epoch_s, how = probed[group]
            mine = Estimate(epoch_s * run.arm.epochs, True, f"measured: {how} x {run.arm.epochs} epochs")
        done = epochs_done(store.state_path(run))
        if done and mine.seconds is not None:  # an interrupted run resumes here: only its remaining epochs
            where += f" (resumes here at epoch {done + 1} of {run.arm.epochs})"
            mine = replace(mine, seconds=mine.seconds * (run.arm.epochs - done) / run.arm.epochs,
                           source=f"{mine.source}, x {run.arm.epochs - done}/{run.arm.epochs} epochs left")
        lines.append(f"  to train   {where}: here {shown(mine, totals['here'])}; "
                     f"on a GPU {shown(estimator.gpu(run), totals['gpu'])}")
    lines += [f"  [{mark}] {note}" for note, mark in notes.items()]
    gpu_name = estimator.gpu_rate.measured_on if estimator.gpu_rate else "GPU"

    def total(label: str, t: list) -> str:
        return (f"  {label}: about {span(t[0] + t[1])} = {span(t[0])} measured ({t[2]} runs) + {span(t[1])} "
                f"estimated ({t[3]} runs)" + (f" + {t[4]} run(s) with no estimate" if t[4] else ""))
    return lines + [
        f"dry run: {len(seen)} distinct runs, {stored} stored (not listed), {to_train} to train; nothing was stored"
        + (f" ({len(probed)} probe(s) trained and discarded)" if probed else ""),
        total(f"here ({here})", totals["here"]),
        total(f"on one GPU ({gpu_name}, one run at a time)", totals["gpu"])]
