"""Reading ``[tool.resilient]`` from ``pyproject.toml``.

Example::

    [tool.resilient]
    mock-names = ["LegacyBreaker", "Sim*Breaker"]   # extra mock-breaker names (globs)
    test-paths = ["qa/**", "*_spec.py"]             # extra test code
    exclude = ["generated", "vendor/**"]            # never looked at

Sub-tables (``[tool.resilient.migrate]`` and the like) belong to other commands
and are passed through untouched in :attr:`Config.extra`.

The project supports Python 3.10, whose standard library has no ``tomllib``; there
a small reader handles the subset a ``[tool.resilient]`` table needs (strings,
arrays of strings, booleans, comments) and reports anything else as an error
rather than guessing.  Standard library only.
"""

from __future__ import annotations

import os
import re
import stat
import sys
from collections.abc import Callable, Iterator, Sequence

from ._record import Frozen

TYPE_CHECKING = False  # (``typing`` costs the pre-commit hook milliseconds it need not pay)
if TYPE_CHECKING:
    from pathlib import Path
    from typing import Any, Final

__all__ = [
    "Config",
    "ConfigFileError",
    "find_config",
    "load_config",
    "parse_tool_table",
    "start_folder",
]

KNOWN_KEYS: Final = ("exclude", "mock-names", "test-paths")


class ConfigFileError(Exception):
    """``pyproject.toml`` cannot be read, or ``[tool.resilient]`` holds a bad value."""


class Config(Frozen):
    """The ``[tool.resilient]`` settings.

    Attributes:
        root: the folder the globs are relative to (the pyproject's folder, or
            the current folder when there is no configuration).
        path: the pyproject.toml read, or None.
        mock_names: extra mock-breaker names or globs.
        test_paths: extra test-code globs.
        exclude: globs never looked at.
        extra: sub-tables left for other commands.
        root_dir: ``root`` as a string (as given: the same folder).

    ``root`` and ``path`` are :class:`~pathlib.Path` objects; given as strings
    (as :func:`load_config` does), they become paths when first read:
    ``resilient check`` reads ``root_dir`` only, and so never imports
    ``pathlib`` (milliseconds of the pre-commit hook's start).  Immutable, and
    equal on every attribute, like the frozen dataclass it replaces
    (``dataclasses`` is not imported for the same reason).
    """

    _fields = ("root", "path", "mock_names", "test_paths", "exclude", "extra")
    mock_names: tuple[str, ...]
    test_paths: tuple[str, ...]
    exclude: tuple[str, ...]
    extra: dict[str, Any]
    _root: str | Path
    _path: str | Path | None

    def __init__(  # noqa: PLR0917 - positional too, as the dataclass took them
        self,
        root: str | os.PathLike[str],
        path: str | os.PathLike[str] | None = None,
        mock_names: tuple[str, ...] = (),
        test_paths: tuple[str, ...] = (),
        exclude: tuple[str, ...] = (),
        extra: dict[str, Any] | None = None,
    ) -> None:
        _set = object.__setattr__
        _set(self, "_root", root if isinstance(root, str) else _as_path(root))
        _set(self, "_path", path if path is None or isinstance(path, str) else _as_path(path))
        _set(self, "mock_names", mock_names)
        _set(self, "test_paths", test_paths)
        _set(self, "exclude", exclude)
        _set(self, "extra", {} if extra is None else extra)

    @property
    def root(self) -> Path:
        """The folder the globs are relative to."""
        root = self._cached_path("_root")
        if root is None:  # pragma: no cover - never: the constructor requires it
            raise AttributeError("root")
        return root

    @property
    def path(self) -> Path | None:
        """The pyproject.toml read, or None."""
        return self._cached_path("_path")

    def _cached_path(self, attribute: str) -> Path | None:
        """The attribute as a :class:`~pathlib.Path`, made (once) from the string given."""
        value: str | Path | None = getattr(self, attribute)
        if isinstance(value, str):
            value = _as_path(value)
            object.__setattr__(self, attribute, value)
        return value

    @property
    def root_dir(self) -> str:
        """:attr:`root` as a string, as given (no :class:`~pathlib.Path` made)."""
        return os.fspath(self._root)


def _as_path(value: str | os.PathLike[str]) -> Path:
    from pathlib import Path

    return value if isinstance(value, Path) else Path(value)


# ``pathlib``'s answers on strings, for ``resilient check``; whenever the file
# system says anything but "here it is" or "no such file", pathlib itself
# answers (it raises for some errors, and its rules differ between versions).


def _resolve(path: str) -> str:
    """``str(Path(path).resolve())``."""
    real = os.path.realpath(path)
    try:
        os.stat(real)
    except (FileNotFoundError, NotADirectoryError):  # pathlib's answer too
        return real
    except OSError:  # a symbolic link loop, say: pathlib raises RuntimeError (before 3.13)
        pass
    else:
        return real
    from pathlib import Path

    try:
        return str(Path(path).resolve())
    except RuntimeError:  # a symbolic link loop (before Python 3.13): as far as it resolves
        return real


def start_folder(paths: Sequence[str]) -> str:
    """Where to look for pyproject.toml: the common folder of the paths, else the cwd."""
    if not paths:
        return os.getcwd()
    try:
        return os.path.commonpath([os.path.abspath(p) for p in paths])
    except ValueError:  # different drives
        return os.getcwd()


def _is_dir(path: str) -> bool:
    """``Path(path).is_dir()``."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        pass
    else:
        return stat.S_ISDIR(mode)
    from pathlib import Path

    return Path(path).is_dir()


def _exists(path: str) -> bool:
    """``Path(path).exists()``."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return False
    except (OSError, ValueError):
        pass
    else:
        return True
    from pathlib import Path

    return Path(path).exists()


def _upwards(start: str) -> Iterator[str]:
    """The folder of ``start`` (itself if a folder, else its parent), then those above it.

    ``start`` is a path as ``str(Path(...))`` writes it; the folders are written
    the same way, ``""`` standing for ``"."`` (both join to the same paths).
    """
    folder = start if _is_dir(start) else os.path.dirname(start)
    while True:
        yield folder
        parent = os.path.dirname(folder)
        if parent == folder:
            return
        folder = parent


_HAS_TABLE_RE: Final = re.compile(r"^\s*\[\s*tool\s*\.\s*resilient\s*[\].]", re.MULTILINE)


def find_config(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` holding ``[tool.resilient]``, at or above ``start``.

    The search stops at the top of a git checkout (a folder holding ``.git``).
    """
    found = _find_config(os.fspath(start))
    return None if found is None else _as_path(found)


def _find_config(start: str) -> str | None:
    """:func:`find_config` on strings."""
    for folder in _upwards(start):
        candidate = os.path.join(folder, "pyproject.toml")
        try:
            text: str | None = _read_text(candidate)
        except (OSError, UnicodeDecodeError):
            text = None
        if text is not None and ("tool.resilient" in text or _HAS_TABLE_RE.search(text)):
            return candidate
        if _exists(os.path.join(folder, ".git")):
            return None
    return None


def _read_text(path: str | Path) -> str:
    """``Path(path).read_text(encoding="utf-8")``."""
    with open(path, encoding="utf-8") as file:
        return file.read()


def _default_root(base: str) -> str:
    """Without configuration, paths are judged relative to the git checkout, else the cwd."""
    for candidate in _upwards(base):
        if _exists(os.path.join(candidate, ".git")):
            return candidate
    return _resolve(os.getcwd())


def _string_list(table: dict[str, Any], key: str, path: str | Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigFileError(
            f"{path}: [tool.resilient] `{key}` must be a list of strings, got {value!r}"
        )
    return tuple(value)


def load_config(path: Path | None = None, *, start: str | os.PathLike[str] | None = None) -> Config:
    """Load ``[tool.resilient]`` from ``path``, or from the nearest pyproject.toml above ``start``.

    Args:
        path: an explicit ``pyproject.toml`` (``--config``).
        start: where to start looking when ``path`` is None (default: the current folder).

    Returns:
        The settings; defaults when no file has a ``[tool.resilient]`` table.

    Raises:
        ConfigFileError: the file cannot be read or parsed, or a key is unknown
            or has the wrong type.  The message names the file and the key.
    """
    if path is not None:
        return _read_config(path, path.parent.resolve)
    base = _resolve(os.getcwd() if start is None else os.fspath(start))
    found = _find_config(base)
    if found is None:
        return Config(root=_default_root(base))
    return _read_config(found, lambda: _resolve(os.path.dirname(found)))


def _read_config(path: str | Path, root: Callable[[], str | Path]) -> Config:
    """:func:`load_config` from the file ``path``; ``root()``: its folder, resolved."""
    try:
        text = _read_text(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigFileError(f"cannot read {path}: {exc}") from None
    table = parse_tool_table(text, str(path))
    unknown = [k for k, v in table.items() if k not in KNOWN_KEYS and not isinstance(v, dict)]
    if unknown:
        import difflib  # only a broken configuration needs it

        key = unknown[0]
        close = difflib.get_close_matches(key, KNOWN_KEYS, n=1)
        hint = f"; did you mean `{close[0]}`?" if close else f" (known: {', '.join(KNOWN_KEYS)})"
        raise ConfigFileError(f"{path}: unknown key `{key}` in [tool.resilient]{hint}")
    return Config(
        root=root(),
        path=path,
        mock_names=_string_list(table, "mock-names", path),
        test_paths=_string_list(table, "test-paths", path),
        exclude=_string_list(table, "exclude", path),
        extra={k: v for k, v in table.items() if isinstance(v, dict)},
    )


def parse_tool_table(text: str, filename: str = "pyproject.toml") -> dict[str, Any]:
    """Return the ``[tool.resilient]`` table of a pyproject text (empty when absent).

    Raises:
        ConfigFileError: the TOML is invalid.
    """
    data = _load_toml(text, filename)
    tool = data.get("tool", {})
    table = tool.get("resilient", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        raise ConfigFileError(f"{filename}: `tool.resilient` must be a table")
    return table


def _load_toml(text: str, filename: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib  # imported on first use: most runs have no configuration

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigFileError(f"{filename}: invalid TOML: {exc}") from None
    return {"tool": {"resilient": _mini_tool_table(text, filename)}}  # Python 3.10


# --- Python 3.10: a reader for the subset [tool.resilient] uses ------------------

_HEADER_RE: Final = re.compile(r"^\[\s*([^\[\]]+?)\s*\]\s*(?:#.*)?$")
_KEY_RE: Final = re.compile(r"^([A-Za-z0-9_-]+|\"[^\"]*\"|'[^']*')\s*=\s*(.*)$")
_STRING_RE: Final = re.compile(r"\"((?:[^\"\\]|\\.)*)\"|'([^']*)'")


def _unescape(s: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t"}.get(m.group(1), m.group(1)), s)


def _parse_value(raw: str, filename: str, lineno: int) -> Any:
    raw = raw.strip()
    if raw in {"true", "false"}:
        return raw == "true"
    number = re.match(r"^([+-]?\d[\d_]*(?:\.\d[\d_]*)?)\s*(?:#.*)?$", raw)
    if number is not None:  # read it, so validation names the key like tomllib's path does
        text = number.group(1).replace("_", "")
        return float(text) if "." in text else int(text)
    if raw.startswith("["):
        body = raw[1:]
        items: list[str] = []
        pos = 0
        while True:
            m = re.compile(r"\s*(?:#[^\n]*\n\s*)*").match(body, pos)
            pos = m.end() if m else pos
            if body.startswith("]", pos):
                rest = body[pos + 1 :].strip()
                if rest and not rest.startswith("#"):
                    break
                return items
            sm = _STRING_RE.match(body, pos)
            if sm is None:
                break
            items.append(_unescape(sm.group(1)) if sm.group(1) is not None else sm.group(2) or "")
            pos = sm.end()
            cm = re.compile(r"\s*(?:#[^\n]*\n\s*)*,?").match(body, pos)
            pos = cm.end() if cm else pos
    else:
        sm = _STRING_RE.match(raw)
        if sm is not None:
            rest = raw[sm.end() :].strip()
            if not rest or rest.startswith("#"):
                return _unescape(sm.group(1)) if sm.group(1) is not None else sm.group(2)
    raise ConfigFileError(
        f"{filename}:{lineno}: cannot read this value in [tool.resilient] on Python 3.10 "
        "(use strings, lists of strings or booleans)"
    )


def _mini_tool_table(text: str, filename: str) -> dict[str, Any]:
    table: dict[str, Any] = {}
    section: Sequence[str] | None = None
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        lineno = i + 1
        i += 1
        if not line or line.startswith("#"):
            continue
        header = _HEADER_RE.match(line)
        if (
            header is None
            and line.startswith("[")
            and not re.match(r"^\[\[[^\[\]]+\]\]\s*(?:#.*)?$", line)
        ):
            # a table header that does not close: tomllib rejects it, so must we
            raise ConfigFileError(f"{filename}:{lineno}: invalid TOML: {line!r}")
        if header and not line.startswith("[["):
            section = [p.strip().strip("\"'") for p in header.group(1).split(".")]
            continue
        if line.startswith("[["):
            section = None
            continue
        if section is None or list(section[:2]) != ["tool", "resilient"]:
            continue
        km = _KEY_RE.match(line)
        if km is None:
            raise ConfigFileError(f"{filename}:{lineno}: invalid TOML: {line!r}")
        key = km.group(1).strip("\"'")
        raw = km.group(2)
        if raw.lstrip().startswith("["):
            # gather a multi-line array up to its closing bracket
            depth = raw.count("[") - raw.count("]")
            while depth > 0 and i < len(lines):
                raw += "\n" + lines[i]
                depth += lines[i].count("[") - lines[i].count("]")
                i += 1
        value = _parse_value(raw, filename, lineno)
        target = table
        for part in section[2:]:
            sub = target.setdefault(part, {})
            if not isinstance(sub, dict):
                raise ConfigFileError(f"{filename}:{lineno}: invalid TOML: table {part!r}")
            target = sub
        if key in target:
            raise ConfigFileError(f"{filename}:{lineno}: invalid TOML: duplicate key {key!r}")
        target[key] = value
    return table
