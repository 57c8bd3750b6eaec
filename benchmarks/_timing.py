"""Timing helper shared by the benchmark scripts."""

import statistics
import time


def median_times(fns: dict, repeats: int) -> dict:
    """Median wall time of each callable, run interleaved so that machine noise hits all alike."""
    for fn in fns.values():
        fn()  # warm-up: first-touch page faults, imports, JIT profiling stay out of the figures
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}
