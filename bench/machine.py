"""What the figures were measured on, printed above them. This VM's speed
drifts through the day (the same code took 1.4× longer at some hours), so
each run prints a CPU reference beside its figures: only figures with about
the same reference compare, and a page's time divided by the reference says
whether the code or the machine changed."""

import os
import platform
import time
import timeit


def cpu_reference_us() -> float:
    """µs for `sum(range(1000))`, best of 5 repeats of 20,000 (as
    `python -m timeit` reports it): 9 µs on this VM at a quiet, fast hour."""
    best = min(timeit.repeat("sum(range(1000))", repeat=5, number=20_000))
    return best / 20_000 * 1e6


def describe() -> str:
    load = os.getloadavg()[0]
    return (
        f"{platform.node()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, {time.strftime('%Y-%m-%d %H:%M')}, load "
        f"{load:.1f}, CPU reference {cpu_reference_us():.1f} µs "
        "(`sum(range(1000))`, best of 5)"
    )
