"""What every ``prs`` subcommand shares: the global flags and one way of reporting errors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn

import typer

from prs_cli.client import ClientFactory, GatewayClient
from prs_cli.config import Config, resolve_api_key, resolve_gateway_url
from prs_cli.errors import CliError, MissingOption, UsageError
from prs_cli.output import Output

EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class GlobalOptions:
    """What ``prs`` itself was given, before the subcommand."""

    gateway_url: str | None
    api_key: str | None
    json_output: bool


@dataclass(frozen=True)
class Invocation:
    """One subcommand run: where its output goes and how it reaches the gateway."""

    config: Config
    output: Output
    make_client: ClientFactory

    def client(self) -> GatewayClient:
        """A new gateway client; callers close it (``with inv.client() as client``)."""
        return self.make_client(self.config)


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The flags given to ``prs`` itself (none when a subcommand is invoked directly)."""
    root = ctx.find_root()
    obj = root.obj if root.obj is not None else ctx.obj
    return obj if isinstance(obj, GlobalOptions) else GlobalOptions(None, None, False)


def run_guarded(
    ctx: typer.Context,
    make_client: ClientFactory,
    json_flag: bool,
    body: Callable[[Invocation], int],
) -> NoReturn:
    """Run ``body`` and exit with its code; expected errors become one line, never a traceback."""
    globals_ = global_options(ctx)
    output = Output(json_mode=json_flag or globals_.json_output)
    try:
        config = Config(
            gateway_url=resolve_gateway_url(globals_.gateway_url),
            api_key=resolve_api_key(globals_.api_key),
            json_output=output.json_mode,
        )
        code = body(Invocation(config, output, make_client))
    except UsageError as exc:
        usage_error(ctx, exc)
    except CliError as exc:
        output.error(exc.message)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        output.error("interrupted")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    raise typer.Exit(code)


def usage_error(ctx: typer.Context, exc: UsageError) -> NoReturn:
    """Report a bad combination of flags like any other bad flag: usage line, flag named, exit 2."""
    hint = f"'{exc.param}'" if exc.param else None
    if isinstance(exc, MissingOption) and hint:
        ctx.fail(f"Missing option {hint}: {exc.message}")
    raise typer.BadParameter(exc.message, ctx=ctx, param_hint=hint)
