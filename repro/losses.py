"""KD losses, one function per convention (GUIDE.md, "KD loss conventions").

Every loss has the signature `(student_logits, targets, teacher_logits, **params)` and returns a
dict with `loss` (what is backpropagated), `hard` and `soft` (its two terms, unweighted, so runs
can log them). The spec names the convention explicitly; nothing here applies T^2 "sometimes".
Always log_softmax, never log(softmax): the latter underflows to -inf for large logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import LOSSES


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits (autocast) -> fp32 for the loss arithmetic; fp32 and fp64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(p_T || q_T) summed over classes, averaged over the batch ('batchmean').

    p_T = softmax(teacher / T) is the target, q_T = softmax(student / T) the student.
    Computed in fp32 so bf16 autocast cannot make the difference of two logs meaningless.
    """
    log_q = F.log_softmax(at_least_fp32(student_logits) / T, dim=-1)
    log_p = F.log_softmax(at_least_fp32(teacher_logits) / T, dim=-1)
    return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)


@LOSSES.register("ce")
def cross_entropy(student_logits, targets, teacher_logits=None):
    """Plain cross-entropy on the hard labels; no teacher."""
    hard = F.cross_entropy(at_least_fp32(student_logits), targets)
    return {"loss": hard, "hard": hard, "soft": torch.zeros_like(hard)}


@LOSSES.register("hinton")
def hinton(student_logits, targets, teacher_logits, alpha: float, T: float):
    """Hinton et al. 2015 / torchdistill: (1 - alpha) CE + alpha T^2 KL(p_T || q_T), KL batchmean.

    The T^2 keeps the soft term's gradient magnitude roughly independent of T (Hinton, sec. 2).
    """
    hard = F.cross_entropy(at_least_fp32(student_logits), targets)
    soft = soft_kl(student_logits, teacher_logits, T)
    return {"loss": (1 - alpha) * hard + alpha * T * T * soft, "hard": hard, "soft": soft}


@LOSSES.register("hinton_repro")
def hinton_repro(student_logits, targets, teacher_logits, alpha: float, T: float):
    """hinton-repro (source 004) as written: nn.KLDivLoss() with its default elementwise 'mean'
    (= batchmean / number of classes) times alpha T^2, plus (1 - alpha) CE."""
    hard = F.cross_entropy(at_least_fp32(student_logits), targets)
    soft = soft_kl(student_logits, teacher_logits, T) / student_logits.shape[-1]
    return {"loss": (1 - alpha) * hard + alpha * T * T * soft, "hard": hard, "soft": soft}
