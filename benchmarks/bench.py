"""make bench: epoch time of kd-repro's training loop against a faithful copy of the sources' style.

Three MNIST workloads from Hinton sec. 3, each done two ways with the same math:
  engine   kd-repro: uint8 tensors in memory, jitter as one batched gather, kd-repro's loss
  source   hinton-repro's style: torch DataLoader over torchvision MNIST, per-image PIL
           RandomAffine jitter, ToTensor/Normalize, a teacher forward per batch
The dropout-free students are also timed as SEEDS seeds stacked into one model (repro.stacked, per seed).
Prints per-epoch seconds, samples/s, achieved GFLOP/s (forward 2 FLOPs per MAC, backward 4) as a percentage
of this machine's fp32 matmul peak (one yardstick for every row: a bf16 row above 100% is bf16 beating fp32's
peak), and the speed-up over the source-style loop timed in this same run. Where bf16 is emulated (no AMX or
avx512_bf16: repro.precision's probe) the header says so and bf16 rows are timed over fewer batches. Both
loops are timed over a number of batches and scaled to a 60,000-image epoch (ENGINE_BATCHES for kd-repro's,
BATCHES for the source's), so the whole bench takes minutes on any machine.
Two CIFAR-10 workloads of the vit-cifar quick profile (`--cifar` runs only these):
  engine   kd-repro: uint8 tensors, batched crop/flip, bf16 autocast, the ViT's attention unfused on CPU
           (repro.train.device_layout); the ViT student reads its soft targets from the teacher's cached
           logits (no augmentation: they cannot change)
  source   the source's style: a torchvision dataset with per-image PIL transforms behind a DataLoader,
           fp32, the teacher run on every batch
Both CIFAR loops are timed over CIFAR_BATCHES batches and scaled to a 50,000-image epoch (the teacher-logit
cache over CACHE_IMAGES images, scaled to the transfer set); FLOPs are counted by torch's FlopCounterMode
(training = 3x forward). The engine runs in fp32 and bf16, and in the faster of the two also as one run per
core, each on one thread, all at once (how the vit-cifar quick profile was trained): seconds per epoch of work.
Needs REPRO_DATA with MNIST and CIFAR-10. Prints only; asserts nothing.
`--profile`: where the time of an fp32 teacher step and of a bf16 KD step goes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from repro.data import Augment, load_dataset
from repro.losses import hinton
from repro.models import create_model
from repro.precision import SLOW_ABOVE, bf16_slowdown, machine_id
from repro.stacked import stack
from repro.nets import autocast, build_model, device_layout
from repro.teachers import cast_teacher

BATCH, BATCHES, EPOCH, SEEDS = 128, 60, 60_000, 5
ENGINE_BATCHES = int(os.environ.get("BENCH_ENGINE_BATCHES", 150))  # of an epoch's 469
EMULATED_BATCHES = 15  # bf16 where it is emulated: enough to show its cost
TEACHER = dict(hidden=[1200, 1200], input_dropout=0.2, hidden_dropout=0.5)
STUDENT = dict(hidden=[800, 800])
TINY = dict(hidden=[30, 30])  # the smallest student of the temperature sweep (Hinton sec. 3)


def matmul_peak(dtype, n=2048, budget_s=1.0) -> float:
    """GFLOP/s of n x n matmuls, repeated for about budget_s (an emulated bf16 matmul of this size takes seconds:
    then n shrinks until one fits)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    start = time.perf_counter()
    a @ b  # warm-up, and a measure of how slow it is
    if time.perf_counter() - start > budget_s / 2 and n > 256:
        return matmul_peak(dtype, n // 2, budget_s)
    reps, start = 0, time.perf_counter()
    while reps < 3 or time.perf_counter() - start < budget_s:
        a @ b
        reps += 1
    return 2 * n ** 3 * reps / (time.perf_counter() - start) / 1e9


def source_mlp(hidden, input_dropout=0.0, hidden_dropout=0.0):
    """The sources' model code: nn.Linear/nn.ReLU/nn.Dropout (torch's bernoulli_ masks)."""
    layers, width = [torch.nn.Flatten(), torch.nn.Dropout(input_dropout)], 784
    for h in hidden:
        layers += [torch.nn.Linear(width, h), torch.nn.ReLU(), torch.nn.Dropout(hidden_dropout)]
        width = h
    return torch.nn.Sequential(*layers, torch.nn.Linear(width, 10))


def matmul_at_batch(dtype, reps=50) -> float:
    """GFLOP/s of the 800-800 student's own matmuls at batch BATCH: the ceiling of an MLP step here."""
    shapes = [(BATCH, 784, 800), (BATCH, 800, 800)]
    mats = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes]
    start = time.perf_counter()
    for _ in range(reps):
        for a, b in mats:
            a @ b
    return sum(2 * m * k * n for m, k, n in shapes) * reps / (time.perf_counter() - start) / 1e9


def profile_steps(steps=100):
    """Where the time goes (torch.profiler, self CPU time per op): an fp32 teacher step, a bf16 KD step."""
    from torch.profiler import ProfilerActivity, profile
    mk = lambda p: create_model("mlp", (1, 28, 28), 10, **p)  # noqa: E731
    cases = [("(a) teacher 1200-1200, jitter, fp32", mk(TEACHER), None, "fp32"),
             ("(c) KD student + teacher fwd, jitter, bf16", mk(STUDENT), cast_teacher(mk(TEACHER).eval(), "bf16"),
              "bf16")]
    for name, student, teacher, precision in cases:
        opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, fused=True)
        batches = load_dataset("mnist").train_batches(BATCH, Augment(jitter_px=2), torch.Generator().manual_seed(0),
                                                      "cpu")
        for _ in range(10):
            x, y, _ = next(batches)
            step(student, teacher, opt, x, y, precision)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                x, y, _ = next(batches)
                step(student, teacher, opt, x, y, precision)
        print(f"\n{name}: {steps} steps")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))


def macs(model) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def flops_per_sample(student, teacher) -> int:
    return 6 * macs(student) + (2 * macs(teacher) if teacher is not None else 0)


def step(student, teacher, optimizer, x, y, precision):
    with autocast(precision, torch.device("cpu")):
        logits = student(x)
        with torch.no_grad():
            soft = teacher(x) if teacher is not None else None
    loss = hinton(logits, y, soft, alpha=0.7, T=20)["loss"] if soft is not None else F.cross_entropy(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()


def engine_epoch(student, teacher, jitter_px, precision, batches=None) -> float:
    """Seconds of kd-repro's loop over `batches` batches (default ENGINE_BATCHES), scaled to a 60,000-image epoch."""
    batches = batches or ENGINE_BATCHES
    data = load_dataset("mnist")
    teacher = cast_teacher(teacher, precision) if teacher is not None else None
    g = torch.Generator().manual_seed(0)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9, fused=True)  # as repro.train
    start, seen = time.perf_counter(), 0
    for i, (x, y, _) in enumerate(data.train_batches(BATCH, Augment(jitter_px=jitter_px), g, "cpu")):
        if i == batches:
            break
        step(student, teacher, opt, x, y, precision)
        seen += len(y)
    return (time.perf_counter() - start) * EPOCH / seen


def stacked_epoch(make, seeds, precision, batches=None) -> float:
    """An epoch of `seeds` students trained as one stacked model (repro.stacked), per seed (timed over `batches`)."""
    batches_timed = batches or ENGINE_BATCHES
    data = load_dataset("mnist")
    params, forward = stack([make() for _ in range(seeds)], precision)
    opt = torch.optim.SGD(params.values(), lr=0.01, momentum=0.9, fused=True)
    orders = [torch.Generator().manual_seed(s) for s in range(seeds)]
    start, seen = time.perf_counter(), 0
    for i, batches in enumerate(zip(*(data.train_batches(BATCH, Augment(), g, "cpu") for g in orders))):
        if i == batches_timed:
            break
        seen += len(batches[0][1])
        logits = forward(torch.stack([b[0] for b in batches]))
        loss = sum(F.cross_entropy(logits[s].float(), b[1]) for s, b in enumerate(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) * EPOCH / seen / seeds


def source_epoch(student, teacher, jitter) -> float:
    import torchvision
    from torchvision import transforms
    t = [transforms.RandomAffine(0, (1 / 14, 1 / 14))] if jitter else []
    transform = transforms.Compose(t + [transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])
    ds = torchvision.datasets.MNIST(os.environ.get("REPRO_DATA", "./data"), train=True, transform=transform)
    loader = torch.utils.data.DataLoader(ds, batch_size=BATCH, shuffle=True, num_workers=0)
    opt = torch.optim.SGD(student.parameters(), lr=0.01, momentum=0.9)
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == BATCHES:
            break
        step(student, teacher, opt, torch.flatten(x, 1), y, "fp32")
    return (time.perf_counter() - start) * EPOCH / (BATCHES * BATCH)


CIFAR_EPOCH, CIFAR_BATCHES = 50_000, int(os.environ.get("BENCH_CIFAR_BATCHES", 8))
CACHE_IMAGES = 2048  # the teacher-logit cache is timed over this many images and scaled to the transfer set
RESNET = dict(depth=20)  # the vit-cifar quick profile's teacher
VIT = dict(patch_size=8)  # its students, at 32 px


def forward_flops(model, shape) -> int:
    from torch.utils.flop_counter import FlopCounterMode
    model.eval()
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, *shape))
    model.train()
    return counter.get_total_flops()


class PickleCIFAR(torch.utils.data.Dataset):
    """torchvision's CIFAR10 (the local copy fails its md5 check, so the same arrays, read as it reads them):
    one PIL image per item through the given transforms."""

    def __init__(self, data, transform):
        self.x, self.y, self.transform = data.train_x.permute(0, 2, 3, 1).numpy(), data.train_y.tolist(), transform

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        from PIL import Image
        return self.transform(Image.fromarray(self.x[i])), self.y[i]


def cifar_source_epoch(student, teacher, augment: bool) -> float:
    from torchvision import transforms as T
    data = load_dataset("cifar10")
    aug = [T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] if augment else []
    loader = torch.utils.data.DataLoader(PickleCIFAR(data, T.Compose(aug + [T.ToTensor(), T.Normalize(data.mean, data.std)])),
                                         batch_size=BATCH, shuffle=True, num_workers=0)
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3) if teacher is not None else \
        torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9)
    start = time.perf_counter()
    for i, (x, y) in enumerate(loader):
        if i == CIFAR_BATCHES:
            break
        logits = student(x)
        with torch.no_grad():
            soft = teacher(x) if teacher is not None else None
        loss = hinton(logits, y, soft, alpha=0.5, T=0.5)["loss"] if soft is not None else F.cross_entropy(logits, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return (time.perf_counter() - start) * CIFAR_EPOCH / (CIFAR_BATCHES * BATCH)


def cifar_engine_epoch(student, teacher, augment: bool, precision: str = "bf16") -> float:
    data = load_dataset("cifar10")
    device = torch.device("cpu")
    student = device_layout(student, device)  # as repro.train: the ViT's attention unfused on CPU
    cached = None
    if teacher is not None:  # repro.train's cache_teacher_logits: one pass over the transfer set, timed on a part
        teacher.eval()
        logits = torch.zeros(len(data.train_y), 10)
        start = time.perf_counter()
        with torch.inference_mode(), autocast(precision, device):
            for i, (x, _) in enumerate(data.eval_batches("train", Augment(), device, 512)):
                if i * 512 >= CACHE_IMAGES:
                    break
                logits[i * 512: (i + 1) * 512] = teacher(x).float()
        cache_s = (time.perf_counter() - start) * len(data.train_y) / CACHE_IMAGES
        cached = logits
    opt = torch.optim.AdamW(student.parameters(), lr=1e-3, fused=True) if teacher is not None else \
        torch.optim.SGD(student.parameters(), lr=0.1, momentum=0.9, fused=True)
    batches = data.train_batches(BATCH, Augment(crop_pad=4 if augment else 0, hflip=augment), torch.Generator().manual_seed(0),
                                 device)
    start = time.perf_counter()
    for i, (x, y, idx) in enumerate(batches):
        if i == CIFAR_BATCHES:
            break
        with autocast(precision, device):
            logits = student(x)
        loss = hinton(logits, y, cached[idx], alpha=0.5, T=0.5)["loss"] if cached is not None else \
            F.cross_entropy(logits.float(), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    epoch = (time.perf_counter() - start) * CIFAR_EPOCH / (CIFAR_BATCHES * BATCH)
    return epoch + (cache_s / 5 if teacher is not None else 0)  # the cache serves the run's 5 epochs


def cifar_workload(name: str):
    """(student, teacher or None, augment) of a CIFAR workload, built afresh (seeded) for each timing."""
    torch.manual_seed(0)
    resnet = create_model("resnet_cifar", (3, 32, 32), 10, **RESNET)
    if name == "resnet":
        return resnet, None, True
    return create_model("vit_tiny", (3, 32, 32), 10, **VIT), resnet.eval(), False


def one_thread_engine_epoch(name_precision: tuple[str, str]) -> float:
    torch.set_num_threads(1)
    name, precision = name_precision
    return cifar_engine_epoch(*cifar_workload(name), precision=precision)


def concurrent_engine_epoch(name: str, runs: int, precision: str) -> float:
    """Seconds per epoch when `runs` runs train at once, one thread each, as the vit-cifar quick profile was
    trained on 2 cores (two `repro run`s on one store): the slowest run's epoch divided by `runs`."""
    import multiprocessing
    with multiprocessing.get_context("spawn").Pool(runs) as pool:  # spawn: a fresh OpenMP runtime per run
        return max(pool.map(one_thread_engine_epoch, [(name, precision)] * runs)) / runs


def row(name, impl, seconds, images, flops, base, fp32_peak):
    gflops = flops * images / seconds / 1e9
    print(f"{name:38s} {impl:20s} {seconds:8.2f} {images / seconds:10.0f} {gflops:8.0f} "
          f"{100 * gflops / fp32_peak:6.0f}% {base / seconds:7.1f}x")


HEADER = f"{'workload':38s} {'impl':20s} {'s/epoch':>8s} {'samples/s':>10s} {'GFLOP/s':>8s} {'%fp32pk':>7s} {'speed-up':>8s}"


def cifar_rows(peaks, emulated: bool):
    print(f"\nCIFAR-10 (vit-cifar quick profile), per 50,000-image epoch, {CIFAR_BATCHES} batches of {BATCH} timed:")
    print(HEADER)
    resnet_flops = forward_flops(cifar_workload("resnet")[0], (3, 32, 32))
    vit_flops = forward_flops(cifar_workload("vit")[0], (3, 32, 32))
    workloads = [("(e) ResNet-20 teacher, crop + flip", "resnet", 3 * resnet_flops, 3 * resnet_flops),
                 ("(f) ViT-tiny p8 KD student", "vit", 3 * vit_flops + resnet_flops, 3 * vit_flops + resnet_flops / 5)]
    runs = torch.get_num_threads()
    for name, workload, source_flops, engine_flops in workloads:
        base = cifar_source_epoch(*cifar_workload(workload))
        row(name, "source-style", base, CIFAR_EPOCH, source_flops, base, peaks["fp32"])
        engine = {p: cifar_engine_epoch(*cifar_workload(workload), precision=p) for p in ("fp32", "bf16")}
        for p, seconds in engine.items():
            row(name, f"engine {p}" + (" (emul.)" if p == "bf16" and emulated else ""), seconds, CIFAR_EPOCH,
                engine_flops, base, peaks["fp32"])
        if runs > 1:
            faster = min(engine, key=engine.get)
            row(name, f"{runs}x1 thr {faster}", concurrent_engine_epoch(workload, runs, faster), CIFAR_EPOCH,
                engine_flops, base, peaks["fp32"])


def startup_rows(reps: int = 5) -> None:
    """`repro --help` (and one subcommand's) against a bare interpreter: the CLI must answer before torch loads."""
    import subprocess

    def best(argv) -> float:
        times = []
        for _ in range(reps):
            started = time.perf_counter()
            subprocess.run(argv, capture_output=True, check=True)
            times.append(time.perf_counter() - started)
        return min(times)
    bare = best([sys.executable, "-c", "pass"])
    print(f"\nstart-up, best of {reps} (seconds; ratio to `python -c pass`):")
    for name, argv in (("python -c pass", [sys.executable, "-c", "pass"]),
                       ("repro --help", [sys.executable, "-m", "repro.cli", "--help"]),
                       ("repro run --help", [sys.executable, "-m", "repro.cli", "run", "--help"]),
                       ("python -c 'import torch'", [sys.executable, "-c", "import torch"])):
        seconds = bare if name == "python -c pass" else best(argv)
        print(f"  {name:28s} {seconds:6.3f} s  {seconds / bare:6.1f}x")


def feature_loss_rows(n_train: int = 6000) -> None:
    """One epoch of the real training loop (repro.train.train) for the same 784-800-800-10 student and 1200-1200
    teacher: plain KD (hinton) against FitNets (a hint on the second hidden layer through its learned regressor,
    forward hooks on both nets), on MNIST-shaped synthetic data; seconds scaled to a 60,000-image epoch."""
    from repro.spec import Arm, RunSpec
    from repro.train import train
    data = {"name": "synthetic", "n_train": n_train, "n_test": 1000, "shape": [1, 28, 28], "num_classes": 10}
    common = {"data": data, "optimizer": {"name": "sgd", "lr": 0.01, "momentum": 0.9}, "epochs": 1,
              "batch_size": BATCH}
    teacher = RunSpec(arm=Arm.model_validate({**common, "model": {"name": "mlp", "hidden": [1200, 1200]}}), seed=0)
    net = build_model(teacher).eval()
    print(f"\nfeature-based KD, one epoch of the training loop (fp32, {torch.get_num_threads()} threads), "
          f"per 60,000 images:")
    seconds = {}
    for name, extra in (("plain KD (hinton, alpha 0.7, T 20)", {"loss": {"name": "hinton", "alpha": 0.7, "T": 20}}),
                        ("FitNets hint net.6 -> net.6 + CE", {"loss": {"name": "fitnets", "hint_weight": 1.0},
                                                               "features": {"student": ["net.6"],
                                                                            "teacher": ["net.6"]}})):
        arm = Arm.model_validate({**common, "model": {"name": "mlp", "hidden": [800, 800]}, "teacher": "teacher",
                                  **extra})
        run = RunSpec(arm=arm, seed=0, teacher=teacher)
        train(run, torch.device("cpu"), net)  # warm-up: data, allocator
        started = time.perf_counter()
        train(run, torch.device("cpu"), net)
        seconds[name] = (time.perf_counter() - started) * EPOCH / n_train
        print(f"  {name:38s} {seconds[name]:8.2f} s  {seconds[name] / next(iter(seconds.values())):5.2f}x plain KD")


def main(cifar_only: bool = False):
    torch.manual_seed(0)
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    slowdown = bf16_slowdown("cpu")  # repro.precision's probe (remembered in .cache/precision-probe.json)
    emulated = slowdown > SLOW_ABOVE
    print(f"{machine_id()}")
    print(f"matmul peak (2048^2 or the largest that fits a second): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 "
          f"{peaks['bf16']:.1f} GFLOP/s; repro.precision probe: bf16 takes {slowdown:.2f}x fp32's time")
    if emulated:
        print(f"bf16 is EMULATED here (no native bf16 kernels: a bf16 matmul takes {slowdown:.0f}x fp32's time): "
              f"bf16 MNIST rows are timed over {EMULATED_BATCHES} batches; so `repro run` trains a variant that "
              "declares bf16 (every shipped quick profile) as its fp32 twin here, at the fp32 rows' speed, unless "
              "its bf16 runs are stored (REPRO_PRECISION=bf16 forces bf16)")
    else:
        print("bf16 is native here: bf16 rows can pass fp32's peak, and `repro run` trains bf16 as declared")
    print("%fp32pk: achieved GFLOP/s as a percentage of the fp32 peak above, for every row; speed-up: over the "
          "source-style loop timed in this run")
    if cifar_only:
        return cifar_rows(peaks, emulated)
    for dtype, p in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        at = matmul_at_batch(dtype, reps=2 if emulated and p == "bf16" else 50)
        print(f"  {p} matmuls of the 800-800 student at batch {BATCH}: {at:.0f} GFLOP/s = "
              f"{100 * at / peaks['fp32']:.0f}% of the fp32 peak (no MLP step can beat its own matmuls)")
    print(f"\nMNIST, per 60,000-image epoch (kd-repro's loop: {ENGINE_BATCHES} batches timed, the source's: {BATCHES}):")
    mk = lambda p: create_model("mlp", (1, 28, 28), 10, **p)  # noqa: E731
    workloads = [("(a) teacher 1200-1200, jitter", TEACHER, None, True),
                 ("(b) student 800-800", STUDENT, None, False),
                 ("(c) KD student + teacher fwd, jitter", STUDENT, TEACHER, True),
                 ("(d) student 30-30", TINY, None, False)]
    print(HEADER)
    for name, student, teacher, jit in workloads:
        base = source_epoch(source_mlp(**student), teacher and source_mlp(**teacher).eval(), jit)
        flops = flops_per_sample(mk(student), teacher and mk(teacher))
        row(name, "source-style", base, EPOCH, flops, base, peaks["fp32"])
        for p in ("fp32", "bf16"):
            slow = emulated and p == "bf16"
            seconds = engine_epoch(mk(student), teacher and mk(teacher).eval(), 2 if jit else 0, p,
                                   EMULATED_BATCHES if slow else None)
            row(name, f"engine {p}" + (" (emul.)" if slow else ""), seconds, EPOCH, flops, base, peaks["fp32"])
        if teacher is None and not jit:  # the seeds of a dropout-free student, as one model (per seed)
            for p in ("fp32", "bf16"):
                slow = emulated and p == "bf16"
                seconds = stacked_epoch(lambda: mk(student), SEEDS, p, EMULATED_BATCHES if slow else None)
                row(name, f"stacked x{SEEDS} {p}" + (" (emul.)" if slow else ""), seconds, EPOCH, flops, base,
                    peaks["fp32"])
    feature_loss_rows()
    startup_rows()
    print("\nfor reference, not measured in this run: quick-profile MNIST runs stored in results/ (each run key once):")
    for prefix in ("hinton-", "course-"):
        runs, devices = {}, set()
        for path in Path("results/quick").glob(f"{prefix}*/*/*/*.json"):
            result = json.loads(path.read_text())
            runs[result["key"]] = result["wall_s"]
            devices.add(result.get("device", "?"))
        print(f"  {prefix}*: {len(runs)} runs, {sum(runs.values()) / 60:.1f} min of training wall time, on "
              f"{'; '.join(sorted(devices)) or '-'}")
    cifar_rows(peaks, emulated)


if __name__ == "__main__":
    profile_steps() if sys.argv[1:] == ["--profile"] else main(cifar_only=sys.argv[1:] == ["--cifar"])
