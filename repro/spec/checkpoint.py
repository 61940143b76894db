"""A checkpoint a spec names (`teacher_checkpoint:`): a file inside the claims folder, with the sha256 it must hash
to, holding a state dict. Checked when the claim loads; where each one is, by hash, is kept for the teacher that
reads it (repro/teachers.py: checkpoint_network), so no machine's path enters a run key."""
from __future__ import annotations

import hashlib
import io
from pathlib import Path

from .errors import clip
from .reader import read_regular

CHECKPOINT_FILES: dict[str, Path] = {}  # sha256 -> the file, for every checkpoint a loaded claim names
MAX_CHECKPOINT_BYTES = 2 << 30


def checkpoint_file_problem(file: str, sha256: str, folder: Path) -> str | None:
    """Why `file` (relative to the claims `folder`) is not a usable checkpoint with this hash, or None; it is
    recorded in CHECKPOINT_FILES either way. Reads the file: its hash, and that torch.load(weights_only=True) gives
    a mapping of names to tensors. A file not there yet is no problem here (a claim folder loads before its
    checkpoint is made): `repro validate` reports it, and `repro run` marks its claim NOT RUN (checkpoint_network)."""
    folder = Path(folder).resolve()
    target = (folder / file).resolve()
    if Path(file).is_absolute() or not target.is_relative_to(folder):
        return f"file: '{clip(file, 60)}' is outside the claims folder; name a file inside it, relative to it"
    CHECKPOINT_FILES.setdefault(sha256, target)
    if not target.exists():
        return None
    try:
        stat = target.stat()
        if _verified.get(sha256) == (target, stat.st_mtime_ns, stat.st_size):
            return None
        data = read_checkpoint(target)
    except OSError as err:
        return f"file: '{clip(file, 60)}' cannot be read ({err.strerror or type(err).__name__})"
    found = hashlib.sha256(data).hexdigest()
    if found != sha256:
        return f"sha256: '{clip(file, 60)}' hashes to {found}, not {sha256[:12]}... (another or a changed file)"
    import torch  # only where a spec names a checkpoint
    try:
        state = torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Exception as err:  # noqa: BLE001 -- a pickle with code, a truncated or foreign file
        return f"file: '{clip(file, 60)}' is not a weights file torch.load(weights_only=True) reads " \
               f"({type(err).__name__}: {clip(str(err), 80)})"
    if not isinstance(state, dict) or not all(isinstance(k, str) and isinstance(v, torch.Tensor)
                                              for k, v in state.items()):
        return f"file: '{clip(file, 60)}' holds a {type(state).__name__}, not a state dict (names -> tensors: " \
               "torch.save(model.state_dict(), path))"
    CHECKPOINT_FILES[sha256] = target
    _verified[sha256] = (target, stat.st_mtime_ns, stat.st_size)
    return None


_verified: dict[str, tuple] = {}  # sha256 -> (file, mtime, size) when it last hashed right: not read again


def read_checkpoint(path: Path) -> bytes:
    return read_regular(path, MAX_CHECKPOINT_BYTES)
