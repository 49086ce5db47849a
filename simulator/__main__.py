"""``python -m gha_scalesets.simulator``: serve the scale-set simulator until interrupted.

The options are :class:`SimulatorConfig`'s fields and the fault knobs of :class:`FaultSettings`
(name, default, help), so a new setting is an option with nothing to write here.
"""

from __future__ import annotations

import inspect
import json
import types
from pathlib import Path
from typing import Annotated, Any, Union, get_args, get_origin

import typer
from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from gha_scalesets import config_errors
from gha_scalesets.simulator.config import AppCredential, SimulatorConfig
from gha_scalesets.simulator.faults import FaultSettings
from gha_scalesets.simulator.serve import bind, build_server

HELP = """Serve the GitHub runner scale-set service simulator (GHES layout) on one port.

Config URLs are http://HOST:PORT/<org>, /<owner>/<repo> or /enterprises/<slug>; the REST API is
under /api/v3 and the control API under /_sim/."""

# The options that are not settings: (type, default, help).
SERVER: dict[str, tuple[type, Any, str]] = {
    "host": (str, "127.0.0.1", "Interface to listen on."),
    "port": (int, 8000, "Port (0 picks a free one)."),
    "log_level": (str, "info", "uvicorn log level."),
}
_METAVARS = {str: "TEXT", int: "INTEGER", float: "NUMBER"}

cli = typer.Typer(add_completion=False, no_args_is_help=False, rich_markup_mode=None)


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


def _extra(info: FieldInfo) -> dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def _options(model: type[BaseModel]) -> list[tuple[str, str, FieldInfo]]:
    """(option, field, info) of the fields of ``model`` that are options (``pat``: ``pats``)."""
    return [
        (_extra(info).get("option", name), name, info)
        for name, info in model.model_fields.items()
        if _extra(info).get("cli", True) and name != "faults"
    ]


def _repeatable(annotation: Any) -> bool:
    if get_origin(annotation) in (Union, types.UnionType):
        return any(_repeatable(a) for a in get_args(annotation))
    return get_origin(annotation) is tuple


def _settings_model(annotation: Any) -> bool:
    """Whether a field holds a settings model of its own (given as JSON: ``--limits``)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _parameter(name: str, kind: Any, default: Any, help_text: str) -> inspect.Parameter:
    """A keyword parameter typer turns into ``--<name>``; a tuple field is a repeatable one,
    a settings model a JSON text."""
    if _repeatable(kind):
        kind, default = list[str] | None, None
    if _settings_model(kind):
        kind, default = str | None, None
    metavar = _METAVARS.get(next((a for a in (kind, *get_args(kind)) if a in _METAVARS), str))
    option = typer.Option(help=help_text, metavar=None if kind is bool else metavar)
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=Annotated[kind, option]
    )


def _json(option: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise typer.BadParameter("is not JSON", param_hint=f"--{option}") from None


def _config(values: dict[str, Any]) -> SimulatorConfig:
    """The settings the command line gives (unset repeatable options keep their defaults)."""
    given: dict[str, Any] = {"faults": {}}
    for model, target in ((SimulatorConfig, given), (FaultSettings, given["faults"])):
        for option, field, info in _options(model):
            value = values[option]
            if value is not None and _settings_model(info.annotation):
                value = _json(option, value)
            if value is not None or info.default is None:
                target[field] = tuple(value) if isinstance(value, list) else value
    given["apps"] = tuple(_parse_app(spec) for spec in given.get("apps", ()))
    try:
        return SimulatorConfig(**given)
    except ValidationError as exc:
        raise typer.BadParameter("; ".join(config_errors.lines(exc, SimulatorConfig))) from None


def serve(**values: Any) -> None:
    config = _config(values)
    host, port = values["host"], values["port"]
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
    build_server(config, log_level=values["log_level"]).run(sockets=[sock])


serve.__doc__ = HELP
serve.__signature__ = inspect.Signature(  # type: ignore[attr-defined]  # what typer reads
    [_parameter(name, *spec) for name, spec in SERVER.items()]
    + [
        _parameter(
            option,
            info.annotation,
            info.get_default(call_default_factory=True),
            info.description or "",
        )
        for model in (SimulatorConfig, FaultSettings)
        for option, _, info in _options(model)
    ]
)
cli.command()(serve)


if __name__ == "__main__":
    cli(prog_name="python -m gha_scalesets.simulator")
