"""The docs keep up with the code: every public name is documented under ``docs/``, every
page there is linked from the README, and the README stays a page a newcomer reads.

(Every ``persist-kit`` command and option is checked against ``docs/cli.md`` in
``test_maintenance_cli.py``.)
"""

from __future__ import annotations

import importlib
import re

import pytest

from tests.helpers.paths import ROOT

DOCS = ROOT / "docs"
PUBLIC_MODULES = [
    "langgraph_persist_kit",
    "langgraph_persist_kit.sqlite",
    "langgraph_persist_kit.postgres",
    "langgraph_persist_kit.redis",
    "langgraph_persist_kit.maintenance",
    "langgraph_persist_kit.concurrency",
    "langgraph_persist_kit.errors",
    "langgraph_persist_kit.strict_serde",
    "langgraph_persist_kit.transfer",
    "langgraph_persist_kit.server",
]
NOT_DOCUMENTED = {"__version__", "translate_errors"}  # a version string; an internal helper


def public_names() -> list[tuple[str, str]]:
    return [(module, name) for module in PUBLIC_MODULES
            for name in importlib.import_module(module).__all__ if name not in NOT_DOCUMENTED]


def docs_text() -> str:
    return "\n".join(page.read_text(encoding="utf-8") for page in sorted(DOCS.glob("*.md")))


@pytest.mark.parametrize(("module", "name"), public_names(),
                         ids=[f"{m}.{n}" for m, n in public_names()])
def test_every_public_name_is_documented(module: str, name: str) -> None:
    assert re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", docs_text()), (
        f"{module}.{name} is public but no page under docs/ mentions it"
    )


def test_every_docs_page_is_linked_from_the_readme() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    pages = sorted(page.name for page in DOCS.glob("*.md"))
    assert pages, "docs/ holds no page"
    assert [p for p in pages if f"(docs/{p})" not in readme] == []


def test_the_readme_starts_with_the_two_commands_and_stays_short() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    first_block = readme.split("```bash\n", 1)[1].split("```", 1)[0]
    assert "persist-kit demo" in first_block.splitlines()[0]
    assert 'pip install -e ".[test]" && python -m pytest' in first_block.splitlines()[1]
    assert len(readme.splitlines()) <= 160


def test_relative_links_in_the_docs_resolve() -> None:
    broken = []
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text("utf-8")):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert broken == []
