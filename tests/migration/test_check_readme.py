"""The README's `resilient check` rule pages are true: each example is found, each fix is clean."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from resilient.migration._check import check_source
from resilient.migration._diagnostics import RULES

README = Path(__file__).resolve().parents[2] / "README.md"


def _section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("<!-- section: check -->") : text.index("<!-- /section: check -->")]


def _rule_pages() -> dict[str, str]:
    parts = re.split(r"^##### (RES\d{3}) ", _section(), flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def _block_after(page: str, label: str) -> str | None:
    m = re.search(rf"\*\*{label}\.\*\*.*?```python\n(.*?)```", page, flags=re.DOTALL)
    return m.group(1) if m else None


def test_every_rule_has_a_page_with_ruffs_sections() -> None:
    """Each code has a README page: name, What it does, Why is this bad?, Example, Use instead."""
    pages = _rule_pages()
    assert sorted(pages) == sorted(RULES)
    for code, page in pages.items():
        assert page.startswith(f"`{RULES[code].name}`"), code
        for heading in ("What it does.", "Why is this bad?", "Example.", "Use instead."):
            assert f"**{heading}**" in page, (code, heading)


@pytest.mark.parametrize("code", ["RES001", "RES002", "RES003", "RES004", "RES006"])
def test_rule_examples_are_found_and_fixes_are_clean(code: str) -> None:
    """The Example block triggers its rule; the Use instead block has no finding."""
    page = _rule_pages()[code]
    example = _block_after(page, "Example")
    fix = _block_after(page, "Use instead")
    assert example is not None
    assert fix is not None
    assert code in {f.code for f in check_source(example.encode(), "example.py")}
    assert check_source(fix.encode(), "fix.py") == []


def test_suppression_example_is_clean() -> None:
    """The documented suppression with a reason silences the simulation-mode finding."""
    section = _section()
    start = section.index("**Suppressions.**")
    (block,) = re.findall(r"```python\n(.*?)```", section[start : start + 800], flags=re.DOTALL)
    assert "# resilient: ignore[RES002]" in block
    assert check_source(block.encode(), "factory.py") == []
    unsuppressed = block.replace("# resilient: ignore[RES002] simulation mode is deliberate", "")
    assert [f.code for f in check_source(unsuppressed.encode(), "factory.py")] == ["RES002"]
