"""`optterm serve`'s garbage-collector policy (cli/serve.py): off while the engine starts, then
the start-up heap frozen and collection back on — once, and never left off."""

from __future__ import annotations

import gc

from optterm.cli.serve import _Heap


def test_the_collector_is_off_until_settled_then_the_heap_is_frozen_once() -> None:
    assert gc.isenabled()
    heap = _Heap(True)
    try:
        assert not gc.isenabled()
        heap.settle()
        assert gc.isenabled()
        frozen = gc.get_freeze_count()
        assert frozen > 0
        gc.disable()
        heap.settle()  # settled already: leaves the collector as it finds it
        assert not gc.isenabled() and gc.get_freeze_count() == frozen
    finally:
        gc.unfreeze()
        gc.enable()


def test_without_freeze_nothing_changes() -> None:
    before = gc.get_freeze_count()
    heap = _Heap(False)
    assert gc.isenabled()
    heap.settle()
    assert gc.isenabled() and gc.get_freeze_count() == before
