"""The Spark session behind ``--engine spark``: pyspark and Java checked first, with a message
saying what to install, and a session that is reused when one is already running (under
``spark-submit``, or in a test session)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import RecommenderError

#: Spark 4 runs on Java 17 or newer.
MIN_JAVA = 17
DEFAULT_MASTER = "local[*]"


class SparkUnavailable(RecommenderError):
    """Spark cannot run here: pyspark is not installed or no suitable Java was found."""


def java_problem() -> str | None:
    """Why Java cannot run Spark here, or None when it can."""
    home = os.environ.get("JAVA_HOME")
    java = str(Path(home) / "bin" / "java") if home else shutil.which("java")
    if not java or not Path(java).exists():
        return (f"no Java found: install a JDK or JRE {MIN_JAVA} or newer (Debian/Ubuntu: "
                f"apt-get install openjdk-{MIN_JAVA}-jre-headless) or set JAVA_HOME")
    try:
        shown = subprocess.run([java, "-version"], capture_output=True, text=True,
                               timeout=30).stderr
    except (OSError, subprocess.SubprocessError) as e:
        return f"{java} does not run: {e}"
    found = re.search(r'version "(\d+)(?:\.(\d+))?', shown)
    if not found:
        return f"{java} -version does not say its version: {shown.strip()[:200]!r}"
    major = int(found.group(1)) if found.group(1) != "1" else int(found.group(2) or 0)
    if major < MIN_JAVA:
        return f"{java} is Java {major}; Spark needs Java {MIN_JAVA} or newer"
    return None


def require_spark() -> None:
    """Raise SparkUnavailable, saying what to install, unless pyspark and Java are usable."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        raise SparkUnavailable("--engine spark needs pyspark: pip install 'recommender[spark]'"
                               ) from None
    problem = java_problem()
    if problem:
        raise SparkUnavailable(f"--engine spark needs Java: {problem}")


def local_defaults(master: str) -> dict[str, str]:
    """Settings for a session on this machine: few shuffle partitions (the default 200 cost
    more than they split on a few cores), no web UI, times in UTC as the import schema says."""
    settings = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"}
    if master.startswith("local"):
        cores = os.cpu_count() or 2
        found = re.fullmatch(r"local\[(\d+)\]", master)
        if found:
            cores = int(found.group(1))
        settings |= {"spark.sql.shuffle.partitions": str(max(4, 2 * cores)),
                     "spark.default.parallelism": str(max(2, cores)),
                     "spark.ui.enabled": "false",
                     # MLlib ALS's lineage grows with its iterations; serialising a task
                     # overflowed the default 1 MiB thread stack now and then
                     "spark.driver.extraJavaOptions": "-Xss16m"}
    return settings


@contextmanager
def spark_session(master: str = DEFAULT_MASTER, *, app_name: str = "recommender",
                  conf: Mapping[str, str] | None = None,
                  progress: Any = None) -> Iterator[Any]:
    """The active SparkSession, or a new one on ``master`` that is stopped at the end.

    When a caller already started one the running session is used as it is; under
    ``spark-submit`` (``recommender.spark.submit``) the session takes spark-submit's master
    and settings. In both cases ``master`` is ignored.

    :param conf: extra ``spark.*`` settings for a new session (``spark.driver.memory``...).
    :raises SparkUnavailable: pyspark or Java is missing.
    """
    require_spark()
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    if SparkContext._active_spark_context is not None:
        active = SparkSession.builder.getOrCreate()
        if progress:
            progress(f"using the running Spark session (master {active.sparkContext.master})")
        yield active
        return
    if os.environ.get("PYSPARK_GATEWAY_PORT"):  # launched by spark-submit: its settings
        builder = SparkSession.builder.appName(app_name)
        settings = dict(conf or {})
    else:
        builder = SparkSession.builder.master(master).appName(app_name)
        settings = {**local_defaults(master), **(conf or {})}
    for key, value in settings.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    checkpoints = None
    if master.startswith("local") and not os.environ.get("PYSPARK_GATEWAY_PORT"):
        # ALS checkpoints every 10 iterations once a folder is set, cutting its lineage
        checkpoints = tempfile.mkdtemp(prefix="recommender-spark-checkpoints-")
        session.sparkContext.setCheckpointDir(checkpoints)
    if progress:
        progress(f"started Spark {session.version} on {session.sparkContext.master}")
    try:
        yield session
    finally:
        session.stop()
        if checkpoints is not None:
            shutil.rmtree(checkpoints, ignore_errors=True)
