"""The broken-input corpus: specs a hostile or careless user might write, each with the exact one-line
error `repro validate` must print for it (after `<file>: `). tests/test_bad_inputs.py runs them all.

A case is (id, class, spec, expected): `spec` is an edit of BASE (a function), or the file's raw
text/bytes; `expected` is the line, or a list of lines when the file has several errors.
"""
from __future__ import annotations

import copy

BASE = {
    "id": "bad", "source": {"file": "004_278a3d654a3da5e2.txt", "quote": "q"}, "statement": "s",
    "defaults": {"data": {"name": "synthetic", "n_train": 64, "n_test": 32}, "batch_size": 32,
                 "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 1},
    "arms": {"a": {"model": {"name": "mlp", "hidden": [8]}}, "b": {"model": {"name": "mlp", "hidden": [4]}}},
    "check": {"kind": "less", "metric": "test_errors", "arms": ["a", "b"], "alpha": 0.05, "justification": "j"},
    "profiles": {"smoke": {"seeds": [0, 1], "scale": "tiny"}},
}
ARM_A = "arms.a (variant 'default', profile 'smoke')."
ARM_B = "arms.b (variant 'default', profile 'smoke')."


def edit(**changes):
    """BASE with top-level keys replaced (None deletes)."""
    def apply(doc):
        for k, v in changes.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
    return apply


def arm(name="a", **changes):
    """BASE with arm `name`'s keys replaced."""
    def apply(doc):
        doc["arms"][name].update(changes)
    return apply


def model(**params):
    return arm(model={"name": "mlp", "hidden": [8], **params})


def data(**params):
    return arm(data={"name": "synthetic", "n_train": 64, "n_test": 32, **params})


def loss(**params):
    return arm(teacher="b", loss=params)


def check(**changes):
    def apply(doc):
        doc["check"].update(changes)
    return apply


def rename_arm(new):
    def apply(doc):
        doc["arms"][new] = doc["arms"].pop("a")
        doc["check"]["arms"] = [new, "b"]
    return apply


def variants(v):
    return edit(variants=v)


def both(*edits):
    def apply(doc):
        for e in edits:
            e(doc)
    return apply


def build(spec) -> dict:
    doc = copy.deepcopy(BASE)
    spec(doc)
    return doc


NAMES = "names"
PARAMS = "parameters"
LIMITS = "limits"
YAML = "yaml"
MESSAGES = "messages"

CASES = [
    # --- names that would become paths ---
    ("arm-dotdot-path", NAMES, rename_arm("../../../../x"),
     "arms: '../../../../x' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-absolute", NAMES, rename_arm("/abs/path"),
     "arms: '/abs/path' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-dot", NAMES, rename_arm("."),
     "arms: '.' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-dotdot", NAMES, rename_arm(".."),
     "arms: '..' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-empty", NAMES, rename_arm(""),
     "arms: '' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-slash", NAMES, rename_arm("a/b"),
     "arms: 'a/b' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-backslash", NAMES, rename_arm("a\\b"),
     "arms: 'a\\\\b' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-leading-dot", NAMES, rename_arm(".hidden"),
     "arms: '.hidden' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-control-char", NAMES, rename_arm("a\x07b"),
     "arms: 'a\\x07b' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-newline", NAMES, rename_arm("a\nb"),
     "arms: 'a\\nb' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-too-long", NAMES, rename_arm("a" * 65),
     "arms: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa... is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("arm-space", NAMES, rename_arm("my arm"),
     "arms: 'my arm' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("variant-dotdot", NAMES, variants({"../x": {}}),
     "variants: '../x' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("variant-absolute", NAMES, variants({"/etc": {}}),
     "variants: '/etc' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("variant-empty", NAMES, variants({"": {}}),
     "variants: '' is not a safe name (letters, digits, '_', '.', '-', starting with a letter or digit, at most 64 characters)"),
    ("profile-unknown", NAMES, edit(profiles={"../p": {"seeds": [0], "scale": "s"}}),
     "profiles: String should match pattern '^[a-z0-9][a-z0-9_-]{0,63}$' (got '../p')"),
    ("claim-id-path", NAMES, edit(id="../bad"),
     "id: String should match pattern '^[a-z0-9][a-z0-9-]*$' (got '../bad')"),
    ("claim-id-too-long", NAMES, edit(id="b" * 65),
     "id: String should have at most 64 characters (got 'bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb...)"),
    ("teacher-unknown", NAMES, arm(teacher="../t"),
     "arms.a.teacher: unknown arm '../t'"),
    # --- parameters checked against the builders' signatures, types and ranges ---
    ("hidden-string", PARAMS, model(hidden="abc"),
     ARM_A + "model.hidden: Input should be a valid list (got 'abc')"),
    ("hidden-negative", PARAMS, model(hidden=[-4]),
     ARM_A + "model.hidden.0: Input should be greater than or equal to 1 (got -4)"),
    ("hidden-float", PARAMS, model(hidden=[8.5]),
     ARM_A + "model.hidden.0: Input should be a valid integer (got 8.5)"),
    ("hidden-bool", PARAMS, model(hidden=[True]),
     ARM_A + "model.hidden.0: Input should be a valid integer (got True)"),
    ("input-dropout-1.5", PARAMS, model(input_dropout=1.5),
     ARM_A + "model.input_dropout: Input should be less than 1 (got 1.5)"),
    ("hidden-dropout-1", PARAMS, model(hidden_dropout=1.0),
     ARM_A + "model.hidden_dropout: Input should be less than 1 (got 1.0)"),
    ("dropout-string", PARAMS, model(hidden_dropout="half"),
     ARM_A + "model.hidden_dropout: Input should be a valid number (got 'half')"),
    ("batch-norm-string", PARAMS, model(batch_norm="yes"),
     ARM_A + "model.batch_norm: Input should be a valid boolean (got 'yes')"),
    ("init-std-negative", PARAMS, model(init_std=-1.0),
     ARM_A + "model.init_std: Input should be greater than 0 (got -1.0)"),
    ("init-std-nan", PARAMS, model(init_std=float("nan")),
     ARM_A + "model.init_std: Input should be a finite number (got nan)"),
    ("resnet-weights-unknown", PARAMS, arm(model={"name": "resnet18", "weights": "coco"}),
     ARM_A + "model.weights: Input should be 'imagenet' or 'none' (got 'coco')"),
    ("vit-patch-zero", PARAMS, arm(model={"name": "vit_tiny", "patch_size": 0}),
     ARM_A + "model.patch_size: Input should be greater than or equal to 1 (got 0)"),
    ("cnn-width-zero", PARAMS, arm(model={"name": "small_cnn", "width": 0}),
     ARM_A + "model.width: Input should be greater than or equal to 1 (got 0)"),
    ("T-string", PARAMS, loss(name="hinton", alpha=0.5, T="twenty"),
     ARM_A + "loss.T: Input should be a valid number (got 'twenty')"),
    ("T-zero", PARAMS, loss(name="hinton", alpha=0.5, T=0),
     ARM_A + "loss.T: Input should be greater than 0 (got 0)"),
    ("T-inf", PARAMS, loss(name="hinton", alpha=0.5, T=float("inf")),
     ARM_A + "loss.T: Input should be a finite number (got inf)"),
    ("alpha-1.5", PARAMS, loss(name="hinton", alpha=1.5, T=4),
     ARM_A + "loss.alpha: Input should be less than or equal to 1 (got 1.5)"),
    ("alpha-negative", PARAMS, loss(name="mnist_course", alpha=-0.1, T=4),
     ARM_A + "loss.alpha: Input should be greater than or equal to 0 (got -0.1)"),
    ("label-smoothing-2", PARAMS, loss(name="deit_soft", alpha=0.5, T=1, label_smoothing=2),
     ARM_A + "loss.label_smoothing: Input should be less than or equal to 1 (got 2)"),
    ("kd-weight-negative", PARAMS, loss(name="mdistiller", ce_weight=1, kd_weight=-1, T=4),
     ARM_A + "loss.kd_weight: Input should be greater than or equal to 0 (got -1)"),
    ("hym-alpha-string", PARAMS, loss(name="hymenoptera", alpha="1"),
     ARM_A + "loss.alpha: Input should be a valid number (got '1')"),
    ("kd-loss-without-teacher", PARAMS, arm(loss={"name": "hinton", "alpha": 0.5, "T": 4}),
     ARM_A[:-1] + ": loss: 'hinton' distils from a teacher, but the arm has no 'teacher' (for a label-smoothed arm without a teacher: loss: {name: ce, label_smoothing: 0.1})"),
    ("lr-inf", PARAMS, arm(optimizer={"name": "sgd", "lr": float("inf")}),
     ARM_A + "optimizer.lr: Input should be a finite number (got inf)"),
    ("lr-nan", PARAMS, arm(optimizer={"name": "sgd", "lr": float("nan")}),
     ARM_A + "optimizer.lr: Input should be a finite number (got nan)"),
    ("lr-zero", PARAMS, arm(optimizer={"name": "adam", "lr": 0}),
     ARM_A + "optimizer.lr: Input should be greater than 0 (got 0)"),
    ("momentum-1", PARAMS, arm(optimizer={"name": "sgd", "lr": 0.1, "momentum": 1}),
     ARM_A + "optimizer.momentum: Input should be less than 1 (got 1)"),
    ("weight-decay-inf", PARAMS, arm(optimizer={"name": "sgd", "lr": 0.1, "weight_decay": float("inf")}),
     ARM_A + "optimizer.weight_decay: Input should be a finite number (got inf)"),
    ("optimizer-unknown", PARAMS, arm(optimizer={"name": "lbfgs", "lr": 0.1}),
     ARM_A + "optimizer.name: Input should be 'sgd', 'adam' or 'adamw' (got 'lbfgs')"),
    ("schedule-every-zero", PARAMS, arm(schedule={"name": "halve_every", "every": 0}),
     ARM_A + "schedule.every: Input should be greater than 0 (got 0)"),
    ("schedule-missing-step", PARAMS, arm(schedule={"name": "step"}),
     ARM_A + "schedule: schedule 'step' needs 'step_size'"),
    ("n-train-zero", PARAMS, data(n_train=0),
     ARM_A + "data.n_train: Input should be greater than or equal to 1 (got 0)"),
    ("n-test-zero", PARAMS, data(n_test=0),
     ARM_A + "data.n_test: Input should be greater than or equal to 1 (got 0)"),
    ("n-train-float", PARAMS, data(n_train=64.5),
     ARM_A + "data.n_train: Input should be a valid integer (got 64.5)"),
    ("num-classes-one", PARAMS, data(num_classes=1),
     ARM_A + "data.num_classes: Input should be greater than or equal to 2 (got 1)"),
    ("shape-2d", PARAMS, data(shape=[28, 28]),
     ARM_A + "data.shape: Value should have at least 3 items after validation, not 2 (got [28, 28])"),
    ("noise-negative", PARAMS, data(noise=-1.0),
     ARM_A + "data.noise: Input should be greater than or equal to 0 (got -1.0)"),
    ("mnist-keep-class-42", PARAMS, arm(data={"name": "mnist", "keep_classes": [42]}),
     ARM_A + "data.keep_classes.0: Input should be less than or equal to 9 (got 42)"),
    ("mnist-holdout-negative", PARAMS, arm(data={"name": "mnist", "holdout": -5}),
     ARM_A + "data.holdout: Input should be greater than or equal to 0 (got -5)"),
    ("data-unknown-param", PARAMS, data(colour="red"),
     ARM_A + "data: dataset 'synthetic' takes no parameter ['colour']; it takes ['n_train', 'n_test', 'num_classes', 'shape', 'noise', 'seed', 'omit_classes', 'keep_classes', 'holdout']"),
    ("epochs-string", PARAMS, arm(epochs="twenty"),
     ARM_A + "epochs: Input should be a valid integer (got 'twenty')"),
    ("batch-size-zero", PARAMS, arm(batch_size=0),
     ARM_A + "batch_size: Input should be greater than 0 (got 0)"),
    ("bias-shift-classes-negative", PARAMS, arm(bias_shift={"classes": [-1]}),
     ARM_A + "bias_shift.classes.0: Input should be greater than or equal to 0 (got -1)"),
    ("metric-unknown", PARAMS, check(metric="accuracy"),
     "check.metric: 'accuracy' is not recorded by this run; known: epoch, lr, train_loss, train_hard, train_soft, train_acc, test_errors, test_acc, test_loss (arm 'a', variant 'default', profile 'smoke')"),
    ("metric-reducer-unknown", PARAMS, check(metric="max:train_loss"),
     "check.metric: unknown reducer 'max' in 'max:train_loss'; known: first, mean, settle, spread (arm 'a', variant 'default', profile 'smoke')"),
    ("metric-reducer-on-final-key", PARAMS, check(metric="first:errors_before"),
     "check.metric: 'errors_before' is not recorded by this run per epoch; known: epoch, lr, train_loss, train_hard, train_soft, train_acc, test_errors, test_acc, test_loss (arm 'a', variant 'default', profile 'smoke')"),
    ("metric-logit-gap-without-teacher", PARAMS, check(metric="logit_gap"),
     "check.metric: 'logit_gap' is not recorded by this run; known: epoch, lr, train_loss, train_hard, train_soft, train_acc, test_errors, test_acc, test_loss (arm 'a', variant 'default', profile 'smoke')"),
    ("metric-bias-shift-without-bias-shift", PARAMS, check(metric="errors_after_test"),
     "check.metric: 'errors_after_test' is not recorded by this run; known: epoch, lr, train_loss, train_hard, train_soft, train_acc, test_errors, test_acc, test_loss (arm 'a', variant 'default', profile 'smoke')"),
    # --- size limits (a claim raises one with `limits:`) ---
    ("epochs-1e9", LIMITS, arm(epochs=10 ** 9),
     ARM_A + "epochs: 1000000000 is over the epochs limit of 10000; a claim that means it raises it with `limits: {epochs: 1000000000}`"),
    ("hidden-200000", LIMITS, model(hidden=[200000]),
     ARM_A + "model.hidden.0: 200000 is over the width limit of 16384; a claim that means it raises it with `limits: {width: 200000}`"),
    ("resolution-100000", LIMITS, arm(resolution=100000),
     ARM_A + "resolution: 100000 is over the resolution limit of 1024; a claim that means it raises it with `limits: {resolution: 100000}`"),
    ("n-train-1e9", LIMITS, data(n_train=10 ** 9),
     ARM_A + "data.n_train: 1000000000 is over the examples limit of 1000000; a claim that means it raises it with `limits: {examples: 1000000000}`"),
    ("batch-size-1e7", LIMITS, arm(batch_size=10 ** 7),
     ARM_A + "batch_size: 10000000 is over the batch_size limit of 65536; a claim that means it raises it with `limits: {batch_size: 10000000}`"),
    ("jitter-1e6", LIMITS, arm(jitter_px=10 ** 6),
     ARM_A + "jitter_px: 1000000 is over the resolution limit of 1024; a claim that means it raises it with `limits: {resolution: 1000000}`"),
    ("cnn-width-1e6", LIMITS, arm(model={"name": "small_cnn", "width": 10 ** 6}),
     ARM_A + "model.width: 1000000 is over the width limit of 16384; a claim that means it raises it with `limits: {width: 1000000}`"),
    ("shape-side-1e5", LIMITS, data(shape=[1, 100000, 28]),
     ARM_A + "data.shape.1: 100000 is over the resolution limit of 1024; a claim that means it raises it with `limits: {resolution: 100000}`"),
    ("limits-unknown-name", LIMITS, edit(limits={"memory": 10}),
     "limits: Input should be 'epochs', 'batch_size', 'width', 'resolution' or 'examples' (got 'memory')"),
    ("limits-negative", LIMITS, edit(limits={"epochs": -1}),
     'limits.epochs: Input should be greater than 0 (got -1)'),
    ("limits-raised-but-still-over", LIMITS, both(edit(limits={"epochs": 20000}), arm(epochs=30000)),
     ARM_A + "epochs: 30000 is over the epochs limit of 20000; a claim that means it raises it with `limits: {epochs: 30000}`"),
    # --- YAML ---
    ("duplicate-top-key", YAML, "id: bad\nid: bad\n",
     "line 2: duplicate key 'id' (its second value would silently replace the first)"),
    ("duplicate-arms-block", YAML, "arms:\n  a: {}\narms:\n  b: {}\n",
     "line 3: duplicate key 'arms' (its second value would silently replace the first)"),
    ("duplicate-nested-key", YAML, "defaults:\n  epochs: 1\n  epochs: 2\n",
     "line 3: duplicate key 'epochs' (its second value would silently replace the first)"),
    ("alias-bomb", YAML, "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
     "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
     "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
     "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
     "i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h,*h]\n",
     'more than 100000 values once aliases are expanded (an alias bomb?)'),
    ("deep-flow-nesting", YAML, "a: " + "[" * 100000 + "]" * 100000 + "\n",
     'line 1: nested more than 32 levels deep'),
    ("deep-block-nesting", YAML, "".join(" " * i + f"k{i}:\n" for i in range(200)),
     'line 32: nested more than 32 levels deep'),
    ("latin-1", YAML, "id: bad\nstatement: caf\xe9\n".encode("latin-1"),
     'not UTF-8 text (byte 0xe9 at offset 22); save the spec as UTF-8'),
    ("utf-16", YAML, "id: bad\n".encode("utf-16"),
     'not UTF-8 text (byte 0xff at offset 0); save the spec as UTF-8'),
    ("binary", YAML, bytes(range(256)),
     'not UTF-8 text (byte 0x80 at offset 128); save the spec as UTF-8'),
    ("nul-bytes", YAML, b"id: bad\x00\n",
     'not a text file (it contains NUL bytes)'),
    ("empty-file", YAML, "",
     'the file is empty; expected a mapping of claim fields'),
    ("scalar-document", YAML, "just words\n",
     '(top level): expected a mapping of claim fields, got str'),
    ("too-big", YAML, "statement: " + "x" * (1 << 20) + "\n",
     '1048588 bytes; a spec is at most 1048576 bytes'),
    ("python-tag", YAML, "id: !!python/object/apply:os.system ['true']\n",
     "line 1: not valid YAML (could not determine a constructor for the tag 'tag:yaml.org,2002:python/object/apply:os.system')"),
    ("variants-empty", YAML, variants({}),
     'variants: Dictionary should have at least 1 item after validation, not 0'),
    ("unknown-key-lists-valid", YAML, edit(colour="red"),
     "colour: Extra inputs are not permitted (got 'red'); valid keys: id, source, statement, defaults, arms, check, secondary_checks, preconditions, variants, profiles, "
     "plugins, limits"),
    ("unknown-arm-key-lists-valid", YAML, arm(colour="red"),
     ARM_A + "colour: Extra inputs are not permitted (got 'red'); valid keys: model, data, loss, teacher, teachers, "
     "teacher_checkpoint, teacher_aggregate, teacher_epoch, fixed_seed, teacher_mode, teacher_view, init_from, optimizer, "
     "schedule, epochs, batch_size, jitter_px, crop_pad, hflip, resolution, precision, compile, select, eval_every, "
     "log_steps, bias_shift, features, train_on, labels, cache_teacher_logits"),
    # --- no message prints more than a line of the input ---
    ("long-value-clipped", MESSAGES, arm(epochs="x" * 10000),
     ARM_A + "epochs: Input should be a valid integer (got 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx...)"),
    ("multiline-value-clipped", MESSAGES, arm(epochs="line one\nline two\nline three"),
     ARM_A + "epochs: Input should be a valid integer (got 'line one\\nline two\\nline three')"),
    ("huge-list-clipped", MESSAGES, model(hidden=["w"] * 5000),
     [f"{ARM_A}model.hidden.{i}: Input should be a valid integer (got 'w')" for i in range(20)]
     + ["... and 4980 more errors"]),
    ("long-unknown-model-clipped", MESSAGES, arm(model={"name": "m" * 5000}),
     ARM_A + "model: unknown model 'mmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmmm...'; known: mlp, resnet18, resnet50, resnet_cifar, small_cnn, timm, vit_tiny; "
     "to add one, register it with @MODELS.register in a .py file the spec names under `plugins:` (docs/writing-claims.md)"),
]

# `base:` cases: the spec sits in claims/, next to claims/_shared/ok.yaml (a valid shared file) and
# claims/_shared/dir/; outside.yaml (with a secret in it) sits next to claims/.
BASE_CASES = [
    ("base-absolute", NAMES, edit(base="/etc/passwd"),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '/etc/passwd'"),
    ("base-escapes", NAMES, edit(base="../outside.yaml"),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '../outside.yaml'"),
    ("base-escapes-via-shared", NAMES, edit(base="_shared/../../outside.yaml"),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '_shared/../../outside.yaml'"),
    ("base-empty", NAMES, edit(base=""),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got ''"),
    ("base-directory", NAMES, edit(base="_shared/dir"),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '_shared/dir'"),
    ("base-missing", NAMES, edit(base="_shared/nope.yaml"),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '_shared/nope.yaml'"),
    ("base-not-a-string", NAMES, edit(base=["_shared/ok.yaml"]),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got ['_shared/ok.yaml']"),
    ("base-dot", NAMES, edit(base="."),
     "base: expected the relative path of a file inside the spec's folder (e.g. _shared/source.yaml), got '.'"),
]


TYPES = "types"
RANGES = "ranges"


def profile(**changes):
    """BASE with the smoke profile's keys replaced."""
    def apply(doc):
        doc["profiles"]["smoke"].update(changes)
    return apply


def teacher_b(**changes):
    """BASE with arm a distilling from arm b."""
    return arm(teacher="b", loss={"name": "hinton", "alpha": 0.5, "T": 4}, **changes)


# --- round 2 (issue 26): strict types and ranges checked at validation time ---
ROUND2_CASES = [
    # --- strict types: a YAML bool is not an int, a quoted number is not a number, 1 is not true ---
    ("group-true", TYPES, profile(sequential={"max_seeds": 5, "group": True}),
     'profiles.smoke.sequential.group: Input should be a valid integer (got True)'),
    ("max-seeds-string", TYPES, profile(sequential={"max_seeds": "7"}),
     "profiles.smoke.sequential.max_seeds: Input should be a valid integer (got '7')"),
    ("max-seeds-float", TYPES, profile(sequential={"max_seeds": 7.0}),
     'profiles.smoke.sequential.max_seeds: Input should be a valid integer (got 7.0)'),
    ("teacher-epoch-true", TYPES, teacher_b(teacher_epoch=True),
     ARM_A + 'teacher_epoch: Input should be a valid integer (got True)'),
    ("teacher-epoch-string", TYPES, teacher_b(teacher_epoch="1"),
     ARM_A + "teacher_epoch: Input should be a valid integer (got '1')"),
    ("epochs-numeric-string", TYPES, arm(epochs="10"),
     ARM_A + "epochs: Input should be a valid integer (got '10')"),
    ("epochs-true", TYPES, arm(epochs=True),
     ARM_A + 'epochs: Input should be a valid integer (got True)'),
    ("epochs-float", TYPES, arm(epochs=2.0),
     ARM_A + 'epochs: Input should be a valid integer (got 2.0)'),
    ("batch-size-true", TYPES, arm(batch_size=True),
     ARM_A + 'batch_size: Input should be a valid integer (got True)'),
    ("hflip-one", TYPES, arm(hflip=1),
     ARM_A + 'hflip: Input should be a valid boolean (got 1)'),
    ("hflip-string", TYPES, arm(hflip="yes"),
     ARM_A + "hflip: Input should be a valid boolean (got 'yes')"),
    ("compile-zero", TYPES, arm(compile=0),
     ARM_A + 'compile: Input should be a valid boolean (got 0)'),
    ("log-steps-string", TYPES, arm(log_steps="true"),
     ARM_A + "log_steps: Input should be a valid boolean (got 'true')"),
    ("paired-yes", TYPES, check(paired="yes"),
     "check.paired: Input should be a valid boolean (got 'yes')"),
    ("paired-one", TYPES, check(paired=1),
     'check.paired: Input should be a valid boolean (got 1)'),
    ("fixed-seed-true", TYPES, arm(fixed_seed=True),
     ARM_A + 'fixed_seed: Input should be a valid integer (got True)'),
    ("fixed-seed-string", TYPES, arm(fixed_seed="3"),
     ARM_A + "fixed_seed: Input should be a valid integer (got '3')"),
    ("comparable-numbers-1", TYPES, profile(comparable={"numbers": 1, "why": "w"}),
     'profiles.smoke.comparable.numbers: Input should be a valid boolean (got 1)'),
    ("comparable-numbers-string", TYPES, profile(comparable={"numbers": "false", "why": "w"}),
     "profiles.smoke.comparable.numbers: Input should be a valid boolean (got 'false')"),
    ("schedule-every-true", TYPES, arm(schedule={"name": "halve_every", "every": True}),
     ARM_A + 'schedule.every: Input should be a valid integer (got True)'),
    ("schedule-patience-string", TYPES, arm(schedule={"name": "plateau", "patience": "10"}),
     ARM_A + "schedule.patience: Input should be a valid integer (got '10')"),
    ("momentum-string", TYPES, arm(optimizer={"name": "sgd", "lr": 0.1, "momentum": "0.9"}),
     ARM_A + "optimizer.momentum: Input should be a valid number (got '0.9')"),
    ("lr-true", TYPES, arm(optimizer={"name": "sgd", "lr": True}),
     ARM_A + 'optimizer.lr: Input should be a valid number (got True)'),
    ("jitter-string", TYPES, arm(jitter_px="2"),
     ARM_A + "jitter_px: Input should be a valid integer (got '2')"),
    ("resolution-float", TYPES, arm(resolution=32.5),
     ARM_A + 'resolution: Input should be a valid integer (got 32.5)'),
    ("bias-shift-class-true", TYPES, arm(bias_shift={"classes": [True]}),
     ARM_A + 'bias_shift.classes.0: Input should be a valid integer (got True)'),
    ("limits-width-true", TYPES, edit(limits={"width": True}),
     'limits.width: Input should be a valid integer (got True)'),
    ("alpha-true", TYPES, check(alpha=True),
     'check.alpha: Input should be a valid number (got True)'),
    ("top-string", TYPES, edit(check={"kind": "best_of", "metric": "test_errors", "arms": ["a", "b"], "alpha": 0.05,
                                      "better": "lower", "top": "1", "justification": "j"}),
     "check.top: Input should be a valid integer (got '1')"),
    ("data-seed-string", TYPES, data(seed="0"),
     ARM_A + "data.seed: Input should be a valid integer (got '0')"),
    ("data-seed-true", TYPES, data(seed=True),
     ARM_A + 'data.seed: Input should be a valid integer (got True)'),
    # --- ranges checked when the spec is validated, not when a run crashes ---
    ("fixed-seed-negative", RANGES, arm(fixed_seed=-1),
     ARM_A + 'fixed_seed: Input should be greater than or equal to 0 (got -1)'),
    ("fixed-seed-2-31", RANGES, arm(fixed_seed=2 ** 31),
     ARM_A + 'fixed_seed: Input should be less than 2147483648 (got 2147483648)'),
    ("fixed-seed-2-40", RANGES, arm(fixed_seed=2 ** 40),
     ARM_A + 'fixed_seed: Input should be less than 2147483648 (got 1099511627776)'),
    ("data-seed-2-32", RANGES, data(seed=2 ** 32),
     ARM_A + 'data.seed: Input should be less than 2147483648 (got 4294967296)'),
    ("data-seed-negative", RANGES, data(seed=-1),
     ARM_A + 'data.seed: Input should be greater than or equal to 0 (got -1)'),
    ("sequential-seeds-overflow", RANGES, profile(seeds=[2 ** 31 - 2, 2 ** 31 - 1], sequential={"max_seeds": 5}),
     'profiles.smoke: sequential: the looks would add seeds up to 2147483650, beyond the largest seed 2147483647; use smaller seeds'),
    ("sequential-seeds-overflow-by-one", RANGES, profile(seeds=[0, 2 ** 31 - 1], sequential={"max_seeds": 3}),
     'profiles.smoke: sequential: the looks would add seeds up to 2147483648, beyond the largest seed 2147483647; use smaller seeds'),
    ("holdout-all-of-train", RANGES, data(holdout=64),
     ARM_A[:-1] + ": " + "data.holdout: 64 leaves no training images (dataset 'synthetic' has 64)"),
    ("holdout-over-train", RANGES, data(holdout=1000),
     ARM_A[:-1] + ": " + "data.holdout: 1000 leaves no training images (dataset 'synthetic' has 64)"),
    ("mnist-holdout-over-train", RANGES, arm(data={"name": "mnist", "holdout": 60000}),
     ARM_A[:-1] + ": " + "data.holdout: 60000 leaves no training images (dataset 'mnist' has 60000)"),
    ("kept-and-omitted", RANGES, data(keep_classes=[1, 2], omit_classes=[2]),
     ARM_A[:-1] + ": " + 'data: class(es) [2] both kept (keep_classes) and omitted (omit_classes); name each class in one of them'),
    ("keep-class-beyond-num-classes", RANGES, data(num_classes=3, keep_classes=[5]),
     ARM_A[:-1] + ": " + "data.keep_classes: class 5 is out of range: dataset 'synthetic' has classes 0 to 2"),
    ("omit-class-beyond-num-classes", RANGES, data(omit_classes=[10]),
     ARM_A[:-1] + ": " + "data.omit_classes: class 10 is out of range: dataset 'synthetic' has classes 0 to 9"),
    ("bias-shift-class-out-of-range", RANGES, arm(bias_shift={"classes": [10]}),
     ARM_A[:-1] + ": " + "bias_shift.classes: class 10 is out of range: dataset 'synthetic' has classes 0 to 9"),
    ("bias-shift-class-mnist-10", RANGES, arm(data={"name": "mnist"}, bias_shift={"classes": [3, 10]}),
     ARM_A[:-1] + ": " + "bias_shift.classes: class 10 is out of range: dataset 'mnist' has classes 0 to 9"),
    ("at-most-recovered-fraction", RANGES, edit(check={"kind": "at_most", "metric": "test_errors", "derived": "recovered_fraction",
        "arms": ["a", "b", "a2"], "bound": 0.5, "alpha": 0.05, "justification": "j"},
        arms={"a": {"model": {"name": "mlp", "hidden": [8]}}, "b": {"model": {"name": "mlp", "hidden": [4]}},
              "a2": {"model": {"name": "mlp", "hidden": [2]}}}),
     "check: derived: at_most takes 'mean' or 'difference' (a quantity whose denominator is constant, so negating the values negates it), got 'recovered_fraction'"),
    ("at-most-relative-change", RANGES, edit(check={"kind": "at_most", "metric": "test_errors", "derived": "relative_change",
        "arms": ["a", "b"], "bound": 0.5, "alpha": 0.05, "justification": "j"}),
     "check: derived: at_most takes 'mean' or 'difference' (a quantity whose denominator is constant, so negating the values negates it), got 'relative_change'"),
    ("blank-scale", RANGES, profile(scale="   "),
     "profiles.smoke.scale: blank; expected one line for the report, e.g. 'reduced: 20 of 1000 epochs' (got '   ')"),
    ("blank-comparable-why", RANGES, profile(comparable={"numbers": False, "why": " \t "}),
     "profiles.smoke.comparable.why: blank; expected one line: why the numbers are (or are not) comparable (got ' \\t ')"),
    ("teacher-epoch-beyond-teacher", RANGES, teacher_b(teacher_epoch=50),
     ARM_A + "teacher_epoch: 50 is beyond the last epoch (1) of its teacher 'b'"),
    ("teacher-epoch-beyond-in-a-profile", RANGES, both(teacher_b(teacher_epoch=2), edit(defaults={
        "data": {"name": "synthetic", "n_train": 64, "n_test": 32}, "batch_size": 32,
        "optimizer": {"name": "sgd", "lr": 0.1}, "epochs": 3}), profile(arms={"b": {"epochs": 1}})),
     ARM_A + "teacher_epoch: 2 is beyond the last epoch (1) of its teacher 'b'"),
]
