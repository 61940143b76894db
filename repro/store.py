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
import os
import tempfile
from pathlib import Path

import torch

from .spec import RunSpec


class CorruptResult(ValueError):
    """A result file is truncated, hand-edited or not a result at all."""


RESULT_FIELDS = ("status", "epochs", "final", "wall_s", "device")  # what `train` returns
RESULT_KEYS = {"key", "run", *RESULT_FIELDS, "provenance", "checksum"}


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

    def path(self, profile: str, claim: str, variant: str, arm: str, run: RunSpec) -> Path:
        return self.root / profile / claim / variant / arm / f"seed{run.seed}-{run.key[:12]}.json"

    def checkpoint_path(self, run: RunSpec, epoch: int | None = None) -> Path:
        """Final weights, or with `epoch` the weights at the end of that epoch (kept for Arm.teacher_epoch)."""
        return self.cache / "checkpoints" / (f"{run.key}.pt" if epoch is None else f"{run.key}-epoch{epoch}.pt")

    def state_path(self, run: RunSpec) -> Path:
        """The per-epoch resume file of a run in progress (removed once its weights are saved)."""
        return self.cache / "state" / f"{run.key}.pt"

    def save(self, path: Path, run: RunSpec, result: dict, provenance: dict) -> dict:
        payload = {"key": run.key, "run": run.model_dump(mode="json"), **result, "provenance": provenance}
        payload["checksum"] = checksum(payload)
        atomic_write(path, json.dumps(payload, indent=1, sort_keys=True).encode())
        return payload

    @staticmethod
    def load(path: Path) -> dict:
        try:
            payload = json.loads(Path(path).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise CorruptResult(f"{path}: not readable as JSON ({err})") from None
        if not isinstance(payload, dict) or set(payload) != RESULT_KEYS:
            found = sorted(payload) if isinstance(payload, dict) else type(payload).__name__
            raise CorruptResult(f"{path}: expected a result with keys {sorted(RESULT_KEYS)}, found {found}")
        if payload["checksum"] != checksum(payload):
            raise CorruptResult(f"{path}: checksum mismatch (file was edited or truncated); delete it to re-run")
        return payload

    def find(self, path: Path) -> dict | None:
        """The stored result at `path`, or None if absent. Corrupt files raise."""
        return self.load(path) if path.exists() else None

    @contextlib.contextmanager
    def lock(self, key: str):
        """An exclusive lock per run key (flock: released by the OS if the holder dies)."""
        path = self.cache / "locks" / f"{key}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def mark_done(self, key: str, path: Path) -> None:
        """Remember where the result of `key` is, so other claims needing the same run reuse it."""
        atomic_write(self.cache / "done" / key, str(Path(path).resolve()).encode())

    def done(self, key: str) -> dict | None:
        """A stored result of run `key` anywhere in the store (a fresh clone has results but no cache)."""
        pointer = self.cache / "done" / key
        candidates = [Path(pointer.read_text())] if pointer.exists() else []
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
        atomic_torch_save(self.checkpoint_path(run, epoch),
                          {k: v.detach().cpu() for k, v in model.state_dict().items()})

    def load_weights(self, run: RunSpec, model: torch.nn.Module, epoch: int | None = None) -> bool:
        path = self.checkpoint_path(run, epoch)
        if not path.exists():
            return False
        model.load_state_dict(torch.load(path, weights_only=True, map_location="cpu"))
        return True


def output_dir(claims_dir: str | Path, out: str | Path | None) -> Path:
    """The folder that receives a claims folder's results/ and reports/ (verdicts.json, index.html).

    The shipped claims/ write to this checkout's results/ and reports/; any other claims folder must
    name its own (--out DIR or REPRO_OUT), so running one's own claims never touches the shipped
    verdicts or report, and its Holm family is that folder's claims alone."""
    if out:
        return Path(out)
    if Path(claims_dir).resolve() != Path("claims").resolve():
        from .spec import SpecError
        raise SpecError(f"{claims_dir}: not the shipped claims folder: pass --out DIR (or set REPRO_OUT) for its "
                        "results, verdicts and report, e.g. --claims my/claims --out my")
    return Path(".")
