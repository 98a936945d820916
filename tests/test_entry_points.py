"""Built-in strategies loaded through the entry-point path, exactly as a third party's are."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from recommender import RecommendationRequest
from recommender.plugin_manager import DEFAULT_PLUGINS, make_plugin_manager
from recommender.workspace import Workspace

STRATEGY_PLUGINS = [(name, module) for name, module in DEFAULT_PLUGINS
                    if name in {"popularity", "cross_sell", "association", "cf"}]


@pytest.fixture
def installed_as_third_party(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """A distribution on sys.path whose ``recommender`` entry points name the built-ins."""
    dist = tmp_path / "thirdparty_strategies-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: thirdparty-strategies\nVersion: 1.0\n")
    lines = [f"ep_{name} = {module}" for name, module in STRATEGY_PLUGINS]
    (dist / "entry_points.txt").write_text("[recommender]\n" + "\n".join(lines) + "\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("thirdparty_strategies", None)
    return [f"ep_{name}" for name, _ in STRATEGY_PLUGINS]


def test_each_built_in_strategy_runs_from_an_entry_point(
        sample_workspace: Workspace, installed_as_third_party: list[str]) -> None:
    assert len(installed_as_third_party) >= 3
    allow = ["eligibility", "store_provider", "channels", *installed_as_third_party]
    pm = make_plugin_manager(allow=allow)
    with sample_workspace.engine(plugin_manager=pm, require_models=True) as engine:
        sources = dict(engine.sources)
        for name, _ in STRATEGY_PLUGINS:
            assert sources[name] == f"ep_{name}", sources
            assert engine.strategies[name].is_fitted, name
        customer_id = engine.store.customer_ids(limit=1)[0]
        seen: set[str] = set()
        for moment, product in (("query", "balance_query"), ("transaction", "intl_roaming"),
                                ("success", "broadband"), ("failure", "plan_5g_newsim")):
            result = engine.recommend(RecommendationRequest(
                customer_id, "app", moment, product=product, debug=True,
                failure_reason="not_eligible" if moment == "failure" else None))
            assert not result.errors, result.errors
            seen.update(s for suggestion in result.suggestions for s in suggestion.strategies)
        assert {name for name, _ in STRATEGY_PLUGINS} <= seen
