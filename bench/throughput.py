"""Throughput scenarios: how many heartbeats (or update reports) per second one server holds.

A fresh database gets an enrolled fleet; the real ``lunaris-server serve`` (one or more
processes) starts on it. First the machine's ceiling: the same load generator against
``GET /healthz``, the cheapest route the server has. Then every device sends its first
heartbeat (or full report) once, unmeasured, as in a fleet that is running. Then the ramp:
open-loop load at rising rates until p99 passes the limit (100 ms for heartbeats, 250 ms
for reports). The highest sustained rate is the figure, also given as a ratio to the
ceiling so results compare across machines.

Reports carry 40 packages; each report of a device changes the available version of 2 of
them (5%) against its previous report, so the server diffs, writes two rows, keeps the
fleet counters and announces the change, as with a real fleet between two scans.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import (
    BenchDatabase,
    Result,
    ServerProcess,
    log,
    print_table,
    save_plot,
    seed_devices,
    start_server,
)
from bench._loadgen import get_request, post_request
from bench._ramp import Generators, Ramp, Step, climb

PACKAGES_PER_REPORT = 40
CHANGED_PER_REPORT = 2
CATALOG_SIZE = 400  # coprime stride below picks 40 distinct packages per device
CATALOG_STRIDE = 13


@dataclass
class NoOp:
    address: str

    def request(self, index: int) -> bytes:
        return get_request(self.address, "/healthz")


@dataclass
class Heartbeats:
    address: str
    tokens: list[str]
    _encoded: list[bytes] = field(default_factory=list)

    def request(self, index: int) -> bytes:
        if not self._encoded:  # built in the generator process, once per step
            self._encoded = [
                post_request(
                    self.address, "/api/agent/heartbeat", b"{}", {"Authorization": f"Bearer {t}"}
                )
                for t in self.tokens
            ]
        return self._encoded[index % len(self._encoded)]


@dataclass
class Reports:
    """Report ``k`` of device ``d`` is request ``k * devices + d``: every device's reports
    follow one another, and each differs from the one before in exactly two packages."""

    address: str
    tokens: list[str]

    def request(self, index: int) -> bytes:
        device, report = index % len(self.tokens), index // len(self.tokens)
        body = json.dumps({"updates": report_updates(device, report)}).encode()
        headers = {"Authorization": f"Bearer {self.tokens[device]}"}
        return post_request(self.address, "/api/agent/update-report", body, headers)


def report_updates(device: int, report: int) -> list[dict[str, Any]]:
    rounds = PACKAGES_PER_REPORT // CHANGED_PER_REPORT
    updates = []
    for position in range(PACKAGES_PER_REPORT):
        package = (device * 7 + position * CATALOG_STRIDE) % CATALOG_SIZE
        # The last report (up to this one) that changed this position, if any.
        changed_at = report - (report - position // CHANGED_PER_REPORT) % rounds
        minor = changed_at + 1 if changed_at >= 0 else 0
        updates.append(
            {
                "package_identifier": f"Bench.Package{package:03}",
                "name": f"Bench Package {package}",
                "installed_version": "1.0.0",
                "available_version": f"2.{minor}.0",
                "source": "winget",
            }
        )
    return updates


@dataclass(frozen=True)
class Plan:
    kind: str
    devices: int
    start_rps: float
    p99_limit_ms: float
    warmup_rps: float


PLANS = {
    "heartbeat": Plan("heartbeat", 10_000, 500, 100.0, 2000),
    "reports": Plan("reports", 2_000, 50, 250.0, 200),
}


def run(
    *,
    kind: str,
    backend: str,
    workers: int,
    devices: int | None,
    generators: int,
    quick: bool,
    plot: Path | None,
) -> Result:
    plan = PLANS[kind]
    fleet = devices or (plan.devices // 2 if quick else plan.devices)
    ramp_options = {"step_s": 3.0, "factor": 1.35} if quick else {"step_s": 8.0, "factor": 1.2}
    database = asyncio.run(BenchDatabase.create(backend))
    try:
        log(f"seeding {fleet} devices on {backend}")
        tokens = [d.token for d in asyncio.run(seed_devices(database.url, fleet))]
        server = start_server(database.url, workers=workers)
        try:
            figures = _measure(server, plan, tokens, workers, generators, ramp_options)
            figures["server_rss_mb"] = round(server.rss_kb() / 1024, 1)
        finally:
            server.stop()
    finally:
        asyncio.run(database.drop())

    figures |= {"backend": backend, "workers": workers, "devices": fleet, "quick": quick}
    result = Result(kind)
    result.figures = figures
    _print(kind, figures)
    if plot is not None:
        _plot(plot, kind, figures)
    return result


def _measure(
    server: ServerProcess,
    plan: Plan,
    tokens: list[str],
    workers: int,
    generators: int,
    ramp_options: dict[str, float],
) -> dict[str, Any]:
    address = server.base_url.removeprefix("http://")
    host, port = address.split(":")
    pool = Generators(host, int(port), processes=generators)
    try:
        # Every server process opens its connections and fills its caches first.
        pool.offer(NoOp(address), 200, 3.0)
        log("ceiling: GET /healthz at rising rates")
        noop_steps, noop_best = climb(
            pool, NoOp(address), Ramp(start_rps=500, **ramp_options), progress=_progress
        )
        source: Heartbeats | Reports = (
            Heartbeats(address, tokens) if plan.kind == "heartbeat" else Reports(address, tokens)
        )
        # Each server process keeps its own device cache, and a request reaches whichever
        # process holds its connection: with several, each device is sent a few times, so
        # that (as in a fleet that is running) every process has seen nearly every device.
        rounds = 1 if workers == 1 else 3 * workers
        log(f"warm-up: every device sends {rounds} {plan.kind}(s) (not measured)")
        warmup = pool.offer(source, plan.warmup_rps, rounds * len(tokens) / plan.warmup_rps)
        if warmup.errors:
            raise RuntimeError(f"{warmup.errors} errors during the warm-up")
        log(f"{plan.kind} at rising rates until p99 > {plan.p99_limit_ms:g} ms")
        ramp = Ramp(start_rps=plan.start_rps, p99_limit_ms=plan.p99_limit_ms, **ramp_options)
        steps, best = climb(pool, source, ramp, progress=_progress)
    finally:
        pool.close()

    def described(step: Step | None) -> dict[str, float | None]:
        if step is None:
            return {"rps": None, "p50_ms": None, "p99_ms": None}
        return {
            "rps": round(step.answered_rps),
            "p50_ms": round(step.p50_ms, 2),
            "p99_ms": round(step.p99_ms, 2),
        }

    noop, measured = described(noop_best), described(best)
    ratio = round(measured["rps"] / noop["rps"], 3) if measured["rps"] and noop["rps"] else None
    every_step = noop_steps + steps
    return {
        f"{plan.kind}_sustained_rps": measured["rps"],
        f"{plan.kind}_p50_ms": measured["p50_ms"],
        f"{plan.kind}_p99_ms": measured["p99_ms"],
        f"{plan.kind}_p99_limit_ms": plan.p99_limit_ms,
        "noop_rps": noop["rps"],
        "noop_p99_ms": noop["p99_ms"],
        f"{plan.kind}_ratio_to_noop": ratio,
        "generators": generators,
        "generator_cpu_share_max": round(max(s.generator_cpu_share for s in every_step), 2),
        "noop_steps": [_step_figures(s) for s in noop_steps],
        "steps": [_step_figures(s) for s in steps],
    }


def _step_figures(step: Step) -> dict[str, float]:
    return {
        "offered_rps": round(step.offered_rps),
        "answered_rps": round(step.answered_rps),
        "p50_ms": round(step.p50_ms, 2),
        "p99_ms": round(step.p99_ms, 2),
        "errors": step.errors,
        "generator_cpu_share": round(step.generator_cpu_share, 2),
    }


def _progress(step: Step) -> None:
    log(
        f"  {step.offered_rps:7.0f}/s offered, {step.answered_rps:7.0f}/s answered, "
        f"p50 {step.p50_ms:7.1f} ms, p99 {step.p99_ms:7.1f} ms, errors {step.errors}, "
        f"generators {step.generator_cpu_share:.2f} core"
    )


def _print(kind: str, figures: dict[str, Any]) -> None:
    ratio = figures[f"{kind}_ratio_to_noop"]
    print_table(
        f"{kind} on {figures['backend']}, {figures['workers']} server process(es), "
        f"{figures['devices']} devices",
        [
            ("no-op ceiling (GET /healthz), req/s", f"{figures['noop_rps']}"),
            (f"{kind} sustained, per s", f"{figures[f'{kind}_sustained_rps']}"),
            (
                f"{kind} p50 / p99 at that rate (ms)",
                f"{figures[f'{kind}_p50_ms']} / {figures[f'{kind}_p99_ms']}",
            ),
            ("ratio to the ceiling", "n/a" if ratio is None else f"{ratio:.0%}"),
            ("generators' CPU at most (cores)", f"{figures['generator_cpu_share_max']}"),
            ("server RSS (MB)", f"{figures['server_rss_mb']:.0f}"),
        ],
    )


def _plot(path: Path, kind: str, figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(8, 4.5))
    series = (("GET /healthz (ceiling)", figures["noop_steps"]), (kind, figures["steps"]))
    for label, steps in series:
        rates = [s["offered_rps"] for s in steps]
        axis.plot(rates, [s["p99_ms"] for s in steps], marker="o", label=f"{label} p99")
        axis.plot(rates, [s["p50_ms"] for s in steps], linestyle="--", label=f"{label} p50")
    axis.axhline(figures[f"{kind}_p99_limit_ms"], color="grey", linewidth=0.8)
    axis.set_yscale("log")
    axis.set_xlabel("offered requests/s")
    axis.set_ylabel("latency (ms, log scale)")
    axis.set_title(
        f"{kind}: {figures['devices']} devices, {figures['backend']}, "
        f"{figures['workers']} server process(es)"
    )
    axis.grid(True, which="both", alpha=0.3)
    axis.legend()
    save_plot(figure, path)
