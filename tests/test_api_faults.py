"""Faulty plugins behind the API: the answer stays valid, eligible and in budget; each fault is
counted in /metrics and logged with the plugin's name."""

from __future__ import annotations

import logging
import math
import re
import time

import pytest
from api_support import copy_workspace, make_app, metric

from recommender import Candidate, RequestContext, Strategy, hookimpl
from recommender.catalog import Exclusion
from recommender.plugin_manager import make_plugin_manager

BODY = {"customer": {"id": "C0000042", "holdings": ["plan_4g", "caller_id"]},
        "terminal": {"network": "4G"}, "channel": "app", "moment": "query", "debug": True}
BUDGET_MS = 100


class Faulty(Strategy):
    """One strategy per kind of fault, chosen by name."""

    def __init__(self, name: str):
        self.name = name

    def candidates(self, context: RequestContext, n: int) -> list:
        fault = self.name
        if fault == "raises":
            raise RuntimeError("index out of range in model")
        if fault == "hangs":
            time.sleep(3)
        if fault == "slow":
            time.sleep(BUDGET_MS / 1000 * 1.5)
        if fault == "wrong_types":
            return ["data_5gb", 42, None, ("music_membership", 1.0)]
        if fault == "non_finite":  # Candidate refuses a non-finite score: the strategy raises
            return [Candidate("data_5gb", math.nan, "nan"), Candidate("cloud_storage",
                                                                      math.inf, "inf")]
        if fault == "unknown_products":
            return [Candidate("no_such_business", 1.0, "ghost")]
        if fault == "duplicates":
            return [Candidate("music_membership", 0.2, "dup low"),
                    Candidate("music_membership", 0.9, "dup high")]
        if fault == "ineligible":  # held, conflicting, 5G-only on a 4G phone
            return [Candidate("plan_4g", 1.0, "held"), Candidate("upgrade_5g", 1.0, "5G"),
                    Candidate("plan_5g", 1.0, "5G plan")]
        if fault == "not_a_list":
            return 17
        return []


FAULTS = ["raises", "hangs", "slow", "wrong_types", "non_finite", "unknown_products",
          "duplicates", "ineligible", "not_a_list"]


class FaultyPlugin:
    def __init__(self, provider_fault: str | None):
        self.provider_fault = provider_fault

    @hookimpl
    def register_strategies(self):
        return [Faulty(name) for name in FAULTS]

    @hookimpl(tryfirst=True)
    def load_terminal(self, customer_id):
        if self.provider_fault == "raises":
            raise ConnectionError("device registry unreachable")
        if self.provider_fault == "hangs":
            time.sleep(2)


@pytest.fixture(scope="module")
def faulty_workspace(sample_workspace, tmp_path_factory):
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("faults") / "ws")
    weights = "\n".join(f"{name} = 1.0" for name in FAULTS)
    config = re.sub(r"(?m)^\[blend\.query\].*$", f"[blend.query]\n{weights}",
                    ws.config_path.read_text())
    config = re.sub(r"(?m)^strategy_timeout_ms.*$", f"strategy_timeout_ms = {BUDGET_MS}",
                    config)
    ws.config_path.write_text(config + "\n")
    return ws


def faults(text: str, **labels: str) -> float:
    return metric(text, "recommender_plugin_faults_total", **labels)


@pytest.mark.parametrize("provider_fault", [None, "raises", "hangs"])
def test_every_fault_is_survived_counted_and_logged(faulty_workspace, caplog, provider_fault):
    pm = make_plugin_manager(extra_plugins=[("faulty-plugin", FaultyPlugin(provider_fault))])
    app = make_app(faulty_workspace.root, plugin_manager=pm)
    client = app.test_client()
    engine = app.extensions["recommender"].slot.engine
    try:
        with caplog.at_level(logging.WARNING, logger="recommender"):
            started = time.perf_counter()
            response = client.post("/v1/recommendations", json=BODY)  # schema-checked
            elapsed_ms = (time.perf_counter() - started) * 1000
        assert response.status_code == 200
        body = response.get_json()
        text = client.get("/metrics").get_data(as_text=True)
        # Within the budget: strategies and providers each cut off at theirs.
        assert elapsed_ms < 2 * BUDGET_MS + 250, elapsed_ms
        products = [s["product"] for s in body["suggestions"]]
        assert products and len(products) == len(set(products))
        assert not {"no_such_business", "plan_4g", "upgrade_5g", "plan_5g"} & set(products)
        context, _ = engine.build_context(engine_request(BODY))
        codes = engine.catalog.exclusions(context)
        assert all(codes[engine.catalog.index[p]] == Exclusion.OK for p in products)
        stages = {e["strategy"]: e["stage"] for e in body["errors"]}
        assert stages == {"raises": "strategy", "hangs": "timeout", "slow": "timeout",
                          "wrong_types": "garbage", "non_finite": "strategy",
                          "unknown_products": "garbage", "not_a_list": "strategy"}
        merged = next((s for s in body["suggestions"] if s["product"] == "music_membership"),
                      None)
        if merged is not None:
            assert merged["reasons"].count("dup high") == 1 and "dup low" not in merged["reasons"]
        for name, stage in stages.items():
            assert faults(text, plugin=name, stage=stage) >= 1, (name, stage)
            assert any(f"plugin {name} failed at {stage}" in r.getMessage()
                       for r in caplog.records), name
        if provider_fault == "raises":
            assert any("'faulty-plugin' failed" in w for w in body["warnings"])
            assert faults(text, plugin="faulty-plugin", stage="context") == 1
        if provider_fault == "hangs":
            assert any("'faulty-plugin' timed out" in w for w in body["warnings"])
            assert faults(text, plugin="faulty-plugin", stage="context_timeout") == 1
    finally:
        app.extensions["recommender"].slot.close()


def engine_request(body):
    from recommender import RecommendationRequest

    customer = dict(body["customer"])
    return RecommendationRequest(customer_id=customer.pop("id"), channel=body["channel"],
                                 moment=body["moment"], customer=customer,
                                 terminal=body["terminal"])
