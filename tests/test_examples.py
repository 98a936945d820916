"""Plugins as an author writes them: the tutorial's example and a scaffolded package, each
tested with the testing kit (``recommender.testing``) from its own folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.cli import main

ROOT = Path(__file__).resolve().parents[1]


def run_tests(plugin: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The plugin's own tests, run from its folder as its author runs them (not installed:
    on the path)."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join(
        [str(plugin), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run(
        [sys.executable, "-m", "pytest", str(plugin / "tests"), "-q", "-p", "no:cacheprovider",
         "--rootdir", str(plugin), "--basetemp", str(tmp_path / "t")],
        cwd=plugin, capture_output=True, text=True, timeout=600, env=env)


def test_the_tutorial_plugin_trains_serves_and_passes_its_tests(tmp_path: Path) -> None:
    result = run_tests(ROOT / "examples" / "tenure-plugin", tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "5 passed" in result.stdout


def test_a_scaffolded_plugin_passes_its_own_tests(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["new-plugin", "loyalty_bonus", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    plugin = tmp_path / "recommender-loyalty-bonus"
    assert f"wrote {plugin}" in result.output
    assert 'loyalty_bonus = "recommender_loyalty_bonus"' in \
        (plugin / "pyproject.toml").read_text()
    tested = run_tests(plugin, tmp_path)
    assert tested.returncode == 0, tested.stdout[-3000:] + tested.stderr[-2000:]
    assert "4 passed" in tested.stdout


@pytest.mark.parametrize(("name", "message"), [
    ("Bad-Name", "plugin name 'Bad-Name': use 1 to 40 lowercase letters"),
    ("class", "plugin name 'class'"),
    ("9lives", "plugin name '9lives'"),
    ("lives\n", "use 1 to 40 lowercase letters"),
    ("x" * 41, "use 1 to 40 lowercase letters"),
])
def test_a_bad_plugin_name_is_refused_and_nothing_written(tmp_path, name, message) -> None:
    result = CliRunner().invoke(main, ["new-plugin", name, "--out", str(tmp_path)])
    assert result.exit_code == 1 and message in result.output
    assert list(tmp_path.iterdir()) == []


def test_an_existing_folder_is_never_overwritten(tmp_path: Path) -> None:
    mine = tmp_path / "recommender-campaign" / "notes.txt"
    mine.parent.mkdir()
    mine.write_text("mine")
    result = CliRunner().invoke(main, ["new-plugin", "campaign", "--out", str(tmp_path)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert mine.read_text() == "mine" and len(list(mine.parent.iterdir())) == 1
