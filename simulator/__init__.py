"""A local, faithful simulator of GitHub's runner scale-set service (GHES layout, one port).

Start it with ``python -m gha_scalesets.simulator --pat ghp_x`` (see ``--help``) or, in tests, with
:class:`simulator.testing.SimulatorServer`. A config URL such as ``http://127.0.0.1:PORT/acme``
(org), ``.../acme/app`` (repo) or ``.../enterprises/e`` resolves, like any GHES host, to the
REST API under ``/api/v3``. The wire contract is the project's scale-set API reference.

How a listener meets it:

1. REST (``/api/v3``): App JWT -> installation token, or a PAT -> registration token ->
   ``runner-registration`` returns ``{url, token}``: the admin base URL
   ``/_services/pipelines/<tenant>/`` (one tenant per org/repo/enterprise) and an admin JWT.
2. Admin API under that base: runner groups, scale sets, JIT configs, agents, sessions.
   A session hands out ``/_services/broker/message?sessionId=...`` and a queue token.
3. Message queue: long-polled GET (202 after ``--long-poll-seconds``), DELETE to ack.
4. ``POST /_sim/jobs`` queues workflow jobs; they are assigned to matching scale sets with a
   polling session and spare ``X-ScaleSetMaxCapacity``, and run by runner emulators
   (:mod:`simulator.runner`) started from JIT configs.

Stats keys (``GET /_sim/stats`` ``requests``; also the names ``faults.routes`` accepts):

- ``POST /api/v3/app/installations/{id}/access_tokens``
- ``POST /api/v3/repos/{owner}/{repo}/actions/runners/registration-token``, and the same
  with ``orgs/{org}`` and ``enterprises/{enterprise}`` (one key per scope)
- ``POST /api/v3/actions/runner-registration``
- ``GET /_apis/runtime/runnergroups/``
- ``GET|POST /_apis/runtime/runnerscalesets``
- ``GET|PATCH|DELETE /_apis/runtime/runnerscalesets/{id}``
- ``POST /_apis/runtime/runnerscalesets/{id}/generatejitconfig``
- ``GET /_apis/distributedtask/pools/0/agents`` and ``GET|DELETE .../agents/{id}``
- ``POST /_apis/runtime/runnerscalesets/{id}/sessions``
- ``PATCH|DELETE /_apis/runtime/runnerscalesets/{id}/sessions/{session_id}``
- ``POST /_apis/runtime/runnerscalesets/{id}/acquirejobs``,
  ``GET /_apis/runtime/runnerscalesets/{id}/acquirablejobs``
- ``GET /message``, ``DELETE /message/{id}``

Runner-emulator traffic is counted apart, under ``runner_requests``
(``POST /_sim/runner/{id}/online|acquire|complete``). ``GET /_sim/routes`` lists the keys.
Over both, ``user_agents`` counts requests per ``User-Agent`` and ``connections`` the TCP
connections they came on (behind a forward proxy: the proxy's tunnels). ``SimulatorServer``
can serve HTTPS (``tls=``), like a GHES host with its own certificate.

Module map: :mod:`~simulator.app` (ASGI app), :mod:`~simulator.world` and
:mod:`~simulator.jobs` (state and job lifecycle), :mod:`~simulator.auth` (tokens),
:mod:`~simulator.faults` (fault injection), ``http_*`` (routes), :mod:`~simulator.wire`
(JSON shapes), :mod:`~simulator.testing` (background server for tests).
"""

if __name__ != "gha_scalesets.simulator":  # one module, one name: never a top-level "simulator"
    raise ImportError(f"{__name__!r} is gha_scalesets.simulator: import it by that name")
