"""Makes examples/claims/teacher.pt, the weights file that checkpoint-teacher.yaml's `teacher_checkpoint` names.

The examples commit no weights: `make examples` runs this first when the file is absent, or run it yourself
(about 15 s on one CPU core, MNIST under $REPRO_DATA):

    PYTHONPATH=. REPRO_DATA=/path/to/data python examples/claims/make_checkpoint.py [--force]

It trains a 784-256-256-10 MLP (repro's `mlp`, so `model: {name: mlp, hidden: [256, 256]}` reads it) with plain
CE on 5000 MNIST training images (the examples' `train_subset: 5000`), 15 epochs of SGD (lr 0.05, momentum 0.9:
the examples' `teacher` arm's setting), and saves its state dict with
torch.save. The arithmetic is float64 on one thread and the weights are rounded to bfloat16 values before saving,
so the file, and the sha256 the spec holds, come out the same on every machine with the same torch release. It
is not a claim's plugin: no spec names it under `plugins:`, and nothing imports it.
"""
from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

HERE = Path(__file__).resolve().parent
OUT, SPEC = HERE / "teacher.pt", HERE / "checkpoint-teacher.yaml"


def main(force: bool = False) -> int:
    from repro.data import Augment, mnist
    from repro.models import create_model

    if OUT.exists() and not force:
        print(f"{OUT.name} exists (sha256 {hashlib.sha256(OUT.read_bytes()).hexdigest()}); --force makes it again")
        return 0
    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = mnist(train_subset=5000)
    model = create_model("mlp", data.in_shape, data.num_classes, hidden=[256, 256]).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    order = torch.Generator().manual_seed(0)
    for _ in range(15):
        for x, y, _ in data.train_batches(128, Augment(), order, torch.device("cpu")):
            loss = F.cross_entropy(model(x.double()), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    state = {k: v.detach().to(torch.bfloat16).to(torch.float32) for k, v in model.state_dict().items()}
    torch.save(state, OUT)
    sha = hashlib.sha256(OUT.read_bytes()).hexdigest()
    wanted = re.search(r"sha256: ([0-9a-f]{64})", SPEC.read_text())
    print(f"wrote {OUT.relative_to(HERE.parent.parent)}: sha256 {sha}")
    if wanted and wanted.group(1) != sha:
        print(f"note: {SPEC.name} names sha256 {wanted.group(1)}; this torch wrote other bytes. Put {sha} in the "
              "spec to use this file (its student runs then get new keys)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main("--force" in sys.argv[1:]))
