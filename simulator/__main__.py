"""``python -m gha_scalesets.simulator``: serve the scale-set simulator until interrupted."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from gha_scalesets.simulator.config import AppCredential, SimulatorConfig
from gha_scalesets.simulator.faults import FaultSettings
from gha_scalesets.simulator.limits import LimitSettings
from gha_scalesets.simulator.serve import bind, build_server

cli = typer.Typer(add_completion=False, no_args_is_help=False)


def _parse_app(spec: str) -> AppCredential:
    client_id, sep1, rest = spec.partition(":")
    installation, sep2, pem_file = rest.partition(":")
    if not (sep1 and sep2 and client_id and installation.isdigit() and pem_file):
        raise typer.BadParameter(
            "expected CLIENT_ID:INSTALLATION_ID:PEM_FILE (installation id numeric)",
            param_hint="--app",
        )
    path = Path(pem_file)
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise typer.BadParameter(
            f"cannot read {path}: {exc.strerror}", param_hint="--app"
        ) from None
    try:
        return AppCredential.from_pem(client_id, int(installation), pem)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--app") from None


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port (0 picks a free one).")] = 8000,
    pat: Annotated[
        list[str] | None, typer.Option(help="Accepted personal access token (repeatable).")
    ] = None,
    unscoped_pat: Annotated[
        list[str] | None,
        typer.Option(help="Valid token lacking the runner-admin scope: 403 (repeatable)."),
    ] = None,
    app: Annotated[
        list[str] | None,
        typer.Option(
            help="Trusted GitHub App as CLIENT_ID:INSTALLATION_ID:PEM_FILE; the PEM may be the "
            "private key (repeatable)."
        ),
    ] = None,
    runner_group: Annotated[
        list[str] | None, typer.Option(help="Extra runner group besides Default (repeatable).")
    ] = None,
    long_poll_seconds: Annotated[float, typer.Option(help="Message-queue hold before 202.")] = 50.0,
    assign_timeout_seconds: Annotated[
        float, typer.Option(help="Reassign a job no runner took within this (doubles each time).")
    ] = 300.0,
    max_reassignments: Annotated[int, typer.Option(help="Reassignments before canceling.")] = 3,
    session_ttl_seconds: Annotated[
        float, typer.Option(help="A silent session owner loses the session after this.")
    ] = 120.0,
    ghes_acquire: Annotated[
        bool, typer.Option(help="Emit JobAvailable that listeners must acquire (GHES mode).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Seed of every random choice.")] = 0,
    admin_token_ttl_seconds: Annotated[float, typer.Option()] = 3600.0,
    installation_token_ttl_seconds: Annotated[float, typer.Option()] = 3600.0,
    mq_token_ttl_seconds: Annotated[float, typer.Option()] = 3600.0,
    latency_ms: Annotated[float, typer.Option(help="Added latency on GitHub routes.")] = 0.0,
    jitter_ms: Annotated[float, typer.Option(help="Uniform +/- jitter on the latency.")] = 0.0,
    error_rate: Annotated[
        float, typer.Option(help="Share of requests answered with an error.")
    ] = 0.0,
    error_status: Annotated[int, typer.Option(help="Injected error status (429 or 5xx).")] = 503,
    retry_after_seconds: Annotated[
        int | None, typer.Option(help="Retry-After on injected 429/503.")
    ] = None,
    drop_rate: Annotated[float, typer.Option(help="Share of connections dropped.")] = 0.0,
    rate_limit_per_hour: Annotated[
        int | None, typer.Option(help="Primary rate limit (403 when exhausted).")
    ] = None,
    empty_body_rate: Annotated[
        float, typer.Option(help="Share of message GETs answered 200 with an empty body.")
    ] = 0.0,
    limits: Annotated[
        str | None,
        typer.Option(
            help="Rate limits per route class and credential as JSON, e.g. "
            '{"classes": {"jit": {"points_per_window": 900}}} (off by default).'
        ),
    ] = None,
    fault_route: Annotated[
        list[str] | None,
        typer.Option(help="Limit faults to this route key, e.g. 'GET /message' (repeatable)."),
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the GitHub runner scale-set service simulator (GHES layout) on one port.

    Config URLs are http://HOST:PORT/<org>, /<owner>/<repo> or /enterprises/<slug>;
    the REST API is under /api/v3 and the control API under /_sim/.
    """
    try:
        config = SimulatorConfig(
            pats=tuple(pat or ()),
            unscoped_pats=tuple(unscoped_pat or ()),
            apps=tuple(_parse_app(spec) for spec in app or ()),
            runner_groups=tuple(runner_group or ()),
            long_poll_seconds=long_poll_seconds,
            assign_timeout_seconds=assign_timeout_seconds,
            max_reassignments=max_reassignments,
            session_ttl_seconds=session_ttl_seconds,
            ghes_acquire=ghes_acquire,
            seed=seed,
            admin_token_ttl_seconds=admin_token_ttl_seconds,
            installation_token_ttl_seconds=installation_token_ttl_seconds,
            mq_token_ttl_seconds=mq_token_ttl_seconds,
            faults=FaultSettings(
                latency_ms=latency_ms,
                jitter_ms=jitter_ms,
                error_rate=error_rate,
                error_status=error_status,
                retry_after_seconds=retry_after_seconds,
                drop_rate=drop_rate,
                rate_limit_per_hour=rate_limit_per_hour,
                empty_body_rate=empty_body_rate,
                routes=tuple(fault_route) if fault_route else None,
            ),
            limits=LimitSettings.model_validate_json(limits) if limits else LimitSettings(),
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    try:
        sock = bind(host, port)
    except OSError as exc:
        typer.echo(f"error: cannot listen on {host}:{port}: {exc.strerror}", err=True)
        raise typer.Exit(1) from None
    bound_port = sock.getsockname()[1]
    typer.echo(
        f"Scale-set simulator on http://{host}:{bound_port} "
        f"(config URL e.g. http://{host}:{bound_port}/acme; control API /_sim/)"
    )
    build_server(config, log_level=log_level).run(sockets=[sock])


if __name__ == "__main__":
    cli(prog_name="python -m gha_scalesets.simulator")
