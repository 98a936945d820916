"""The serving worker's heap: long-lived objects frozen out of the collector, nothing leaked
across model swaps (``api.serving.settle_heap``)."""

from __future__ import annotations

import gc
import weakref

from api.serving import settle_heap


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_settling_freezes_what_lives_and_frees_cycles_left_from_before() -> None:
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        old_engine = Node()  # an engine swapped out: frozen while it was alive
        gone = weakref.ref(old_engine)
        settle_heap()
        del old_engine
        assert gone() is not None  # frozen: the collector does not see it
        settle_heap()  # the next swap unfreezes, collects, freezes again
        assert gone() is None
    finally:
        gc.unfreeze()
