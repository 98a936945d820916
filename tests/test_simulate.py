"""The closed-loop simulator (benchmarks/simulate.py): its --quick run, and its independent
count of contact-policy violations."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from recommender import Config, Customer, Terminal

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "simulate.py"


@pytest.fixture(scope="module")
def simulate():
    spec = importlib.util.spec_from_file_location("simulate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["simulate"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("simulate", None)


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("simulate")
    out = tmp / "out.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp / "work"), "--json",
         str(out), "--plot", str(tmp / "simulation.png")],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return result.stdout, json.loads(out.read_text()), tmp


def test_quick_run_prints_the_table_and_writes_json_and_plot(quick):
    stdout, data, tmp = quick
    for column in ("impressions", "accepts", "rate", "regret", "policy oracle", "violations"):
        assert column in stdout
    names = [r["name"] for r in data["results"]]
    assert names == ["static blend", "adaptive", "static blend + caps", "adaptive + caps"]
    for name in names:
        assert name in stdout
    for r in data["results"]:
        assert r["requests"] == data["settings"]["rounds"] * data["settings"]["requests"]
        assert r["impressions"] > 0 and 0 < r["accepts"] <= r["impressions"]
        assert r["ineligible_shown"] == 0  # checked by the simulator, not the engine
        assert r["oracle"] >= r["policy_oracle"] >= r["expected"]  # oracles bound the runs
        assert r["regret"] >= r["policy_regret"] >= 0
        assert len(r["rounds"]) == data["settings"]["rounds"]
        accepts = [s["accepts"] for s in r["rounds"]]
        assert accepts == sorted(accepts) and accepts[-1] == r["accepts"]
    assert (tmp / "simulation.png").stat().st_size > 0


def test_the_capped_run_never_exceeds_the_policy(quick):
    _, data, _ = quick
    static, adaptive, capped_static, capped = data["results"]
    for run in (capped_static, capped):
        assert run["violations_total"] == 0
        assert run["contact_policy"]["max_per_channel_day"] > 0
    # The count is not trivially zero: without caps the same limits are exceeded.
    assert static["violations"]["channel_day_cap"] > 0
    assert static["violations"]["suppressed"] == adaptive["violations"]["suppressed"] == 0
    assert adaptive["adaptive_state"]["trials"] > 0  # the strategy read the feedback


def test_the_runs_are_reproducible(quick, tmp_path):
    """The same seeds give the same figures (the engine's clock is the simulation's)."""
    _, data, _ = quick
    out = tmp_path / "again.json"
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--quick", "--work", str(tmp_path), "--json", str(out),
         "--no-plot", "--only", "adaptive"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    again = json.loads(out.read_text())["results"][0]
    first = data["results"][1]
    for key in ("impressions", "accepts", "expected", "oracle", "violations"):
        assert again[key] == first[key], key


def person(simulate, tags=frozenset()):
    import numpy as np

    return simulate.Person("C1", Customer(id="C1", tags=tags), Terminal(), np.ones(6),
                           np.ones(3))


def audit(simulate, **caps):
    raw = {"contact_policy": {"dismissals": 2, "dismissal_window_days": 30,
                              "cool_off_days": 30, **caps}}
    return simulate.PolicyAudit.from_config(raw)


def test_audit_counts_cap_overruns_in_rolling_windows(simulate):
    a = audit(simulate, max_per_channel_day=3, max_per_business_week=2)
    service = {"x": False, "y": False, "z": False, "w": False, "s": True}
    who, t = person(simulate), 1_000_000
    a.shown(who, "app", "query", t, ["x", "y", "z", "w", "s"], service)
    assert a.violations["channel_day_cap"] == 1  # the 4th marketing one; the service is free
    a.shown(who, "web", "query", t + 60, ["x"], service)  # another channel: its own day cap
    assert a.violations["channel_day_cap"] == 1
    assert a.violations["business_week_cap"] == 0
    a.shown(who, "app", "query", t + simulate.DAY, ["x"], service)  # the day has rolled
    assert a.violations["channel_day_cap"] == 1
    assert a.violations["business_week_cap"] == 1  # x a third time within 7 days
    a.shown(who, "app", "failure", t + simulate.DAY + 60, ["x", "y", "z", "w"], service)
    assert sum(a.violations.values()) == 2  # the failure moment is exempt
    a.shown(who, "app", "query", t + 8 * simulate.DAY, ["x"], service)
    assert sum(a.violations.values()) == 2


def test_audit_counts_suppressed_offers(simulate):
    a = audit(simulate)
    service = {"x": False}
    who, t = person(simulate), 1_000_000
    a.refusal("C1", "x", t)
    a.shown(who, "app", "query", t + 10, ["x"], service)
    assert a.violations["suppressed"] == 0  # one refusal does not suppress
    a.refusal("C1", "x", t + 20 * simulate.DAY)
    a.shown(who, "sms", "query", t + 21 * simulate.DAY, ["x"], service)  # across channels
    assert a.violations["suppressed"] == 1
    a.shown(who, "app", "query", t + 50 * simulate.DAY + 1, ["x"], service)  # cooled off
    assert a.violations["suppressed"] == 1
    far = audit(simulate)
    far.refusal("C1", "x", t)
    far.refusal("C1", "x", t + 31 * simulate.DAY)  # not within the 30-day window
    far.shown(who, "app", "query", t + 32 * simulate.DAY, ["x"], service)
    assert far.violations["suppressed"] == 0


def test_policy_oracle_takes_the_best_the_policy_allows(simulate):
    a = audit(simulate, max_per_channel_day=3, max_per_business_week=1)
    service = dict.fromkeys("abcde", False) | {"s": True}
    who, t = person(simulate), 1_000_000
    a.shown(who, "app", "query", t, ["a", "b"], service)  # 2 of the day's 3 on the app
    a.refusal("C1", "c", t)
    a.refusal("C1", "c", t + 60)  # c is suppressed
    ranked = ["a", "c", "s", "d", "e"]  # best first
    # a is over its weekly cap, c suppressed; one marketing slot is left today: d; and the
    # service, which no cap counts.
    assert a.allowed(who, "app", "query", t + 120, ranked, service, 9) == ["s", "d"]
    assert a.allowed(who, "app", "query", t + 120, ranked, service, 1) == ["s"]
    assert a.allowed(who, "web", "query", t + 120, ranked, service, 9) == ["s", "d", "e"]
    assert a.allowed(who, "app", "failure", t + 120, ranked, service, 2) == ["a", "c"]


def test_configurations_are_valid_toml_for_the_engine(simulate):
    sample = Path(__file__).resolve().parents[1] / "recommender" / "sample" / "config.toml"
    with sample.open("rb") as f:
        base = tomllib.load(f)
    for mode in ("add", "replace"):
        made = simulate.configs(base, 0.5, mode, {"prior_trials": 40.0})
        for name, data in made.items():
            text = simulate.to_toml(data)
            assert tomllib.loads(text) == data
            config = Config.from_dict(tomllib.loads(text))
            weights = config.weights("query", "app")
            static = name.startswith("static blend")
            assert ("adaptive" in weights) == (not static)
            assert ("popularity" in weights) == (static or mode == "add")
            assert config.contact_policy.caps == name.endswith("+ caps")
