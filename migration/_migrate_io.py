"""Reading and writing source files for ``resilient migrate`` without changing their bytes.

A file is decoded exactly as Python would read it (a UTF-8 BOM, an encoding
cookie, otherwise UTF-8) but without newline translation, so CRLF line endings
survive; it is encoded back with the same codec and BOM.  Writes go to a
temporary file in the same folder, get the original file's permission bits, and
replace the original with ``os.replace`` (atomic on POSIX and Windows), after
checking that nobody changed the file since it was read.  Standard library only.
"""

from __future__ import annotations

import codecs
import contextlib
import io
import os
import stat
import tempfile
import tokenize
from functools import lru_cache
from pathlib import Path

from ._record import record

__all__ = [
    "SourceError",
    "SourceText",
    "decode_source",
    "encode_source",
    "module_name",
    "write_atomic",
]


class SourceError(Exception):
    """A file that cannot be read, decoded or written; the message says why."""


@record
class SourceText:
    """A decoded source file.

    Attributes:
        text: the text, BOM removed, newlines untouched.
        encoding: the codec to encode it back with.
        bom: whether the file started with a UTF-8 byte order mark.
    """

    text: str
    encoding: str
    bom: bool


def decode_source(data: bytes) -> SourceText:
    """Decode a Python source file the way the interpreter would, keeping its newlines.

    Raises:
        SourceError: null bytes, an unknown encoding cookie, or bytes that are not
            valid in the file's encoding (the message names the offset).
    """
    if b"\x00" in data:
        line = data.count(b"\n", 0, data.index(b"\x00")) + 1
        raise SourceError(f"line {line}: file contains null bytes; Python cannot parse it")
    bom = data.startswith(codecs.BOM_UTF8)
    problem: str | None = None
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(data).readline)
    except SyntaxError as exc:
        problem = f"cannot decode: {exc.msg}"
        encoding = "utf-8"  # no usable cookie: say which byte is wrong, if one is
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    body = data[len(codecs.BOM_UTF8) :] if bom else data
    try:
        text = body.decode(codec)
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"cannot decode as {exc.encoding}: byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start + (3 if bom else 0)}; add an encoding cookie or save the file as UTF-8"
        ) from None
    except LookupError as exc:
        raise SourceError(f"cannot decode: {exc}") from None
    if problem is not None:
        raise SourceError(problem)
    return SourceText(text, codec, bom)


def encode_source(text: str, like: SourceText) -> bytes:
    """Encode ``text`` with the codec and BOM of the file it came from.

    Raises:
        SourceError: ``text`` has characters the file's encoding cannot hold.
    """
    try:
        data = text.encode(like.encoding)
    except UnicodeEncodeError as exc:
        raise SourceError(f"the new text cannot be encoded as {like.encoding}: {exc}") from None
    return codecs.BOM_UTF8 + data if like.bom else data


def write_atomic(path: str, data: bytes, *, expected: bytes) -> None:
    """Replace the file at ``path`` with ``data``, atomically, keeping its mode.

    A symbolic link is followed: the file it points to is replaced, the link stays.

    Args:
        path: the file to replace.
        data: the new content.
        expected: the content the new one was computed from; if the file no
            longer holds it, nothing is written.

    Raises:
        SourceError: the file changed since it was read, or cannot be written.
    """
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
        with open(real, "rb") as fh:
            current = fh.read()
    except OSError as exc:
        raise SourceError(f"cannot read it again before writing: {exc.strerror or exc}") from None
    if current != expected:
        raise SourceError("it changed on disk during the run; not written (run again)")
    folder = os.path.dirname(real) or "."
    try:
        fd, tmp = tempfile.mkstemp(
            dir=folder, prefix=f".{os.path.basename(real)}.", suffix=".resilient-tmp"
        )
    except OSError as exc:
        raise SourceError(
            f"cannot create a temporary file next to it: {exc.strerror or exc}"
        ) from None
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.replace(tmp, real)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise SourceError(f"cannot write: {exc.strerror or exc}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@lru_cache(maxsize=4096)
def _is_package(folder: str) -> bool:
    return os.path.isfile(os.path.join(folder, "__init__.py")) or os.path.isfile(
        os.path.join(folder, "__init__.pyi")
    )


@lru_cache(maxsize=4096)
def _packages(folder: str) -> tuple[str, ...]:
    """The package names a file in ``folder`` sits in, outermost first."""
    parts: list[str] = []
    p = Path(folder)
    while _is_package(str(p)) and p.name and p != p.parent:
        parts.insert(0, p.name)
        p = p.parent
    return tuple(parts)


def module_name(path: str) -> tuple[str, str]:
    """The dotted module name and package of a file, from its ``__init__.py`` parents.

    ``src/app/cb.py`` with ``src/app/__init__.py`` (and no ``src/__init__.py``)
    is ``("app.cb", "app")``; a package's ``__init__.py`` is the package itself.
    """
    folder, filename = os.path.split(os.path.abspath(path))
    stem = filename.rsplit(".", 1)[0]
    parts: list[str] = [*_packages(folder), *([] if stem == "__init__" else [stem])]
    if not parts:
        parts = [os.path.basename(folder) or "__main__"]
    name = ".".join(parts)
    package = name if stem == "__init__" else name.rpartition(".")[0]
    return name, package
