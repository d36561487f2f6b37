"""The README and docs/ name only things that exist: every ``python -m`` module, every project path.

The README's two commands are run by the slow tier as written (``python -m serve_app.run`` with serve.env:
tests/test_graceful_shutdown.py, tests/test_operate.py, tests/test_file_log_full_disk.py; ``serve deploy``
and ``serve status`` against it: tests/test_operate.py). This checks the rest cannot go stale silently.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest

from core.settings import PROJECT_ROOT

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_module_run_with_python_m_exists(document: Path) -> None:
    modules = set(re.findall(r"python -m ([a-z_][\w.]*)", document.read_text()))
    missing = [m for m in modules if m.split(".")[0] in {"core", "models", "prediction_log", "deployments",
                                                        "serve_app", "monitoring", "loadtest", "dashboard"}
               and importlib.util.find_spec(m) is None]
    assert not missing, f"{document.name} runs modules that do not exist: {missing}"


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_linked_project_file_exists(document: Path) -> None:
    text = document.read_text()
    paths = set(re.findall(r"\]\(((?!https?:|#)[^)#]+)", text))
    paths |= {p for p in re.findall(r"`((?:core|models|prediction_log|deployments|serve_app|monitoring|loadtest|"
                                    r"dashboard|tests|docs|deploy)/[\w/.-]+\.(?:py|md|sh|cfg|yml))`", text)}
    base = document.parent
    missing = [p for p in paths if not (base / p).exists() and not (PROJECT_ROOT / p).exists()]
    assert not missing, f"{document.name} names files that do not exist: {missing}"


def test_the_readme_stays_a_front_door() -> None:
    text = (PROJECT_ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    assert "**Contents:**" in text
