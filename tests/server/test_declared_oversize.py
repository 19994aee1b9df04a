"""A request that declares a body over the limit is answered 413 at once, on a real server.

The attack: a client sends the headers of a huge heartbeat or report and then nothing (or
trickles it). The server must not wait for, or read, a body it is going to refuse anyway.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest

from tests.support import LiveServer

pytestmark = pytest.mark.e2e

ANSWER_WITHIN_S = 5.0


def _declare(server: LiveServer, path: str, length: int) -> bytes:
    """Sends only the headers of a POST declaring ``length`` bytes; returns what came back."""
    url = urlsplit(server.base_url)
    assert url.hostname is not None
    assert url.port is not None
    with socket.create_connection((url.hostname, url.port), timeout=ANSWER_WITHIN_S) as sock:
        sock.sendall(
            (
                f"POST {path} HTTP/1.1\r\n"
                f"Host: {url.netloc}\r\n"
                "Authorization: Bearer lnd_not-a-real-token\r\n"
                "Content-Type: application/json\r\n"
                f"Content-Length: {length}\r\n"
                "\r\n"
            ).encode()
        )
        answer = b""
        try:
            while chunk := sock.recv(4096):  # until the server closes, or has said all
                answer += chunk
                if b"\r\n\r\n" in answer and answer.endswith(b"}"):
                    break
        except TimeoutError:
            pass
        return answer


@pytest.mark.parametrize(
    ("path", "length"),
    [
        ("/api/agent/heartbeat", 1024 * 1024 + 1),
        ("/api/agent/update-report", 8 * 1024 * 1024 + 1),
        ("/api/agent/register", 1024 * 1024 + 1),
        ("/api/agent/commands/1/progress", 1024 * 1024 + 1),
    ],
)
def test_a_declared_oversize_body_is_refused_before_it_is_sent(
    live_server: LiveServer, path: str, length: int
) -> None:
    answer = _declare(live_server, path, length)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"body_too_large" in answer


def test_a_body_at_the_limit_is_still_read(live_server: LiveServer) -> None:
    """The early answer is for bodies over the limit only: at the limit the server waits for
    the body (and here, with none coming, answers nothing within the time)."""
    assert _declare(live_server, "/api/agent/heartbeat", 1024 * 1024) == b""
