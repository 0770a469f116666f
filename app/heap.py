"""The serving process's garbage collector, set for answering requests.

A page of customers allocates tens of thousands of short-lived objects (rows,
typed values, strawberry objects). With CPython's default thresholds (700, 10,
10) the collector ran some 70 young collections a page and, now and then, a
full one over the whole heap: the schema, the ORM's models and every module,
which never become garbage. That was 9% of a serving process's CPU under load
(bench/spa_page.py over HTTP, profiled with py-spy). So once the app has
started, what it holds is moved out of the collector's sight (`gc.freeze`),
and young collections run every 50,000 allocations instead of every 700.
Reference cycles are still collected, just in larger batches.
"""

from __future__ import annotations

import gc

# gen0 every 50,000 net container allocations; gen1 every 20 of those; gen2
# every 10 gen1 runs (CPython also waits until a quarter of the long-lived
# objects are new since the last full collection).
SERVING_THRESHOLDS = (50_000, 20, 10)


def settle_for_serving() -> None:
    """Collect once, freeze what startup left (it lives as long as the process)
    and set SERVING_THRESHOLDS. Called at the end of the app's startup."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*SERVING_THRESHOLDS)
