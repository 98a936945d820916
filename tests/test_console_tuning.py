"""Rules and blend weights: edited in place, checked as loading checks them, dry-run on a
sample of customers, saved atomically and served by every worker."""

from __future__ import annotations

import re
import tomllib

import pytest
from api_support import copy_workspace
from console_support import close, console_app, csrf_of, signed_in, text

from api.console import tomledit
from api.console.proposals import digest
from recommender.snapshot import published

SAMPLE_RULES = ("5g-newsim-failed-offer-upgrade-pack", "roaming-abroad-kit")


# -- editing TOML in place --------------------------------------------------------------------

RULES = """# marketing's rules

[[rule]]
id = "first"   # the first one
moments = ["query"]
recommend = ["a"]
[rule.when]
channel = ["app"]

# -- a section comment --

[[rule]]
id = "second"
moments = ["success"]
recommend = [{ product = "b", reason = "because" }]
# trailing comment
"""


@pytest.mark.parametrize("text", ['plain', 'quote " and \\ backslash', "line\nbreak\ttab",
                                  "控制\x01字符\x7f", "emoji 📱 and ' apostrophe"])
def test_strings_are_written_as_toml_reads_them(text):
    assert tomllib.loads(f"x = {tomledit.string(text)}")["x"] == text


@pytest.mark.parametrize("value", [1, 0.5, 1e-05, 1000.0, 3.0, True, ["a", "b"],
                                   {"product": "x", "reason": "y"}])
def test_values_round_trip(value):
    assert tomllib.loads(f"x = {tomledit.value(value)}")["x"] == value


def test_a_non_finite_number_is_refused():
    with pytest.raises(tomledit.EditError, match="finite"):
        tomledit.value(float("nan"))


def test_replacing_a_rule_keeps_every_other_byte():
    new = {"id": "first", "moments": ["query", "success"], "priority": 70,
           "recommend": ["a", {"product": "c", "reason": "why"}], "when": {"channel": ["web"]}}
    out = tomledit.edit_rule(RULES, 0, new)
    assert tomllib.loads(out)["rule"][0] == new
    assert tomllib.loads(out)["rule"][1] == tomllib.loads(RULES)["rule"][1]
    assert out.startswith("# marketing's rules\n\n[[rule]]\nid = \"first\"\n")
    assert out.endswith(RULES[RULES.index("# -- a section comment --"):])


def test_removing_and_adding_rules():
    removed = tomledit.edit_rule(RULES, 1, None)
    assert [r["id"] for r in tomllib.loads(removed)["rule"]] == ["first"]
    assert "# -- a section comment --" in removed
    added = tomledit.edit_rule(RULES, None, {"id": "third", "recommend": ["z"]})
    assert [r["id"] for r in tomllib.loads(added)["rule"]] == ["first", "second", "third"]
    assert added.startswith(RULES)


def test_rules_not_written_as_blocks_are_refused():
    inline = 'rule = [{ id = "x", recommend = ["a"] }]\n'
    with pytest.raises(tomledit.EditError, match="not all written as"):
        tomledit.edit_rule(inline, 0, {"id": "x", "recommend": ["b"]})


CONFIG = """[engine]
workers = 2

[blend.query]     # the query moment
popularity = 1.0  # keep
cross_sell = 1.0

[blend.success.hotline]
cross_sell = 1.5

# the language
[locale]
default = "en"
"""


def test_blend_weights_are_rewritten_in_place_with_their_comments():
    out = tomledit.edit_blend(CONFIG, {"query": {"popularity": 2.0, "cf": 0.5}}, {}, [])
    data = tomllib.loads(out)
    assert data["blend"]["query"] == {"popularity": 2.0, "cf": 0.5}
    assert "popularity = 2.0  # keep" in out and "[blend.query]     # the query moment" in out
    assert data["blend"]["success"] == {"hotline": {"cross_sell": 1.5}}
    assert data["locale"] == {"default": "en"} and "# the language\n[locale]" in out


def test_blend_tables_are_added_and_removed():
    out = tomledit.edit_blend(CONFIG, {"failure": {"alternatives": 2.0}},
                              {("query", "app"): {"cf": 1.0}}, [("success", "hotline")])
    data = tomllib.loads(out)
    assert data["blend"]["failure"] == {"alternatives": 2.0}
    assert data["blend"]["query"]["app"] == {"cf": 1.0}
    assert "success" not in data["blend"]
    assert data["engine"] == {"workers": 2} and data["locale"] == {"default": "en"}


def test_a_blend_in_another_layout_is_refused():
    inline = "[blend]\nquery = { popularity = 1.0 }\n"
    with pytest.raises(tomledit.EditError, match="one table per moment"):
        tomledit.edit_blend(inline, {"query": {"popularity": 2.0}}, {}, [])


# -- through the console ----------------------------------------------------------------------

@pytest.fixture
def workspace(sample_workspace, tmp_path):
    return copy_workspace(sample_workspace, tmp_path / "ws")


@pytest.fixture
def app(workspace):
    app = console_app(workspace.root, reload_poll_seconds=0)
    yield app
    close(app)


@pytest.fixture
def client(app):
    return signed_in(app)


def rule_number(workspace, rule_id: str) -> int:
    rules = tomllib.loads((workspace.root / "rules.toml").read_text())["rule"]
    return [r.get("id") for r in rules].index(rule_id) + 1


def rule_form(client, number: int | None) -> dict[str, object]:
    """The rule form as the page fills it (what a browser would post back)."""
    html = text(client.get(f"/console/rules/{number if number else 'new'}"))
    form: dict[str, object] = {}
    for tag in re.findall(r"<(?:input|select)[^>]*>", html):
        name = re.search(r'name="([^"]+)"', tag)
        if name is None:
            continue
        kind = re.search(r'type="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if kind and kind.group(1) == "checkbox":
            if " checked" in tag:
                form.setdefault(name.group(1), []).append(value.group(1))  # type: ignore[union-attr]
        elif tag.startswith("<select"):
            block = html[html.index(tag):html.index("</select>", html.index(tag))]
            chosen = re.search(r'<option value="([^"]*)" selected', block)
            form[name.group(1)] = chosen.group(1) if chosen else ""
        elif value is not None:
            form[name.group(1)] = value.group(1).replace("&#34;", '"').replace("&#39;", "'")
    return form


def test_a_dry_run_shows_how_answers_change_and_saves_nothing(client, workspace):
    before = (workspace.root / "rules.toml").read_bytes()
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form.update(action="dry_run", sample="10", try_product="intl_roaming")
    form["recommend-0-product"] = "phone_purchase"  # the kit now leads with a phone
    response = client.post(f"/console/rules/{number}", data=form)
    assert response.status_code == 200, text(response)[:2000]
    html = text(response)
    summary = re.search(r"(\d+) of (\d+) answers change for 10 customers", html)
    assert summary is not None and int(summary.group(2)) == 10 * 6 * 2
    assert int(summary.group(1)) > 0 and "Phone purchase" in html
    assert (workspace.root / "rules.toml").read_bytes() == before


@pytest.mark.parametrize(("field", "value", "message"), [
    ("priority", "150", "must be a finite number in (0, 100], got 150"),
    ("recommend-0-product", "balance_query", "is a query service, not an orderable business"),
    ("when-product", "no_such_business", "unknown business 'no_such_business'"),
    ("moments", [], "must be a non-empty list"),
])
def test_the_form_refuses_what_loading_the_file_refuses(client, workspace, field, value,
                                                         message):
    before = (workspace.root / "rules.toml").read_bytes()
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form.update({field: value, "action": "save"})
    response = client.post(f"/console/rules/{number}", data=form)
    assert response.status_code == 422
    html = text(response)
    assert message in html.replace("&#39;", "'")
    assert 'aria-invalid="true"' in html
    assert (workspace.root / "rules.toml").read_bytes() == before


def test_a_form_field_of_the_wrong_shape_is_named(client, workspace):
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form.update(priority="high", action="dry_run")
    html = text(client.post(f"/console/rules/{number}", data=form))
    assert "must be a number" in html and 'id="priority-error"' in html


def test_saving_a_rule_writes_only_that_rule_and_serves_it(client, app, workspace):
    path = workspace.root / "rules.toml"
    before = path.read_text()
    record = published(app.extensions["recommender"].slot.engine.store)
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form.update(action="save", priority="42")
    response = client.post(f"/console/rules/{number}", data=form)
    assert response.status_code == 303, text(response)[:2000]
    after = path.read_text()
    old, new = tomllib.loads(before)["rule"], tomllib.loads(after)["rule"]
    assert new[number - 1]["priority"] == 42
    assert [r for i, r in enumerate(new) if i != number - 1] == \
        [r for i, r in enumerate(old) if i != number - 1]
    start = before.index('id = "roaming-abroad-kit"')
    assert after[:start] == before[:start]  # the rules before it, byte for byte
    assert published(app.extensions["recommender"].slot.engine.store).snapshot != \
        record.snapshot
    served = app.extensions["recommender"].slot.engine.strategies["cross_sell"]
    assert {r.id: r.priority for r in served.rules}["roaming-abroad-kit"] == 42
    page = text(client.get("/console/rules/"))
    assert "Saved rules.toml and reloaded" in page


def test_a_new_rule_is_served_in_the_api_answer(client, workspace):
    form = rule_form(client, None)
    form.update({"action": "save", "id": "console-test-rule", "priority": "100",
                 "moments": ["query"], "recommend-0-product": "cloud_storage",
                 "recommend-0-reason": "云盘测试理由",
                 "recommend-0-reason_en": "console test reason",
                 "when-channel": ["web"], "rows": "2"})
    assert client.post("/console/rules/new", data=form).status_code == 303
    assert tomllib.loads((workspace.root / "rules.toml").read_text())["rule"][-1]["id"] == \
        "console-test-rule"
    answer = client.post("/v1/recommendations", json={
        "customer": {"id": "C0000744"}, "channel": "web", "moment": "query", "locale": "en"}
    ).get_json()
    reasons = [r for s in answer["suggestions"] for r in s["reasons"]]
    assert "console test reason" in reasons


def test_deleting_a_rule(client, workspace):
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form["action"] = "dry_run_delete"
    assert "is for deleting the rule" in text(client.post(f"/console/rules/{number}", data=form))
    form["action"] = "delete"
    assert client.post(f"/console/rules/{number}", data=form).status_code == 303
    ids = [r["id"] for r in tomllib.loads((workspace.root / "rules.toml").read_text())["rule"]]
    assert "roaming-abroad-kit" not in ids and SAMPLE_RULES[0] in ids


def test_a_file_changed_since_the_form_was_opened_is_not_overwritten(client, workspace):
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    path = workspace.root / "rules.toml"
    path.write_text(path.read_text() + "\n# edited by hand meanwhile\n")
    form.update(action="save", priority="42")
    response = client.post(f"/console/rules/{number}", data=form)
    assert response.status_code == 422
    assert "changed on disk since this form was opened" in text(response)
    assert path.read_text().endswith("# edited by hand meanwhile\n")


def test_a_broken_file_elsewhere_stops_the_save_before_anything_is_written(client, workspace):
    catalog = workspace.root / "catalog.toml"
    catalog.write_text(catalog.read_text() + "\n[[product]]\nid = \"broken\"\n")
    rules = (workspace.root / "rules.toml").read_bytes()
    number = rule_number(workspace, "roaming-abroad-kit")
    form = rule_form(client, number)
    form.update(action="save", priority="42")
    response = client.post(f"/console/rules/{number}", data=form)
    assert response.status_code == 422
    html = text(response).replace("&#39;", "'")
    assert "catalog.toml" in html and "/tmp/" not in html
    assert "On disk, catalog.toml differ" in html
    assert (workspace.root / "rules.toml").read_bytes() == rules


def weights_form(client) -> dict[str, object]:
    html = text(client.get("/console/rules/"))
    form = {name: value for name, value in re.findall(
        r'<input type="text" inputmode="decimal" size="4" name="([^"]+)" id="[^"]+" '
        r'value="([^"]*)"', html)}
    form["csrf_token"] = csrf_of(html)
    form["base"] = re.search(r'name="base" value="([^"]*)"', html).group(1)
    return form


def test_weights_dry_run_then_save_changes_what_the_api_serves(client, app, workspace):
    form = weights_form(client)
    assert form["w:query:popularity"] == "1"
    form.update({"w:query:popularity": "", "w:query:cross_sell": "3", "action": "dry_run",
                 "sample": "5"})
    response = client.post("/console/rules/weights", data=form)
    assert response.status_code == 200, text(response)[:2000]
    assert re.search(r"\d+ of 30 answers change for 5 customers", text(response))
    form["action"] = "save"
    assert client.post("/console/rules/weights", data=form).status_code == 303
    config = tomllib.loads((workspace.root / "config.toml").read_text())
    assert config["blend"]["query"] == {"cross_sell": 3.0, "item_similarity": 0.5}
    assert "# the customer checks a bill, balance or points" in \
        (workspace.root / "config.toml").read_text()
    strategies = {s["name"]: s for s in client.get("/v1/strategies").get_json()["strategies"]}
    assert strategies["cross_sell"]["weights"]["query"] == 3.0
    assert strategies["popularity"]["weights"].get("query", 0) == 0


@pytest.mark.parametrize(("value", "message"), [
    ("abc", "must be a number"), ("5000", "blend.query.cross_sell"), ("-1", "blend.query")])
def test_weights_out_of_their_contract_are_refused(client, workspace, value, message):
    before = (workspace.root / "config.toml").read_bytes()
    form = weights_form(client)
    form.update({"w:query:cross_sell": value, "action": "save"})
    response = client.post("/console/rules/weights", data=form)
    assert response.status_code == 422
    assert message in text(response)
    assert (workspace.root / "config.toml").read_bytes() == before


def test_a_channel_row_of_the_weights_is_removed(client, workspace):
    form = weights_form(client)
    form.update({"remove:success.hotline": "1", "action": "save"})
    assert client.post("/console/rules/weights", data=form).status_code == 303
    config = tomllib.loads((workspace.root / "config.toml").read_text())
    assert "hotline" not in config["blend"]["success"]


def test_unchanged_weights_are_not_saved(client, workspace):
    before = (workspace.root / "config.toml").read_bytes()
    form = weights_form(client)
    form["action"] = "save"
    response = client.post("/console/rules/weights", data=form)
    assert response.status_code == 422 and "Nothing changed." in text(response)
    assert digest((workspace.root / "config.toml").read_bytes()) == digest(before)
