"""The one-way imports of DESIGN.md, checked on the source: settings and manifests import
nothing of ours, storage only settings, packager and origin never the CLI layer (sori),
jobqueue (the queue both the origin and `sori worker` use) never origin."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
OURS = ("settings", "manifests", "signing", "storage", "packager", "jobqueue", "analytics", "origin",
        "sori")
ALLOWED = {
    "settings": set(),
    "manifests": {"manifests"},
    "signing": {"signing", "manifests"},
    "storage": {"storage", "settings"},
    "packager": {"packager", "manifests", "storage", "settings"},
    "jobqueue": {"jobqueue", "packager", "manifests", "storage", "settings"},
    "analytics": {"analytics", "manifests", "settings"},
    "origin": {"origin", "analytics", "jobqueue", "packager", "manifests", "signing", "storage",
               "settings"},
}


def _imported_packages(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found & set(OURS)


@pytest.mark.parametrize("folder", sorted(ALLOWED))
def test_imports_point_one_way(folder: str) -> None:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, folder
    for path in files:
        bad = _imported_packages(path) - ALLOWED[folder]
        assert not bad, f"{path.relative_to(ROOT)} imports {sorted(bad)}"


def test_no_folder_grows_past_a_dozen_modules() -> None:
    for folder in ("packager", "packager/audio", "packager/video", "packager/live",
                   "packager/transcript", "origin",
                   "origin/access", "origin/http", "origin/live", "origin/observe",
                   "origin/packaging", "analytics", "analytics/db", "analytics/writer"):
        modules = [p for p in (ROOT / folder).glob("*.py") if p.name != "__init__.py"]
        assert len(modules) <= 12, (folder, len(modules))
