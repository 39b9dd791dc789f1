"""The rewrite's import handling writes what LibCST's own import visitors write.

``resilient migrate`` adds and removes imports with :mod:`._codemod_imports`
instead of LibCST's ``AddImportsVisitor``/``RemoveImportsVisitor`` (whose package,
``libcst.codemod``, takes longer to load than a typical rewrite takes).  These
tests hold it to the visitors' output, on hand-picked corner cases and on
generated modules, and check that a rewrite really leaves ``libcst.codemod`` unloaded.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor, RemoveImportsVisitor
from resilient.migration._codemod_imports import (
    add_imports,
    remove_imports,
    unused_by_text,
)
from resilient.migration._codemod_model import ImportSpec

Spec = tuple[str, "str | None", "str | None"]


def _libcst(visitor: type, source: str, specs: list[Spec], package: str | None) -> str:
    """What LibCST's ``AddImportsVisitor`` or ``RemoveImportsVisitor`` makes of ``source``."""
    context = CodemodContext(
        full_module_name=f"{package}.m" if package else "m", full_package_name=package
    )
    for module, obj, asname in specs:
        if visitor is AddImportsVisitor:
            AddImportsVisitor.add_needed_import(context, module, obj, asname)
        else:
            RemoveImportsVisitor.remove_unused_import(context, module, obj, asname)
    return visitor(context).transform_module(cst.parse_module(source)).code


def _libcst_add(source: str, specs: list[Spec], package: str | None) -> str:
    return _libcst(AddImportsVisitor, source, specs, package)


def _libcst_remove(source: str, specs: list[Spec], package: str | None) -> str:
    return _libcst(RemoveImportsVisitor, source, specs, package)


def _ours_add(source: str, specs: list[Spec], package: str | None) -> str:
    return add_imports(cst.parse_module(source), [ImportSpec(*s) for s in specs], package).code


def _ours_remove(source: str, specs: list[Spec], package: str | None) -> str:
    return remove_imports(cst.parse_module(source), [ImportSpec(*s) for s in specs], package).code


# -- adding -----------------------------------------------------------------------------

HEADS = [
    '"""Doc."""\nimport os\n\nx = 1\n',
    "import os\nfrom resilient import get_breaker\nx = 1\ny = 2\n",
    "from __future__ import annotations\n\n# comment\nimport os\n\n\ndef f():\n    pass\n",
    "__strict__ = True\nimport os\nx = 1\n",
    "x = 1\nimport os\ny = 2\n",
    "import os\nimport sys\n",
    "# only a comment\n",
    '"""Doc only."""\n',
    "from . import sibling\nfrom resilient import CircuitBreaker as CB\n\nclass A:\n    pass\n",
    "if x:\n    import os\nimport sys\nz = 3\n",
    "from resilient import *\n\nx = 1\n",
    "from resilient import (\n    BreakerConfig,  # the config\n    trip,\n)\n\nx = 1\n",
    "from .. import resilient\nimport resilient as r\nfrom typing import Any\nz: Any = r\n",
    "import os; import sys\nx = 1\n",
    "import os\n# a comment right after\nx = 1\n",
    "x = 1\n",
    "",
    "\n\n",
    "#!/usr/bin/env python\n# -*- coding: utf-8 -*-\nimport os\n",
    "import os\r\n\r\nx = 1\r\n",
]

ADDS: list[list[Spec]] = [
    [("resilient", "get_breaker", None)],
    [("resilient", "get_breaker", None), ("resilient", "CircuitBreaker", None)],
    [("resilient", "CircuitBreaker", "CB"), ("resilient", "get_breaker", "gb")],
    [("resilient", "get_breaker", None), ("__future__", "annotations", None)],
    [("resilient", None, None), ("os", None, None), ("typing", None, "t")],
    [(".sibling", "thing", None), ("..", "resilient", None)],
]


@pytest.mark.parametrize("specs", ADDS, ids=lambda s: "+".join(f"{m}.{o}" for m, o, _ in s))
@pytest.mark.parametrize("source", HEADS)
def test_adding_imports_writes_what_add_imports_visitor_writes(
    source: str, specs: list[Spec]
) -> None:
    """Same placement, merging and blank lines as LibCST's AddImportsVisitor."""
    for package in ("pkg.sub", None):
        expected = _libcst_add(source, specs, package)
        assert _ours_add(source, specs, package) == expected
    # and the result imports what was asked for (a second call adds nothing)
    once = _ours_add(source, specs, "pkg.sub")
    assert _ours_add(once, specs, "pkg.sub") == once


def test_a_future_import_must_name_an_object_and_take_no_alias() -> None:
    """As with LibCST: `import __future__` or an aliased __future__ import is refused."""
    tree = cst.parse_module("x = 1\n")
    with pytest.raises(ValueError, match="__future__"):
        add_imports(tree, [ImportSpec("__future__")], None)
    with pytest.raises(ValueError, match="alias"):
        add_imports(tree, [ImportSpec("__future__", "annotations", "a")], None)


# -- removing ---------------------------------------------------------------------------

_REMOVAL_CASES: list[tuple[str, list[Spec], bool]] = [
    # (source, scheduled removals, whether the text alone decides)
    ("from app.cb import MockBreaker\n\nx = 1\n", [("app.cb", "MockBreaker", None)], True),
    ("from app.cb import MockBreaker, Other\nOther()\n", [("app.cb", "MockBreaker", None)], True),
    ("from app.cb import MockBreaker as MB\n", [("app.cb", "MockBreaker", "MB")], True),
    (
        "from typing import Any\nfrom app.cb import Other\nimport os\nOther()\n",
        [("typing", "Any", None), ("os", None, None)],
        True,
    ),
    ("import app.cb\n\ny = 2\n", [("app.cb", None, None)], True),
    ("def f():\n    from app.cb import MockBreaker\n", [("app.cb", "MockBreaker", None)], True),
    ("from typing import Any\n\ndef f(x: Any): ...\n", [("typing", "Any", None)], False),
    ("from app.cb import MockBreaker  # MockBreaker\n", [("app.cb", "MockBreaker", None)], False),
    (
        'from app.cb import MockBreaker\n__all__ = ["MockBreaker"]\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    ("from . import cb\n", [("pkg", "cb", None)], True),
    ("from __future__ import annotations\n", [("__future__", "annotations", None)], True),
    ("import app.cb\napp.other()\n", [("app.cb", None, None)], False),
    # scope analysis: uses, shadowing, strings
    (
        "from app.cb import MockBreaker\n\ndef f():\n    MockBreaker = 1\n    return MockBreaker\n",
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        'from app.cb import MockBreaker\n"""MockBreaker is gone."""\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        'from app.cb import MockBreaker\nx: "MockBreaker | None" = None\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        'from app import cb\nx: "cb.MockBreaker" = None\n',
        [("app", "cb", None)],
        False,
    ),
    (
        'from typing import TypeVar\nfrom app.cb import MockBreaker\nT = TypeVar("T", bound="MockBreaker")\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        'from app.cb import MockBreaker\n__all__: list[str] = []\n__all__ += ["MockBreaker"]\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        'from app.cb import MockBreaker\n__all__, x = ("MockBreaker",), 1\n',
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        "import app.cb\nimport app\napp.cb.thing()\n",
        [("app.cb", None, None), ("app", None, None)],
        False,
    ),
    (
        "import app.cb as m, os\nos.getcwd()\n",
        [("app.cb", None, "m")],
        True,
    ),
    (
        "import os, app.cb as m\nos.getcwd()\n",
        [("app.cb", None, "m")],
        True,
    ),
    # layout: parentheses, trailing commas, comments
    (
        "from app.cb import (\n    MockBreaker,  # the mock\n    Other,\n)\nOther()\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from app.cb import (\n    Other,\n    MockBreaker,  # the mock\n)\nOther()\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from app.cb import (Other, MockBreaker)\nOther()\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from app.cb import (\n    # first\n    MockBreaker,\n    # second\n    Other,\n)\nOther()\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from .cb import MockBreaker, Other\nOther()\n",
        [("pkg.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from app.cb import MockBreaker\nx = 1\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
    (
        "from app.cb import MockBreaker\nclass A:\n    def f(self) -> MockBreaker: ...\n",
        [("app.cb", "MockBreaker", None)],
        False,
    ),
    (
        "from app.cb import *\nx = 1\n",
        [("app.cb", "MockBreaker", None)],
        True,
    ),
]


@pytest.mark.parametrize(("source", "removals", "fast"), _REMOVAL_CASES)
def test_removing_imports_writes_what_remove_imports_visitor_writes(
    source: str, removals: list[Spec], fast: bool
) -> None:
    """Same imports dropped, same layout left, as LibCST's RemoveImportsVisitor.

    ``fast``: the text alone shows the imports unused (no scope analysis runs).
    """
    names = {ImportSpec(*spec).bound for spec in removals}
    decided = unused_by_text(cst.parse_module(source), names)
    assert (decided is not None) is fast
    expected = _libcst_remove(source, removals, "pkg")
    assert _ours_remove(source, removals, "pkg") == expected


# -- generated modules --------------------------------------------------------------------

_NAMES = ["A", "B", "MockBreaker"]
_MODULES = ["app.cb", "app", "os"]

_import_line = st.one_of(
    st.builds(
        lambda m, names, paren: (
            f"from {m} import ({', '.join(names)},)"
            if paren
            else f"from {m} import {', '.join(names)}"
        ),
        st.sampled_from(_MODULES),
        st.lists(
            st.sampled_from([*_NAMES, "A as AA", "MockBreaker as MB"]),
            min_size=1,
            max_size=3,
            unique=True,
        ),
        st.booleans(),
    ),
    st.builds(lambda m: f"import {m}", st.sampled_from([*_MODULES, "app.cb as cbm"])),
)
_use_line = st.sampled_from(
    [
        "x = A",
        "y = MB()",
        "def f():\n    return B",
        "def g():\n    A = 1\n    return A",
        '__all__ = ["MockBreaker"]',
        'z: "AA" = None',
        "# MockBreaker in a comment",
        '"""B in a docstring."""',
        "os.getcwd()",
        "cbm.thing()",
        "app.cb.MockBreaker()",
        "if x:\n    from app.cb import B",
        "class C:\n    attr: MockBreaker",
    ]
)
_removal = st.sampled_from(
    [
        ("app.cb", "MockBreaker", None),
        ("app.cb", "MockBreaker", "MB"),
        ("app.cb", "A", None),
        ("app.cb", "A", "AA"),
        ("app.cb", "B", None),
        ("app", "A", None),
        ("os", None, None),
        ("app.cb", None, None),
        ("app.cb", None, "cbm"),
    ]
)
_addition = st.sampled_from(
    [
        ("resilient", "get_breaker", None),
        ("resilient", "CircuitBreaker", None),
        ("resilient", "CircuitBreaker", "CB"),
        ("app.cb", "A", None),
        ("app.cb", "B", None),
        ("app", "A", "AA"),
        ("os", None, None),
        ("__future__", "annotations", None),
    ]
)


@st.composite
def _modules(draw: st.DrawFn) -> str:
    head = draw(st.sampled_from(["", '"""Doc."""\n', "# comment\n"]))
    imports = draw(st.lists(_import_line, max_size=4))
    uses = draw(st.lists(_use_line, max_size=4))
    return head + "".join(f"{line}\n" for line in imports) + "".join(f"{u}\n" for u in uses)


@settings(max_examples=150, deadline=None)
@given(source=_modules(), removals=st.lists(_removal, min_size=1, max_size=3, unique=True))
def test_removal_matches_libcst_on_generated_modules(source: str, removals: list[Spec]) -> None:
    """Any mix of imports and uses: the same result as RemoveImportsVisitor."""
    assert _ours_remove(source, removals, "app") == _libcst_remove(source, removals, "app")


@settings(max_examples=150, deadline=None)
@given(
    source=_modules(),
    # (one object with and without an alias in one call: LibCST fails sorting them)
    additions=st.lists(_addition, min_size=1, max_size=3, unique_by=lambda s: s[:2]),
)
def test_addition_matches_libcst_on_generated_modules(source: str, additions: list[Spec]) -> None:
    """Any import block: the same result as AddImportsVisitor."""
    assert _ours_add(source, additions, "app") == _libcst_add(source, additions, "app")


# -- what a rewrite loads ---------------------------------------------------------------


def test_a_rewrite_does_not_load_libcst_codemod() -> None:
    """Rewriting a file (imports added and removed) leaves libcst.codemod and its matchers unloaded."""
    script = textwrap.dedent(
        """
        import sys
        from resilient.migration._codemod_apply import apply_edits, warm_up
        from resilient.migration._codemod_model import FilePlan, ImportSpec

        warm_up()
        plan = FilePlan(
            path="m.py",
            edits=(),
            add_imports=(ImportSpec("resilient", "get_breaker"),),
            remove_imports=(ImportSpec("app.cb", "MockBreaker"),),
        )
        print(apply_edits("from app.cb import MockBreaker\\nx = 1\\n", "pkg", plan), end="")
        print(sorted(m for m in sys.modules if m.startswith(("libcst.codemod", "libcst.matchers"))))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    assert out == "from resilient import get_breaker\n\nx = 1\n[]\n"
