"""A helper of the tests: element-wise work split over 3 threads (however many cores there are)."""
import contextlib
from concurrent.futures import ThreadPoolExecutor

import tinysiam.engine.threads as threads


@contextlib.contextmanager
def on_three_threads(min_elements=1):
    """Splits over 3 threads arrays of at least ``min_elements`` (default: however small); puts it all back after."""
    saved = threads.WORKERS, threads.MIN_ELEMENTS, threads._pool
    with ThreadPoolExecutor(3) as pool:
        threads.WORKERS, threads.MIN_ELEMENTS, threads._pool = 3, min_elements, pool
        try:
            yield
        finally:
            threads.WORKERS, threads.MIN_ELEMENTS, threads._pool = saved
