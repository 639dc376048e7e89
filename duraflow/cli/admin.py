"""What every admin subcommand shares: the database options, opening the store, exit codes
and turning failures into one line on stderr.

Admin commands talk to the store only through ``duraflow.AsyncClient`` over a provider
opened by ``duraflow.open_provider``, and never start a runtime: an operator inspecting
production must not accidentally become a worker. Every failure a person can cause (a bad
URL, a missing file, an unknown id, malformed data) ends as ``duraflow: error: ...`` and a
documented exit code, so scripts can branch on the code and people never see a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn

from duraflow import Status
from duraflow.config import ConfigError, add_flags, given_flags, read_settings

if TYPE_CHECKING:
    from duraflow import AsyncClient

#: Exit codes scripts can rely on (docs/cli.md lists them).
EXIT_OK = 0
EXIT_FAILED = 1  # the store refused the operation, or it failed
EXIT_USAGE = 2  # bad arguments or input (argparse uses 2 too)
EXIT_NOT_FOUND = 3  # no such instance
EXIT_UNREACHABLE = 4  # the database cannot be opened or reached

_SUPPORTED_SCHEMES = ("postgres://", "postgresql://", "sqlite:")
_MEMORY = ("sqlite::memory:", ":memory:")


class CliError(Exception):
    """A failure with the exit code it maps to; ``main`` prints it on one line."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def fail(code: int, message: str) -> NoReturn:
    raise CliError(code, message)


def common_options() -> argparse.ArgumentParser:
    """A parent parser with the options every admin subcommand takes (after its name)."""
    parent = argparse.ArgumentParser(add_help=False)
    add_flags(parent.add_argument_group("database"), "admin")
    parent.add_argument("--json", action="store_true", help="print machine-readable JSON")
    return parent


@dataclass(frozen=True, slots=True)
class Location:
    """Where the store is and how to open it."""

    url: str
    schema: str | None
    pool_max: int


def resolve_location(args: argparse.Namespace) -> Location:
    """The database settings from the flags, else the environment.

    Read at run time, not when the parser is built, so tests and wrappers can set the
    environment after import. A SQLite path must already exist: opening a missing file
    would create an empty database and every read would wrongly answer "nothing there".
    """
    try:
        settings = read_settings("admin", os.environ, given_flags(args, "admin"))
    except ConfigError as exc:
        fail(EXIT_USAGE, str(exc))
    url: str | None = settings["database_url"]
    if not url:
        fail(EXIT_USAGE, "no database: pass --database-url or set DURAFLOW_DATABASE_URL")
    if url.strip() in _MEMORY:
        fail(EXIT_USAGE, "an in-memory SQLite database exists only inside its own process; "
                         "pass a file path or a postgresql:// URL")
    scheme, sep, _ = url.partition("://")
    if sep and not url.startswith(_SUPPORTED_SCHEMES):
        fail(EXIT_USAGE, f"unsupported database URL scheme {scheme + '://'!r}: use "
                         "postgresql://... or a SQLite file path")
    if not url.startswith(("postgres://", "postgresql://")):
        path = _sqlite_path(url)
        if os.path.isdir(path):
            fail(EXIT_UNREACHABLE, f"{path!r} is a directory, not a SQLite database file")
        if not os.path.isfile(path):
            fail(EXIT_UNREACHABLE, f"no SQLite database at {path!r} (file does not exist)")
    return Location(url, settings["schema"] or None, settings["pg_pool_max"])


def _sqlite_path(url: str) -> str:
    """The file a SQLite location names (``open_provider`` accepts ``sqlite:`` prefixes)."""
    text = url.strip()
    for prefix in ("sqlite://", "sqlite:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    return text.split("?", 1)[0]


Action = Callable[["AsyncClient", argparse.Namespace], Awaitable[int]]


def run_admin(action: Action, args: argparse.Namespace) -> int:
    """Open the store, run ``action`` with a client, close the store; map every failure to
    a one-line error and an exit code."""
    try:
        return asyncio.run(_with_client(action, args))
    except CliError as exc:
        return report(exc.code, exc.message)
    except KeyboardInterrupt:
        return report(130, "interrupted")


async def _with_client(action: Action, args: argparse.Namespace) -> int:
    from duraflow import AsyncClient, open_provider

    where = resolve_location(args)
    try:
        provider = await open_provider(where.url, where.schema, pool_max=where.pool_max)
    except CliError:
        raise
    except ValueError as exc:  # an invalid schema name
        fail(EXIT_USAGE, _one_line(exc))
    except Exception as exc:
        fail(EXIT_UNREACHABLE, f"cannot open the database: {_one_line(exc)}")
    try:
        return await action(AsyncClient(provider), args)
    except CliError:
        raise
    except (ConnectionError, OSError, TimeoutError) as exc:
        fail(EXIT_UNREACHABLE, f"database unreachable: {_one_line(exc)}")
    except (ValueError, TypeError) as exc:  # the client's own validation of names and data
        fail(EXIT_USAGE, _one_line(exc))
    except Exception as exc:
        # ProviderError and anything unexpected: the store said no, or something broke.
        fail(EXIT_FAILED, _one_line(exc))
    finally:
        with contextlib.suppress(Exception):  # a broken connection must not hide the error
            await provider.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def report(code: int, message: str) -> int:
    print(f"duraflow: error: {message}", file=sys.stderr)
    return code


def done(args: argparse.Namespace, data: dict[str, Any], message: str) -> int:
    """A command that changed something reports it: ``data`` with ``--json``, else one
    line for a person."""
    from duraflow.cli import output

    if args.json:
        output.print_json(data)
    else:
        print(message)
    return EXIT_OK


def non_negative(text: str) -> int:
    """An argparse type: a whole number, 0 or more."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def positive(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    value = non_negative(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return value


def parse_json_data(text: str, what: str) -> Any:
    """``DATA`` arguments are JSON; ``-`` reads stdin and ``@path`` reads a file.

    A bare word such as ``approved`` is not JSON (strings need quotes: ``'"approved"'``);
    the error says where parsing stopped, so a script author can fix the quoting.
    """
    source = "argument"
    if text == "-":
        text, source = sys.stdin.read(), "stdin"
    elif text.startswith("@"):
        path = text[1:]
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            fail(EXIT_USAGE, f"cannot read {what} from {path!r}: {exc.strerror or exc}")
        source = f"file {path!r}"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        hint = ""
        if exc.pos == 0 and text.strip() and text.strip()[0].isalpha():
            hint = f" (a string needs JSON quotes, e.g. '\"{text.strip()}\"')"
        fail(EXIT_USAGE, f"{what} ({source}) is not valid JSON: {exc.msg} at line {exc.lineno}"
                         f" column {exc.colno} (char {exc.pos}){hint}")


async def require_instance(client: AsyncClient, instance_id: str) -> str:
    """The instance's status; exit 3 when it does not exist."""
    result = await client.get_status(instance_id)
    if result.status == Status.NOT_FOUND:
        fail(EXIT_NOT_FOUND, f"instance {instance_id!r} not found")
    return result.status
