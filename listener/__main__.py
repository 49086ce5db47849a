"""The scale-set listener's command line: run, or check the settings without the network."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Annotated

import structlog
import typer
import yaml
from pydantic import ValidationError

from gha_scalesets import config_errors
from gha_scalesets.config_errors import report
from gha_scalesets.listener.app import Listener, StartupError
from gha_scalesets.listener.check import offline_problems, summary
from gha_scalesets.listener.config import ListenerSettings, load_settings
from gha_scalesets.listener.logs import configure_logging

HELP = """The scale-set listener: long-polls GitHub and keeps ephemeral runners at the job count.

Settings come from a YAML file (--config) layered over LISTENER_* environment variables;
every setting may be given either way (docs/listener.md)."""

cli = typer.Typer(add_completion=False, no_args_is_help=True, help=HELP, rich_markup_mode=None)
log = structlog.get_logger("listener")

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        exists=True,
        dir_okay=False,
        metavar="FILE",
        help="YAML settings; omit to read everything from LISTENER_* variables.",
    ),
]


def _invalid(config: Path | None, problems: list[str]) -> typer.Exit:
    where = config or "LISTENER_* variables"
    typer.echo(report(f"invalid listener settings ({where})", problems), err=True)
    return typer.Exit(2)


def _settings(config: Path | None) -> ListenerSettings:
    try:
        return load_settings(config)
    except ValidationError as exc:
        # Only locations and messages: the rejected input may be a credential.
        raise _invalid(config, config_errors.lines(exc, ListenerSettings)) from None
    except yaml.YAMLError as exc:
        typer.echo(f"cannot read listener settings: {_yaml_problem(config, exc)}", err=True)
        raise typer.Exit(2) from None
    except (OSError, ValueError) as exc:
        typer.echo(f"cannot read listener settings: {exc}", err=True)
        raise typer.Exit(2) from None


def _yaml_problem(config: Path | None, exc: yaml.YAMLError) -> str:
    """Where and what, without echoing the document (a value may be a credential)."""
    mark = getattr(exc, "problem_mark", None)
    where = f"{config}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(config)
    problem = getattr(exc, "problem", None) or type(exc).__name__
    return f"{where}: {problem}: this is not valid YAML; fix the syntax and run `check` again"


async def _serve(settings: ListenerSettings) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    listener = Listener(settings)
    try:
        # Starting may wait for GitHub (an outage is retried): a signal must still stop it.
        starting = asyncio.create_task(listener.start())
        stopping = asyncio.create_task(stop.wait())
        await asyncio.wait([starting, stopping], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
            return
        starting.result()
        settling = asyncio.create_task(listener.freeze_when_settled())
        try:
            await listener.run_until(stop)
        finally:
            settling.cancel()
    finally:
        await listener.stop()


@cli.command()
def run(config: ConfigOption = None) -> None:
    """Serve the configured scale sets until SIGTERM/SIGINT."""
    settings = _settings(config)
    configure_logging(settings.log_level)
    try:
        asyncio.run(_serve(settings))
    except StartupError as exc:
        log.error("cannot start", error=str(exc))
        typer.echo(f"listener: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        log.exception("listener failed")
        typer.echo(f"listener failed: {type(exc).__name__}: {exc}", err=True)
        raise typer.Exit(1) from None


@cli.command()
def check(config: ConfigOption = None) -> None:
    """Validate the settings offline and show what would be served.

    Sends no request: credential files are read and parsed, the CA bundle is loaded; a Secrets
    Manager secret is read only at start."""
    settings = _settings(config)
    if problems := offline_problems(settings):
        raise _invalid(config, problems)
    typer.echo(f"ok: {config or 'LISTENER_* variables'} is valid; the listener would serve")
    for line in summary(settings):
        typer.echo(f"  {line}")


if __name__ == "__main__":
    cli(prog_name="python -m gha_scalesets.listener")
