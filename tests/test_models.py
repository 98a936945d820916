"""Model directories: manifest, checksums, all-or-nothing loading, and the strategy contract."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from recommender import (
    Channel,
    Customer,
    ModelError,
    RequestContext,
    Strategy,
    Terminal,
    TrainingData,
)
from recommender.models import CURRENT, MANIFEST, current_model_dir, read_manifest
from recommender.workspace import Workspace


@pytest.fixture
def workspace_copy(sample_workspace: Workspace, tmp_path: Path) -> Workspace:
    shutil.copytree(sample_workspace.root, tmp_path / "ws")
    return Workspace(tmp_path / "ws")


def test_manifest_records_data_parameters_timings_versions_and_checksums(
        sample_workspace: Workspace) -> None:
    model_dir = current_model_dir(sample_workspace.models_path)
    manifest = read_manifest(model_dir)
    assert manifest["version"] == model_dir.name
    assert manifest["data"]["customers"] == 2000 and manifest["data"]["events"] > 0
    assert manifest["data"]["fingerprint"]
    for name in ("popularity", "cross_sell"):
        entry = manifest["strategies"][name]
        assert entry["fit_seconds"] >= 0 and isinstance(entry["parameters"], dict)
    assert {"python", "numpy", "scipy", "implicit"} <= set(manifest["libraries"])
    assert manifest["files"] and all(len(h) == 64 for h in manifest["files"].values())


@pytest.mark.parametrize("damage", ["truncate", "tamper", "delete", "manifest", "pointer"])
def test_a_damaged_model_directory_is_refused(workspace_copy: Workspace, damage: str) -> None:
    model_dir = current_model_dir(workspace_copy.models_path)
    target = model_dir / "popularity" / "popularity.npz"
    if damage == "truncate":
        target.write_bytes(target.read_bytes()[:100])
    elif damage == "tamper":
        data = bytearray(target.read_bytes())
        data[-1] ^= 0xFF
        target.write_bytes(bytes(data))
    elif damage == "delete":
        target.unlink()
    elif damage == "manifest":
        (model_dir / MANIFEST).write_text("{not json")
    else:
        (workspace_copy.models_path / CURRENT).write_text("../../etc\n")
    with pytest.raises(ModelError) as info:
        workspace_copy.engine(require_models=True)
    assert str(model_dir.name) in str(info.value) or "CURRENT" in str(info.value)


class CodeOnLoad:
    """Unpickling this runs code: it touches a marker file."""

    marker: Path

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickled_artifact_never_runs_even_with_a_forged_checksum(
        workspace_copy: Workspace, tmp_path: Path) -> None:
    """Someone who can write the model directory rewrites an array and its checksum too."""
    import hashlib

    model_dir = current_model_dir(workspace_copy.models_path)
    target = model_dir / "popularity" / "popularity.npz"
    with np.load(target) as f:
        arrays = {key: f[key] for key in f.files}
    CodeOnLoad.marker = tmp_path / "pwned"
    first = next(iter(arrays))
    arrays[first] = np.array([CodeOnLoad()], dtype=object)
    np.savez(target, **arrays)
    manifest = json.loads((model_dir / MANIFEST).read_text())
    assert "popularity/popularity.npz" in manifest["files"]
    manifest["files"]["popularity/popularity.npz"] = hashlib.sha256(
        target.read_bytes()).hexdigest()
    (model_dir / MANIFEST).write_text(json.dumps(manifest))
    read_manifest(model_dir)  # the forged checksum passes...
    with pytest.raises(ModelError, match="popularity"):  # ...but no pickle is ever loaded
        workspace_copy.engine(require_models=True)
    assert not CodeOnLoad.marker.exists()


def test_no_models_is_a_clear_error(workspace_copy: Workspace) -> None:
    shutil.rmtree(workspace_copy.models_path)
    with pytest.raises(ModelError, match="no trained models; run 'recommender train"):
        workspace_copy.engine(require_models=True)


def test_models_from_another_catalog_are_refused(workspace_copy: Workspace) -> None:
    text = workspace_copy.catalog_path.read_text(encoding="utf-8")
    workspace_copy.catalog_path.write_text(
        text + '\n[[product]]\nid = "new_pack"\nname = "新包"\ncategory = "data"\n',
        encoding="utf-8")
    with pytest.raises(ModelError, match="different catalog"):
        workspace_copy.engine(require_models=True)


def test_training_writes_a_new_version_and_moves_current(workspace_copy: Workspace) -> None:
    before = current_model_dir(workspace_copy.models_path)
    after = workspace_copy.train()
    assert after != before and before.exists()
    assert current_model_dir(workspace_copy.models_path) == after
    assert not list(workspace_copy.models_path.glob(".*partial"))


# --------------------------------------------------------------------------------------------
# One contract every registered strategy passes: fit, candidates, save/load round trip
# --------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def training_data(sample_data: TrainingData) -> TrainingData:
    return sample_data


def registered(sample_workspace: Workspace) -> dict[str, Strategy]:
    with sample_workspace.engine() as engine:
        return engine.strategies


def contexts(catalog) -> list[RequestContext]:
    out = []
    for moment, product in (("query", "balance_query"), ("transaction", "intl_roaming"),
                            ("success", "broadband"), ("failure", "plan_5g_newsim")):
        for holdings in (("plan_4g",), ("plan_4g", "intl_roaming", "broadband")):
            out.append(RequestContext(
                customer=Customer(id="contract", value_tier="mid", holdings=frozenset(holdings),
                                  tenure_months=30, tags=frozenset({"traveller"})),
                terminal=Terminal(network="5G", smartphone=True, os="android"),
                channel=Channel(id="app", slots=9), moment=moment, product=product,
                failure_reason="not_eligible" if moment == "failure" else None))
    return out


def test_every_registered_strategy_honours_the_contract(sample_workspace: Workspace,
                                                        training_data: TrainingData,
                                                        tmp_path: Path) -> None:
    catalog = sample_workspace.catalog()
    strategies = registered(sample_workspace)
    assert {"popularity", "cross_sell"} <= set(strategies)
    for name, strategy in strategies.items():
        assert strategy.name == name
        assert strategy.moments, name
        strategy.fit(training_data)
        assert strategy.is_fitted, name
        folder = tmp_path / name
        folder.mkdir()
        strategy.save(folder)
        json.dumps(strategy.describe())  # JSON-serialisable for the manifest
        for path in folder.rglob("*"):
            assert path.suffix in {".npy", ".npz", ".json"}, f"{name}: {path.name} not arrays/JSON"
        fresh = registered(sample_workspace)[name]
        fresh.load(folder)
        for context in contexts(catalog):
            if not strategy.serves(context.moment):
                continue
            got = strategy.candidates(context, 10)
            assert len(got) <= 10, name
            assert all(c.product in catalog for c in got), name
            assert all(np.isfinite(c.score) and c.reason for c in got), name
            again = fresh.candidates(context, 10)
            assert [(c.product, c.reason) for c in got] == \
                [(c.product, c.reason) for c in again], name
            assert np.allclose([c.score for c in got], [c.score for c in again]), name


def test_concurrent_trainings_run_one_at_a_time_and_clean_up(sample_workspace, tmp_path):
    """Two trainings at once each write a complete version; a killed one's leftovers go."""
    import threading

    ws = Workspace(tmp_path / "ws")
    shutil.copytree(sample_workspace.root, ws.root)
    stale = ws.models_path / ".20200101T000000-deadbeef.partial"
    (stale / "cf").mkdir(parents=True)
    messages: list[str] = []
    results: list[Path] = []
    errors: list[BaseException] = []

    def train() -> None:
        try:
            results.append(ws.train(progress=messages.append))
        except BaseException as e:  # pragma: no cover - the assertion shows it
            errors.append(e)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len({p.name for p in results}) == 2
    for folder in results:
        assert read_manifest(folder)["version"] == folder.name
    assert not stale.exists() and not list(ws.models_path.glob(".*.partial"))
    assert any("interrupted training" in m for m in messages)
    assert current_model_dir(ws.models_path).name in {p.name for p in results}
