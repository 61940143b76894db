"""Several teachers as one: their logits (or probabilities at the loss's temperature) averaged with weights.

An arm writes `teacher: [t1, t2, t3]` (equal weights) or `teacher: {t1: 2, t2: 1}` (weights, normalised to sum
to 1); the spec moves it to `Arm.teachers` (repro/spec/schema.py), so a single-teacher arm is written, and
keyed, as before. `teacher_aggregate` says how they are combined:

- `logits` (default): the weighted mean of the members' logits.
- `probabilities`: the weighted mean of softmax(logits / T), T the loss's `T` (1 for a loss without one),
  returned as T log(mean p): softmax(out / T) is then exactly the mean probability, so every loss reads it
  as it reads one teacher's logits (and logit_gap / fidelity are measured against it).

The ensemble is one frozen module (train.py treats it as the teacher); each member is its own stored run,
trained once and shared with every claim that names it. (To move into repro/teachers.py.)
"""
from __future__ import annotations

import torch


class Ensemble(torch.nn.Module):
    def __init__(self, members: list[torch.nn.Module], weights: list[float], aggregate: str = "logits",
                 T: float = 1.0):
        super().__init__()
        if aggregate not in ("logits", "probabilities"):
            raise ValueError(f"teacher_aggregate: 'logits' or 'probabilities', got {aggregate!r}")
        self.members = torch.nn.ModuleList(members)
        total = float(sum(weights))
        self.weights = [w / total for w in weights]
        self.aggregate, self.T = aggregate, T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = torch.stack([m(x).float() for m in self.members])  # (members, batch, classes)
        w = torch.tensor(self.weights, dtype=outs.dtype, device=outs.device).view(-1, 1, 1)
        if self.aggregate == "logits":
            return (w * outs).sum(0)
        log_p = torch.log_softmax(outs / self.T, dim=-1) + w.log()
        return self.T * torch.logsumexp(log_p, dim=0)


def loss_temperature(loss_params: dict) -> float:
    return float(loss_params.get("T", 1.0))
