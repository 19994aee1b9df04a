"""Agent idle scenario: what one ``lunaris-agent run`` costs a PC between heartbeats.

A real server (SQLite) and a real agent process whose winget is a stand-in printing a recorded
sample. After the agent has registered and sent its first report, its resident memory and CPU
time are sampled once a second from /proc for the measured window: CPU per heartbeat and the
RSS curve are the figures (the agent must use no CPU and little memory while it waits).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from bench._common import (
    BIN,
    ROOT,
    BenchDatabase,
    Result,
    log,
    print_table,
    save_plot,
    start_server,
)

SAMPLE = (
    ROOT / "tests" / "agent" / "winget_samples" / "007-upgrade-explicit-unknown-pins-trailers.txt"
)
STAND_IN = f"""\
import sys
sys.stdout.buffer.write(open({str(SAMPLE)!r}, "rb").read())
"""
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int, field: str = "VmRSS") -> int:
    """Resident memory now, or at its highest so far with ``field="VmHWM"``."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _cpu_s(pid: int) -> float:
    # Fields 14 and 15 of /proc/PID/stat: user and system time in clock ticks. The name (field
    # 2) may hold spaces, so count from the closing parenthesis.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _enroll(server_env: dict[str, str]) -> str:
    done = subprocess.run(
        [str(BIN / "lunaris-server"), "enrollment", "add", "--name", "bench"],
        env=server_env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def run(*, duration_s: float, heartbeat_interval_s: int, plot: Path | None) -> Result:
    database = asyncio.run(BenchDatabase.create("sqlite"))
    server = start_server(database.url, LUNARIS_HEARTBEAT_INTERVAL_S=str(heartbeat_interval_s))
    home = Path(tempfile.mkdtemp(prefix="lunaris-bench-agent-"))
    agent: subprocess.Popen[bytes] | None = None
    try:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("LUNARIS_")}
        server_env = environment | {
            "LUNARIS_DATABASE_URL": database.url,
            "LUNARIS_SECRET_KEY": "bench",
        }
        winget = home / "winget.py"
        winget.write_text(STAND_IN)
        config = home / "config.json"
        agent_cli = [str(BIN / "lunaris-agent"), "--config", str(config)]
        api_url = f"{server.base_url}/api"
        subprocess.run(
            [*agent_cli, "configure", "--api-url", api_url, "--winget-path", str(winget)],
            env=environment | {"LUNARIS_ENROLLMENT_SECRET": _enroll(server_env)},
            check=True,
            capture_output=True,
        )
        agent = subprocess.Popen(
            [*agent_cli, "run"],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        log("waiting for registration and the first report")
        deadline = time.monotonic() + 60
        while not (
            json.loads(config.read_text()).get("device_token")
            and not (home / "spool" / "report.json").exists()
        ):
            if time.monotonic() > deadline or agent.poll() is not None:
                raise RuntimeError("the agent did not register and report")
            time.sleep(0.2)
        time.sleep(2)  # let start-up settle: imports, first heartbeat, first scan

        log(f"sampling the idle agent for {duration_s:g} s")
        start_cpu = _cpu_s(agent.pid)
        start = time.monotonic()
        samples: list[tuple[float, float, float]] = []  # seconds, RSS MB, CPU s
        while (elapsed := time.monotonic() - start) < duration_s:
            samples.append((elapsed, _rss_kb(agent.pid) / 1024, _cpu_s(agent.pid) - start_cpu))
            time.sleep(1.0)
        cpu_s = _cpu_s(agent.pid) - start_cpu
        elapsed = time.monotonic() - start
        # Its highest since start: registration and the first scan (parsing winget's table).
        peak_mb = _rss_kb(agent.pid, "VmHWM") / 1024
        agent.send_signal(signal.SIGTERM)
        exit_code = agent.wait(timeout=15)
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
        server.stop()
        asyncio.run(database.drop())

    heartbeats = elapsed / heartbeat_interval_s
    rss = [sample[1] for sample in samples]
    result = Result("agent-idle")
    result.figures = {
        "duration_s": round(elapsed, 1),
        "heartbeat_interval_s": heartbeat_interval_s,
        "cpu_s": round(cpu_s, 3),
        "cpu_percent": round(cpu_s / elapsed * 100, 3),
        "cpu_ms_per_heartbeat": round(cpu_s * 1000 / heartbeats, 2),
        "rss_mb_start": round(rss[0], 1),
        "rss_mb_end": round(rss[-1], 1),
        "rss_mb_max": round(max(rss), 1),
        "rss_mb_peak_with_scan": round(peak_mb, 1),
        "exit_code": exit_code,
    }
    print_table(
        f"idle agent, heartbeat every {heartbeat_interval_s} s, {elapsed:.0f} s measured",
        [
            ("CPU time (s)", f"{cpu_s:.2f}"),
            ("CPU (% of one core)", f"{cpu_s / elapsed * 100:.3f}"),
            ("CPU per heartbeat (ms)", f"{cpu_s * 1000 / heartbeats:.1f}"),
            ("RSS start / end / max (MB)", f"{rss[0]:.1f} / {rss[-1]:.1f} / {max(rss):.1f}"),
            ("RSS peak since start, first scan included (MB)", f"{peak_mb:.1f}"),
            ("exit code after SIGTERM", f"{exit_code}"),
        ],
    )
    if plot is not None:
        _plot(plot, samples, result.figures)
    return result


def _plot(
    path: Path, samples: list[tuple[float, float, float]], figures: dict[str, object]
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, rss_axis = plt.subplots(figsize=(8, 4.5))
    seconds = [sample[0] for sample in samples]
    rss_axis.plot(seconds, [sample[1] for sample in samples], color="tab:blue", label="RSS")
    rss_axis.set_xlabel("seconds")
    rss_axis.set_ylabel("resident memory (MB)", color="tab:blue")
    rss_axis.set_ylim(bottom=0)
    cpu_axis = rss_axis.twinx()
    cpu_axis.plot(seconds, [sample[2] for sample in samples], color="tab:red", label="CPU")
    cpu_axis.set_ylabel("CPU time used (s)", color="tab:red")
    cpu_axis.set_ylim(bottom=0)
    rss_axis.set_title(
        f"idle lunaris-agent, heartbeat every {figures['heartbeat_interval_s']} s: "
        f"{figures['cpu_percent']}% CPU, {figures['rss_mb_end']} MB"
    )
    rss_axis.grid(True, alpha=0.3)
    save_plot(figure, path)
