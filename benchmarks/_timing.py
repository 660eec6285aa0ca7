"""Timing shared by the suites: interleaved blocks, medians, paired ratios, process CPU time.

The suites compare implementations on a shared machine, so every figure comes from calls
timed in blocks that take turns round by round (a noisy neighbour hurts all of them alike),
on a clock the caller chooses: this thread's CPU time by default, wall-clock time where the
cost is a network round trip.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import suppress
from pathlib import Path

Call = Callable[[], object]
Clock = Callable[[], float]

# CPU time of this thread: what a call costs, unaffected by the other work sharing the cores
# (time spent descheduled is not counted).
CPU: Clock = time.thread_time
WALL: Clock = time.perf_counter
BLOCK_SECONDS = 0.02


def in_turns(names: Sequence[str], rounds: int) -> Iterator[str]:
    """Each name once per round for ``rounds`` rounds, the order rotating by one every round.

    No name always follows the same neighbour, so drift on a shared machine hits all alike.
    """
    for round_number in range(rounds):
        shift = round_number % len(names)
        yield from [*names[shift:], *names[:shift]]


def block_size(call: Call, *, seconds: float = BLOCK_SECONDS, clock: Clock = CPU) -> int:
    """How many calls make a block of about ``seconds`` on ``clock`` (at least 5)."""
    start = clock()
    count = 0
    while clock() - start < seconds / 2:
        call()
        count += 1
    return max(5, count * 2)


def time_block(call: Call, count: int, clock: Clock = CPU) -> float:
    """Microseconds per call of ``count`` calls in a row, on ``clock``."""
    start = clock()
    for _ in range(count):
        call()
    return (clock() - start) / count * 1e6


def interleaved_samples(
    calls: Mapping[str, Call],
    rounds: int,
    *,
    clock: Clock = CPU,
    size_clock: Clock | None = None,
    block_seconds: float = BLOCK_SECONDS,
) -> dict[str, list[float]]:
    """Microseconds per call of every block, one block per call and round, taken in turns.

    Each call runs once first (it must succeed before it is timed), then its block size is
    found on ``size_clock`` (``clock`` unless given). The order rotates every round so that no
    call always follows the same neighbour; the collector is off while blocks are timed.
    """
    for call in calls.values():
        call()
    sizing = clock if size_clock is None else size_clock
    sizes = {
        name: block_size(call, seconds=block_seconds, clock=sizing) for name, call in calls.items()
    }
    names = list(calls)
    samples: dict[str, list[float]] = {name: [] for name in names}
    gc.disable()
    try:
        for name in in_turns(names, rounds):
            samples[name].append(time_block(calls[name], sizes[name], clock))
    finally:
        gc.enable()
    return samples


def medians(samples: Mapping[str, Iterable[float]]) -> dict[str, float]:
    """The median of each named list of samples."""
    return {name: statistics.median(values) for name, values in samples.items()}


def paired_ratio(numerator: Iterable[float], denominator: Iterable[float]) -> float:
    """Median of the per-round ratios: blocks timed side by side share the machine's mood."""
    return statistics.median(a / b for a, b in zip(numerator, denominator, strict=True))


def percentile(values: Iterable[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` by nearest rank (0.5 = median, 0.99 = p99)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def process_cpu_seconds(pid: int) -> float:
    """CPU time of process ``pid``: the sum of its threads' time on a CPU (Linux ``/proc``).

    ``schedstat`` counts nanoseconds, where ``stat`` counts 10 ms ticks: fine enough to charge
    a single round of requests. Threads that have ended are not counted; the servers measured
    here keep theirs for the whole run.
    """
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with suppress(FileNotFoundError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9
