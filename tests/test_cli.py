"""The ``recommender`` command, run as a real process the way users and scripts run it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from recommender.workspace import Workspace


def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "recommender.cli", *args],
                            capture_output=True, text=True, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_demo_data_train_recommend(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    out = json.loads(run("demo-data", "--dir", str(ws), "--customers", "300",
                         "--seed", "3").stdout)
    assert out["customers"] == 300 and out["events"] > 0
    for name in ("catalog.toml", "rules.toml", "config.toml", "store.sqlite"):
        assert (ws / name).exists(), name
    trained = json.loads(run("train", "--dir", str(ws)).stdout)
    assert (ws / "models" / trained["version"] / "manifest.json").exists()

    customer = Workspace(ws).store().customer_ids(limit=1)[0]
    body = json.loads(run("recommend", "--dir", str(ws), "--customer", customer,
                          "--channel", "app", "--moment", "query", "--debug").stdout)
    assert body["model_version"] == trained["version"]
    assert body["moment"] == "query" and body["channel"] == "app"
    assert body["suggestions"] and "excluded" in body and "timings" in body
    assert len(body["suggestions"]) <= 9

    again = run("demo-data", "--dir", str(ws), check=False)
    assert again.returncode != 0 and "--force" in again.stderr


@pytest.mark.parametrize(("args", "fragment"), [
    (["--customer", "C_NOPE", "--channel", "app", "--moment", "query"],
     "unknown customer 'C_NOPE'"),
    (["--channel", "fax", "--moment", "query"], "Invalid value for '--channel'"),
    (["--channel", "app", "--moment", "lunch"], "Invalid value for '--moment'"),
    (["--channel", "app", "--moment", "transaction", "--product", "gold_bar"],
     "unknown product 'gold_bar'"),
    (["--channel", "app", "--moment", "transaction"], "product: is required"),
    (["--channel", "app", "--moment", "query", "--failure-reason", "conflict"],
     "failure_reason: only allowed at the failure moment"),
])
def test_recommend_errors_are_one_clear_line(sample_workspace: Workspace, args, fragment
                                             ) -> None:
    if "--customer" not in args:
        customer = sample_workspace.store().customer_ids(limit=1)[0]
        args = ["--customer", customer, *args]
    result = run("recommend", "--dir", str(sample_workspace.root), *args, check=False)
    assert result.returncode != 0
    assert fragment in result.stderr
    assert "Traceback" not in result.stderr


def test_recommend_without_models_says_to_train(sample_workspace: Workspace,
                                                tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    shutil.rmtree(ws / "models")
    result = run("recommend", "--dir", str(ws), "--customer", "x", "--channel", "app",
                 "--moment", "query", check=False)
    assert result.returncode == 1 and "recommender train --dir" in result.stderr


def test_quickstart_shows_every_moment_and_eligibility(tmp_path: Path) -> None:
    out = run("quickstart", "--dir", str(tmp_path / "qs"), "--customers", "500").stdout
    for moment in ("query", "transaction", "success", "failure"):
        assert f"· {moment}" in out, moment
    assert "feature phone" in out and "4G smartphone" in out
    # the sample operator speaks Chinese ([locale] default = "zh-CN")
    assert "需要5G手机" in out or "需要智能手机" in out
    assert "Traceback" not in out


def test_rules_on_groceries_gives_the_reference_count(tmp_path: Path) -> None:
    from conftest import dataset

    groceries = dataset("groceries", "groceries.csv")
    out = tmp_path / "rules.json"
    result = run("rules", "--baskets", str(groceries), "--min-support", "0.001",
                 "--min-confidence", "0.8", "--format", "json", "--out", str(out))
    rules = json.loads(out.read_text())
    assert len(rules) == 410
    assert set(rules[0]) == {"antecedents", "consequent", "support", "confidence", "lift",
                             "count"}
    assert isinstance(rules[0]["antecedents"], list)
    assert all(r["confidence"] >= 0.8 and r["support"] >= 0.001 for r in rules)
    assert "410 rules from 9835 baskets" in result.stderr


def test_rules_from_a_workspace_as_csv(sample_workspace: Workspace) -> None:
    result = run("rules", "--dir", str(sample_workspace.root), "--min-support", "0.01",
                 "--min-confidence", "0.3", "--max-len", "2")
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "antecedents,consequent,support,confidence,lift,count"
    assert len(lines) > 1
    assert all("|" not in line.split(",")[0] for line in lines[1:])  # max-len 2: one antecedent


@pytest.mark.parametrize(("args", "fragment"), [
    ([], "exactly one of --baskets FILE or --dir DIR"),
    (["--baskets", "nope.csv"], "does not exist"),
    (["--dir", "/nonexistent", "--min-support", "0"], "--min-support"),
    (["--dir", "/nonexistent", "--max-len", "1"], "--max-len"),
    (["--dir", "/nonexistent"], "no store in this workspace"),
])
def test_rules_bad_arguments(args, fragment) -> None:
    result = run("rules", *args, check=False)
    assert result.returncode != 0 and fragment in result.stderr


def test_rules_refuses_an_output_it_cannot_write_before_mining(sample_workspace: Workspace,
                                                                 tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("kept\n")
    result = run("rules", "--dir", str(sample_workspace.root), "--min-support", "0.01",
                 "--out", str(blocker / "rules.csv"), check=False)
    assert result.returncode == 2, result.stderr
    assert "--out" in result.stderr and "cannot make the folder" in result.stderr
    assert "rules from" not in result.stderr and "Traceback" not in result.stderr
    assert blocker.read_text() == "kept\n"


def test_import_reports_the_bad_row_and_keeps_the_store(sample_workspace: Workspace,
                                                        tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    good = tmp_path / "customers.csv"
    good.write_text("id,value_tier,lifecycle,tenure_months\nNEW1,mid,new,1\n")
    assert json.loads(run("import", "--dir", str(ws), "customers", str(good)).stdout) == \
        {"table": "customers", "rows": 1}
    bad = tmp_path / "holdings.csv"
    bad.write_text("customer_id,product_id\nNEW1,plan_4g\nNEW1,gold_bar\n")
    result = run("import", "--dir", str(ws), "holdings", str(bad), check=False)
    assert result.returncode == 1
    assert f"{bad}, line 3, column 'product_id': unknown product 'gold_bar'" in result.stderr
    assert Workspace(ws).store().holdings("NEW1") == frozenset()


def test_train_moves_what_is_served_only_with_activate(sample_workspace: Workspace,
                                                       tmp_path: Path) -> None:
    from recommender.snapshot import published

    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    first = json.loads(run("train", "--dir", str(ws), "--activate").stdout)
    assert first["activated"] is True
    with Workspace(ws).store() as store:
        assert published(store).version == first["version"]
    second = json.loads(run("train", "--dir", str(ws)).stdout)
    assert "activated" not in second
    with Workspace(ws).store() as store:
        assert published(store).version == first["version"]


def test_train_activate_says_when_the_server_table_changed(sample_workspace: Workspace,
                                                            tmp_path: Path) -> None:
    """Running servers follow a publication but read [server] only at start: publishing a
    changed [server] table says so, naming the keys, and still publishes the rest."""
    from recommender.snapshot import published

    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    first = run("train", "--dir", str(ws), "--strategies", "popularity", "--activate")
    assert "[server]" not in first.stderr
    with (ws / "config.toml").open("a", encoding="utf-8") as f:
        f.write('\n[server]\nthreads = 2\nbind = "0.0.0.0:8000"\n')
    second = run("train", "--dir", str(ws), "--strategies", "popularity", "--activate")
    assert ("note: config.toml changes server.bind, server.threads from the files served "
            "before: running servers serve the new files but keep the [server] settings they "
            "started with; restart them to apply these") in second.stderr
    with Workspace(ws).store() as store:
        assert published(store).version == json.loads(second.stdout)["version"]
    third = run("train", "--dir", str(ws), "--strategies", "popularity", "--activate")
    assert "[server]" not in third.stderr  # said once, for the publication that changed it


def test_train_activate_refuses_a_broken_rules_file(sample_workspace: Workspace,
                                                    tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    (ws / "rules.toml").write_text("[[rule]\n")
    result = run("train", "--dir", str(ws), "--activate", check=False)
    assert result.returncode == 1
    assert "rules.toml" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("setting", "activated"), [("true", True), ("false", False)])
def test_training_activate_setting(sample_workspace: Workspace, tmp_path: Path, setting: str,
                                   activated: bool) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    with (ws / "config.toml").open("a") as f:
        f.write(f"\n[training]\nactivate = {setting}\n")
    out = json.loads(run("train", "--dir", str(ws)).stdout)
    assert out.get("activated", False) is activated


@pytest.mark.parametrize("table", ['activate = "yes"', "activte = true"])
def test_training_setting_is_checked(sample_workspace: Workspace, tmp_path: Path,
                                     table: str) -> None:
    ws = tmp_path / "ws"
    shutil.copytree(sample_workspace.root, ws)
    with (ws / "config.toml").open("a") as f:
        f.write(f"\n[training]\n{table}\n")
    result = run("train", "--dir", str(ws), check=False)
    assert result.returncode == 1 and "training.activ" in result.stderr
    assert "Traceback" not in result.stderr
