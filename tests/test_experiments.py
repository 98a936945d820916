"""Experiments: settings refused with file and key, a stable hash split, arms served over HTTP
with their feedback attributed, counted in /metrics and compared in the online funnel."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime

import pytest
from api_support import ADMIN_TOKEN, check_problem, copy_workspace, make_app, metric
from click.testing import CliRunner

from recommender import Engine
from recommender.catalog import ProductKind
from recommender.cli import main
from recommender.config import Config
from recommender.errors import ConfigError
from recommender.evaluation import (
    EvaluationResult,
    funnel,
    html_report,
    table,
    two_proportion_p,
    wilson,
)
from recommender.evaluation.online import arm_rows, published_arms
from recommender.experiments import HOLDOUT, Experiments, bucket
from recommender.store import FeedbackEvent, Store

SOURCE = "/srv/ws/config.toml"
TWO_ARMS = {"arms": {"a": {"share": 0.5}, "b": {"share": 0.5}}}


def experiments(table: dict) -> Experiments:
    return Experiments.from_raw({"experiments": table}, SOURCE)


def arms(a: dict | None = None, b: dict | None = None, **scope: object) -> dict:
    return {**scope, "arms": {"a": {"share": 0.5, **(a or {})}, "b": {"share": 0.5, **(b or {})}}}


# -- settings: each bad one refused, naming the file and the key -------------------------------

BAD_SETTINGS = [
    ("not a table", {"x": 3}, "experiments.x", "must be a table"),
    ("bad experiment name", {"bad name": TWO_ARMS}, "experiments.bad name", "experiment name"),
    ("unknown experiment key", {"x": {**TWO_ARMS, "chanels": ["app"]}}, "experiments.x.chanels",
     "unknown key"),
    ("no arms", {"x": {"channels": ["app"]}}, "experiments.x.arms", "at least one arm"),
    ("empty arms", {"x": {"arms": {}}}, "experiments.x.arms", "at least one arm"),
    ("bad arm name", {"x": {"arms": {"a b": {"share": 1}}}}, "experiments.x.arms.a b",
     "arm name"),
    ("arm not a table", {"x": {"arms": {"a": 1}}}, "experiments.x.arms.a", "must be a table"),
    ("unknown arm key", {"x": arms({"weight": 1})}, "experiments.x.arms.a.weight",
     "unknown key"),
    ("share missing", {"x": {"arms": {"a": {}, "b": {"share": 1}}}}, "experiments.x.arms.a.share",
     "missing"),
    ("share zero", {"x": arms({"share": 0}, {"share": 1})}, "experiments.x.arms.a.share",
     "above 0 and at most 1"),
    ("share negative", {"x": arms({"share": -0.5}, {"share": 1.5})},
     "experiments.x.arms.a.share", "above 0"),
    ("share above one", {"x": arms({"share": 1.5})}, "experiments.x.arms.a.share",
     "at most 1"),
    ("share a string", {"x": arms({"share": "half"})}, "experiments.x.arms.a.share",
     "must be a number"),
    ("share a boolean", {"x": arms({"share": True})}, "experiments.x.arms.a.share",
     "must be a number"),
    ("share infinite", {"x": arms({"share": float("inf")})}, "experiments.x.arms.a.share",
     "finite"),
    ("shares under one", {"x": arms({"share": 0.4})}, "experiments.x.arms", "sum to 0.9"),
    ("shares over one", {"x": arms({"share": 0.6})}, "experiments.x.arms", "sum to 1.1"),
    ("marketing not a boolean", {"x": arms({"marketing": "no"})},
     "experiments.x.arms.a.marketing", "true or false"),
    ("unknown strategy", {"x": arms(b={"blend": {"query": {"popularty": 1.0}}})},
     "experiments.x.arms.b.blend.query.popularty", "did you mean 'popularity'"),
    ("unknown strategy on a channel", {"x": arms(b={"blend": {"query": {"app": {"zzz": 1.0}}}})},
     "experiments.x.arms.b.blend.query.app.zzz", "unknown strategy"),
    ("unknown moment in a blend", {"x": arms(b={"blend": {"lunch": {"popularity": 1.0}}})},
     "experiments.x.arms.b.blend.lunch", "unknown moment"),
    ("negative weight", {"x": arms(b={"blend": {"query": {"popularity": -1}}})},
     "experiments.x.arms.b.blend.query.popularity", "from 0"),
    ("blend not a table", {"x": arms(b={"blend": 1})}, "experiments.x.arms.b.blend",
     "table"),
    ("blend outside the moments", {"x": arms(b={"blend": {"success": {"cf": 1.0}}},
                                            moments=["query"])},
     "experiments.x.arms.b.blend.success", "does not apply at moment 'success'"),
    ("blend outside the channels", {"x": arms(b={"blend": {"query": {"web": {"cf": 1.0}}}},
                                             channels=["app"])},
     "experiments.x.arms.b.blend.query.web", "does not apply on channel 'web'"),
    ("unknown channel", {"x": arms(channels=["app", "fax"])}, "experiments.x.channels",
     "unknown value 'fax'"),
    ("channels not a list", {"x": arms(channels="app")}, "experiments.x.channels",
     "non-empty list"),
    ("no moments", {"x": arms(moments=[])}, "experiments.x.moments", "non-empty list"),
    ("a moment twice", {"x": arms(moments=["query", "query"])}, "experiments.x.moments",
     "twice"),
    ("start not a date", {"x": arms(start="soon")}, "experiments.x.start", "ISO 8601"),
    ("start a number", {"x": arms(start=20260101)}, "experiments.x.start",
     "must be a date"),
    ("end before start", {"x": arms(start="2026-02-01", end="2026-01-01")},
     "experiments.x.end", "after start"),
    ("overlapping experiments", {"x": TWO_ARMS, "y": TWO_ARMS}, "experiments.y",
     "overlaps experiment 'x'"),
    ("overlap on one channel and moment",
     {"x": arms(channels=["app"], moments=["query"]),
      "y": arms(channels=["web", "app"], moments=["success", "query"])},
     "experiments.y", "channel 'app' at moment 'query'"),
    ("overlapping windows", {"x": arms(end="2026-02-01"), "y": arms(start="2026-01-15")},
     "experiments.y", "overlaps"),
]


@pytest.mark.parametrize(("table", "key", "reason"), [case[1:] for case in BAD_SETTINGS],
                         ids=[case[0] for case in BAD_SETTINGS])
def test_a_bad_setting_is_refused_naming_file_and_key(catalog, table, key, reason):
    with pytest.raises(ConfigError) as raised:  # loading the file, or building the engine
        Engine(catalog, Config.from_dict({"experiments": table}, source=SOURCE)).close()
    error = raised.value
    assert (error.source, error.key) == (SOURCE, key), str(error)
    assert reason in str(error) and str(error).startswith(f"{SOURCE}, {key}: ")


@pytest.mark.parametrize("table", [
    {"x": TWO_ARMS},
    {"x": {"arms": {"all": {"share": 1}}}},  # a one-arm rollout, attributed
    {"x": {"arms": {"a": {"share": 0.1}, "b": {"share": 0.2}, "c": {"share": 0.7}}}},
    {"x": arms(channels=["app"]), "y": arms(channels=["web"])},
    {"x": arms(moments=["query"]), "y": arms(moments=["success"])},
    {"x": arms(end="2026-02-01"), "y": arms(start="2026-02-01")},  # end is exclusive
    {"x": arms(b={"blend": {"query": {"popularity": 1.0, "adaptive": 2.0},
                            "success": {"hotline": {"cross_sell": 1.0}}}})},
    {"x": arms({"marketing": False})},
])
def test_good_settings_are_accepted(catalog, table):
    with Engine(catalog, Config.from_dict({"experiments": table}, source=SOURCE)) as engine:
        assert set(engine.experiments.arms()) == set(table)


def test_without_experiments_nothing_is_assigned(catalog):
    with Engine(catalog) as engine:
        assert not engine.experiments
        assert engine.experiments.assign("C1", "app", "query", 0) is None


# -- assignment: stable, salted, in proportion --------------------------------------------------


def test_the_hash_is_pinned():
    """SHA-256 of name NUL id: the same in every process, run and release."""
    assert bucket("adaptive_ab", "C0000001") == pytest.approx(0.20129768384401808, abs=1e-15)
    assert bucket("adaptive_ab", "C0000002") == pytest.approx(0.9485385027176986, abs=1e-15)
    assert bucket("other", "C0000001") == pytest.approx(0.34385109551089027, abs=1e-15)


def test_assignment_is_stable_across_processes():
    table = {"x": {"arms": {"a": {"share": 0.3}, "b": {"share": 0.3}, "c": {"share": 0.4}}}}
    ids = [f"C{i:07d}" for i in range(200)]
    here = [experiments(table).assign(i, "app", "query", 0).arm.name for i in ids]
    code = ("import sys; from recommender.experiments import Experiments; "
            f"e = Experiments.from_raw({{'experiments': {table!r}}}, 'x'); "
            f"print(''.join(e.assign(i, 'app', 'query', 0).arm.name for i in {ids!r}))")
    for seed in ("1", "2"):  # Python's own hash() would differ between these
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, check=True)
        assert out.stdout.strip() == "".join(here)
    assert here == [experiments(table).assign(i, "web", "success", 0).arm.name for i in ids]


def test_shares_split_ten_thousand_customers_in_proportion():
    shares = {"control": 0.5, "adaptive": 0.3, "holdout": 0.2}
    split = experiments({"x": {"arms": {a: {"share": s} for a, s in shares.items()}}})
    counts = Counter(split.assign(f"C{i:07d}", "app", "query", 0).arm.name
                     for i in range(10_000))
    for arm, share in shares.items():
        # binomial sd at n = 10,000 is at most 0.005: 0.02 is four of them
        assert counts[arm] / 10_000 == pytest.approx(share, abs=0.02), counts


def test_the_experiment_name_salts_the_split():
    one = experiments({"x": arms(channels=["app"])})
    other = experiments({"y": arms(channels=["app"])})
    ids = [f"C{i:07d}" for i in range(10_000)]
    same = sum(one.assign(i, "app", "query", 0).arm.name ==
               other.assign(i, "app", "query", 0).arm.name for i in ids)
    assert same / len(ids) == pytest.approx(0.5, abs=0.03)  # independent, not copied


def test_scope_dates_and_anonymous_customers():
    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()
    end = datetime(2026, 2, 2, tzinfo=UTC).timestamp()
    x = experiments({"x": arms(channels=["app", "web"], moments=["query"],
                               start=datetime(2026, 1, 5).date(), end="2026-02-02T00:00:00Z")})
    assert x.assign("C1", "app", "query", start) is not None
    assert x.assign("C1", "web", "query", end - 1) is not None
    assert x.assign("C1", "app", "query", start - 1) is None
    assert x.assign("C1", "app", "query", end) is None
    assert x.assign("C1", "hotline", "query", start) is None
    assert x.assign("C1", "app", "success", start) is None
    assert x.assign("anonymous", "app", "query", start) is None


def test_feedback_attribution_only_when_certain():
    x = experiments({"x": arms(channels=["app"], moments=["query"]),
                     "y": arms(channels=["web"])})
    arm = x.assign("C7", "app", "query", 0).arm.name
    assert x.attribute("C7", "app", "query", 0) == ("x", arm)
    assert x.attribute("C7", "web", None, 0) == ("y", x.assign("C7", "web", "query", 0).arm.name)
    assert x.attribute("C7", None, "query", 0) is None  # x or y: cannot tell
    assert x.attribute("C7", "app", None, 0) is None  # x covers only the query moment
    assert x.attribute(None, "app", "query", 0) is None
    assert x.attribute("C7", "hotline", "query", 0) is None


# -- the store: new nullable columns, old stores migrated --------------------------------------

OLD_FEEDBACK = """CREATE TABLE feedback (event_id TEXT PRIMARY KEY, ts INTEGER NOT NULL,
    request_id TEXT NOT NULL, product_id TEXT NOT NULL, action TEXT NOT NULL, customer_id TEXT,
    channel TEXT, moment TEXT, strategies TEXT)"""


def test_an_old_store_gains_the_columns_and_keeps_its_feedback(tmp_path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute(OLD_FEEDBACK)
        db.execute("INSERT INTO feedback VALUES ('e1', 1, 'r', 'p', 'click', 'C1', 'app', "
                   "'query', 'cf')")
    with Store(path) as store:
        assert store._has_column("feedback", "experiment") and store._has_column("feedback",
                                                                                 "arm")
        store.add_feedback(FeedbackEvent("e2", "r", "p", "accept", 2, "C1", "app", "query",
                                         ("cf",), "x", "b"))
        store.add_rows("feedback", [("e3", 3, "r", "p", "dismiss", "C1", "app", "query", "")])
        events = {e.event_id: e for e in store.feedback()}
    assert (events["e1"].experiment, events["e1"].arm, events["e1"].strategies) == (
        None, None, ("cf",))
    assert (events["e2"].experiment, events["e2"].arm) == ("x", "b")
    assert events["e3"].experiment is None
    with Store(path) as store:  # migrating again changes nothing
        assert len(store.feedback()) == 3


# -- over HTTP: two arms, a holdout, feedback, /metrics and the funnel --------------------------

EXPERIMENTS_TOML = """
[experiments.ranking]            # app, query: the configured blend against popularity alone
channels = ["app"]
moments = ["query"]

[experiments.ranking.arms.control]
share = 0.5

[experiments.ranking.arms.popular]
share = 0.5
[experiments.ranking.arms.popular.blend.query]
popularity = 1.0

[experiments.holdout]            # web: half the customers get no marketing at all
channels = ["web"]

[experiments.holdout.arms.control]
share = 0.5
marketing = false

[experiments.holdout.arms.treatment]
share = 0.5
"""

CUSTOMERS = [f"C{i:07d}" for i in range(0, 1200, 4)]  # 300 customers


@pytest.fixture(scope="module")
def served(sample_workspace, tmp_path_factory):
    """An app over a workspace with the experiments above."""
    ws = copy_workspace(sample_workspace, tmp_path_factory.mktemp("experiments") / "ws")
    config = ws.root / "config.toml"
    text = config.read_text()
    assert "strategy_timeout_ms = 100 " in text  # no budget to miss on a busy test machine:
    text = text.replace("strategy_timeout_ms = 100 ", "strategy_timeout_ms = 60000\n"
                        "context_timeout_ms = 60000 ")
    config.write_text(text + EXPERIMENTS_TOML)
    app = make_app(ws.root, admin_token=ADMIN_TOKEN)
    yield app, ws
    app.extensions["recommender"].slot.close()


def recommend(client, customer, channel="app", moment="query", **extra):
    r = client.post("/v1/recommendations", json={
        "customer": {"id": customer} if isinstance(customer, str) else customer,
        "channel": channel, "moment": moment, **extra})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()


def feedback(client, **event):
    r = client.post("/v1/feedback", json=event)
    assert r.status_code == 201, r.get_data(as_text=True)


@pytest.mark.filterwarnings("ignore:No artists with labels")  # a report without offline runs
def test_two_arms_served_with_feedback_counted_and_compared(served):
    app, ws = served
    client = app.test_client()
    by_arm: dict[str, list[str]] = {"control": [], "popular": []}
    suggestions: Counter[str] = Counter()  # the first answer's, shown and fed back
    served_total: Counter[str] = Counter()  # both answers'
    requests: set[str] = set()
    planted: Counter[tuple[str, str]] = Counter()
    for n, customer in enumerate(CUSTOMERS):
        body = recommend(client, customer, k=3)
        assert body["experiment"] == "ranking"
        arm = body["arm"]
        by_arm[arm].append(customer)
        requests.add(body["request_id"])
        again = recommend(client, customer, k=3)
        assert again["arm"] == arm  # the same arm every time
        if arm == "popular":
            assert {s for x in body["suggestions"] for s in x["strategies"]} <= {"popularity"}
        suggestions[arm] += len(body["suggestions"])
        served_total[arm] += len(body["suggestions"]) + len(again["suggestions"])
        # every other event leaves experiment and arm out: the server attributes it
        tagged = {"experiment": "ranking", "arm": arm} if n % 2 else {}
        common = {"request_id": body["request_id"], "customer_id": customer, "channel": "app",
                  "moment": "query", **tagged}
        for s in body["suggestions"]:
            feedback(client, product=s["product"], action="impression", **common)
        # planted: half the popular arm's customers click their first suggestion, a sixth of
        # the control arm's; a third of those who click accept
        clicks = n % 2 == 0 if arm == "popular" else n % 6 == 0
        if clicks and body["suggestions"]:
            first = body["suggestions"][0]["product"]
            feedback(client, product=first, action="click", **common)
            planted[(arm, "click")] += 1
            if n % 3 == 0:
                feedback(client, product=first, action="accept", **common)
                planted[(arm, "accept")] += 1
    assert min(len(c) for c in by_arm.values()) > 100  # about half each

    with Store(ws.store_path) as store:
        events = [e for e in store.feedback() if e.request_id in requests]
        assert len(events) == sum(suggestions.values()) + sum(planted.values())
        for e in events:
            assert e.experiment == "ranking" and e.customer_id in by_arm[e.arm], e  # attributed
        rows = {r["value"]: r for r in funnel(store) if r["by"] == "arm"}
        online = funnel(store, arms={"ranking": ["control", "popular"]})
    assert list(rows) == ["ranking/control", "ranking/popular"]  # control: the baseline
    for arm in by_arm:
        row = rows[f"ranking/{arm}"]
        assert row["impressions"] == suggestions[arm]
        assert row["clicks"] == planted[(arm, "click")]
        assert row["accepts"] == planted[(arm, "accept")]
        assert row["customers"] == len(by_arm[arm])
        assert row["ctr"] == pytest.approx(row["clicks"] / row["impressions"])
        low, high = row["ctr_ci"]
        assert 0 <= low < row["ctr"] < high <= 1
    assert rows["ranking/control"]["ctr_p_value"] is None
    assert rows["ranking/popular"]["ctr_p_value"] < 0.001  # 1/6 against 1/18 of impressions

    result = EvaluationResult(protocol={}, ks=(10,), online=online)
    out = result.to_json()
    popular = out["experiment:ranking/popular"]
    assert popular["online_impressions"] == suggestions["popular"]
    assert popular["online_ctr_ci_low"] < popular["online_ctr"] < popular["online_ctr_ci_high"]
    assert popular["online_ctr_p_value"] < 0.001 and "online_acceptance_rate_p_value" in popular
    assert "online_ctr_p_value" not in out["experiment:ranking/control"]
    assert "ranking/popular" in table(result)
    page = html_report(result)
    assert "<h2>Experiments</h2>" in page and "<td>popular</td>" in page

    text = client.get("/metrics").get_data(as_text=True)
    for arm in by_arm:
        labels = {"experiment": "ranking", "arm": arm}
        assert metric(text, "recommender_experiment_suggestions_total", **labels) == \
            served_total[arm]
        assert metric(text, "recommender_experiment_requests_total", **labels) == \
            2 * len(by_arm[arm])
        assert metric(text, "recommender_experiment_feedback_total", action="click",
                      **labels) == planted[(arm, "click")]
        assert metric(text, "recommender_experiment_feedback_total", action="impression",
                      **labels) == suggestions[arm]


def test_the_holdout_control_arm_gets_no_marketing(served):
    app, ws = served
    catalog = ws.catalog()
    client = app.test_client()
    seen: Counter[str] = Counter()
    for customer in CUSTOMERS[:80]:
        for moment, extra in (("query", {}), ("success", {"product": "plan_5g"})):
            body = recommend(client, customer, "web", moment, debug=True, **extra)
            assert body["experiment"] == "holdout"
            kinds = {catalog[s["product"]].kind for s in body["suggestions"]}
            if body["arm"] == "control":
                assert kinds <= {ProductKind.SERVICE}, body["suggestions"]
                held = [e for e in body["excluded"] if e["reason"] == HOLDOUT]
                assert all("marketing = false" in e["detail"] for e in held)
                seen["withheld"] += len(held)
            else:
                assert HOLDOUT not in {e["reason"] for e in body["excluded"]}
                if ProductKind.BUSINESS in kinds:
                    seen["treatment marketing"] += 1
            seen[body["arm"]] += 1
    assert seen["control"] and seen["treatment"]
    assert seen["withheld"] and seen["treatment marketing"]


def test_no_experiment_no_fields(served):
    app, _ = served
    client = app.test_client()
    for body in (recommend(client, "C0000004", "hotline"),  # no experiment covers it
                 recommend(client, "C0000004", "app", "success", product="plan_5g"),
                 recommend(client, {"holdings": ["plan_4g"]})):  # anonymous: not enrolled
        assert "experiment" not in body and "arm" not in body


def test_feedback_carries_both_or_neither_and_unknown_names_are_not_counted(served):
    app, ws = served
    client = app.test_client()
    event = {"request_id": "t", "product": "cloud_storage", "action": "click"}
    for partial, missing in (({"experiment": "ranking"}, "arm"),
                             ({"arm": "control"}, "experiment")):
        problem = check_problem(client.post("/v1/feedback", json={**event, **partial}), 422)
        assert missing in problem["errors"]
    feedback(client, event_id="bogus-1", experiment="bogus", arm="x", **event)
    with Store(ws.store_path) as store:
        [stored] = [e for e in store.feedback() if e.event_id == "bogus-1"]
    assert (stored.experiment, stored.arm) == ("bogus", "x")  # stored, as sent
    assert 'experiment="bogus"' not in client.get("/metrics").get_data(as_text=True)


def test_a_reload_refuses_bad_experiment_settings_with_409(sample_workspace, tmp_path):
    ws = copy_workspace(sample_workspace, tmp_path / "ws")
    app = make_app(ws.root, admin_token=ADMIN_TOKEN)
    try:
        client = app.test_client()
        config = ws.root / "config.toml"
        good = config.read_text()
        config.write_text(good + EXPERIMENTS_TOML.replace("share = 0.5\nmarketing", "share = "
                                                          "0.6\nmarketing"))
        problem = check_problem(client.post(
            "/v1/admin/reload", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"}), 409)
        assert "config.toml, experiments.holdout.arms: the arms' shares sum to 1.1" in \
            problem["detail"]
        assert "experiment" not in recommend(client, "C0000004")  # the old files serve on
    finally:
        app.extensions["recommender"].slot.close()


def test_evaluate_reports_the_arms_in_json_and_html(served, tmp_path):
    """``recommender evaluate --dir``: the arms of the configuration the server publishes, in
    its order, in the JSON and the HTML report."""
    app, ws = served
    client = app.test_client()
    for customer in CUSTOMERS[:40]:
        body = recommend(client, customer, k=2)
        for s in body["suggestions"]:
            feedback(client, request_id=body["request_id"], product=s["product"],
                     action="impression", experiment=body["experiment"], arm=body["arm"])
    with Store(ws.store_path) as store:
        assert published_arms(store) == {"ranking": ["control", "popular"],
                                         "holdout": ["control", "treatment"]}
    out, page = tmp_path / "eval.json", tmp_path / "eval.html"
    result = CliRunner().invoke(main, [
        "evaluate", "--dir", str(ws.root), "--k", "5", "--strategies", "popularity",
        "--bootstrap", "0", "--max-users", "50", "--json", str(out), "--html", str(page)])
    assert result.exit_code == 0, result.output
    assert "ranking/popular" in result.output
    report = json.loads(out.read_text())
    control, popular = report["experiment:ranking/control"], report["experiment:ranking/popular"]
    assert control["online_impressions"] > 0 and popular["online_impressions"] > 0
    assert "online_ctr_p_value" in popular and "online_ctr_p_value" not in control
    assert "<h2>Experiments</h2>" in page.read_text()


# -- the statistics ----------------------------------------------------------------------------


def test_wilson_interval_and_z_test_against_reference_values():
    stats = pytest.importorskip("scipy.stats")
    for x, n in ((10, 100), (0, 20), (3, 7), (450, 500)):
        reference = stats.binomtest(x, n).proportion_ci(method="wilson")
        assert wilson(x, n) == (pytest.approx(reference.low, abs=1e-12),
                                pytest.approx(reference.high, abs=1e-12))
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(0, 20)[0] == 0.0 and wilson(20, 20)[1] == 1.0
    # 40/200 against 20/200: pooled p 0.15, z = 0.1 / sqrt(0.15 * 0.85 / 100)
    z = 0.1 / (0.15 * 0.85 / 100) ** 0.5
    assert two_proportion_p(40, 200, 20, 200) == pytest.approx(2 * stats.norm.sf(z), rel=1e-9)
    assert two_proportion_p(20, 200, 40, 200) == two_proportion_p(40, 200, 20, 200)
    assert two_proportion_p(0, 10, 0, 10) == 1.0
    assert two_proportion_p(1, 0, 1, 10) is None


def test_arm_rows_follow_the_given_order_and_test_against_the_first():
    per_arm = {("x", "a"): Counter(impression=100, click=30, accept=5),
               ("x", "z"): Counter(impression=100, click=10, accept=5),
               ("x", "new"): Counter(impression=50, click=5, accept=90)}
    rows = arm_rows(per_arm, {("x", "z"): {"C1", "C2"}}, {"x": ["z", "a"]})
    assert [r["arm"] for r in rows] == ["z", "a", "new"]  # unknown arms follow, by name
    z, a, new = rows
    assert z["baseline"] == "z" and z["ctr_p_value"] is None and z["customers"] == 2
    assert a["ctr_p_value"] == pytest.approx(two_proportion_p(30, 100, 10, 100))
    assert a["acceptance_rate_p_value"] == 1.0
    assert new["acceptance_rate"] == 1.8  # as counted; the interval and test cap it at 1
    assert new["acceptance_rate_ci"][1] == 1.0
