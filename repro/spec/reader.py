"""The hardened YAML reader: regular files only, size, depth and alias limits, no duplicate keys."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

import yaml

from .errors import SpecError, clip

# Bounds on what a spec file may make the YAML reader build: a spec is a page of text, and a few
# aliases may share a block; an alias bomb or 10^5 nesting levels fail at once instead of eating memory.
MAX_BYTES = 1 << 20
MAX_DEPTH = 32
MAX_VALUES = 100_000  # scalars, lists and mappings, aliases expanded


class SpecYAMLError(yaml.YAMLError):
    """A YAML document beyond what a spec may be (duplicate keys, too deep, an alias bomb): str() is the line."""


class SpecLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys and bounds nesting depth and alias expansion."""

    depth = 0

    def compose_node(self, parent, index):
        if self.depth >= MAX_DEPTH:
            mark = self.peek_event().start_mark
            raise SpecYAMLError(f"line {mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            expanded_size(node)
        return node

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                key = self.construct_object(key_node)
                if key in seen:
                    raise SpecYAMLError(f"line {key_node.start_mark.line + 1}: duplicate key '{clip(key, 40)}' "
                                        "(its second value would silently replace the first)")
                seen.add(key)
        return super().construct_mapping(node, deep)


def expanded_size(node, sizes=None, open_=None) -> int:
    """How many values the document has with its aliases expanded (each shared node counted per use)."""
    sizes, open_ = ({}, set()) if sizes is None else (sizes, open_)
    if id(node) in sizes:
        return sizes[id(node)]
    if id(node) in open_:
        raise SpecYAMLError(f"line {node.start_mark.line + 1}: an alias refers to a block that contains it")
    open_.add(id(node))
    children = node.value if isinstance(node, yaml.SequenceNode) else \
        [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else []
    size = 1 + sum(expanded_size(child, sizes, open_) for child in children)
    if size > MAX_VALUES:
        raise SpecYAMLError(f"more than {MAX_VALUES} values once aliases are expanded (an alias bomb?)")
    open_.discard(id(node))
    sizes[id(node)] = size
    return size


class TooBig(OSError):
    """A file over the size a reader allows (`size`: its bytes)."""

    def __init__(self, size: int, limit: int):
        self.size = size
        super().__init__(errno.EFBIG, f"{size} bytes, over the {limit} bytes allowed here")


def read_regular(path: str | Path, limit: int) -> bytes:
    """The bytes of a regular file of at most `limit` bytes. A named pipe (which would block), a device
    (/dev/zero never ends), a folder or a bigger file (a sparse giant) raises OSError saying which, before a
    byte is read: the file is opened without blocking and its type and size come from that open file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = ("a folder" if stat.S_ISDIR(info.st_mode) else "a named pipe" if stat.S_ISFIFO(info.st_mode)
                    else "a device" if stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode) else "a socket")
            raise OSError(errno.EISDIR if stat.S_ISDIR(info.st_mode) else errno.EINVAL,
                          f"{kind}, not a regular file")
        if info.st_size > limit:
            raise TooBig(info.st_size, limit)
        os.set_blocking(fd, True)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
        if len(data) > limit:  # grew since fstat
            raise TooBig(len(data), limit)
        return data
    finally:
        os.close(fd)


def read_yaml(path: Path) -> dict:
    """A spec file as a dict; any problem reading it (missing, not a file, too big, not UTF-8 text,
    not YAML, duplicate keys, too deep) is one line naming the file."""
    if path.is_symlink() and not path.resolve().is_relative_to(path.parent.resolve()):
        # its content is not the claims folder's to show: nothing of it is read, so no error can echo it
        raise SpecError(f"{path}: a symlink to a file outside its folder; not read (a spec and its base file "
                        "live inside the claims folder)")
    try:
        data = read_regular(path, MAX_BYTES)
    except FileNotFoundError:
        raise SpecError(f"{path}: no such file") from None
    except TooBig as err:
        raise SpecError(f"{path}: {err.size} bytes; a spec is at most {MAX_BYTES} bytes") from None
    except OSError as err:
        raise SpecError(f"{path}: not readable ({clip(err.strerror or type(err).__name__)})") from None
    if len(data) > MAX_BYTES:
        raise SpecError(f"{path}: {len(data)} bytes; a spec is at most {MAX_BYTES} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecError(f"{path}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); "
                        "save the spec as UTF-8") from None
    if "\x00" in text:
        raise SpecError(f"{path}: not a text file (it contains NUL bytes)")
    try:
        raw = yaml.load(text, Loader=SpecLoader)
    except SpecYAMLError as err:
        raise SpecError(f"{path}: {err}") from None
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"line {mark.line + 1}" if mark else "YAML"
        raise SpecError(f"{path}: {where}: not valid YAML ({clip(err.problem or err.context, 100)})") from None
    except yaml.YAMLError as err:
        raise SpecError(f"{path}: not valid YAML ({clip(err, 120)})") from None
    except RecursionError:
        raise SpecError(f"{path}: not valid YAML (nested too deep)") from None
    if raw is None:
        raise SpecError(f"{path}: the file is empty; expected a mapping of claim fields")
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: (top level): expected a mapping of claim fields, got {type(raw).__name__}")
    return raw
