"""Without pyspark or a suitable Java, ``--engine spark`` says what to install; the settings
of a local session; ``--input`` specs."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from recommender.cli import main
from recommender.spark.session import (
    SparkUnavailable,
    java_problem,
    local_defaults,
    require_spark,
)
from recommender.spark.tables import TableSource, parse_inputs


def fake_java(home: Path, version_line: str) -> Path:
    """A JAVA_HOME whose ``bin/java -version`` prints ``version_line`` (as Java does, on
    standard error)."""
    java = home / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho '{version_line}' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return home


@pytest.mark.parametrize(("line", "problem"), [
    ('openjdk version "17.0.15" 2025-04-15', None),
    ('openjdk version "21" 2023-09-19', None),
    ('java version "1.8.0_402"', "is Java 8; Spark needs Java 17 or newer"),
    ('openjdk version "11.0.2" 2019-01-15', "is Java 11; Spark needs Java 17 or newer"),
    ("something else entirely", "does not say its version"),
])
def test_the_java_version_is_read_from_java_itself(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch, line: str,
                                                   problem: str | None) -> None:
    monkeypatch.setenv("JAVA_HOME", str(fake_java(tmp_path / "jdk", line)))
    found = java_problem()
    if problem is None:
        assert found is None
    else:
        assert problem in found


def test_no_java_is_named_with_how_to_install_it(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "nowhere"))
    with pytest.raises(SparkUnavailable, match="no Java found: install a JDK or JRE 17 or "
                                               "newer .*openjdk-17-jre-headless.* JAVA_HOME"):
        require_spark()
    result = CliRunner().invoke(main, ["rules", "--engine", "spark", "--baskets", __file__])
    assert result.exit_code == 1
    assert "--engine spark needs Java: no Java found" in result.output


@pytest.mark.parametrize(("master", "shuffle"), [("local[2]", "4"), ("local[8]", "16")])
def test_local_sessions_get_few_shuffle_partitions(master: str, shuffle: str) -> None:
    settings = local_defaults(master)
    assert settings["spark.sql.shuffle.partitions"] == shuffle
    assert settings["spark.sql.session.timeZone"] == "UTC"
    assert "spark.sql.shuffle.partitions" not in local_defaults("yarn")


def test_input_specs_name_each_table(tmp_path: Path) -> None:
    (tmp_path / "customers.parquet").write_bytes(b"")
    (tmp_path / "events").mkdir()
    (tmp_path / "holdings.csv").write_text("customer_id,product_id\n")
    other = tmp_path / "other.csv"
    other.write_text("customer_id,network,smartphone\n")
    found = parse_inputs([str(tmp_path), f"terminals={other}", "hive:dw",
                          f"events={tmp_path / 'events'}"])
    assert found["customers"] == TableSource("customers", "hive", "dw.customers")
    assert found["terminals"] == TableSource("terminals", "hive", "dw.terminals")
    assert found["events"] == TableSource("events", "parquet", str(tmp_path / "events"))
    assert parse_inputs([str(tmp_path)])["holdings"] == \
        TableSource("holdings", "csv", str(tmp_path / "holdings.csv"))
    assert parse_inputs([f"terminals={other}"])["terminals"].kind == "csv"
