"""Running the explorer's server: on 127.0.0.1 by default, a free port on request (port 0)."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..errors import UserError
from .app import create_app
from .session import Session

LOCAL = ("127.0.0.1", "localhost", "::1")


def check_host(host: str) -> str | None:
    """A warning to print when ``host`` is not this machine alone, else None."""
    if host in LOCAL:
        return None
    return (
        f"the explorer listens on {host}: anyone who can reach this machine can use the page, "
        "steer the model and read the run's pictures and config (no login, no encryption)"
    )


@dataclass
class Server:
    """A running explorer: its address, and ``close()`` to stop it."""

    url: str
    _server: object
    _thread: threading.Thread | None = None

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _make(session: Session, host: str, port: int):
    from werkzeug.serving import make_server

    if not 0 <= port <= 65535:
        raise UserError(f"--port must be in 0..65535 (0: any free port), got {port}")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    try:
        server = make_server(host, port, create_app(session), threaded=True)
    except OSError as e:
        raise UserError(
            f"cannot listen on {host}:{port} ({e.strerror or e}); pick another --port"
        ) from None
    shown = f"[{host}]" if ":" in host else host
    return server, f"http://{shown}:{server.server_port}/"


def start(session: Session, host: str = "127.0.0.1", port: int = 0) -> Server:
    """Serve in a background thread (daemon); returns at once with the address."""
    server, url = _make(session, host, port)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="gankit-explore")
    thread.start()
    return Server(url, server, thread)


def serve(session: Session, host: str = "127.0.0.1", port: int = 8000, say=print) -> None:
    """Serve until Ctrl-C, after saying the address (and a warning for a non-local host)."""
    server, url = _make(session, host, port)
    warning = check_host(host)
    if warning:
        say(f"gankit: warning: {warning}")
    say(f"gankit explore: {session.run_dir} at {url} (Ctrl-C to stop)")
    try:
        server.serve_forever()
    finally:
        server.server_close()
