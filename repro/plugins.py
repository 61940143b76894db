"""A claim's own models, datasets and losses: Python modules the spec names under `plugins:`.

A plugin is ordinary Python that registers builders with the decorators the built-ins use
(`@MODELS.register("lenet5")`, `@DATASETS.register(...)`, `@LOSSES.register(...)` from repro.registry),
so `repro validate` checks a spec's parameters against the builder's annotated signature exactly as it
does for `mlp` or `mnist`. A spec names each module it needs, and nothing else is imported:

    plugins: [lenet.py]            # a file, relative to the spec's folder and inside it
    plugins: [mylab.kd_models]     # or an importable module (installed, or on PYTHONPATH)

Each module is imported once per process however many claims name it (a second import would register
its names twice). A module that fails to import is one error line naming the spec, the entry and why,
and stays failed for the process (its half-done registrations are not retried into duplicates).
Run keys hold the registered name and parameters and, for an arm that uses a plugin's builder, the sha256 of
the file that defines it (`code_hashes`): a plugin whose code changes makes new runs, and old results stop
counting. Only that file is hashed: a helper module it imports is not (put what changes in the plugin file).
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path

MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")

# what each entry became, per process: resolved file path or module name -> None (imported) or the error
_loaded: dict[str, str | None] = {}
# resolved file path or module name -> the module name its registrations carry (builder.__module__)
_modules: dict[str, str] = {}


def _short(text: str, width: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def _why(err: BaseException) -> str:
    if isinstance(err, SyntaxError):
        return f"SyntaxError: {err.msg} (line {err.lineno})"
    return _short(f"{type(err).__name__}: {err}")


def file_module_name(path: Path) -> str:
    """A stable, unique module name per plugin file."""
    return f"repro_plugin_{re.sub(r'[^A-Za-z0-9_]', '_', path.stem)}_{hashlib.sha256(str(path).encode()).hexdigest()[:8]}"


def _import_file(path: Path) -> None:
    # registered in sys.modules first (dataclasses and pickle look a class's module up there), removed
    # again if the import fails
    name = file_module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise


def load_plugin(entry, folder: Path) -> str | None:
    """Import one `plugins:` entry (a .py file relative to `folder`, or a module name); None, or the error."""
    if not isinstance(entry, str) or not entry:
        return f"expected a .py file beside the spec or a module name, got {_short(repr(entry), 60)}"
    if entry.endswith(".py"):
        target = (folder / entry).resolve()
        if Path(entry).is_absolute() or not target.is_relative_to(folder.resolve()):
            return f"'{_short(entry, 60)}': a plugin file is named relative to the spec's folder, inside it"
        if not target.is_file():
            return f"'{_short(entry, 60)}': no such file in {folder}"
        key, load = str(target), lambda: _import_file(target)
        _modules[key] = file_module_name(target)
    elif MODULE_NAME.fullmatch(entry):
        key, load = entry, lambda: importlib.import_module(entry)
        _modules[key] = entry
    else:
        return f"'{_short(entry, 60)}' is neither a .py file nor a module name (like mylab.kd_models)"
    if key not in _loaded:
        try:
            load()
            _loaded[key] = None
        except SystemExit as err:  # sys.exit() in the user's module: the spec fails, the command goes on
            _loaded[key] = f"'{_short(entry, 60)}' called sys.exit({_short(repr(err.code), 40)}) while being imported"
        except Exception as err:  # noqa: BLE001 -- the user's code: any failure is one line, never a traceback
            _loaded[key] = f"'{_short(entry, 60)}' could not be imported ({_why(err)})"
    return _loaded[key]


def load_plugins(entries, spec_path: Path) -> tuple[list[str], tuple[str, ...]]:
    """Import every module a spec names under `plugins:`: (one error line per entry that fails, the module
    names the spec may take builders from)."""
    if entries is None:
        return [], ()
    if not isinstance(entries, list):
        return [f"{spec_path}: plugins: expected a list of .py files or module names, got {type(entries).__name__}"], ()
    errors, modules = [], []
    for i, entry in enumerate(entries):
        problem = load_plugin(entry, spec_path.parent)
        if problem:
            errors.append(f"{spec_path}: plugins.{i}: {problem}")
        else:
            modules.append(_modules[str((spec_path.parent / entry).resolve()) if entry.endswith(".py") else entry])
    return errors, tuple(modules)


def from_plugin(builder) -> bool:
    """Was this builder registered by a plugin (not one of kd-repro's own)?"""
    module = getattr(builder, "__module__", "") or ""
    return any(module == m or module.startswith(m + ".") for m in _modules.values())


def loaded_modules() -> tuple[str, ...]:
    """The plugin modules imported in this process (a stored run of one of their models can be checked)."""
    return tuple(_modules.values())


def unnamed_plugin(builder, named: tuple[str, ...]) -> str | None:
    """The plugin module a builder comes from when the spec being checked does not name it, else None: a
    name another claim's plugin registered in this process is not this claim's to use (it would validate
    in the folder and fail alone)."""
    module = getattr(builder, "__module__", "") or ""
    owner = next((m for m in _modules.values() if module == m or module.startswith(m + ".")), None)
    if owner is None or any(module == m or module.startswith(m + ".") for m in named):
        return None
    return next(k for k, m in _modules.items() if m == owner)


def code_hashes(builders) -> dict[str, str]:
    """{plugin file name (or module name): sha256 of its file} for each of the `builders` an arm uses (its model,
    dataset, loss, checkpoint teacher's model) that a plugin registered; {} for built-ins alone (the run key is
    unchanged)."""
    out = {}
    for builder in builders:
        if not from_plugin(builder):
            continue
        module = sys.modules.get(builder.__module__)
        file = getattr(module, "__file__", None)
        if not file:
            continue
        # a plugin file's module name holds a hash of this machine's path: keys hold its file name instead
        label = Path(file).name if builder.__module__.startswith("repro_plugin_") else builder.__module__
        out[label] = _file_hash(file)
    return dict(sorted(out.items()))


_hashes: dict[tuple[str, int, int], str] = {}


def _file_hash(file: str) -> str:
    stat = Path(file).stat()
    key = (file, stat.st_mtime_ns, stat.st_size)
    if key not in _hashes:
        _hashes[key] = hashlib.sha256(Path(file).read_bytes()).hexdigest()
    return _hashes[key]
