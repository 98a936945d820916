"""The recommender's testing kit (``recommender.testing``, a pytest plugin installed with the
recommender) builds a trained sample operator; these fixtures say what to add to it."""

import pytest
import recommender_tenure


@pytest.fixture(scope="module")
def recommender_plugins():
    """This plugin, registered besides the built-ins."""
    return [("tenure", recommender_tenure)]


@pytest.fixture(scope="module")
def recommender_config():
    """Its settings, and a weight after a successful order."""
    return """
[strategies.tenure]
bands = [12, 36]

[blend.success.app]
tenure = 2.0
cf = 1.0
cross_sell = 1.0
"""
