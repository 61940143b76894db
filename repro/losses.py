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
| `dkd`           | `decoupled_kd`      | alpha, beta, T, ce_weight=1, warmup=0 | ce_weight CE + r T^2 (alpha TCKD + beta NCKD) |
| `fitnets`       | `hint_l2`           | hint_weight, ce_weight=1, activation | ce_weight CE + hint_weight sum MSE(regressor(hint), guided) |
| `attention_transfer` | `at_l2`        | beta=1000                       | CE + beta/2 sum mean((Q_s/|Q_s| - Q_t/|Q_t|)^2) |

The last two read hidden features (repro/features.py: the arm's `features:` names the modules, paired by
position); `soft` is then the feature term. FitNets builds a regressor per pair, which trains with the student.

Every loss also takes `label_smoothing` (default 0): the smoothing of its hard-label CE term only
(a label-smoothed teacher is `loss: {name: ce, label_smoothing: 0.1}`).

alpha is the weight of the teacher term everywhere except `hymenoptera` (`logit_mse`), where the source uses it
as the weight of the CE (alpha=1 is plain CE). KL = KL(p_T || q_T), p_T = softmax(teacher / T),
q_T = softmax(student / T); KL_batchmean sums over classes and averages over the batch;
KL_mean is nn.KLDivLoss()'s default elementwise mean = KL_batchmean / number of classes.
"""
from __future__ import annotations

from typing import Annotated, Literal, Optional

import torch
import torch.nn.functional as F
from pydantic import Field

from .registry import LOSSES, Fraction, NonNegative, Positive

Epochs = Annotated[int, Field(ge=0, le=10_000)]


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


# --- decoupled KD (logits) -------------------------------------------------------------------------

def dkd_terms(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
              T: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Zhao et al. 2022 (DKD), eqs. 1-5: (TCKD, NCKD), each a KL summed over its classes and averaged over the
    batch, at temperature T, without T^2. TCKD: KL between the binary distributions (p_target, 1 - p_target)
    of teacher and student; NCKD: KL between their distributions over the non-target classes alone.

    In log space throughout (mdistiller's dkd_loss takes torch.log of a softmax and masks the target with
    -1000, which overflows for large logits); the same numbers where both are finite (tests/test_losses.py).
    """
    s, t = at_least_fp32(student_logits) / T, at_least_fp32(teacher_logits.detach()) / T
    target = F.one_hot(targets, s.shape[-1]).bool()

    def binary(x):  # log (p_target, 1 - p_target)
        log_all = torch.logsumexp(x, dim=-1)
        log_target = x.gather(-1, targets[:, None]).squeeze(-1) - log_all
        log_rest = torch.logsumexp(x.masked_fill(target, float("-inf")), dim=-1) - log_all
        return torch.stack([log_target, log_rest], dim=-1)

    def non_target(x):  # log softmax over the classes other than the target
        return F.log_softmax(x[~target].view(len(x), -1), dim=-1)

    tckd = F.kl_div(binary(s), binary(t), reduction="batchmean", log_target=True)
    nckd = F.kl_div(non_target(s), non_target(t), reduction="batchmean", log_target=True)
    return tckd, nckd


@LOSSES.register("dkd", aliases=("decoupled_kd",))
def dkd(student_logits, targets, teacher_logits, alpha: NonNegative, beta: NonNegative, T: Positive,
        ce_weight: NonNegative = 1.0, warmup: Epochs = 0, label_smoothing: Fraction = 0.0,
        epoch: Optional[int] = None):
    """Decoupled KD (Zhao et al. 2022; mdistiller `distillers/DKD.py`):
    ce_weight CE + r T^2 (alpha TCKD + beta NCKD), r = min(epoch / warmup, 1) (mdistiller's linear warm-up of
    the KD term over `warmup` epochs, epoch 1-based; warmup 0 or no epoch: r = 1). `soft` is
    alpha TCKD + beta NCKD (without r T^2). mdistiller's CIFAR-100 setting: alpha 1, beta 8, T 4, warmup 20.
    Classic KD is TCKD + (1 - p_target) NCKD (the paper's eq. 7), per example.
    """
    tckd, nckd = dkd_terms(student_logits, teacher_logits, targets, T)
    ramp = min(epoch / warmup, 1.0) if warmup and epoch is not None else 1.0
    return combine(hard_ce(student_logits, targets, label_smoothing), alpha * tckd + beta * nckd,
                   ce_weight, ramp * T * T)


# --- feature-based methods (hidden features from repro/features.py) --------------------------------

class Regressor(torch.nn.Module):
    """FitNets' regressor (Romero et al. 2015, sec. 2.2): from the student's hint to the teacher's guided
    layer. Convolutional features: a convolution without padding whose kernel (H_s - H_t + 1, W_s - W_t + 1)
    maps the hint's spatial size onto the guided layer's (the paper's choice, fewer parameters than a fully
    connected one); flat features: a linear layer. `activation: relu` follows the paper's rule that the
    regressor has the guided layer's non-linearity (a block output after a ReLU); `none` for a linear one."""

    def __init__(self, student_shape: tuple, teacher_shape: tuple, activation: str = "relu"):
        super().__init__()
        if len(student_shape) == 3 and len(teacher_shape) == 3:
            (cs, hs, ws), (ct, ht, wt) = student_shape, teacher_shape
            if hs < ht or ws < wt:
                raise ValueError(f"fitnets: the student's hint ({hs}x{ws}) is smaller than the teacher's guided "
                                 f"layer ({ht}x{wt}); name an earlier student module or a later teacher one")
            self.map = torch.nn.Conv2d(cs, ct, (hs - ht + 1, ws - wt + 1))
        elif len(student_shape) == 1 and len(teacher_shape) == 1:
            self.map = torch.nn.Linear(student_shape[0], teacher_shape[0])
        else:
            raise ValueError(f"fitnets: a hint of shape {tuple(student_shape)} cannot be regressed onto a guided "
                             f"layer of shape {tuple(teacher_shape)} (both (C, H, W), or both flat)")
        self.activation = activation

    def forward(self, x):
        y = self.map(x)
        return torch.relu(y) if self.activation == "relu" else y


def fitnets_head(student_shapes, teacher_shapes, activation: str = "relu", **_):
    return torch.nn.ModuleList(Regressor(s, t, activation) for s, t in zip(student_shapes, teacher_shapes))


@LOSSES.register("fitnets", aliases=("hint_l2",))
def fitnets(student_logits, targets, teacher_logits, student_features, teacher_features, head,
            hint_weight: NonNegative, ce_weight: NonNegative = 1.0, activation: Literal["relu", "none"] = "relu",
            label_smoothing: Fraction = 0.0):
    """FitNets hints (Romero et al. 2015): ce_weight CE + hint_weight sum_pairs MSE(regressor(hint), guided).

    The MSE is the elementwise mean (mdistiller `FitNet.py`, torchdistill's MSELoss): the paper's
    1/2 ||u_h - r||^2 per example divided by half the guided layer's size. Trained in one stage with the
    hard labels, as mdistiller/RepDistiller do (CIFAR: hint_weight 100); the paper's first stage (hints
    alone, up to the guided layer) followed by KD is not reproduced. `activation` is the regressor's
    (see Regressor). The guided layer is a constant (detached).
    """
    soft = sum(F.mse_loss(at_least_fp32(r(s)), at_least_fp32(t.detach()))
               for r, s, t in zip(head, student_features, teacher_features))
    return combine(hard_ce(student_logits, targets, label_smoothing), soft, ce_weight, hint_weight)


fitnets.build_head = fitnets_head


def attention_map(features: torch.Tensor) -> torch.Tensor:
    """Zagoruyko & Komodakis 2017, F^2_sum with p = 2: the channel mean of squared activations, flattened
    over space and L2-normalised per example (the authors' `at(x)`; the mean instead of the sum changes
    nothing after normalising)."""
    return F.normalize(at_least_fp32(features).pow(2).mean(1).flatten(1), dim=1)


def attention_shapes(student_shapes, teacher_shapes, **_):
    """Refuses pairs whose attention maps cannot be compared (before training); builds nothing."""
    for i, (s, t) in enumerate(zip(student_shapes, teacher_shapes)):
        if len(s) != 3 or len(t) != 3 or s[1:] != t[1:]:
            raise ValueError(f"attention_transfer: pair {i}: attention maps need (C, H, W) features of the same "
                             f"spatial size; student {tuple(s)}, teacher {tuple(t)}")
    return None


@LOSSES.register("attention_transfer", aliases=("at_l2",))
def attention_transfer(student_logits, targets, teacher_logits, student_features, teacher_features,
                       beta: NonNegative = 1000.0, label_smoothing: Fraction = 0.0):
    """Attention transfer (Zagoruyko & Komodakis 2017, eq. 2, as the authors' code `utils.at_loss` computes it):
    CE + beta/2 sum_pairs mean_{batch, positions} (Q_s/||Q_s||_2 - Q_t/||Q_t||_2)^2, beta = 1000.

    The paper writes the pair term as a norm ||.||_p with p = 2 and "beta = 10^3 divided by the number of
    elements in the attention map and batch size"; the code squares it and averages, which is what the
    published numbers come from. `soft` is the sum over pairs (before beta/2). The teacher is detached.
    """
    soft = sum((attention_map(s) - attention_map(t.detach())).pow(2).mean()
               for s, t in zip(student_features, teacher_features))
    return combine(hard_ce(student_logits, targets, label_smoothing), soft, 1.0, beta / 2)


attention_transfer.build_head = attention_shapes


# --- the hard-label term's weight (labels: none) ----------------------------------------------------
#
# An arm trained without labels (Arm.labels: none, a transfer set of unlabelled images) needs a loss whose
# hard-label term weighs 0: each loss declares that weight as a function of its parameters (defaults filled in),
# with the setting that makes it 0 ("" where none does: plain CE, attention transfer's fixed CE weight).
# A plugin loss declares `fn.hard_weight = (weight(params), "the setting")` to be usable without labels.

_ALPHA_IS_SOFT = (lambda p: 1 - p["alpha"], "alpha: 1")
for _fn in (hinton, hinton_repro, deit_soft, deit_hard, mnist_course):
    _fn.hard_weight = _ALPHA_IS_SOFT
for _fn in (mdistiller, dkd, fitnets):
    _fn.hard_weight = (lambda p: p["ce_weight"], "ce_weight: 0")
hymenoptera.hard_weight = (lambda p: p["alpha"], "alpha: 0")
cross_entropy.hard_weight = (lambda p: 1.0, "")
attention_transfer.hard_weight = (lambda p: 1.0, "")


def hard_weight(name: str, params: dict) -> tuple[float | None, str]:
    """(the weight of loss `name`'s hard-label term with these parameters, the setting that makes it 0), or
    (None, "") for a loss that does not declare it."""
    import inspect
    fn = LOSSES.get(name)
    rule = getattr(fn, "hard_weight", None)
    if rule is None:
        return None, ""
    full = {k: p.default for k, p in inspect.signature(fn).parameters.items()
            if p.default is not inspect.Parameter.empty}
    weight, how = rule
    return float(weight({**full, **params})), how
