"""One strategy's failing training never throws the others' work away; one strategy can be
retrained alone."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from api_support import copy_workspace

from recommender import ModelError, RecommendationRequest
from recommender.models import MANIFEST, current_model_dir
from recommender.workspace import Workspace

BROKEN = '''
from recommender import Strategy, hookimpl


class Broken(Strategy):
    name = "broken"

    def fit(self, data):
        raise RuntimeError("the warehouse table is empty")

    @property
    def is_fitted(self):
        return False

    def candidates(self, context, n):
        return []


@hookimpl
def register_strategies():
    return [Broken()]
'''


@pytest.fixture
def workspace(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    return copy_workspace(sample_workspace, tmp_path / "ws")


@pytest.fixture
def broken_installed(tmp_path: Path) -> Path:
    """A distribution whose ``recommender`` entry point is a strategy that cannot train."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "broken_plugin.py").write_text(BROKEN)
    dist = site / "broken_plugin-2.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 2.0\n")
    (dist / "entry_points.txt").write_text("[recommender]\nbroken = broken_plugin\n")
    return site


def cli(*args: str, site: Path | None = None) -> subprocess.CompletedProcess[str]:
    code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); from recommender.cli import main; "
            "main()")
    return subprocess.run([sys.executable, "-c", code, str(site or ""), *args],
                          capture_output=True, text=True, timeout=600)


def manifest_of(folder: Path) -> dict:
    return json.loads((folder / MANIFEST).read_text())


def test_a_failing_fit_leaves_the_others_trained_and_names_its_plugin(
        workspace: Workspace, broken_installed: Path) -> None:
    workspace.config_path.write_text(workspace.config_path.read_text()
                                     + "\n[blend.success.store]\nbroken = 1.0\ncf = 1.0\n")
    before = current_model_dir(workspace.models_path)
    result = cli("train", "--dir", str(workspace.root), "--activate", site=broken_installed)
    assert result.returncode == 1, result.stderr
    assert "training failed for broken (plugin 'broken')" in result.stderr
    assert "written without it and not activated" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    out = json.loads(result.stdout)
    assert out["failed"] == {"broken": {"plugin": "broken",
                                        "error": "RuntimeError: the warehouse table is empty"}}
    assert "activated" not in out
    new = current_model_dir(workspace.models_path)
    assert new != before and new.name == out["version"]
    manifest = manifest_of(new)
    assert "broken" not in manifest["strategies"] and not (new / "broken").exists()
    assert {"cf", "association", "popularity"} <= set(manifest["strategies"])
    assert manifest["failed"]["broken"]["plugin"] == "broken"
    assert not list(workspace.models_path.glob(".*.partial"))
    # Served, the broken strategy is simply untrained: requests still succeed.
    shown = cli("recommend", "--dir", str(workspace.root), "--customer", "C0000010",
                "--channel", "store", "--moment", "success", site=broken_installed)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["suggestions"]


def test_when_every_strategy_fails_nothing_is_written(tmp_path: Path, sample_workspace,
                                                      broken_installed: Path) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "only-broken")
    ws.config_path.write_text("[blend.query]\nbroken = 1.0\n[blend.transaction]\n"
                              "broken = 1.0\n[blend.success]\nbroken = 1.0\n[blend.failure]\n"
                              "broken = 1.0\n[targeting]\nstrategies = []\n")
    before = current_model_dir(ws.models_path)
    versions = sorted(p.name for p in ws.models_path.iterdir())
    result = cli("train", "--dir", str(ws.root), site=broken_installed)
    assert result.returncode == 1
    assert "every strategy failed to train, nothing written; broken (plugin 'broken')" in \
        result.stderr
    assert current_model_dir(ws.models_path) == before
    assert sorted(p.name for p in ws.models_path.iterdir()) == versions


def test_one_strategy_is_retrained_alone_reusing_the_others(workspace: Workspace) -> None:
    before = current_model_dir(workspace.models_path)
    old = manifest_of(before)
    new_dir = workspace.train(only=["association"])
    new = manifest_of(new_dir)
    assert new_dir != before
    assert set(new["strategies"]) == set(old["strategies"])
    for name, entry in new["strategies"].items():
        if name == "association":
            assert "reused_from" not in entry
        else:
            assert entry["reused_from"] == before.name
            for rel, digest in old["files"].items():
                if rel.startswith(f"{name}/"):
                    assert new["files"][rel] == digest  # the same artifacts, checked
    with workspace.engine(require_models=True) as engine:
        assert all(s.is_fitted for n, s in engine.strategies.items() if n in new["strategies"])
        customer = engine.store.customer_ids(limit=1)[0]
        assert engine.recommend(RecommendationRequest(
            customer_id=customer, channel="app", moment="transaction",
            product="intl_roaming")).suggestions


@pytest.mark.parametrize(("only", "message"), [
    (["asociation"], "cannot train 'asociation': not an enabled strategy"),
    (["adaptive"], "cannot train 'adaptive': not an enabled strategy"),  # not in the blend
])
def test_retraining_an_unknown_or_disabled_strategy_is_refused(workspace, only, message):
    versions = sorted(p.name for p in workspace.models_path.iterdir())
    with pytest.raises(ModelError, match=message):
        workspace.train(only=only)
    assert sorted(p.name for p in workspace.models_path.iterdir()) == versions


def test_retraining_one_strategy_needs_a_version_to_reuse(sample_workspace, tmp_path) -> None:
    ws = copy_workspace(sample_workspace, tmp_path / "fresh")
    import shutil

    shutil.rmtree(ws.models_path)
    with pytest.raises(ModelError, match="no trained version to reuse the other strategies"):
        ws.train(only=["cf"])
    result = cli("train", "--dir", str(ws.root), "--strategies", " , ")
    assert result.returncode == 2 and "name at least one strategy" in result.stderr
