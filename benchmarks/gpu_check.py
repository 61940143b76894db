"""`make gpu-check`: everything a rare, short GPU session should learn, in one command (about 6-7 minutes on an H100).

Sections, in order of what matters most if time runs out; each is timed, may fail on its own, and the summary
(JSON) is rewritten after every one, so a run stopped at its limit still says what it found:

  environment       device, torch, CUDA, bf16 support
  vit_paper_epoch   one epoch of the paper ViT (vit-cifar's paper arms: ViT-tiny patch 16 at 224 px, fp32, batch 128)
                    through the real train loop, on CIFAR-10 where $REPRO_DATA has it, else a synthetic stand-in of its
                    size; the one-off teacher-logit pass of a distilled ViT and a few steps of its ResNet-18 teacher;
                    from them, the GPU hours of the three ViT claims' whole paper profile
  sync_free_loop    the Hinton 800-800 student at paper settings on real MNIST: device syncs per epoch
                    (torch.cuda.set_sync_debug_mode), epoch time of the sync-free loop against the per-step
                    path on the same device, and whether the two give the same numbers
  mnist_paper_arms  a few epochs of the Hinton teacher, the small net and the distilled net at paper settings
  bf16              the small net's epoch in bf16 autocast against fp32, with both runs' numbers
  stacked_seeds     5 seeds of the 800-800 and the 30-30 student as one stacked model against one by one
  resnet_vit_step   one ResNet-18 (CIFAR, batch 128) and one ViT-tiny (224 px, batch 128) training step
  paper_projection  the whole paper profile's cost on this device: every distinct run shape trained for a few
                    steps on synthetic stand-ins of its data, scaled to its real steps and epochs
  smoke_end_to_end  `repro run --profile smoke --device cuda`, `pytest -m claims`, `repro report` into a
                    scratch folder (the shipped results/ and reports/ are not touched)

    python benchmarks/gpu_check.py --summary-dir $OUT            # on the GPU machine (see docs/gpu.md)
    python benchmarks/gpu_check.py --dry-run --summary-dir DIR   # the same code on the CPU, tiny (tests/test_gpu_check.py)
"""
from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import repro.data  # noqa: E402
from repro.models import create_model  # noqa: E402
from repro.plan import plan, plan_claim  # noqa: E402
from repro.spec import Component, load_claim, load_claims  # noqa: E402
from repro.stacked import train_stacked  # noqa: E402
from repro.store import Store  # noqa: E402
from repro.nets import autocast, build_model, dataset_of, device_layout, predict  # noqa: E402
from repro.teachers import teacher_predictions  # noqa: E402
from repro.train import describe_device, train  # noqa: E402
from repro import cost  # noqa: E402

HINTON = ROOT / "claims" / "hinton-kd-helps.yaml"
VIT_CLAIMS = ["vit-learns-faster", "vit-test-gain", "deit-hard-beats-soft"]  # claims/_shared/vit-cifar.yaml's
# Real sizes of the datasets (train, test, image shape), for scaling the projection without the data on disk.
REAL = {"mnist": (60000, 10000, (1, 28, 28)), "cifar10": (50000, 10000, (3, 32, 32)),
        "hymenoptera": (244, 153, (3, 224, 224))}


class Check:
    """Sizes of this check: the real one on the GPU, or a dry run on the CPU with tiny data and few steps."""

    def __init__(self, args):
        self.dry, self.device = args.dry_run, torch.device(args.device)
        self.scratch = Path(args.scratch or tempfile.mkdtemp(prefix="kd-gpu-check-"))
        self.deadline = time.perf_counter() + args.budget_s
        self.teacher_epochs, self.epochs = (1, 1) if self.dry else (3, 2)
        self.projection_steps, self.projection_eval = (2, 32) if self.dry else (20, 2048)
        self.smoke_claims = ["hinton-kd-helps"] if self.dry else []  # [] = every claim
        self.projection_groups, self.max_side = (2, 16) if self.dry else (None, None)  # dry: the code path, not the cost
        self.stack_seeds = 2 if self.dry else 5

    def arm_run(self, claim, arm: str, epochs: int, **changes):
        """An arm of a claim at its paper settings for `epochs` epochs; in a dry run on small synthetic data."""
        run = plan_claim(load_claim(claim), "as_described", "paper")[arm][0]
        if self.dry:
            changes["data"] = synthetic_like(run.arm, 256, 128)
        out = run.model_copy(update={"arm": run.arm.model_copy(update={"epochs": epochs, **changes})})
        if out.teacher is not None:
            out = out.model_copy(update={"teacher": out.teacher.model_copy(update={"arm": out.teacher.arm.model_copy(
                update={"epochs": self.teacher_epochs, **({"data": changes["data"]} if self.dry else {})})})})
        return out


def synthetic_like(arm, n_train: int, n_test: int, max_side: int | None = None) -> Component:
    """A synthetic dataset with the arm's image shape and class count (same cost per step as the real one)."""
    shape = REAL.get(arm.data.name, (0, 0, tuple(arm.data.params.get("shape", (1, 28, 28)))))[2]
    if max_side:
        shape = (shape[0], min(shape[1], max_side), min(shape[2], max_side))
    classes = 2 if arm.data.name == "hymenoptera" else arm.data.params.get("num_classes", 10)
    return Component(name="synthetic", params={"n_train": n_train, "n_test": n_test, "shape": list(shape),
                                               "num_classes": classes})


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def timed_train(run, device, teacher=None, count_syncs=False, **kwargs):
    """train() with each epoch's wall time and, on CUDA with count_syncs, each epoch's device syncs."""
    marks = []
    if count_syncs and device.type == "cuda":
        torch.cuda.set_sync_debug_mode("warn")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        synchronize(device)
        start = time.perf_counter()
        try:
            result, model = train(run, device, teacher, on_epoch=lambda m: marks.append(
                (time.perf_counter(), sum("synchroniz" in str(w.message) for w in caught))), **kwargs)
        finally:
            if device.type == "cuda":
                torch.cuda.set_sync_debug_mode(0)
    times = [b[0] - a[0] for a, b in zip([(start, 0)] + marks, marks)]
    syncs = [b[1] - a[1] for a, b in zip([(start, 0)] + marks, marks)]
    return result, model, {"epoch_s": [round(t, 4) for t in times], "syncs_per_epoch": syncs if count_syncs and
                           device.type == "cuda" else None, "test_errors": [e["test_errors"] for e in result["epochs"]]}


def steps_per_epoch(run) -> int:
    return math.ceil(real_train_size(run.arm) / run.arm.batch_size)


def real_train_size(arm) -> int:
    """The transfer set's size from the dataset's known size and the arm's data options."""
    if arm.data.name not in REAL:
        return arm.data.params.get("n_train", 512)
    p, n = arm.data.params, REAL[arm.data.name][0]
    n -= p.get("holdout", 0)
    if p.get("keep_classes"):
        n = n * len(p["keep_classes"]) // 10
    n -= n * len(p.get("omit_classes", ())) // 10
    return min(n, p.get("train_subset") or n)


# --- sections --------------------------------------------------------------------------------------------------

def environment(check: Check) -> dict:
    d = check.device
    out = {"device": describe_device(d),
           "torch": torch.__version__, "python": platform.python_version(), "cuda": torch.version.cuda,
           "dry_run": check.dry, "sync_free_devices": sorted(repro.data.SYNC_FREE)}
    if d.type == "cuda":
        out["bf16_supported"] = torch.cuda.is_bf16_supported()
        out["memory_gib"] = round(torch.cuda.get_device_properties(d).total_memory / 2 ** 30, 1)
    return out


@contextlib.contextmanager
def loop_path(device, sync_free: bool):
    """Train on `device` with the sync-free loop or with the per-step one (repro.data.SYNC_FREE), whatever the
    device: on a CPU dry run this checks the sync-free path's plumbing too."""
    saved = set(repro.data.SYNC_FREE)
    repro.data.SYNC_FREE.clear()
    repro.data.SYNC_FREE.update({device.type} if sync_free else set())
    try:
        yield
    finally:
        repro.data.SYNC_FREE.clear()
        repro.data.SYNC_FREE.update(saved)


def vit_paper_epoch(check: Check) -> dict:
    """One paper ViT epoch end to end through train() (its per-epoch checkpoint into the scratch folder; nothing is
    stored): vit-test-gain's baseline at profile paper, one epoch of its five. CIFAR-10 (178 MB) cannot be carried to
    the device machine (64 MiB), so there it is a synthetic stand-in of CIFAR-10's size and image shape, resized to
    224 like the real one (the same cost per step); the real data where $REPRO_DATA has it. Then the pass a student
    with cached soft targets pays once (a ResNet-18 teacher's forwards over 60,000 images at 224 px) and the teacher's
    own epoch at 32 px (a few steps, scaled); from the three, every run of the ViT claims' paper profile."""
    claims = [load_claim(ROOT / "claims" / f"{c}.yaml") for c in VIT_CLAIMS]
    runs = {j.run.key: j.run for j in plan(claims, "paper", Store(check.scratch / "plan-only"))}
    arms = plan_claim(claims[1], "corrected", "paper")
    baseline, student = arms["baseline"][0], arms["student"][0]
    real = not check.dry and repro.data.availability("cifar10") is None

    def shaped(run):  # dry: the code path, tiny (4 steps of 8 at 32 px); on a GPU without the data: the stand-in
        if check.dry:
            return cost.stand_in(run, 32, 16, batch=8, native=True)
        return run if real else cost.stand_in(run, *cost.SIZES["cifar10"][:2])
    one = shaped(baseline.model_copy(update={"arm": baseline.arm.model_copy(update={"epochs": 1})}))
    dataset_of(one.arm)  # made or loaded before the clock starts
    result, _, timing = timed_train(one, check.device, resume_path=check.scratch / "vit-paper-epoch.pt")
    epoch_s = timing["epoch_s"][0]
    work = cost.run_work(one)

    distilled = shaped(student)
    teacher_net = device_layout(build_model(distilled.teacher).to(check.device).eval(), check.device)
    synchronize(check.device)
    start = time.perf_counter()
    teacher_predictions(teacher_net, distilled, dataset_of(distilled.arm), check.device, None)
    synchronize(check.device)
    logits_s = time.perf_counter() - start

    teacher = student.teacher
    steps, n_eval = (2, 16) if check.dry else (30, 2048)
    teacher_epoch_s = cost.probe_epoch_s(teacher, check.device, steps, n_eval, warm=True,
                                         resume_path=check.scratch / "vit-teacher-probe.pt",
                                         **({"batch": 8} if check.dry else {}))

    def projected(run) -> float:
        if run.arm.model.name == "vit_tiny":  # every paper ViT arm has the measured epoch's shape (teacher or not)
            once = logits_s if run.teacher is not None and run.arm.cache_teacher_logits else 0.0
            return run.arm.epochs * epoch_s + once
        if cost._cost_key(run.model_dump(mode="json")) == cost._cost_key(teacher.model_dump(mode="json")):
            return run.arm.epochs * teacher_epoch_s
        return run.arm.epochs * cost.run_work(run, 1).flops / (work.flops / epoch_s)  # no other shape today
    total_s = sum(projected(r) for r in runs.values())
    return {"arm": f"vit-test-gain baseline, profile paper: {one.arm.model.name} {one.arm.model.params}, "
                   f"{one.arm.resolution or 'native'} px, batch {one.arm.batch_size}, {one.arm.precision}, 1 epoch of "
                   f"{baseline.arm.epochs}",
            "data": "CIFAR-10" if real else f"synthetic stand-in ({one.arm.data.params['n_train']} training and "
                    f"{one.arm.data.params['n_test']} test images, {one.arm.data.params['shape']})",
            "precision": one.arm.precision, "steps_per_epoch": math.ceil(cost.data_size(one.arm)[0] / one.arm.batch_size),
            "epoch_s": round(epoch_s, 3), "flops_per_epoch": work.flops,
            "tflop_per_s": round(work.flops / epoch_s / 1e12, 3), "train_loss": result["epochs"][0]["train_loss"],
            "teacher_logits_once_s": round(logits_s, 3), "teacher_epoch_s": round(teacher_epoch_s, 3),
            "vit_paper_runs": len(runs), "vit_paper_profile_gpu_hours": round(total_s / 3600, 3),
            "note": "the three ViT claims' paper profile (5 seeds each, teachers shared), one run at a time on this GPU: "
                    "ViT runs = 5 x this epoch (+ the teacher-logit pass where soft targets are cached), teachers = 30 x "
                    "their projected epoch; `repro run --dry-run` rates its GPU column by this section once committed"}


def sync_free_loop(check: Check) -> dict:
    run = check.arm_run(HINTON, "small", check.epochs + 1)
    with loop_path(check.device, sync_free=True):
        sync_free, _, a = timed_train(run, check.device, count_syncs=True)
    with loop_path(check.device, sync_free=False):  # today's per-step path, on the same device
        per_step, _, b = timed_train(run, check.device, count_syncs=True)
    same = sync_free["epochs"] == per_step["epochs"]
    later = slice(1, None)  # the first epoch pays for warm-up (cuBLAS handles, caching allocator)
    return {"arm": "hinton small 800-800, batch 128, paper settings", "steps_per_epoch": steps_per_epoch(run),
            "sync_free": a, "per_step": b, "same_numbers": same,
            "speedup": round(sum(b["epoch_s"][later]) / max(sum(a["epoch_s"][later]), 1e-9), 2)}


def mnist_paper_arms(check: Check) -> dict:
    teacher_run = check.arm_run(HINTON, "teacher", check.teacher_epochs)
    _, teacher, t = timed_train(teacher_run, check.device)
    out = {"teacher": t}
    _, _, out["small"] = timed_train(check.arm_run(HINTON, "small", check.epochs), check.device)
    distilled = check.arm_run(HINTON, "distilled", check.epochs)
    _, _, out["distilled"] = timed_train(distilled, check.device, teacher)
    out["note"] = f"paper settings (batch 128, SGD momentum 0.9), {check.teacher_epochs} teacher and {check.epochs} " \
                  "student epochs of 1000; the distilled net learns from this teacher"
    return out


def bf16(check: Check) -> dict:
    out = {}
    for precision in ("fp32", "bf16"):
        result, _, out[precision] = timed_train(check.arm_run(HINTON, "small", check.epochs + 1, precision=precision),
                                                check.device)
        out[precision]["train_loss"] = [e["train_loss"] for e in result["epochs"]]
    later = slice(1, None)
    out["bf16_over_fp32_time"] = round(sum(out["bf16"]["epoch_s"][later]) / max(sum(out["fp32"]["epoch_s"][later]), 1e-9), 3)
    return out


def stacked_seeds(check: Check) -> dict:
    """Seeds of the dropout-free Hinton students (800-800, and the temperature claims' 30-30) as one stacked model.
    (Teachers have dropout and are not stacked: that would pay only if this speedup is large.)"""
    out = {}
    for hidden in ([800, 800], [30, 30]):
        base = check.arm_run(HINTON, "small", check.epochs, model=Component(name="mlp", params={"hidden": hidden}))
        runs = [base.model_copy(update={"seed": s}) for s in range(check.stack_seeds)]
        synchronize(check.device)
        start = time.perf_counter()
        alone = [train(r, check.device)[0] for r in runs]
        synchronize(check.device)
        one_by_one = time.perf_counter() - start
        start = time.perf_counter()
        stacked = train_stacked(runs, check.device)
        synchronize(check.device)
        together = time.perf_counter() - start
        out["-".join(map(str, hidden))] = {
            "seeds": len(runs), "epochs": check.epochs, "one_by_one_s": round(one_by_one, 3),
            "stacked_s": round(together, 3), "speedup": round(one_by_one / max(together, 1e-9), 2),
            "test_errors_alone": [r["final"]["test_errors"] for r in alone],
            "test_errors_stacked": [r["final"]["test_errors"] for r, _ in stacked]}
    return out


def resnet_vit_step(check: Check) -> dict:
    """One training step (after warm-up steps) of the paper's ResNet-18 on CIFAR and ViT-tiny at 224 px."""
    out = {}
    batch = 8 if check.dry else 128
    for name, model_name, params, side, res in [("resnet18_cifar", "resnet18", {"weights": "none"}, 32, 32),
                                                ("vit_tiny_224", "vit_tiny", {"patch_size": 16}, 32, 32 if check.dry else 224)]:
        torch.manual_seed(0)
        model = device_layout(create_model(model_name, (3, res, res), 10, **params).to(check.device), check.device)
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, fused=True)
        x = torch.randn(batch, 3, res, res, device=check.device)
        if check.device.type == "cuda" and model_name == "resnet18":
            x = x.to(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=check.device)
        for precision in ("fp32", "bf16"):
            times = []
            for step in range(2 if check.dry else 8):
                synchronize(check.device)
                start = time.perf_counter()
                with autocast(precision, check.device):
                    loss = torch.nn.functional.cross_entropy(model(x).float(), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                synchronize(check.device)
                times.append(time.perf_counter() - start)
            out[f"{name}_{precision}"] = {"batch": batch, "resolution": res, "step_s": round(min(times[1:] or times), 5),
                                          "loss": loss.item()}
    return out


def paper_projection(check: Check) -> dict:
    """Each distinct run shape of the paper profile trained for a few steps (2 epochs, the second timed, with the
    per-epoch checkpoint a real run writes) on synthetic data of its shape; scaled to its real steps and epochs."""
    claims = load_claims(ROOT / "claims")
    jobs = plan(list(claims.values()), "paper", Store(check.scratch / "plan-only"))
    runs = {j.run.key: j.run for j in jobs}  # a run shared by claims trains once
    groups: dict[str, list] = {}
    for run in runs.values():
        groups.setdefault(shape_of(run), []).append(run)
    out, total_s = {}, 0.0
    for shape, members in sorted(groups.items())[: check.projection_groups]:
        if time.perf_counter() > check.deadline - 120:  # leave the smoke section its time
            out[shape] = {"runs": len(members), "skipped": "out of time"}
            continue
        epoch_s = projected_epoch_s(members[0], check)
        cost = sum(epoch_s * r.arm.epochs for r in members)
        total_s += cost
        out[shape] = {"runs": len(members), "epochs": sorted({r.arm.epochs for r in members}),
                      "steps_per_epoch": steps_per_epoch(members[0]), "epoch_s": round(epoch_s, 4),
                      "hours": round(cost / 3600, 3)}
    return {"unique_runs": len(runs), "groups": out, "total_hours_one_gpu": round(total_s / 3600, 2),
            "note": "training + evaluation + per-epoch checkpoint; not included: the hymenoptera PIL DataLoader "
                    "(CPU-side), teacher-logit caching, process start-up"}


def shape_of(run) -> str:
    a = run.arm
    teacher = "" if run.teacher is None else f" <- {run.teacher.arm.model.name}{run.teacher.arm.model.params.get('hidden', '')}" + \
        (" cached" if a.cache_teacher_logits else " per-step")
    params = {k: v for k, v in a.model.params.items() if k != "weights"}
    return f"{a.data.name} {a.model.name}{params} batch {a.batch_size} res {a.resolution or '-'} {a.precision}{teacher}"


def projected_epoch_s(run, check: Check) -> float:
    """Seconds per real epoch of this run's shape on this device."""
    k, n_eval = check.projection_steps, check.projection_eval
    batch = min(8, run.arm.batch_size) if check.dry else run.arm.batch_size
    stand_in = synthetic_like(run.arm, k * batch, n_eval, check.max_side)

    def swap(r):
        model = r.arm.model.model_copy(update={"params": {**r.arm.model.params, **(
            {"weights": "none"} if "weights" in r.arm.model.params else {})}})
        arm = r.arm.model_copy(update={"data": stand_in, "model": model, "epochs": 2, "bias_shift": None,
                                       "select": "last", "teacher_epoch": None, "batch_size": batch,
                                       **({"resolution": None} if check.dry else {})})
        return r.model_copy(update={"arm": arm, "teacher": swap(r.teacher) if r.teacher else None, "init_from": None})

    small = swap(run)
    teacher = build_model(small.teacher).to(check.device) if small.teacher else None
    state = check.scratch / "projection-state.pt"
    state.unlink(missing_ok=True)
    _, model, timing = timed_train(small, check.device, teacher, resume_path=state)
    synchronize(check.device)
    start = time.perf_counter()
    predict(model, dataset_of(small.arm), small.arm, check.device)
    eval_s = time.perf_counter() - start
    train_s = max(timing["epoch_s"][-1] - eval_s, 0.0)
    n_test = REAL.get(run.arm.data.name, (0, n_eval))[1]
    if run.arm.data.name == "cifar10" and run.arm.data.params.get("test_subset"):
        n_test = run.arm.data.params["test_subset"]
    return train_s / k * steps_per_epoch(run) + eval_s * n_test / n_eval


def smoke_end_to_end(check: Check) -> dict:
    out_dir = check.scratch / "smoke"
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "REPRO_RESULTS": str(out_dir / "results"), "REPRO_CACHE": str(out_dir / "cache"),
           "REPRO_PROFILE": "smoke", "REPRO_VERDICTS": str(out_dir / "verdicts.json")}
    seeds = ["--seeds", "1"] if check.dry else []
    steps = {"run": [sys.executable, "-m", "repro.cli", "run", *check.smoke_claims, "--profile", "smoke",
                     "--device", check.device.type, *seeds],
             "claims": [sys.executable, "-m", "pytest", "-m", "claims", "-q", "-p", "no:cacheprovider",
                        "tests/test_claims.py", *(["-k", " or ".join(check.smoke_claims)] if check.smoke_claims else [])],
             "report": [sys.executable, "-m", "repro.cli", "report", "--verdicts", str(out_dir / "verdicts.json"),
                        "--out", str(out_dir / "index.html")]}
    out = {}
    for name, command in steps.items():
        start = time.perf_counter()
        left = max(check.deadline - start, 30)
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=left)
        out[name] = {"rc": done.returncode, "s": round(time.perf_counter() - start, 1),
                     "tail": (done.stdout + done.stderr)[-600:]}
    verdicts = json.loads((out_dir / "verdicts.json").read_text())["verdicts"]
    statuses = [v["status"] for v in verdicts if not check.smoke_claims or v["claim"] in check.smoke_claims]
    out["verdicts"] = {s: statuses.count(s) for s in sorted(set(statuses))}
    out["results"] = len(list((out_dir / "results").rglob("*.json")))
    out["report_bytes"] = (out_dir / "index.html").stat().st_size if (out_dir / "index.html").exists() else 0
    out["ok"] = out["run"]["rc"] == 0 and out["report"]["rc"] == 0 and out["report_bytes"] > 0
    return out


SECTIONS = [environment, vit_paper_epoch, sync_free_loop, mnist_paper_arms, bf16, stacked_seeds, resnet_vit_step, paper_projection,
            smoke_end_to_end]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--summary-dir", required=True, help="folder for gpu-check.json ($OUT on the GPU machine)")
    p.add_argument("--device", default="cuda")
    p.add_argument("--dry-run", action="store_true", help="tiny sizes (on the CPU: the test of this script)")
    p.add_argument("--scratch", help="scratch folder for the smoke runs (default: a new temporary folder)")
    p.add_argument("--budget-s", type=float, default=480, help="stop starting long sections after this many seconds")
    p.add_argument("--only", help="comma-separated section names")
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        print("error: --device cuda, but torch sees no GPU (use --dry-run --device cpu for the CPU dry run)",
              file=sys.stderr)
        return 2
    check = Check(args)
    summary_path = Path(args.summary_dir) / "gpu-check.json"
    summary_path.parent.mkdir(parents=True, exist_ok=True)
    summary = {"started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "sections": {}}
    failed = 0
    for section in SECTIONS:
        if args.only and section.__name__ not in args.only.split(","):
            continue
        start = time.perf_counter()
        try:
            result = section(check)
        except Exception as err:  # one section failing must not cost the others' findings
            failed += 1
            result = {"error": f"{type(err).__name__}: {err}"[:500], "traceback": traceback.format_exc()[-2000:]}
        result["section_s"] = round(time.perf_counter() - start, 1)
        summary["sections"][section.__name__] = result
        summary_path.write_text(json.dumps(summary, indent=1, default=str))
        print(f"{section.__name__}: {'FAILED ' + result['error'] if 'error' in result else 'ok'} "
              f"({result['section_s']} s)", flush=True)
    print(f"summary: {summary_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
