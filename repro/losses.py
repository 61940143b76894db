"""KD losses, one function per convention (GUIDE.md, "KD loss conventions").

Every loss has the signature `(student_logits, targets, teacher_logits, **params)` and returns a
dict with `loss` (what is backpropagated), `hard` and `soft` (its two terms, unweighted, so runs
can log them). The spec names the convention explicitly; nothing here applies T^2 "sometimes".
Always log_softmax, never log(softmax): the latter underflows to -inf for large logits.

Each loss has a source name (how a source's code calls it) and a name that says what it computes
(an alias: `LOSSES.get` gives the same function for both). A run's key holds the name as the spec
wrote it, so existing specs keep their keys; prefer one spelling within one claims folder.

| name            | descriptive alias   | params (as a spec writes them)  | loss                                       |
|-----------------|---------------------|---------------------------------|--------------------------------------------|
| `ce`            | -                   | -                               | CE                                         |
| `hinton`        | `kd_batchmean`      | alpha, T                        | (1-alpha) CE + alpha T^2 KL_batchmean      |
| `hinton_repro`  | `kd_classmean`      | alpha, T                        | (1-alpha) CE + alpha T^2 KL_mean           |
| `deit_soft`     | `kd_classmean_deit` | alpha, T                        | (1-alpha) CE + alpha T^2 KL_mean           |
| `deit_hard`     | `teacher_argmax_ce` | alpha=0.5                       | (1-alpha) CE(y) + alpha CE(argmax teacher) |
| `mdistiller`    | `kd_weighted`       | ce_weight, kd_weight, T         | ce_weight CE + kd_weight T^2 KL_batchmean  |
| `mnist_course`  | `kd_classmean_2t2`  | alpha, T                        | (2 T^2 + alpha) KL_mean + (1-alpha) CE     |
| `hymenoptera`   | `logit_mse`         | alpha                           | alpha CE + (1-alpha) MSE(logits)           |

Every loss also takes `label_smoothing` (default 0): the smoothing of its hard-label CE term only
(a label-smoothed teacher is `loss: {name: ce, label_smoothing: 0.1}`).

alpha is the weight of the teacher term everywhere except `hymenoptera` (`logit_mse`), where the source uses it
as the weight of the CE (alpha=1 is plain CE). KL = KL(p_T || q_T), p_T = softmax(teacher / T),
q_T = softmax(student / T); KL_batchmean sums over classes and averages over the batch;
KL_mean is nn.KLDivLoss()'s default elementwise mean = KL_batchmean / number of classes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .registry import LOSSES, Fraction, NonNegative, Positive


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """bf16/fp16 logits (autocast) -> fp32 for the loss arithmetic; fp32 and fp64 stay as they are."""
    return x if x.dtype in (torch.float32, torch.float64) else x.float()


def log_probs(logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """log softmax(logits / T) over classes, in at least fp32 (bf16 log-probs make KL meaningless)."""
    return F.log_softmax(at_least_fp32(logits) / T, dim=-1)


def soft_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """KL(p_T || q_T) summed over classes, averaged over the batch ('batchmean').

    The teacher is detached: soft targets are constants (Hinton 2015), even if a caller forgets
    `torch.no_grad()`. Both sides are log-probabilities (log_target), so no log of a zero.
    """
    return F.kl_div(log_probs(student_logits, T), log_probs(teacher_logits.detach(), T),
                    reduction="batchmean", log_target=True)


def soft_kl_mean(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float) -> torch.Tensor:
    """nn.KLDivLoss()'s default elementwise 'mean' (= DeiT's sum / numel): batchmean / classes."""
    return soft_kl(student_logits, teacher_logits, T) / student_logits.shape[-1]


def hard_ce(student_logits: torch.Tensor, targets: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    return F.cross_entropy(at_least_fp32(student_logits), targets, label_smoothing=label_smoothing)


def combine(hard: torch.Tensor, soft: torch.Tensor, w_hard: float, w_soft: float) -> dict:
    return {"loss": w_hard * hard + w_soft * soft, "hard": hard, "soft": soft}


@LOSSES.register("ce")
def cross_entropy(student_logits, targets, teacher_logits=None, label_smoothing: Fraction = 0.0):
    """Plain cross-entropy on the hard labels (optionally label-smoothed); no teacher."""
    hard = hard_ce(student_logits, targets, label_smoothing)
    return combine(hard, torch.zeros_like(hard), 1.0, 0.0)


@LOSSES.register("hinton", aliases=("kd_batchmean",))
def hinton(student_logits, targets, teacher_logits, alpha: Fraction, T: Positive, label_smoothing: Fraction = 0.0):
    """Hinton et al. 2015 / torchdistill: (1 - alpha) CE + alpha T^2 KL(p_T || q_T), KL batchmean.

    Follows torchdistill `losses/single.py` KDLoss (reduction='batchmean'), except for the name of
    the weight: torchdistill's `alpha` weights the CE and `beta = 1 - alpha` the KL; here alpha is
    the soft weight, as in Hinton and sources 003/004. The T^2 keeps the soft term's gradient
    magnitude roughly independent of T (Hinton, sec. 2).
    """
    return combine(hard_ce(student_logits, targets, label_smoothing), soft_kl(student_logits, teacher_logits, T),
                   1 - alpha, alpha * T * T)


@LOSSES.register("hinton_repro", aliases=("kd_classmean",))
def hinton_repro(student_logits, targets, teacher_logits, alpha: Fraction, T: Positive,
                 label_smoothing: Fraction = 0.0):
    """hinton-repro (source 004) as written: nn.KLDivLoss() with its default elementwise 'mean'
    (= batchmean / number of classes) times alpha T^2, plus (1 - alpha) CE."""
    return combine(hard_ce(student_logits, targets, label_smoothing), soft_kl_mean(student_logits, teacher_logits, T),
                   1 - alpha, alpha * T * T)


@LOSSES.register("deit_soft", aliases=("kd_classmean_deit",))
def deit_soft(student_logits, targets, teacher_logits, alpha: Fraction, T: Positive,
              label_smoothing: Fraction = 0.0):
    """DeiT soft distillation (facebookresearch/deit `losses.py` DistillationLoss, 'soft'):
    (1 - alpha) CE + alpha T^2 KL, the KL reduced as sum / numel (= batchmean / classes): the same
    computation as `kd_classmean`, kept apart because DeiT's code is a separate source.

    DeiT calls T `tau` and applies the KL to a separate distillation-token head; this student has
    one head, so both terms act on the same logits. DeiT's base criterion smooths the true labels
    (`--smoothing 0.1`); here that is `label_smoothing`, off unless the spec sets it.
    """
    return combine(hard_ce(student_logits, targets, label_smoothing),
                   soft_kl_mean(student_logits, teacher_logits, T), 1 - alpha, alpha * T * T)


@LOSSES.register("deit_hard", aliases=("teacher_argmax_ce",))
def deit_hard(student_logits, targets, teacher_logits, alpha: Fraction = 0.5, label_smoothing: Fraction = 0.0):
    """DeiT hard distillation (facebookresearch/deit `losses.py`, 'hard'; the paper weights both by 1/2):
    (1 - alpha) CE(y) + alpha CE(argmax teacher). `soft` is the teacher term (a hard-label CE).

    Label smoothing applies to the true labels only, as in DeiT (the teacher term is plain CE).
    """
    teacher_labels = teacher_logits.detach().argmax(dim=-1)
    return combine(hard_ce(student_logits, targets, label_smoothing), hard_ce(student_logits, teacher_labels),
                   1 - alpha, alpha)


@LOSSES.register("mdistiller", aliases=("kd_weighted",))
def mdistiller(student_logits, targets, teacher_logits, ce_weight: NonNegative, kd_weight: NonNegative,
               T: Positive, label_smoothing: Fraction = 0.0):
    """mdistiller (`mdistiller/distillers/KD.py` kd_loss) / RepDistiller (`distiller_zoo/KD.py` DistillKL):
    ce_weight CE + kd_weight T^2 KL, the KL summed over classes and averaged over the batch.

    Two independent weights (mdistiller's CIFAR-100 default: CE_WEIGHT 0.1, KD_WEIGHT 0.9, T 4).
    """
    return combine(hard_ce(student_logits, targets, label_smoothing), soft_kl(student_logits, teacher_logits, T),
                   ce_weight, kd_weight * T * T)


@LOSSES.register("mnist_course", aliases=("kd_classmean_2t2",))
def mnist_course(student_logits, targets, teacher_logits, alpha: Fraction, T: Positive,
                 label_smoothing: Fraction = 0.0):
    """mnist-course (source 002) exactly as written:
    `nn.KLDivLoss()(F.log_softmax(y/T), F.softmax(teacher/T)) * (T*T*2.0 + alpha) + CE * (1 - alpha)`.

    The elementwise-mean KL is batchmean / classes, and alpha never switches the soft term off:
    at alpha=0 the loss is still CE + 2 T^2 KL_mean. (Implicit softmax dim on 2-d logits = classes.)
    """
    return combine(hard_ce(student_logits, targets, label_smoothing), soft_kl_mean(student_logits, teacher_logits, T),
                   1 - alpha, T * T * 2.0 + alpha)


@LOSSES.register("hymenoptera", aliases=("logit_mse",))
def hymenoptera(student_logits, targets, teacher_logits, alpha: Fraction, label_smoothing: Fraction = 0.0):
    """hymenoptera (source 001): alpha CE + (1 - alpha) MSE(student logits, teacher logits).

    alpha weights the CE (alpha=1: plain CE; alpha=0: pure logit matching). The MSE is
    nn.MSELoss()'s default mean over batch x classes; no temperature.
    """
    soft = F.mse_loss(at_least_fp32(student_logits), at_least_fp32(teacher_logits.detach()))
    return combine(hard_ce(student_logits, targets, label_smoothing), soft, alpha, 1 - alpha)
