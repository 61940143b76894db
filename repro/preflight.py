"""One dummy batch through an arm's plugin builders before any training: each must keep the documented contract.

A plugin (repro/plugins.py) is the user's code, checked by `repro validate` only through its signature. What it
returns is checked here, once, on a batch of two zero images, before a run trains: a dataset builder returns a
repro.data TensorDataset (or FolderDataset) with an integer `num_classes`; a model builder returns a torch Module
whose output for (2, *in_shape) is a floating tensor of shape (2, num_classes); a loss returns a dict whose `loss`,
`hard` and `soft` are floating scalar tensors. A broken contract is one line naming the plugin file, the builder
and what was expected, so `repro validate` reports it and `repro run` marks that claim NOT RUN while every other
claim trains. Built-in builders are tested by the suite and skipped here.
"""
from __future__ import annotations

from pathlib import Path

PARTS = ("loss", "hard", "soft")


class PluginBroken(Exception):
    """A plugin builder broke its contract; str() is the one line to show."""


def _owner(builder) -> str:
    module = __import__("sys").modules.get(getattr(builder, "__module__", ""), None)
    return Path(getattr(module, "__file__", "") or getattr(builder, "__module__", "?")).name


def _call(kind: str, name: str, builder, fn):
    """fn(), with any exception from the user's code as one line naming the builder (KeyboardInterrupt passes)."""
    try:
        return fn()
    except (Exception, SystemExit) as err:  # noqa: BLE001 -- the user's code: any failure is one line
        raise PluginBroken(f"{kind} '{name}' (plugin {_owner(builder)}) failed on a dummy batch: "
                           f"{type(err).__name__}: {' '.join(str(err).split())[:160]}") from None


def _expect(ok: bool, kind: str, name: str, builder, expected: str, got: str) -> None:
    if not ok:
        raise PluginBroken(f"{kind} '{name}' (plugin {_owner(builder)}): expected {expected}, got {got}")


def _describe(x) -> str:
    import torch
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def check_arm(arm) -> None:
    """Raise PluginBroken for the first plugin builder of `arm` (its dataset, model, loss) that breaks its
    contract on a dummy batch; return quietly when there is none or all keep it."""
    from .data import FolderDataset, TensorDataset, load_dataset
    from .nets import hashable
    from .plugins import from_plugin
    from .registry import builders_of
    builders = builders_of(arm)
    if not any(from_plugin(builders[k]) for k in ("dataset", "model", "loss")):
        return
    import torch
    b = builders["dataset"]
    dataset = _call("dataset", arm.data.name, b, lambda: load_dataset(arm.data.name, **hashable(arm.data.params)))
    _expect(isinstance(dataset, (TensorDataset, FolderDataset)), "dataset", arm.data.name, b,
            "a repro.data.TensorDataset (build it with repro.data.tensor_dataset)", _describe(dataset))
    classes = getattr(dataset, "num_classes", None)
    _expect(isinstance(classes, int) and not isinstance(classes, bool) and classes >= 2, "dataset", arm.data.name, b,
            "an integer num_classes >= 2", repr(classes)[:40])
    in_shape = dataset.in_shape_at(arm.resolution)
    b = builders["model"]
    model = _call("model", arm.model.name, b, lambda: b(in_shape=in_shape, num_classes=classes, **arm.model.params))
    _expect(isinstance(model, torch.nn.Module), "model", arm.model.name, b, "a torch.nn.Module", _describe(model))
    x = torch.zeros(2, *in_shape)
    for mode in ("train", "eval"):  # a plugin that returns extra columns in one mode only is caught too
        model.train(mode == "train")
        out = _call("model", arm.model.name, b, lambda: model(x))
        _expect(isinstance(out, torch.Tensor) and out.is_floating_point() and tuple(out.shape) == (2, classes),
                "model", arm.model.name, b, f"logits of shape (2, {classes}) as a floating tensor ({mode} mode, "
                f"input {tuple(x.shape)})", _describe(out))
    b = builders["loss"]
    if not from_plugin(b):
        return
    logits = torch.randn(2, classes, requires_grad=True)
    teacher = torch.randn(2, classes) if arm.has_teacher else None
    parts = _call("loss", arm.loss.name, b, lambda: b(logits, torch.zeros(2, dtype=torch.long), teacher,
                                                       **arm.loss.params))
    _expect(isinstance(parts, dict) and all(k in parts for k in PARTS), "loss", arm.loss.name, b,
            "a dict with 'loss', 'hard' and 'soft'", _describe(parts) if not isinstance(parts, dict)
            else f"a dict with {sorted(map(str, parts))[:6]}")
    for k in PARTS:
        _expect(isinstance(parts[k], torch.Tensor) and parts[k].is_floating_point() and parts[k].dim() == 0,
                "loss", arm.loss.name, b, f"'{k}' as a floating scalar tensor", _describe(parts[k]))


def checkpoint_problem(arm) -> str | None:
    """Why the arm's teacher_checkpoint does not load into its network (keys, shapes; repro/teachers.py), or
    None (also where the dataset is missing: that run is NOT RUN for its data)."""
    if arm.teacher_checkpoint is None:
        return None
    from .data import DataMissing
    from .models import WeightsMissing
    from .teachers import checkpoint_network
    try:
        checkpoint_network(arm)
    except DataMissing:
        return None
    except WeightsMissing as err:
        return str(err)
    return None


def arm_problem(arm) -> str | None:
    """check_arm's line, or the checkpoint teacher's, or None."""
    try:
        check_arm(arm)
    except PluginBroken as err:
        return str(err)
    return checkpoint_problem(arm)


def claim_problems(claim, path) -> list[str]:
    """One line per plugin contract a claim's arms break (`path: arms.<arm> (variant, profile): ...`), each
    distinct arm checked once; what `repro validate` adds to the spec's own checks."""
    seen, lines = set(), []
    for variant in claim.variants:
        for profile in claim.profiles:
            for name in [a for a in claim.arms if not claim.is_observed(a)]:
                arm = claim.resolve(name, variant, profile)
                key = arm.model_dump_json()
                if key in seen:
                    continue
                seen.add(key)
                problem = arm_problem(arm)
                if problem and problem not in {line.split(": ", 2)[-1] for line in lines}:
                    lines.append(f"{path}: arms.{name} (variant '{variant}', profile '{profile}'): {problem}")
    return lines


def uses_plugin(run) -> bool:
    """Does the run (or a run it learns from) call a plugin's builder? Then a failure in training is the
    plugin's, shown as one line for that claim, not a traceback that stops the others."""
    from .plugins import from_plugin
    from .registry import builders_of
    return any(from_plugin(b) for r in (run, run.teacher, run.init_from, *run.teachers) if r is not None
               for b in builders_of(r.arm).values())
