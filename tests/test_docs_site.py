"""The documentation site builds with no broken link, reference or README section."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="the docs extra is not installed (pip install -e '.[docs]')")


def build(tmp_path: Path, config: Path) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"NO_MKDOCS_2_WARNING": "1"}
    return subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config), "-d",
         str(tmp_path / "site")], cwd=ROOT, capture_output=True, text=True, timeout=300,
        env=env)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    result = build(tmp_path, ROOT / "mkdocs.yml")
    assert result.returncode == 0, result.stderr[-3000:]
    site = tmp_path / "site"
    hooks = (site / "hooks" / "index.html").read_text()
    for hook in ("register_strategies", "load_customer", "check_eligibility", "plugin_error",
                 "does_not_block"):
        assert f'id="recommender.hookspecs.{hook}"' in hooks
    types = (site / "types" / "index.html").read_text()
    assert "<code>blocks = False</code>" in types and 'id="recommender.strategy.first_n"' in types
    cli = (site / "cli" / "index.html").read_text()
    assert 'id="recommender-train"' in cli and "Sentinel" not in cli
    tutorial = (site / "plugin-tutorial" / "index.html").read_text()
    assert "examples/tenure-plugin/recommender_tenure/__init__.py" in tutorial
    assert "TenureStrategy" in tutorial and "<!-- file:" not in tutorial
    assert (site / "BENCHMARKS" / "index.html").exists()
    assert (site / "benchmarks" / "simulation.png").exists()


def test_a_page_naming_a_missing_readme_section_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("<!-- readme: No Such Section -->\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text(f"site_name: t\ndocs_dir: {docs}\nstrict: true\n"
                      f"hooks:\n  - {ROOT / 'docs' / 'hooks' / 'root_documents.py'}\n")
    result = build(tmp_path, config)
    assert result.returncode != 0
    assert "index.md: README.md has no section headed 'No Such Section'" in result.stderr
