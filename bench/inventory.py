"""Inventory scenario: what a software inventory report costs the server.

A fresh database with ``devices`` enrolled devices and the real server process. Every device
reports ``apps`` installed apps (from a catalog of common packages, in the versions of that
device, plus a few ARP entries only it has), one request at a time on a kept-alive
connection, in four kinds, each measured as server CPU per request (user + system, from
/proc, as request_cost.py) and as answer time:

- ``baseline``: the first full list of each device (every row inserted and counted);
- ``changed``: a full list in which 3 apps moved to another version, 1 was installed and 1
  removed (the diff, its rows, counters and 5 history events);
- ``identical``: the same full list again (parsed and digested, then one UPDATE);
- ``digest``: the digest alone, which the server holds (one UPDATE), as a steady PC sends.

``GET /healthz`` is measured the same way, for scale. Last, a short open-loop ramp of
digest-only reports finds the rate the server holds at p99 < 100 ms.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench._common import (
    BenchDatabase,
    Result,
    log,
    percentile,
    print_table,
    save_plot,
    seed_devices,
    start_server,
)
from bench._loadgen import closed_sequence, get_request, post_request
from bench._ramp import Generators, Ramp, Step, climb
from bench._software_catalog import App, common_apps, unique_entry
from bench.request_cost import _cpu_s
from lunaris_protocol import InstalledItem, list_digest

CATALOG = common_apps(600)
UNIQUE_PER_DEVICE = 10
STRIDE = 13  # coprime with the catalog's size: distinct apps for each device
WARM_UP = 5
"""Devices whose reports warm the server up (and are checked), not measured."""
MOVED, INSTALLED, REMOVED = 3, 1, 1
KINDS = ("healthz", "baseline", "changed", "identical", "digest")


def inventory(device: int, apps: int, *, changed: bool) -> list[dict[str, Any]]:
    """Device ``device``'s list: its first (baseline), or the one after MOVED versions moved,
    INSTALLED app installed and REMOVED removed."""
    common = apps - UNIQUE_PER_DEVICE
    picks = [CATALOG[(device * 7 + j * STRIDE) % len(CATALOG)] for j in range(common + 1)]
    rows: list[tuple[App, int]] = [
        (app, (device + position) % len(app.versions))
        for position, app in enumerate(picks[:common])
    ]
    if changed:
        for position in range(MOVED):
            app, version = rows[position]
            rows[position] = (app, version + 1)
        del rows[MOVED : MOVED + REMOVED]
        rows.append((picks[common], 0))
    rows += [(unique_entry(device, n), 0) for n in range(UNIQUE_PER_DEVICE)]
    return [
        {
            "package_identifier": app.package_identifier,
            "name": app.name,
            "version": _version(app, version),
            **({"source": app.source} if app.source else {}),
        }
        for app, version in rows
    ]


def _version(app: App, index: int) -> str:
    if index < len(app.versions):
        return app.versions[index]
    return f"{app.versions[-1]}.1"  # moved past the newest version the catalog knows


def digest_of(rows: list[dict[str, Any]]) -> str:
    return list_digest([InstalledItem.model_validate(row) for row in rows])


@dataclass
class DigestReports:
    """Digest-only reports of every device, in turn (picklable, for the generators)."""

    address: str
    tokens: list[str]
    digests: list[str]
    _encoded: list[bytes] = field(default_factory=list)

    def request(self, index: int) -> bytes:
        if not self._encoded:
            self._encoded = [
                _post(self.address, token, {"digest": digest})
                for token, digest in zip(self.tokens, self.digests, strict=True)
            ]
        return self._encoded[index % len(self._encoded)]


def _post(address: str, token: str, body: dict[str, Any]) -> bytes:
    encoded = json.dumps(body, separators=(",", ":")).encode()
    return post_request(
        address, "/api/agent/inventory", encoded, {"Authorization": f"Bearer {token}"}
    )


@dataclass
class _Measure:
    cpu_ms: float
    latencies: list[float]

    def figures(self) -> dict[str, float]:
        return {
            "cpu_ms": round(self.cpu_ms, 3),
            "p50_ms": round(percentile(self.latencies, 50), 2),
            "p99_ms": round(percentile(self.latencies, 99), 2),
            "requests": len(self.latencies),
        }


async def _measure(pid: int, host: str, port: int, requests: list[bytes]) -> _Measure:
    cpu_before = _cpu_s(pid)
    result = await closed_sequence(host, port, requests=requests)
    cpu_ms = (_cpu_s(pid) - cpu_before) * 1000 / len(requests)
    if result.statuses.keys() != {200}:
        raise RuntimeError(f"unexpected answers: {result.statuses}")
    return _Measure(cpu_ms, [ms for _index, ms in result.latencies])


def _check_warm_up(base_url: str, tokens: list[str], apps: int) -> None:
    """The warm-up devices' reports, checked: each kind does what it is meant to."""
    expected = [
        ("baseline", False, True, {"added": apps, "full_list_needed": False}),
        ("changed", True, True, {"added": INSTALLED, "changed": MOVED, "removed": REMOVED}),
        ("identical", True, True, {"added": 0, "changed": 0, "removed": 0}),
        ("digest", True, False, {"full_list_needed": False, "added": 0}),
    ]
    with httpx.Client(base_url=base_url, timeout=60) as client:
        for kind, changed, full, wanted in expected:
            for device, token in enumerate(tokens):
                rows = inventory(device, apps, changed=changed)
                body: dict[str, Any] = {"digest": digest_of(rows)}
                if full:
                    body["software"] = rows
                answer = client.post(
                    "/api/agent/inventory",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                answer.raise_for_status()
                got = answer.json()
                if any(got.get(name) != value for name, value in wanted.items()):
                    raise RuntimeError(f"{kind} report answered {got}, wanted {wanted}")


def run(
    *, backend: str, devices: int, apps: int, requests: int, quick: bool, plot: Path | None
) -> Result:
    log(f"building {devices} devices' lists of {apps} apps")
    lists = {
        changed: [inventory(d, apps, changed=changed) for d in range(WARM_UP + devices)]
        for changed in (False, True)
    }
    digests = {changed: [digest_of(rows) for rows in lists[changed]] for changed in lists}
    database = asyncio.run(BenchDatabase.create(backend))
    try:
        tokens = [d.token for d in asyncio.run(seed_devices(database.url, WARM_UP + devices))]
        server = start_server(database.url, LUNARIS_HEARTBEAT_INTERVAL_S="3600")
        try:
            address = server.base_url.removeprefix("http://")
            host, port = address.split(":")
            log("warm-up: every kind of report from five devices, checked")
            _check_warm_up(server.base_url, tokens[:WARM_UP], apps)
            measured = range(WARM_UP, WARM_UP + devices)

            def full(device: int, changed: bool) -> bytes:
                body = {"digest": digests[changed][device], "software": lists[changed][device]}
                return _post(address, tokens[device], body)

            repeat = max(requests // devices, 1)
            kinds = {
                "healthz": [get_request(address, "/healthz")] * requests,
                "baseline": [full(d, False) for d in measured],
                "changed": [full(d, True) for d in measured],
                "identical": [full(d, True) for d in measured] * max(repeat // 4, 1),
                "digest": [
                    _post(address, tokens[d], {"digest": digests[True][d]}) for d in measured
                ]
                * repeat,
            }
            figures: dict[str, Any] = {"backend": backend, "devices": devices, "apps": apps}
            for kind, kind_requests in kinds.items():
                log(f"{kind}: {len(kind_requests)} requests, one at a time")
                measure = asyncio.run(_measure(server.process.pid, host, int(port), kind_requests))
                figures[kind] = measure.figures()
            figures["healthz_cpu_ms"] = figures["healthz"]["cpu_ms"]
            figures |= _ramp(
                address, tokens[WARM_UP:], digests[True][WARM_UP:], backend=backend, quick=quick
            )
        finally:
            server.stop()
    finally:
        asyncio.run(database.drop())
    figures["quick"] = quick
    result = Result("inventory")
    result.figures = figures
    _print(figures)
    if plot is not None:
        _plot(plot, figures)
    return result


def _ramp(
    address: str, tokens: list[str], digests: list[str], *, backend: str, quick: bool
) -> dict[str, Any]:
    """SQLite's writes take turns on one lock: its ramp starts lower."""
    host, port = address.split(":")
    start_rps = 50 if backend == "postgresql" else 10
    options = {"step_s": 3.0, "factor": 1.35} if quick else {"step_s": 6.0, "factor": 1.2}
    source = DigestReports(address, tokens, digests)
    pool = Generators(host, int(port), processes=2)
    try:
        # The generators' connections opened and the server's database pool filled first,
        # unmeasured (as in a server that has been running).
        pool.offer(source, start_rps, 3.0)
        time.sleep(1.0)
        log("digest-only reports at rising rates until p99 > 100 ms")
        steps, best = climb(pool, source, Ramp(start_rps=start_rps, **options), progress=_progress)
    finally:
        pool.close()
    return {
        "digest_sustained_rps": round(best.answered_rps) if best else None,
        "digest_sustained_p99_ms": round(best.p99_ms, 2) if best else None,
        "steps": [
            {
                "offered_rps": round(s.offered_rps),
                "answered_rps": round(s.answered_rps),
                "p50_ms": round(s.p50_ms, 2),
                "p99_ms": round(s.p99_ms, 2),
                "errors": s.errors,
                "generator_cpu_share": round(s.generator_cpu_share, 2),
            }
            for s in steps
        ],
    }


def _progress(step: Step) -> None:
    log(
        f"  {step.offered_rps:7.0f}/s offered, {step.answered_rps:7.0f}/s answered, "
        f"p50 {step.p50_ms:7.1f} ms, p99 {step.p99_ms:7.1f} ms, errors {step.errors}"
    )


def _print(figures: dict[str, Any]) -> None:
    rows = [
        (kind, f"{f['cpu_ms']:.2f} ms CPU, {f['p50_ms']:.1f} / {f['p99_ms']:.1f} ms")
        for kind in KINDS
        for f in [figures[kind]]
    ]
    rows.append(
        (
            "digest-only at p99 < 100 ms",
            f"{figures['digest_sustained_rps']}/s (p99 {figures['digest_sustained_p99_ms']} ms)",
        )
    )
    print_table(
        f"inventory reports on {figures['backend']}, {figures['apps']} apps, "
        f"{figures['devices']} devices: server CPU, p50 / p99",
        rows,
    )


def _plot(path: Path, figures: dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (cost, ramp) = plt.subplots(1, 2, figsize=(10, 4))
    cost.bar(KINDS, [figures[kind]["cpu_ms"] for kind in KINDS])
    for position, kind in enumerate(KINDS):
        cost.annotate(
            f"{figures[kind]['cpu_ms']:.2f}",
            (position, figures[kind]["cpu_ms"]),
            ha="center",
            va="bottom",
        )
    cost.set_ylabel("server CPU per request (ms)")
    cost.set_title(f"one report of {figures['apps']} apps, {figures['backend']}")
    steps = figures["steps"]
    rates = [s["offered_rps"] for s in steps]
    ramp.plot(rates, [s["p99_ms"] for s in steps], marker="o", label="p99")
    ramp.plot(rates, [s["p50_ms"] for s in steps], linestyle="--", label="p50")
    ramp.axhline(100, color="grey", linewidth=0.8)
    ramp.set_yscale("log")
    ramp.set_xlabel("digest-only reports offered per s")
    ramp.set_ylabel("latency (ms, log scale)")
    ramp.set_title("known digest, open loop")
    ramp.grid(True, which="both", alpha=0.3)
    ramp.legend()
    save_plot(figure, path)
