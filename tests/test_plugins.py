"""A user's own models, datasets and losses (repro/plugins.py), timm architectures by name, and the
torchvision datasets of standard layout: checked by `repro validate` as the built-ins are."""
from __future__ import annotations

import pickle
import sys
import textwrap
import uuid

import numpy as np
import pytest
import torch
import yaml

from repro.data import DataMissing, availability, load_dataset
from repro.models import create_model
from repro.plan import plan_claim
from repro.registry import MODELS
from repro.spec import SpecError, load_claim, load_claims
from repro.train import train


def plugin_source(tag: str) -> str:
    """A plugin registering a model, a dataset and a loss, all named after `tag` (names are per process)."""
    return textwrap.dedent(f'''
        import torch
        from torch import nn
        from repro.data import tensor_dataset
        from repro.losses import combine, hard_ce
        from repro.registry import DATASETS, LOSSES, MODELS, Count, Fraction

        @MODELS.register("tiny_{tag}")
        def create_tiny(in_shape, num_classes, width: Count = 4):
            """A one-hidden-layer net of the user's own."""
            return nn.Sequential(nn.Flatten(), nn.Linear(in_shape[0] * in_shape[1] * in_shape[2], width), nn.ReLU(),
                                 nn.Linear(width, num_classes))

        @DATASETS.register("blobs_{tag}")
        def blobs(n: Count = 64):
            """Two classes of 1x4x4 images of the user's own."""
            g = torch.Generator().manual_seed(0)
            y = torch.arange(n) % 2
            x = (y.view(-1, 1, 1, 1) * 200 + torch.randint(0, 50, (n, 1, 4, 4), generator=g)).to(torch.uint8)
            return tensor_dataset((x, y), (x, y), 2, (0.5,), (0.5,), (), (), 0, None)

        @LOSSES.register("soft_only_{tag}")
        def soft_only(student_logits, targets, teacher_logits=None, weight: Fraction = 1.0):
            """CE scaled by `weight` (a loss of the user's own)."""
            hard = hard_ce(student_logits, targets)
            return combine(hard, torch.zeros_like(hard), weight, 0.0)
        ''')


def claim_doc(tag: str, plugins=("mine.py",), **arm) -> dict:
    return {"id": "own", "plugins": list(plugins), "source": {"file": "f", "quote": "q"}, "statement": "s",
            "defaults": {"data": {"name": f"blobs_{tag}", "n": 32}, "batch_size": 16, "epochs": 1,
                         "optimizer": {"name": "sgd", "lr": 0.1}},
            "arms": {"a": {"model": {"name": f"tiny_{tag}", "width": 3}, "loss": {"name": f"soft_only_{tag}"}, **arm},
                     "b": {"model": {"name": f"tiny_{tag}"}}},
            "check": {"kind": "less", "metric": "test_errors", "arms": ["a", "b"], "alpha": 0.05, "justification": "j"},
            "profiles": {"p": {"seeds": [0, 1], "scale": "s"}}}


@pytest.fixture
def folder(tmp_path):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "mine.py").write_text(plugin_source(tag))
    return tmp_path, tag


def write(path, doc):
    path.write_text(yaml.safe_dump(doc))
    return path


def test_a_plugin_beside_the_claim_registers_a_model_dataset_and_loss_that_train(folder):
    root, tag = folder
    claim = load_claim(write(root / "own.yaml", claim_doc(tag)))
    run = plan_claim(claim, "default", "p")["a"][0]
    result, model = train(run, torch.device("cpu"))
    assert result["status"] == "done" and len(result["epochs"]) == 1
    assert model[1].out_features == 3  # the plugin's own `width` reached its builder


def test_plugin_parameters_are_checked_from_the_builders_annotated_signature(folder):
    root, tag = folder
    doc = claim_doc(tag)
    doc["arms"]["a"]["model"]["width"] = 0
    doc["arms"]["b"]["model"]["depth"] = 2
    doc["defaults"]["data"]["n"] = "many"
    with pytest.raises(SpecError) as err:
        load_claim(write(root / "own.yaml", doc))
    text = str(err.value)
    assert "arms.a (variant 'default', profile 'p').model.width: Input should be greater than or equal to 1" in text
    assert f"model 'tiny_{tag}' takes no parameter ['depth']" in text
    assert "data.n: Input should be a valid integer" in text


def test_nothing_is_imported_unless_a_spec_names_it(tmp_path):
    tag = uuid.uuid4().hex[:8]
    (tmp_path / "mine.py").write_text(plugin_source(tag))
    (tmp_path / "unused.py").write_text("raise SystemExit('imported although no spec names it')\n")
    write(tmp_path / "own.yaml", claim_doc(tag))
    assert set(load_claims(tmp_path)) == {"own"}
    assert not any("unused" in name for name in sys.modules)


def test_a_name_from_a_plugin_the_spec_does_not_name_is_refused(folder):
    root, tag = folder
    load_claim(write(root / "own.yaml", claim_doc(tag)))  # imports mine.py into this process
    doc = claim_doc(tag, plugins=())
    doc["id"] = "other"
    with pytest.raises(SpecError, match=f"model 'tiny_{tag}' is registered by the plugin mine.py, which this spec "
                                        "does not name: add it under `plugins:`"):
        load_claim(write(root / "other.yaml", doc))


def test_an_unknown_name_says_how_to_add_one_and_every_arm_is_reported(tmp_path):
    doc = claim_doc("x", plugins=())
    doc["defaults"]["data"] = {"name": "mnist"}
    doc["arms"] = {"a": {"model": {"name": "lenet9"}}, "b": {"model": {"name": "lenet9"}}}
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path / "own.yaml", doc))
    lines = err.value.lines
    assert len(lines) == 1 and lines[0].startswith(f"{tmp_path}/own.yaml: arms.a (variant 'default', profile 'p')")
    assert lines[0].endswith("(the same in arm b)")
    assert "to add one, register it with @MODELS.register in a .py file the spec names under `plugins:`" in lines[0]


@pytest.mark.parametrize("entry,expected", [
    ("nosuch.py", "plugins.0: 'nosuch.py': no such file in"),
    ("../outside.py", "plugins.0: '../outside.py': a plugin file is named relative to the spec's folder, inside it"),
    ("not a module!", "plugins.0: 'not a module!' is neither a .py file nor a module name"),
    ("broken.py", "plugins.0: 'broken.py' could not be imported (SyntaxError: invalid syntax (line 1))"),
    ("no_such_module_xyz", "plugins.0: 'no_such_module_xyz' could not be imported (ModuleNotFoundError: "),
])
def test_a_plugin_that_cannot_be_imported_is_one_line(tmp_path, entry, expected):
    (tmp_path / "broken.py").write_text("def (:\n")
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path / "own.yaml", claim_doc("x", plugins=(entry,))))
    assert len(err.value.lines) == 1 and expected in err.value.lines[0]


def test_an_importable_module_is_a_plugin_too(tmp_path, monkeypatch):
    tag = uuid.uuid4().hex[:8]
    package = tmp_path / "pkgs" / f"lab_{tag}"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "models.py").write_text(plugin_source(tag))
    monkeypatch.syspath_prepend(str(tmp_path / "pkgs"))
    claims = tmp_path / "claims"
    claims.mkdir()
    claim = load_claim(write(claims / "own.yaml", claim_doc(tag, plugins=(f"lab_{tag}.models",))))
    assert claim.plugins == [f"lab_{tag}.models"]


def test_any_timm_architecture_by_name_with_its_keyword_arguments(tmp_path):
    doc = claim_doc("x", plugins=())
    doc["defaults"]["data"] = {"name": "mnist"}
    doc["arms"] = {"a": {"model": {"name": "timm", "arch": "resnet10t", "drop_rate": 0.1}},
                   "b": {"model": {"name": "timm", "arch": "resnet10z"}},
                   "c": {"model": {"name": "timm", "arch": "resnet10t", "pretrained": True}}}
    doc["check"]["arms"] = ["a", "c"]
    with pytest.raises(SpecError) as err:
        load_claim(write(tmp_path / "own.yaml", doc))
    text = str(err.value)
    assert "arms.a" not in text
    assert "arms.b (variant 'default', profile 'p').model.arch: 'resnet10z' is not a timm architecture" in text
    assert "arms.c (variant 'default', profile 'p').model: timm: 'pretrained' is set by kd-repro" in text
    model = create_model("timm", (1, 28, 28), 10, arch="resnet10t", drop_rate=0.1)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10) and model.drop_rate == 0.1


def test_fashion_mnist_reads_torchvisions_layout_and_mnist_takes_test_subset(tmp_path, monkeypatch):
    from test_data import mnist_folder
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    assert "FashionMNIST/raw/train-images-idx3-ubyte" in availability("fashion_mnist")
    raw = mnist_folder(tmp_path)
    raw.rename(tmp_path / "MNIST" / "fashion")
    (tmp_path / "FashionMNIST").mkdir()
    (tmp_path / "MNIST" / "fashion").rename(tmp_path / "FashionMNIST" / "raw")
    assert availability("fashion_mnist") is None
    data = load_dataset("fashion_mnist", train_subset=100, test_subset=50)
    assert data.train_x.shape == (100, 1, 28, 28) and len(data.test_y) == 50 and data.num_classes == 10


def test_mnist_test_subset_scores_the_first_n_test_images(tmp_path, monkeypatch):
    from test_data import mnist_folder
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    mnist_folder(tmp_path)
    assert len(load_dataset("mnist", test_subset=300).test_y) == 300
    assert len(load_dataset("mnist").test_y) == 10000


def test_cifar100_and_svhn_read_their_torchvision_files(tmp_path, monkeypatch):
    import scipy.io
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))
    (tmp_path / "cifar-100-python").mkdir()
    for split, n in (("train", 20), ("test", 10)):
        (tmp_path / "cifar-100-python" / split).write_bytes(pickle.dumps(
            {"data": np.zeros((n, 3072), np.uint8), "fine_labels": list(range(n)), "coarse_labels": [n % 20] * n}))
    data = load_dataset("cifar100", test_subset=4)
    assert data.train_x.shape == (20, 3, 32, 32) and data.num_classes == 100 and len(data.test_y) == 4
    assert load_dataset("cifar100", labels="coarse").num_classes == 20
    (tmp_path / "SVHN").mkdir()
    for split, n in (("train", 6), ("test", 3)):
        scipy.io.savemat(tmp_path / "SVHN" / f"{split}_32x32.mat",
                         {"X": np.zeros((32, 32, 3, n), np.uint8), "y": np.array([[10], [1], [2]] * (n // 3))})
    data = load_dataset("svhn")
    assert data.train_x.shape == (6, 3, 32, 32) and data.train_y.tolist() == [0, 1, 2, 0, 1, 2]


def test_a_missing_torchvision_dataset_offline_is_a_clear_error(tmp_path, monkeypatch):
    import torchvision
    monkeypatch.setenv("REPRO_DATA", str(tmp_path))

    def offline(*args, **kwargs):
        raise OSError("no network")

    monkeypatch.setattr(torchvision.datasets, "CIFAR100", offline)
    with pytest.raises(DataMissing, match=r"dataset 'cifar100' not found: \$REPRO_DATA lacks cifar-100-python/train, "
                                          r"cifar-100-python/test .*could not be downloaded \(OSError\)"):
        load_dataset("cifar100", labels="fine", test_subset=3)


# Plugins that break the documented contract (issue 36): each is one line naming the plugin file, the builder and
# what was expected, at `repro validate` and at `repro run`, where that claim is NOT RUN and every other trains.
BROKEN = {  # name -> (replacement of the healthy plugin's text, the line expected)
    "wrong-shape": ("nn.Linear(width, num_classes))", "nn.Linear(width, num_classes + 3))",
                    "model 'tiny_{tag}' (plugin bad.py): expected logits of shape (2, 2) as a floating tensor "
                    "(train mode, input (2, 1, 4, 4)), got a torch.float32 tensor of shape (2, 5)"),
    "builder-returns-function": ('    """A one-hidden-layer net of the user\'s own."""\n',
                                 '    """A one-hidden-layer net of the user\'s own."""\n    return lambda x: x\n',
                                 "model 'tiny_{tag}' (plugin bad.py): expected a torch.nn.Module, got function"),
    "dataset-dict": ("return tensor_dataset((x, y), (x, y), 2, (0.5,), (0.5,), (), (), 0, None)",
                     "return {'x': x, 'y': y}",
                     "dataset 'blobs_{tag}' (plugin bad.py): expected a repro.data.TensorDataset (build it with "
                     "repro.data.tensor_dataset), got dict"),
    "loss-bare-tensor": ("return combine(hard, torch.zeros_like(hard), weight, 0.0)", "return hard",
                         "loss 'soft_only_{tag}' (plugin bad.py): expected a dict with 'loss', 'hard' and 'soft', "
                         "got a torch.float32 tensor of shape ()"),
    "integer-logits": ("nn.Linear(width, num_classes))", "nn.Linear(width, num_classes), Round())",
                       "model 'tiny_{tag}' (plugin bad.py): expected logits of shape (2, 2) as a floating tensor "
                       "(train mode, input (2, 1, 4, 4)), got a torch.int64 tensor of shape (2, 2)"),
    "raises-in-forward": ("nn.Linear(width, num_classes))", "nn.Linear(width, num_classes), Boom())",
                          "model 'tiny_{tag}' (plugin bad.py) failed on a dummy batch: RuntimeError: boom"),
}
HELPERS = textwrap.dedent('''
    class Round(nn.Module):
        def forward(self, x):
            return x.round().long()

    class Boom(nn.Module):
        def forward(self, x):
            raise RuntimeError("boom")
    ''')


def broken_folder(tmp_path, case: str):
    """A folder with a healthy claim (own plugin `good.py`) and one whose plugin `bad.py` breaks `case`."""
    good_tag, bad_tag = uuid.uuid4().hex[:8], uuid.uuid4().hex[:8]
    old, new, expected = BROKEN[case]
    source = plugin_source(bad_tag)
    assert old in source
    (tmp_path / "good.py").write_text(plugin_source(good_tag))
    (tmp_path / "bad.py").write_text(source.replace(old, new) + HELPERS)
    write(tmp_path / "good.yaml", {**claim_doc(good_tag, plugins=["good.py"]), "id": "good"})
    write(tmp_path / "own.yaml", claim_doc(bad_tag, plugins=["bad.py"]))
    return expected.format(tag=bad_tag)


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_plugin_that_breaks_its_contract_is_one_validate_line(tmp_path, case, capsys):
    from repro.cli import main
    expected = broken_folder(tmp_path, case)
    assert main(["validate", str(tmp_path)]) == 1
    lines = capsys.readouterr().out.splitlines()
    errors = [line for line in lines if line.startswith("error ")]
    assert len(errors) == 1 and errors[0].endswith(expected), lines
    assert errors[0].startswith(f"error {tmp_path / 'own.yaml'}: arms.a (variant 'default', profile 'p'): ") or \
        errors[0].startswith(f"error {tmp_path / 'own.yaml'}: arms.b (variant 'default', profile 'p'): ")
    assert f"ok    {tmp_path / 'good.yaml'}" in lines


@pytest.mark.parametrize("case", ["wrong-shape", "loss-bare-tensor", "dataset-dict"])
def test_a_broken_plugin_stops_its_claim_not_the_others(tmp_path, case, capsys):
    from repro.cli import main
    (tmp_path / "claims").mkdir()
    expected = broken_folder(tmp_path / "claims", case)
    out = tmp_path / "out"
    assert main(["run", "--claims", str(tmp_path / "claims"), "--out", str(out), "--profile", "p"]) in (0, 1)
    text = capsys.readouterr()
    assert f"NOT RUN own [default]: {expected}" in text.out + text.err
    assert "Traceback" not in text.out + text.err
    assert len(list((out / "results" / "p" / "good").rglob("seed*.json"))) == 4  # both arms, both seeds


def test_a_plugin_failing_mid_training_is_that_claims_not_run(tmp_path, capsys):
    """A failure the dummy batch cannot see (here: from the second optimiser step on) is still one line."""
    from repro.cli import main
    tag = uuid.uuid4().hex[:8]
    source = plugin_source(tag).replace(
        "return combine(hard, torch.zeros_like(hard), weight, 0.0)",
        "CALLS.append(1)\n    if len(CALLS) > 3:\n        raise ValueError('late')\n"
        "    return combine(hard, torch.zeros_like(hard), weight, 0.0)") + "\nCALLS = []\n"
    (tmp_path / "claims").mkdir()
    (tmp_path / "claims" / "late.py").write_text(source)
    write(tmp_path / "claims" / "own.yaml", claim_doc(tag, plugins=["late.py"]))
    main(["run", "--claims", str(tmp_path / "claims"), "--out", str(tmp_path / "out"), "--profile", "p"])
    text = capsys.readouterr()
    assert "NOT RUN own [default]: a plugin of this arm failed while training: ValueError: late" in text.out + text.err


@pytest.mark.parametrize("code,shown", [(0, "0"), (3, "3"), ("bye", "'bye'")])
def test_a_plugin_calling_sys_exit_at_import_is_one_line_and_validate_goes_on(tmp_path, code, shown, capsys):
    from repro.cli import main
    tag = uuid.uuid4().hex[:8]
    (tmp_path / f"exit{tag}.py").write_text(f"import sys\nsys.exit({code!r})\n")
    write(tmp_path / "own.yaml", claim_doc(tag, plugins=[f"exit{tag}.py"]))
    assert main(["validate", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"own.yaml: plugins.0: 'exit{tag}.py' called sys.exit({shown}) while being imported" in out
