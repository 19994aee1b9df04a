"""Open-loop load at rising rates, from one or more generator processes.

Each step offers a fixed rate for a few seconds (split evenly across the generator
processes) and records every answer's latency from the moment it was due. The ramp stops at
the first step that is not *sustained* (p99 over the limit, or any error), then tries once
halfway between the last good rate and that one. The highest sustained rate is the result.

Requests are described by a picklable :class:`RequestSource`, so the generators can be
separate processes: on a 2-core machine a single Python generator would otherwise compete
with the server for the same core long before the server is saturated. Every step also
reports the generators' own CPU time, so a reader can see they were not the bottleneck.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from bench._common import percentile
from bench._loadgen import open_loop


class RequestSource(Protocol):
    """Makes the request with a given global index (picklable: sent to generator processes)."""

    def request(self, index: int) -> bytes: ...


@dataclass(frozen=True)
class Step:
    offered_rps: float
    answered_rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    generator_cpu_share: float
    """Generator CPU seconds per wall second (1.0 = one core busy)."""

    def sustained(self, p99_limit_ms: float) -> bool:
        return (
            self.errors == 0
            and self.p99_ms <= p99_limit_ms
            and self.answered_rps >= 0.95 * self.offered_rps
        )


@dataclass(frozen=True)
class _Job:
    host: str
    port: int
    source: RequestSource
    rate: float
    duration_s: float
    wall_start: float
    first_index: int
    generators: int
    generator: int
    connections: int


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _generate(job: _Job) -> tuple[list[float], int, int, float, float]:
    """Runs in a generator process: (latencies, answered, errors, elapsed s, CPU s)."""

    def request_for(local: int) -> bytes:
        return job.source.request(job.first_index + local * job.generators + job.generator)

    cpu_before = _cpu_s()
    # Generators start a fraction of a request interval apart: together, evenly spaced.
    start = job.wall_start + job.generator / (job.rate * job.generators)
    result = asyncio.run(
        open_loop(
            job.host,
            job.port,
            rate=job.rate,
            duration_s=job.duration_s,
            request_for=request_for,
            connections=job.connections,
            start_at=start,
        )
    )
    failed = result.errors + sum(n for status, n in result.statuses.items() if status >= 400)
    latencies = [ms for _, ms in result.latencies]
    return latencies, len(latencies), failed, result.elapsed_s, _cpu_s() - cpu_before


class Generators:
    """A pool of generator processes that offers one rate at a time."""

    def __init__(self, host: str, port: int, *, processes: int, connections: int = 64) -> None:
        self.host, self.port = host, port
        self.processes = processes
        self.connections = max(8, connections // processes)
        # Spawned, not forked: the parent has threads (asyncio's executor) by now.
        self._pool = ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context("spawn")
        )
        self._next_index = 0

    def close(self) -> None:
        self._pool.shutdown()

    def offer(self, source: RequestSource, rate: float, duration_s: float) -> Step:
        per_process = rate / self.processes
        count = int(per_process * duration_s)
        wall_start = time.time() + 1.0  # time for the jobs to reach their processes
        jobs = [
            _Job(
                self.host,
                self.port,
                source,
                per_process,
                duration_s,
                wall_start,
                self._next_index,
                self.processes,
                generator,
                self.connections,
            )
            for generator in range(self.processes)
        ]
        self._next_index += count * self.processes
        outcomes = list(self._pool.map(_generate, jobs))
        latencies = [ms for outcome in outcomes for ms in outcome[0]]
        elapsed = max(outcome[3] for outcome in outcomes)
        return Step(
            offered_rps=rate,
            answered_rps=sum(outcome[1] for outcome in outcomes) / elapsed,
            p50_ms=percentile(latencies, 50),
            p99_ms=percentile(latencies, 99),
            errors=sum(outcome[2] for outcome in outcomes),
            generator_cpu_share=sum(outcome[4] for outcome in outcomes) / elapsed,
        )


@dataclass(frozen=True)
class Ramp:
    start_rps: float
    factor: float = 1.25
    step_s: float = 5.0
    p99_limit_ms: float = 100.0
    max_rps: float = 50_000.0
    pause_s: float = 1.0
    """Between steps, so one step's backlog does not spill into the next."""


def climb(
    generators: Generators,
    source: RequestSource,
    ramp: Ramp,
    *,
    progress: Callable[[Step], None] = lambda step: None,
) -> tuple[list[Step], Step | None]:
    """Rising rates until one is not sustained; returns every step and the best sustained."""
    steps: list[Step] = []
    best: Step | None = None
    rate = ramp.start_rps
    failed_at: float | None = None
    while rate <= ramp.max_rps:
        step = generators.offer(source, rate, ramp.step_s)
        steps.append(step)
        progress(step)
        if not step.sustained(ramp.p99_limit_ms):
            failed_at = rate
            break
        best = step
        rate *= ramp.factor
        time.sleep(ramp.pause_s)
    if failed_at is not None and best is not None:
        time.sleep(ramp.pause_s * 3)
        step = generators.offer(source, (best.offered_rps + failed_at) / 2, ramp.step_s)
        steps.append(step)
        progress(step)
        if step.sustained(ramp.p99_limit_ms):
            best = step
    return steps, best
