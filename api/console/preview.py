"""Previews: what the API would answer, asked without the asking counting as an answer.

The console shows the suggestions of every channel and moment for one customer, and compares
two configurations over a sample of customers. Those are not answers a customer saw, so they
must leave no trace a real answer leaves: observers (``recommendation_served``: metrics, a
third party's impression log) are not told, and the contact policy's caps are not applied,
since applying them records a contact in the store and would hold back later real offers.
Everything else (context providers, strategies, eligibility, arbitration, refusals already
recorded) runs exactly as for the API, on the same loaded engine.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pluggy

from recommender.config import Config
from recommender.engine import Engine, RecommendationRequest
from recommender.errors import RecommenderError

#: Hooks whose implementations are not called for a preview.
OBSERVERS = ("recommendation_served", "feedback_received")


class _QuietHooks:
    """``pm.hook`` with the observer hooks answering with no implementation."""

    def __init__(self, pm: pluggy.PluginManager):
        self._hook = pm.hook
        plugins = list(pm.get_plugins())
        self._silent = {name: pm.subset_hook_caller(name, plugins) for name in OBSERVERS}

    def __getattr__(self, name: str) -> Any:
        silent = self._silent.get(name)
        return silent if silent is not None else getattr(self._hook, name)


class QuietPluginManager:
    """A plugin manager's plugins, with the observer hooks silenced (see the module)."""

    def __init__(self, pm: pluggy.PluginManager):
        self._pm = pm
        self.hook = _QuietHooks(pm)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pm, name)


def without_caps(config: Config) -> Config:
    """``config`` with the contact policy's caps off (refusals and do-not-disturb kept)."""
    policy = config.contact_policy
    if not policy.caps:
        return config
    return dataclasses.replace(config, contact_policy=dataclasses.replace(
        policy, max_per_channel_day=0, max_per_channel_week=0, max_per_business_week=0))


_views: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
_views_lock = threading.Lock()


def preview_engine(engine: Engine) -> Engine:
    """A view of ``engine`` for previews: the same strategies, models, store and thread pool
    (nothing is loaded twice), with observers silenced and caps off. Never close it: it
    lives as long as ``engine`` and is closed with it."""
    with _views_lock:
        view = _views.get(engine)
        if view is None:
            view = copy.copy(engine)
            view.pm = QuietPluginManager(engine.pm)  # type: ignore[assignment]
            view.config = without_caps(engine.config)
            _views[engine] = view
        return view


@dataclass(frozen=True)
class Ask:
    """One question to the engine: a channel and moment, and what the what-if panel set."""

    channel: str
    moment: str
    product: str | None = None
    failure_reason: str | None = None
    event: str | None = None


def ask(engine: Engine, customer_id: str, question: Ask, *, locale: str,
        terminal: Mapping[str, Any] | None = None, request_id: str | None = None
        ) -> dict[str, Any]:
    """The API's answer (with ``debug``) as its JSON, or ``{"error": sentence}`` when the
    engine refuses the request (an unknown product, a missing one)."""
    request = RecommendationRequest(
        customer_id=customer_id, channel=question.channel, moment=question.moment,
        product=question.product, failure_reason=question.failure_reason,
        terminal=dict(terminal or {}), debug=True, locale=locale, event=question.event,
        request_id=request_id)
    try:
        return engine.recommend(request).to_dict()
    except RecommenderError as e:
        return {"error": str(e)}


__all__ = ["Ask", "QuietPluginManager", "ask", "preview_engine", "without_caps"]
