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

import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = ["Config", "ConfigFileError", "find_config", "load_config", "parse_tool_table"]

KNOWN_KEYS: Final = ("exclude", "mock-names", "test-paths")


class ConfigFileError(Exception):
    """``pyproject.toml`` cannot be read, or ``[tool.resilient]`` holds a bad value."""


@dataclass(frozen=True)
class Config:
    """The ``[tool.resilient]`` settings.

    Attributes:
        root: the folder the globs are relative to (the pyproject's folder, or
            the current folder when there is no configuration).
        path: the pyproject.toml read, or None.
        mock_names: extra mock-breaker names or globs.
        test_paths: extra test-code globs.
        exclude: globs never looked at.
        extra: sub-tables left for other commands.
    """

    root: Path
    path: Path | None = None
    mock_names: tuple[str, ...] = ()
    test_paths: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


_HAS_TABLE_RE: Final = re.compile(r"^\s*\[\s*tool\s*\.\s*resilient\s*[\].]", re.MULTILINE)


def find_config(start: Path) -> Path | None:
    """Return the nearest ``pyproject.toml`` holding ``[tool.resilient]``, at or above ``start``.

    The search stops at the top of a git checkout (a folder holding ``.git``).
    """
    current = start if start.is_dir() else start.parent
    for folder in (current, *current.parents):
        candidate = folder / "pyproject.toml"
        try:
            text = candidate.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            text = None
        if text is not None and ("tool.resilient" in text or _HAS_TABLE_RE.search(text)):
            return candidate
        if (folder / ".git").exists():
            return None
    return None


def _default_root(base: Path) -> Path:
    """Without configuration, paths are judged relative to the git checkout, else the cwd."""
    folder = base if base.is_dir() else base.parent
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return Path.cwd().resolve()


def _string_list(table: dict[str, Any], key: str, path: Path) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigFileError(
            f"{path}: [tool.resilient] `{key}` must be a list of strings, got {value!r}"
        )
    return tuple(value)


def load_config(path: Path | None = None, *, start: Path | None = None) -> Config:
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
    if path is None:
        base = (start or Path.cwd()).resolve()
        path = find_config(base)
        if path is None:
            return Config(root=_default_root(base))
    try:
        text = path.read_text(encoding="utf-8")
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
        root=path.parent.resolve(),
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
