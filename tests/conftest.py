"""Shared fixtures: one sample operator workspace, generated and trained once per session."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from recommender import Catalog, Engine, TrainingData
from recommender.workspace import Workspace

pytest_plugins = ["api_support"]

ROOT = Path(__file__).resolve().parents[1]
DATASETS = Path(os.environ.get("RECOMMENDER_DATASETS", ROOT.parent / "shared" / "datasets"))
SAMPLE_CUSTOMERS = 2000
SAMPLE_SEED = 7


def dataset(*parts: str) -> Path:
    """Path of a shared public dataset file; skips the test with a clear message if absent."""
    path = DATASETS.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"dataset {path} not found (set RECOMMENDER_DATASETS to the datasets folder)")
    return path


def build_workspace(root: Path, *, customers: int = SAMPLE_CUSTOMERS, seed: int = SAMPLE_SEED,
                    train: bool = True) -> Workspace:
    """A sample operator workspace in ``root``: files, generated store and (optionally) models."""
    from recommender import sampledata

    ws = Workspace(root)
    root.mkdir(parents=True, exist_ok=True)
    sampledata.write_workspace_files(root)
    with ws.store() as store:
        sampledata.generate(store, ws.catalog(), customers=customers, seed=seed)
    if train:
        ws.train()
    return ws


@pytest.fixture(scope="session")
def sample_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """The default sample operator, trained. Read-only: copy it before changing anything."""
    return build_workspace(tmp_path_factory.mktemp("sample"))


@pytest.fixture(scope="session")
def catalog(sample_workspace: Workspace) -> Catalog:
    return sample_workspace.catalog()


@pytest.fixture(scope="session")
def sample_data(sample_workspace: Workspace) -> TrainingData:
    """The sample operator's store as training arrays. Read-only."""
    with sample_workspace.store() as store:
        return TrainingData.from_store(store, sample_workspace.catalog())


@pytest.fixture(scope="session")
def engine(sample_workspace: Workspace) -> Iterator[Engine]:
    """An engine over the sample workspace with every installed plugin and the trained models."""
    with sample_workspace.engine(require_models=True) as engine:
        yield engine
