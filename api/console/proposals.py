"""A change to marketing's rules or the blend weights: checked, compared, saved, served.

A proposal is the workspace files as saving would leave them: the files on disk now, with the
one the form changed. It is checked by building an engine from exactly those bytes through the
same loaders as a reload (``Workspace.engine``: catalog, configuration, rules, events, models),
so the form refuses what loading the files would refuse, with the same message. The dry run
asks that engine and the served one the same questions for a sample of customers and reports
what changes. Saving writes the file atomically (a temporary file renamed over it), then
reloads: every worker serves the new files within ``reload_poll_seconds``; if the reload
refuses them, the file is put back as it was.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from recommender.config import Config
from recommender.engine import Engine
from recommender.errors import RecommenderError
from recommender.snapshot import UNTRAINED, Snapshot, stored_snapshot
from recommender.workspace import Workspace

from ..problems import without_paths
from ..state import ServiceState
from ..state import reload as reload_served
from .preview import Ask, QuietPluginManager, ask, without_caps

log = logging.getLogger("recommender.console")

#: Held while a save writes a file and reloads, so two saves (on any worker) take turns.
LOCK_FILE = ".console-edit.lock"
DEFAULT_SAMPLE = 20
MAX_SAMPLE = 200
#: Differences listed one by one (all are counted).
MAX_LISTED = 40


class ProposalError(RecommenderError):
    """The proposed files are refused; the message names the file and what is wrong."""


class StaleError(ProposalError):
    """The file changed on disk since the form was opened."""


def digest(data: bytes | None) -> str:
    """The SHA-256 a form carries of the file it was made from ("" for no file)."""
    return "" if data is None else hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Change:
    """New text for one workspace file, made from the version of it whose digest is ``base``."""

    file: str
    text: str
    base: str


def rules_file(config: Config) -> str:
    """The rules file's path inside the workspace (``[strategies.cross_sell] rules``)."""
    name = config.strategy_settings("cross_sell").get("rules", "rules.toml")
    path = PurePosixPath(str(name))
    if path.is_absolute() or ".." in path.parts:
        raise ProposalError(f"the rules file {name!r} is outside the workspace; edit it there")
    return str(path)


def read_file(root: Path, name: str) -> bytes | None:
    path = root / name
    return path.read_bytes() if path.is_file() else None


def proposed_files(root: Path, change: Change) -> dict[str, bytes]:
    """The files a reload would read after saving ``change``."""
    files = dict(Snapshot.capture(root).files)
    files[change.file] = change.text.encode("utf-8")
    return files


def unpublished(state: ServiceState, root: Path, changed: str) -> list[str]:
    """Files other than ``changed`` whose disk copy differs from what is served: a save
    publishes them too."""
    try:
        served = stored_snapshot(state.slot.engine.store, state.slot.record.snapshot).files \
            if state.slot.engine.store is not None else {}
    except RecommenderError:
        return []
    disk = Snapshot.capture(root).files
    return sorted(name for name in set(served) | set(disk)
                  if name != changed and served.get(name) != disk.get(name))


@contextmanager
def proposed_engine(state: ServiceState, files: dict[str, bytes]) -> Iterator[Engine]:
    """An engine built from ``files`` with the served model version, for previews (observers
    silent, caps off); raises ProposalError with the loaders' message when refused."""
    served = state.slot.engine
    version = state.slot.record.version
    models = state.settings.models or state.settings.root / "models"
    with tempfile.TemporaryDirectory(prefix="recommender-console-") as scratch:
        folder = Snapshot(files).materialise(Path(scratch))
        try:
            config = without_caps(Config.load(folder / "config.toml"))
            engine = Workspace(folder).engine(
                plugin_manager=QuietPluginManager(served.pm),  # type: ignore[arg-type]
                model_dir=None if version == UNTRAINED else models / version,
                store=served.store, config=config)
        except (RecommenderError, OSError) as e:
            message = str(e).replace(f"{folder}/", "").replace(str(folder), "")
            raise ProposalError(without_paths(message, state.settings)) from None
        try:
            yield engine
        finally:
            engine.close()


@dataclass(frozen=True)
class Difference:
    """One customer whose answer at a channel and moment changes."""

    customer: str
    channel: str
    moment: str
    before: tuple[str, ...]
    after: tuple[str, ...]
    error: str | None = None


@dataclass
class CellSummary:
    asked: int = 0
    changed: int = 0
    added: Counter[str] = field(default_factory=Counter)
    removed: Counter[str] = field(default_factory=Counter)


@dataclass
class DryRun:
    """How the answers of a sample of customers change."""

    customers: int = 0
    asked: int = 0
    changed: int = 0
    cells: dict[tuple[str, str], CellSummary] = field(default_factory=dict)
    listed: list[Difference] = field(default_factory=list)
    seconds: float = 0.0


def _products(answer: dict) -> tuple[tuple[str, ...], str | None]:
    if "error" in answer:
        return (), answer["error"]
    return tuple(s["product"] for s in answer["suggestions"]), None


def dry_run(before: Engine, after: Engine, customers: Sequence[str], asks: Sequence[Ask],
            locale: str) -> DryRun:
    """Ask both engines every question for every customer; count and list what differs.

    The request id is the same on both sides, so an exploring strategy draws the same."""
    started = time.perf_counter()
    result = DryRun(customers=len(customers))
    for customer in customers:
        for question in asks:
            request_id = f"console-dry-run:{customer}:{question.channel}:{question.moment}"
            old, old_error = _products(ask(before, customer, question, locale=locale,
                                           request_id=request_id))
            new, new_error = _products(ask(after, customer, question, locale=locale,
                                           request_id=request_id))
            cell = result.cells.setdefault((question.channel, question.moment), CellSummary())
            cell.asked += 1
            result.asked += 1
            if old == new and old_error == new_error:
                continue
            cell.changed += 1
            result.changed += 1
            cell.added.update(set(new) - set(old))
            cell.removed.update(set(old) - set(new))
            if len(result.listed) < MAX_LISTED:
                result.listed.append(Difference(customer, question.channel, question.moment,
                                                old, new, new_error or old_error))
    result.seconds = time.perf_counter() - started
    return result


@contextmanager
def _edit_lock(root: Path) -> Iterator[None]:
    with (root / LOCK_FILE).open("a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` in one rename: a reader sees the old file or the new,
    never half of one."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def save(state: ServiceState, change: Change) -> tuple[str, str]:
    """Write ``change`` and reload every worker; returns (previous, new) model versions.

    :raises StaleError: the file changed on disk since the form was made from it.
    :raises ProposalError: the files are refused (the file on disk is left as it was).
    """
    root = state.settings.root
    path = root / change.file
    with _edit_lock(root):
        current = read_file(root, change.file)
        if digest(current) != change.base:
            raise StaleError(f"{change.file} changed on disk since this form was opened; "
                             f"reload the page and make the change again")
        with proposed_engine(state, proposed_files(root, change)):
            pass  # refused here, before the file is touched, when it would not load
        atomic_write(path, change.text.encode("utf-8"))
        state.slot.follow(force=True)
        try:  # the admin reload: the [server] check, the metrics, every worker follows
            result = reload_served(state.slot.record.version)
        except (RecommenderError, OSError) as e:
            if current is None:
                path.unlink(missing_ok=True)
            else:
                atomic_write(path, current)
            raise ProposalError(without_paths(str(e), state.settings)) from None
    log.info("console: %s saved and reloaded (model %s)", change.file, result[1])
    return result
