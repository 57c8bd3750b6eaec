"""Timing helper shared by the benchmark scripts."""

import statistics
import time


def median_times(fns: dict, repeats: int, block: int = 1) -> dict:
    """Median wall time per call of each callable, the contenders interleaved so that machine noise
    hits all alike.

    With ``block`` = 1 every call is timed on its own, one contender's call after the other's.
    With ``block`` > 1 each contender runs in turn one untimed call and then ``block`` timed calls
    (one measurement: their mean): a runtime whose idle threads spin for a while after a call
    (onnxruntime's default, OpenMP's in torch) then cannot steal the other's cores inside the
    timed calls, so each can run with its own default threading.
    """
    for fn in fns.values():
        fn()  # warm-up: first-touch page faults, imports, JIT profiling stay out of the figures
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            if block > 1:
                fn()  # lets the other contender's threads go idle outside the timing
            start = time.perf_counter()
            for _ in range(block):
                fn()
            times[name].append((time.perf_counter() - start) / block)
    return {name: statistics.median(t) for name, t in times.items()}
