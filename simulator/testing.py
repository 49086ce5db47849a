"""Run a simulator in a background thread for tests, demos and benchmarks.

>>> with SimulatorServer(pats=["ghp_x"], long_poll_seconds=0.5) as sim:
...     config_url = sim.config_url("acme")        # http://127.0.0.1:PORT/acme
...     sim.queue_jobs(["my-set"], count=3)         # job ids (runnerRequestIds)
...     sim.stats()["jobs"]

The server listens on 127.0.0.1 on a free port; the control helpers talk HTTP to its
``/_sim/`` API, so they are safe to call from any thread. It keeps every credential it issues:
:func:`issued_secrets` hands them to a test suite's leak scan.
"""

from __future__ import annotations

import ssl
import threading
import time
import weakref
from types import TracebackType
from typing import Any, Self, cast

import httpx
import uvicorn
from starlette.applications import Starlette

from gha_scalesets.simulator.config import SimulatorConfig
from gha_scalesets.simulator.ledger import SecretLedger
from gha_scalesets.simulator.serve import bind, build_server

_START_TIMEOUT_SECONDS = 15.0
_STARTED: weakref.WeakSet[SimulatorServer] = weakref.WeakSet()


def issued_secrets() -> set[str]:
    """Every credential issued by the simulator servers of this process still referenced."""
    return set().union(*(server.issued_secrets() for server in list(_STARTED)))


class SimulatorServer:
    """A simulator on ``127.0.0.1:<free port>``; a context manager (or call start/close)."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        log_level: str = "warning",
        tls: tuple[str, str, str] | None = None,
        **settings: Any,
    ) -> None:
        """``settings`` are :class:`SimulatorConfig`'s fields (``apps`` also as (client id,
        installation id, PEM) triples, ``faults`` and ``limits`` as mappings); ``tls``:
        ``(certificate file, key file, CA file)`` to serve HTTPS, whose CA the control helpers
        trust."""
        self.config = SimulatorConfig(**settings, record_secrets=True)
        self._host = host
        self._log_level = log_level
        self._tls = tls
        self._thread: threading.Thread | None = None
        self._server: uvicorn.Server | None = None
        self._control: httpx.Client | None = None
        self._ledger: SecretLedger | None = None
        self.url = ""

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> Self:
        sock = bind(self._host, 0)
        port = sock.getsockname()[1]
        scheme = "https" if self._tls else "http"
        self.url = f"{scheme}://{self._host}:{port}"
        server = self._server = build_server(
            self.config, log_level=self._log_level, tls=self._tls[:2] if self._tls else None
        )
        self._ledger = cast(Starlette, server.config.app).state.sim.ledger
        _STARTED.add(self)
        self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"simulator-{port}",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_SECONDS
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the simulator on {self.url} did not start")
            time.sleep(0.01)
        # Never through a proxy a test may have configured: the control API is local.
        self._control = httpx.Client(
            base_url=self.url,
            timeout=30.0,
            trust_env=False,
            verify=ssl.create_default_context(cafile=self._tls[2]) if self._tls else True,
        )
        return self

    def close(self) -> None:
        if self._control is not None:
            self._control.close()
            self._control = None
        if self._thread is not None and self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def issued_secrets(self) -> set[str]:
        """The tokens, JWTs and runner secrets this server has issued so far."""
        return set(self._ledger.values) if self._ledger is not None else set()

    # -- addresses ---------------------------------------------------------------------------

    def config_url(self, path: str) -> str:
        """The GitHub config URL of ``acme`` (org), ``acme/app`` (repo) or ``enterprises/e``."""
        return f"{self.url}/{path.strip('/')}"

    @property
    def api_url(self) -> str:
        """The REST API root (GHES layout)."""
        return f"{self.url}/api/v3"

    # -- control -----------------------------------------------------------------------------

    def _call(self, method: str, path: str, json: Any = None) -> httpx.Response:
        if self._control is None:
            raise RuntimeError("the simulator is not running; use it as a context manager")
        response = self._control.request(method, f"/_sim{path}", json=json)
        if response.is_error:
            raise RuntimeError(
                f"simulator {method} /_sim{path}: {response.status_code} {response.text}"
            )
        return response

    def stats(self) -> dict[str, Any]:
        return cast(dict[str, Any], self._call("GET", "/stats").json())

    def api_calls(self) -> int:
        """Total GitHub-facing requests (REST, admin, message queue) since the last reset."""
        return sum(self.stats()["requests"].values())

    def reset(self) -> None:
        self._call("POST", "/reset")

    def queue_jobs(
        self,
        labels: list[str],
        count: int = 1,
        duration_seconds: float = 0.1,
        repository: str = "acme/app",
        result: str = "succeeded",
    ) -> list[int]:
        """Queue workflow jobs; they go to scale sets whose labels include all of ``labels``
        and whose scope (org, repo, enterprise) covers ``repository``."""
        body = {
            "labels": labels,
            "count": count,
            "duration_seconds": duration_seconds,
            "repository": repository,
            "result": result,
        }
        return cast(list[int], self._call("POST", "/jobs", body).json()["job_ids"])

    def jobs(self) -> list[dict[str, Any]]:
        return cast(list[dict[str, Any]], self._call("GET", "/jobs").json()["jobs"])

    def set_faults(self, **knobs: Any) -> None:
        """Replace the fault settings (see :class:`~simulator.faults.FaultSettings`)."""
        self._call("POST", "/faults", knobs)

    def clear_faults(self) -> None:
        self._call("POST", "/faults", {})

    def set_limits(self, **settings: Any) -> None:
        """Replace the rate limits (see :class:`~simulator.limits.LimitSettings`), e.g.
        ``set_limits(classes={"jit": {"points_per_window": 900}})``; counters start over."""
        self._call("POST", "/limits", settings)

    def clear_limits(self) -> None:
        self._call("POST", "/limits", {})

    def limit_stats(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Per credential and route class: requests, refused, refused_in_block, blocked_seconds."""
        return cast(dict[str, dict[str, dict[str, Any]]], self.stats()["limits"])

    def revoke(self, credential: str) -> None:
        """Revoke a credential (``pat_credential(token)`` or ``app_credential(client_id)``)."""
        self._call("POST", "/credentials/revoke", {"credential": credential})

    def now(self) -> float:
        """The simulator clock (epoch seconds, including any advance)."""
        return cast(float, self._call("GET", "/clock").json()["now"])

    def advance_clock(self, seconds: float) -> float:
        """Move the simulator clock forward (tokens, sessions and deadlines expire)."""
        return cast(float, self._call("POST", "/clock", {"advance_seconds": seconds}).json()["now"])
