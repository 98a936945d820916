"""Touchpoint recommendation for telecom operators: TCPC context, pluggable strategies,
eligibility-safe, explained suggestions for every channel and moment.

The public API is what this module exports; plugin authors need only ``hookimpl``,
``Strategy``, ``Candidate`` and the context types.
"""

from .catalog import Catalog, Eligibility, Exclusion, Product, ProductKind
from .config import Config
from .context import (
    CHANNEL_IDS,
    OS,
    Channel,
    Customer,
    FailureReason,
    Lifecycle,
    Moment,
    Network,
    Persona,
    RequestContext,
    Terminal,
    ValueTier,
)
from .engine import (
    Check,
    Engine,
    Ineligible,
    Recommendation,
    RecommendationRequest,
    Suggestion,
)
from .errors import (
    CatalogError,
    ConfigError,
    ContextError,
    ImportRowError,
    ModelError,
    PluginError,
    RecommenderError,
    UnknownCustomerError,
    UnknownProductError,
)
from .hookspecs import does_not_block, hookimpl
from .store import FeedbackEvent, Store
from .strategy import ALL_MOMENTS, Candidate, Candidates, Strategy
from .training import EventLog, TrainingData

__all__ = [
    "ALL_MOMENTS", "CHANNEL_IDS", "OS", "Candidate", "Candidates", "Catalog", "CatalogError",
    "Channel", "Check",
    "Config", "ConfigError", "ContextError", "Customer", "Eligibility", "Engine", "EventLog",
    "Exclusion", "FailureReason", "FeedbackEvent", "ImportRowError", "Ineligible", "Lifecycle",
    "ModelError", "Moment", "Network", "Persona", "PluginError", "Product", "ProductKind",
    "Recommendation", "RecommendationRequest", "RecommenderError", "RequestContext",
    "Store", "Strategy", "Suggestion", "Terminal", "TrainingData", "UnknownCustomerError",
    "UnknownProductError", "ValueTier", "does_not_block", "hookimpl",
]
