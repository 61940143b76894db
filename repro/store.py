"""Run results on disk: one small JSON per run, written atomically, checksummed, found by key.

Layout: <root>/<profile>/<claim>/<variant>/<arm>/seed<N>-<key12>.json (committed), and final
weights of every run under <cache>/checkpoints/<key>.pt (git-ignored; teachers are loaded from there).
A file that fails its checksum or schema is never used: `load` raises CorruptResult naming it.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path

import torch

from .metrics import disagreement, is_number, is_seconds
from .spec import RunSpec, TooBig, check_name, clip, read_regular


class CorruptResult(ValueError):
    """A result file is truncated, hand-edited or not a result at all: `path` and `why` (str() is both)."""

    def __init__(self, message: str, path: Path | str | None = None, why: str | None = None):
        self.path, self.why = path, why
        super().__init__(message)


def corrupt(path: Path, why: str) -> CorruptResult:
    return CorruptResult(f"{path}: {why}", path, why)


class OutsideStore(ValueError):
    """A path the store was asked to write does not resolve inside its results root or cache."""


def warn(message: str) -> None:
    print(f"warning: {message}", file=sys.stderr, flush=True)


RESULT_FIELDS = ("status", "epochs", "final", "wall_s", "device")  # what `train` returns
RESULT_KEYS = {"key", "run", *RESULT_FIELDS, "provenance", "checksum"}
STATUSES = ("done", "diverged")  # train(): finished, or stopped on a non-finite loss


def _metric_value(x) -> bool:
    """A stored metric: a number, null (a NaN written as JSON null), or a list of those (per class, per step)."""
    return x is None or is_number(x) or (isinstance(x, list) and all(v is None or is_number(v) for v in x))


def _metrics(x) -> bool:
    return isinstance(x, dict) and all(isinstance(k, str) and _metric_value(v) for k, v in x.items())


def _provenance(x) -> bool:
    """Names to version strings, and the records of the teachers retrained for this run's sources (run.py)."""
    return isinstance(x, dict) and all(
        v is None or isinstance(v, str) or k == "teacher_retrained" and isinstance(v, list)
        and all(isinstance(r, dict) and isinstance(r.get("key"), str) for r in v) for k, v in x.items())


def schema_error(payload: dict) -> str | None:
    """What is wrong with a result's fields (checksum aside), or None. A checksum anyone can recompute
    proves nothing, so every field the verdict reads is checked for its type here."""
    checks = [
        ("key", isinstance(payload["key"], str) and len(payload["key"]) == 64, "a 64-character run key"),
        ("run", isinstance(payload["run"], dict) and isinstance(payload["run"].get("seed"), int)
         and not isinstance(payload["run"].get("seed"), bool), "the run's spec with an integer seed"),
        ("status", payload["status"] in STATUSES, f"one of {list(STATUSES)}"),
        ("epochs", isinstance(payload["epochs"], list) and all(_metrics(e) for e in payload["epochs"]),
         "a list of per-epoch metric mappings"),
        ("final", _metrics(payload["final"]), "a mapping of metric name to number, null or list of numbers"),
        ("wall_s", is_seconds(payload["wall_s"]),
         "a finite number of seconds >= 0"),
        ("device", isinstance(payload["device"], str), "a string"),
        ("provenance", _provenance(payload["provenance"]),
         "a mapping of names to version strings (teacher_retrained: a list of retrain records)"),
        ("checksum", isinstance(payload["checksum"], str), "a sha256 hex string"),
    ]
    for key, ok, expected in checks:
        if not ok:
            return f"{key}: expected {expected}, got {json.dumps(payload[key])[:60]}"
    return None


MAX_RESULT_BYTES = 64 << 20  # a result is per-epoch numbers (per-step accuracies at most): megabytes, never more


def _same(a, b) -> bool:
    return a == b or all(isinstance(x, float) and math.isnan(x) for x in (a, b))


def integrity_error(payload: dict) -> str | None:
    """What makes a well-formed result not the result of its run, or None: its stored run spec must hash to its
    key, its epoch count be its run's (a diverged run stops early), its final metrics be the selected epoch's
    (the last, or the best test accuracy with `select: best`), and its counts possible (0 <= test errors <= test
    images, whole; 0 <= test_acc <= 1; no NaN or null in a finished run's errors, accuracy or training loss) and
    its numbers in agreement with their definitions (metrics.disagreement)."""
    from pydantic import ValidationError
    from .spec import dataset_fact
    from .plugins import loaded_modules
    try:  # a plugin's model is this run's to use if its claim loaded the plugin in this process
        run = RunSpec.model_validate(payload["run"], context={"plugins": loaded_modules()})
    except (ValidationError, ValueError, TypeError) as err:
        return f"run: not a valid run spec ({clip(err, 80)})"
    if run.key != payload["key"]:
        return (f"key: {payload['key'][:12]}... is not the hash of its stored run spec ({run.key[:12]}...): a result "
                "copied to another run and its key rewritten")
    epochs, final, done, arm = payload["epochs"], payload["final"], payload["status"] == "done", run.arm
    if len(epochs) != arm.epochs if done else not 1 <= len(epochs) <= arm.epochs:
        return (f"epochs: {len(epochs)} epochs stored, its run trains "
                + (f"{arm.epochs}" if done else f"1 to {arm.epochs} (diverged: it may stop early)"))
    if any("test_acc" not in e or not is_number(e["test_acc"]) for e in epochs) and arm.select == "best" and done:
        return "epochs: an epoch without a test_acc number, so the best epoch cannot be told"
    best = max(range(len(epochs)), key=lambda i: (epochs[i]["test_acc"], -i)) if arm.select == "best" and done else -1
    selected = {k: v for k, v in epochs[best].items() if k != "step_acc"}
    wrong = [k for k, v in selected.items() if k not in final or not _same(final[k], v)]
    if wrong:
        return (f"final.{clip(wrong[0], 40)}: {clip(json.dumps(final.get(wrong[0])), 30)} is not the "
                f"{'best' if best != -1 else 'last'} epoch's {clip(json.dumps(selected[wrong[0]]), 30)} (final metrics are "
                "that epoch's)")
    n_test = dataset_fact(arm.data, "n_test")
    for where, metrics in [*((f"epochs.{i}", e) for i, e in enumerate(epochs)), ("final", final)]:
        for key in ("test_errors", "test_acc", "train_loss"):
            value = metrics.get(key)
            if done and key in metrics and not (is_number(value) and math.isfinite(value)):
                return f"{where}.{key}: {json.dumps(value)} in a finished run, where a number is needed"
        errors, acc = metrics.get("test_errors"), metrics.get("test_acc")
        if is_number(errors) and math.isfinite(errors) and (errors < 0 or errors != int(errors)
                                                          or (n_test is not None and errors > n_test)):
            return (f"{where}.test_errors: {errors} is not a possible count (a whole number from 0 to "
                    f"{n_test if n_test is not None else 'the test images'})")
        if is_number(acc) and math.isfinite(acc) and not 0 <= acc <= 1:
            return f"{where}.test_acc: {acc} is not an accuracy (0 to 1)"
    return disagreement(epochs, final)


def checksum(payload: dict) -> str:
    body = {k: v for k, v in payload.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def atomic_write(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, rename: readers see all or nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # the mode a plain open() would give, not mkstemp's private 0600
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_torch_save(path: Path, obj) -> None:
    """torch.save through atomic_write: a kill mid-save leaves the previous file whole."""
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, buffer.getvalue())


class Store:
    def __init__(self, root: str | Path = "results", cache: str | Path | None = None):
        self.root = Path(root)
        self.cache = Path(cache or os.environ.get("REPRO_CACHE", ".cache"))
        self.registrations: dict[str, str] = {}  # profile -> the stamp results trained now carry (repro.registration)
        # results changed since git committed them: path -> (how, a function giving the first committed text), read
        # by find() as committed; `restored`: those find() read so (path -> how). Set by repro.verdict.judge_folder.
        self.committed: dict[Path, tuple] = {}
        self.restored: dict[Path, str] = {}

    def stamp(self, path: Path) -> dict:
        """{"registration": stamp} for the provenance of a result trained now and filed at `path`, under a
        registered profile (a copied result keeps its own provenance: its data are as old as they are)."""
        try:
            profile = Path(path).resolve().relative_to(self.root.resolve()).parts[0]
        except (ValueError, IndexError):
            return {}
        return {"registration": self.registrations[profile]} if profile in self.registrations else {}

    def path(self, profile: str, claim: str, variant: str, arm: str, run: RunSpec) -> Path:
        try:
            for name in (profile, claim, variant, arm):
                check_name(name)
        except ValueError as err:
            raise OutsideStore(f"result path: {err}") from None
        return self.inside(self.root / profile / claim / variant / arm / f"seed{run.seed}-{run.key[:12]}.json")

    def inside(self, path: Path, folder: Path | None = None) -> Path:
        """`path` if it resolves inside `folder` (the results root, or else the cache); refuses any other write."""
        folders = [folder] if folder is not None else [self.root, self.cache]
        path = Path(path)
        # a link as the last part is replaced by the write (os.replace), never written through: its folder counts
        resolved = path.parent.resolve() / path.name if path.is_symlink() else path.resolve()
        if not any(resolved.is_relative_to(f.resolve()) for f in folders):
            raise OutsideStore(f"{clip(str(path), 120)}: outside the results folder {self.root} and cache {self.cache}; "
                               "refusing to write there")
        return Path(path)

    CACHE_FOLDERS = ("locks", "done", "state", "checkpoints")

    def probe(self) -> None:
        """Create the results and cache folders and write a file in each, before any training: an
        unwritable folder, or a cache entry of the wrong kind, is one line now, not a lost run later.
        Raises OSError naming the folder."""
        for folder in (self.root, self.cache, *(self.cache / sub for sub in self.CACHE_FOLDERS)):
            if folder.exists() and not folder.is_dir():
                raise NotADirectoryError(f"{folder}: is a file, not a folder (results, the cache and its "
                                         f"{', '.join(self.CACHE_FOLDERS)} are folders)")
            try:
                folder.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryFile(dir=folder):
                    pass
            except OSError as err:
                raise OSError(f"{folder}: not writable ({err.strerror or type(err).__name__})") from None

    def checkpoint_path(self, run: RunSpec, epoch: int | None = None) -> Path:
        """Final weights, or with `epoch` the weights at the end of that epoch (kept for Arm.teacher_epoch)."""
        return self.cache / "checkpoints" / (f"{run.key}.pt" if epoch is None else f"{run.key}-epoch{epoch}.pt")

    def shipped_weights(self, run: RunSpec) -> Path:
        """Final weights placed beside the results (results/weights/<key>.pt, git-ignored: checkpoints stay out of
        git), read when the cache lacks them: a paper teacher takes hours, and its students may train elsewhere."""
        return self.root / "weights" / f"{run.key}.pt"

    def state_path(self, run: RunSpec) -> Path:
        """The per-epoch resume file of a run in progress (removed once its weights are saved)."""
        return self.cache / "state" / f"{run.key}.pt"

    def save(self, path: Path, run: RunSpec, result: dict, provenance: dict) -> dict:
        payload = {"key": run.key, "run": run.model_dump(mode="json"), **result, "provenance": provenance}
        payload["checksum"] = checksum(payload)
        atomic_write(self.inside(path, self.root), json.dumps(payload, indent=1, sort_keys=True).encode())
        return payload

    @staticmethod
    def load(path: Path, key: str | None = None) -> dict:
        """The result stored at `path`, checked: JSON with exactly the result keys, the checksum, each
        field's type, the file name's seed and key prefix against the content, and (given `key`) the run
        key it must be the result of. Anything else raises CorruptResult naming the file and the fault."""
        if Path(path).is_symlink():  # a result is a file of the store, not a pointer to one elsewhere
            raise corrupt(path, "a symlink, not a result file; delete it to re-run")
        try:
            data = read_regular(path, MAX_RESULT_BYTES)
        except TooBig as err:
            raise corrupt(path, f"{err.size} bytes, over the {MAX_RESULT_BYTES} a result may have") from None
        except OSError as err:
            raise corrupt(path, f"not readable ({err.strerror or type(err).__name__})") from None
        return Store.parse(data, path, key)

    @staticmethod
    def parse(data: bytes, path: Path, key: str | None = None) -> dict:
        """load()'s checks on a result's bytes (read from `path`, or from git for it)."""
        try:
            payload = json.loads(data)
        except (ValueError, RecursionError) as err:  # not JSON, not UTF-8, nested beyond reason
            raise corrupt(path, f"not readable as JSON ({clip(err, 80)})") from None
        if not isinstance(payload, dict) or set(payload) != RESULT_KEYS:
            found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise corrupt(path, f"expected a result with keys {sorted(RESULT_KEYS)}, found {clip(found, 200)}")
        if payload["checksum"] != checksum(payload):
            raise corrupt(path, "checksum mismatch (file was edited or truncated); delete it to re-run")
        wrong = schema_error(payload) or integrity_error(payload)
        if wrong:
            raise corrupt(path, f"{wrong}; delete it to re-run")
        named = re.fullmatch(r"seed(\d+)-([0-9a-f]{12})\.json", Path(path).name)
        if named and (int(named[1]) != payload["run"]["seed"] or named[2] != payload["key"][:12]):
            raise corrupt(path, f"holds the result of seed {payload['run']['seed']} run "
                                f"{payload['key'][:12]}, not the one its name says (a misfiled copy); delete it to re-run")
        if key is not None and payload["key"] != key:
            raise corrupt(path, f"holds run {payload['key'][:12]}..., not the run {key[:12]}... filed "
                                "under this name; delete it to re-run")
        return payload

    def find(self, path: Path, key: str | None = None) -> dict | None:
        """The stored result at `path` (of run `key`, when given), or None if absent. Corrupt or misfiled
        files raise CorruptResult. A result that git committed and that was deleted or edited since is read as it
        was first committed (`committed`, repro.registration.changed_results), and named in `restored`."""
        how, first = self.committed.get(Path(path), (None, None))
        text = first() if first is not None else None
        if text is not None:
            try:
                found = self.parse(text.encode(), path, key)
            except CorruptResult:  # the committed version is not this run's result: its replacement is the repair
                found = None
            if found is not None:
                self.restored[Path(path)] = how
                return found
        return self.load(path, key) if path.exists() else None

    @contextlib.contextmanager
    def lock(self, key: str, wait: bool = True):
        """An exclusive lock per run key (flock: released by the OS if the holder dies). Yields whether it
        is held: with wait=False, False at once if another process holds it."""
        path = self.cache / "locks" / f"{key}.lock"
        if path.parent.exists() and not path.parent.is_dir() or path.is_dir():
            raise NotADirectoryError(f"{path.parent if path.parent.is_file() else path}: "
                                     + ("is a file, not the folder of run locks" if path.parent.is_file()
                                        else "is a folder, not a lock file; remove it"))
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def busy(self, key: str) -> bool:
        """Whether another process holds the lock of run `key` now (training it, or retraining it for its
        weights)."""
        with self.lock(key, wait=False) as held:
            return not held

    def mark_done(self, key: str, path: Path) -> None:
        """Remember where the result of `key` is, so other claims needing the same run reuse it."""
        atomic_write(self.inside(self.cache / "done" / key, self.cache), str(Path(path).resolve()).encode())

    def done(self, key: str) -> dict | None:
        """A stored result of run `key` anywhere in the store (a fresh clone has results but no cache).
        A damaged pointer, or one leading out of the results folder, is warned about and not followed."""
        pointer = self.cache / "done" / key
        candidates = []
        if pointer.exists():
            try:
                candidates.append(self.inside(Path(read_regular(pointer, 4096).decode("utf-8")), self.root))
            except (OSError, UnicodeDecodeError, ValueError) as err:
                warn(f"{pointer}: not a usable pointer to a result ({clip(err, 80)}); looking for the result instead")
        candidates += sorted(self.root.glob(f"*/*/*/*/seed*-{key[:12]}.json"))
        for path in candidates:
            try:
                payload = self.load(path)
            except CorruptResult:
                continue
            if payload["key"] == key:
                return payload
        return None

    def save_weights(self, run: RunSpec, model: torch.nn.Module, epoch: int | None = None) -> None:
        atomic_torch_save(self.inside(self.checkpoint_path(run, epoch), self.cache),
                          {k: v.detach().cpu() for k, v in model.state_dict().items()})

    def load_weights(self, run: RunSpec, model: torch.nn.Module, epoch: int | None = None) -> bool:
        """Whether the run's final weights (or those at the end of `epoch`) were loaded into `model`; a damaged
        or mismatched file is warned about, removed and reported as absent (the caller retrains it: same seed,
        same numbers)."""
        path = self.checkpoint_path(run, epoch)
        if not path.exists() and epoch is None:
            path = self.shipped_weights(run)  # a fresh clone: the committed weights of a long teacher run
        if not path.exists():
            return False
        try:
            model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
        except Exception as err:  # truncated, garbage or another model's weights: all mean "not there"
            warn(f"{path}: damaged weights ({clip(f'{type(err).__name__}: {err}', 100)}); retraining the run")
            if path != self.shipped_weights(run):  # a committed file is reported, never deleted
                path.unlink(missing_ok=True)
            return False
        return True

    def retrain_record_path(self, run: RunSpec, shipped: bool = False) -> Path:
        """The record of a retrain for its weights, kept beside the weights it describes (copied with them)."""
        return (self.shipped_weights(run) if shipped else self.checkpoint_path(run)).with_suffix(".retrained.json")

    def save_retrain_record(self, run: RunSpec, record: dict) -> None:
        atomic_write(self.inside(self.retrain_record_path(run), self.cache), json.dumps(record, sort_keys=True).encode())

    def retrain_record(self, run: RunSpec) -> dict | None:
        """How the run's weights here came to be when a retrain made them (a stored run retrained for its weights,
        by this process or an earlier one: the record outlives the process, as the weights do), or None for the
        weights its stored result was trained with. A record made against another stored result (the run re-run
        with --force since, which saved its own weights) does not apply; an unreadable one says so, never vanishes."""
        shipped = not self.checkpoint_path(run).exists() and self.shipped_weights(run).exists()
        path = self.retrain_record_path(run, shipped)
        if not path.exists():
            return None
        try:
            record = json.loads(read_regular(path, 1 << 20))
            if not isinstance(record, dict):
                raise ValueError(f"a {type(record).__name__}, not a mapping")
        except (OSError, ValueError) as err:
            warn(f"{path}: unreadable retrain record ({clip(err, 80)}); its students say their teacher was retrained")
            return {"key": run.key[:12], "bitwise_equal": None, "record": f"{path.name} unreadable"}
        stored = self.done(run.key)
        return None if stored is not None and record.get("stored") != stored["final"] else record
