"""Every setting of the ``duraflow`` command and the operator, in one table, and the one
parser that turns their text (a flag or an environment variable) into values.

Only the two programs that are configured from outside read settings: the ``duraflow``
command (``duraflow/cli/``) and the Kubernetes operator (``duraflow_operator.settings``).
They pass the environment in; the library itself never reads it, so a program that embeds
Duraflow decides everything in code (``RuntimeOptions``, ``PostgresProvider.connect(...,
pool_max=)``) and an environment variable cannot change it behind its back.

``SETTINGS`` is the anchor, as DBOS's single config module is: a row per setting with its
environment variable(s), flag, kind, default, meaning and the commands that read it. From it
come the flags and ``--help`` of ``duraflow worker``, ``duraflow operator`` and the admin
commands, the parsing with its one-line errors, and the settings tables of docs/worker.md,
docs/cli.md and docs/operator.md (``markdown_table``; a test keeps the docs equal to it).
Defaults of the worker's runtime settings are ``RuntimeOptions``' own, read from
``duraflow.runtime.options``, so no default is written twice.

One rule for every value: a flag wins over the environment; a blank value counts as not
given; where a setting lists several variables the first one set wins; a bad value is a
``ConfigError`` whose text names the flag or variable it came from and what is wrong, in one
line, because a pod log is read by someone who did not write the configuration.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from duraflow.core.builds import BUILD_ID_PATTERN, BUILD_ID_RULE
from duraflow.core.durations import FORMAT_HINT, DurationError, parse_duration_ms
from duraflow.core.limits import MAX_TAG_NAME_BYTES, MAX_WORKER_TAGS
from duraflow.providers.postgres.db import DEFAULT_POOL_MAX
from duraflow.runtime import options

#: Who reads a setting: the root ``duraflow`` parser, ``duraflow worker``, the admin
#: commands (``instances``, ``cancel``, ``prune``, ...) and ``duraflow operator``.
Command = Literal["duraflow", "worker", "admin", "operator"]
#: How a setting's text is read. ``ms`` is a whole number of milliseconds; ``duration`` is a
#: span a person writes (``30d``, ``12h``, ``90s``, or plain milliseconds), read as ms.
Kind = Literal["text", "bool", "int", "ms", "duration", "list", "choice"]

LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
LOG_FORMATS = ("text", "json")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")
_ALIASES = {"warn": "warning"}


class ConfigError(ValueError):
    """A setting's value cannot be used; ``str()`` is the one-line reason, naming its source."""


# ─── The parser: text → value, one function per kind ─────────────────────────────────────


def parse_bool(text: str, source: str) -> bool:
    """``1/true/yes/on`` or ``0/false/no/off``, any case. Anything else is an error, never
    silently false: a typo must not switch leader election or a tag filter off."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{source} must be true or false, got {text!r}")


def parse_int(text: str, source: str, minimum: int | None = None,
              maximum: int | None = None) -> int:
    """A whole number within ``[minimum, maximum]`` (either bound optional)."""
    try:
        number = int(text.strip())
    except ValueError:
        raise ConfigError(f"{source} must be a whole number, got {text!r}") from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        bound = (f"between {minimum} and {maximum}" if minimum is not None and maximum is not None
                 else f">= {minimum}" if minimum is not None else f"<= {maximum}")
        raise ConfigError(f"{source} must be {bound}, got {number}")
    return number


def parse_duration(text: str, source: str, minimum: int | None = None) -> int:
    """A span such as ``30d``, ``12h``, ``1h30m``, ``90s`` or plain milliseconds, as ms
    (``duraflow.core.durations``, the reader ``@every`` schedules use too), at least
    ``minimum`` ms."""
    try:
        value = parse_duration_ms(text)
    except DurationError:
        raise ConfigError(f"{source} must be {FORMAT_HINT}, got {text!r}") from None
    if minimum is not None and value < minimum:
        raise ConfigError(f"{source} must be at least {minimum} ms, got {text!r}")
    return value


def parse_list(text: str, source: str, item: str = "item") -> tuple[str, ...]:
    """Comma-separated names, spaces around them ignored. An empty name or one given twice
    is an error: ``a,,b`` is a typo far more often than a wish."""
    names = [name.strip() for name in text.split(",")]
    if any(not name for name in names):
        raise ConfigError(f"{source} has an empty {item} in {text!r} ({item}s are "
                          "comma-separated)")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ConfigError(f"{source} lists {', '.join(repeated)} more than once")
    return tuple(names)


def parse_choice(text: str, source: str, choices: tuple[str, ...]) -> str:
    """One of ``choices``, any case (``warn`` means ``warning``)."""
    value = text.strip().lower()
    value = _ALIASES.get(value, value)
    if value not in choices:
        raise ConfigError(f"{source} must be one of {', '.join(choices)}, got {text!r}")
    return value


# ─── The table ────────────────────────────────────────────────────────────────────────────


@dataclass(frozen=True, slots=True)
class Setting:
    """One setting. ``env`` lists its variables, the first one set winning; ``flag`` is None
    for what only the environment sets (a pod's name); ``check`` adds a rule of its own."""

    name: str
    env: tuple[str, ...]
    flag: str | None
    kind: Kind
    default: Any
    help: str
    commands: tuple[Command, ...]
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    #: What one element of a list is called in errors ("an empty tag in ...").
    item: str = "item"
    #: The default as the docs show it, where the value itself says little (None, a pid).
    shown_default: str | None = None
    required: bool = False
    check: Callable[[Any, str], None] | None = None

    @property
    def dest(self) -> str:
        """Where argparse keeps the flag's text; unique even for rows sharing a name."""
        return f"setting:{self.commands[0]}:{self.name}"

    def parse(self, text: str, source: str) -> Any:
        """``text`` as this setting's kind; ``source`` (flag or variable) names it in errors."""
        if self.kind == "bool":
            value: Any = parse_bool(text, source)
        elif self.kind in ("int", "ms"):
            value = parse_int(text, source, self.minimum, self.maximum)
        elif self.kind == "duration":
            value = parse_duration(text, source, self.minimum)
        elif self.kind == "list":
            value = parse_list(text, source, self.item)
        elif self.kind == "choice":
            value = parse_choice(text, source, self.choices)
        else:
            value = text.strip()
        if self.check is not None:
            self.check(value, source)
        return value

    def describe_default(self) -> str:
        """The default for ``--help`` and the docs: fallback variables first, then the value."""
        if self.required:
            return "(required)"
        shown = self.shown_default
        if shown is None:
            shown = ("(none)" if self.default in (None, ()) else
                     f"`{str(self.default).lower()}`" if isinstance(self.default, bool) else
                     f"`{self.default}`" if isinstance(self.default, str) else str(self.default))
        fallbacks = [f"`${name}`" for name in self.env[1:]]
        if fallbacks and self.default is None and self.shown_default is None:
            return ", then ".join(fallbacks)
        return ", then ".join([*fallbacks, shown])


def _check_tags(tags: tuple[str, ...], source: str) -> None:
    if len(tags) > MAX_WORKER_TAGS:
        raise ConfigError(f"{source} lists {len(tags)} tags; a worker takes at most "
                          f"{MAX_WORKER_TAGS}")
    for tag in tags:
        if len(tag.encode()) > MAX_TAG_NAME_BYTES:
            raise ConfigError(f"{source}: tag {tag[:40]!r}... is longer than "
                              f"{MAX_TAG_NAME_BYTES} bytes")


def _check_build_id(build_id: str, source: str) -> None:
    if BUILD_ID_PATTERN.fullmatch(build_id) is None:
        raise ConfigError(f"{source} must be {BUILD_ID_RULE}, got {build_id!r}")


def _runtime(name: str, help: str, kind: Kind = "int", option: str | None = None) -> Setting:
    """A worker setting that is ``RuntimeOptions`` option ``option`` (default: ``name``): its
    default and floor are the runtime's own; its variable and flag follow from ``name``."""
    option = option or name
    return Setting(name, (f"DURAFLOW_{name.upper()}",), "--" + name.replace("_", "-"), kind,
                   options.DEFAULTS[option], help, ("worker",), minimum=options.minimum(option))


_EVERYWHERE: tuple[Command, ...] = ("worker", "admin", "operator")

SETTINGS: tuple[Setting, ...] = (
    # the database, for every command that opens it
    Setting("database_url", ("DURAFLOW_DATABASE_URL",), "--database-url", "text", None,
            "`postgresql://user@host:5432/db`, or a SQLite file path (`sqlite:PATH` too)",
            _EVERYWHERE, required=True),
    Setting("schema", ("DURAFLOW_SCHEMA",), "--schema", "text", None,
            "PostgreSQL schema (one isolated Duraflow store); ignored for SQLite",
            _EVERYWHERE, shown_default="`public`"),
    Setting("pg_pool_max", ("DURAFLOW_PG_POOL_MAX",), "--pg-pool-max", "int", DEFAULT_POOL_MAX,
            "PostgreSQL connections of this process, plus one for LISTEN", _EVERYWHERE,
            minimum=1),
    # duraflow worker
    Setting("app", ("DURAFLOW_APP",), "--app", "text", None,
            "`module:callable` that registers on the runtime", ("worker",), required=True),
    Setting("worker_node_id", ("DURAFLOW_WORKER_NODE_ID", "POD_NAME", "HOSTNAME"),
            "--worker-node-id", "text", None,
            "this worker's identity: session ownership, worker registry", ("worker",)),
    Setting("tags", ("DURAFLOW_TAGS",), "--tags", "list", (),
            f"comma-separated, at most {MAX_WORKER_TAGS}: take only activities with these tags",
            ("worker",), item="tag", check=_check_tags),
    Setting("include_untagged", ("DURAFLOW_INCLUDE_UNTAGGED",), "--include-untagged", "bool",
            False, "with tags: also take untagged activities", ("worker",)),
    Setting("build_id", ("DURAFLOW_BUILD_ID",), "--build-id", "text", None,
            "the build this worker's code is (docs/rollouts.md): executions pin to it, "
            "activities it schedules run on it", ("worker",), check=_check_build_id),
    Setting("build_auto_promote", ("DURAFLOW_BUILD_AUTO_PROMOTE",), "--no-auto-promote", "bool",
            True, "a build the store has not seen becomes current at start (off: it waits "
            "for `duraflow builds promote`)", ("worker",)),
    _runtime("orchestration_concurrency", "turns at once (0: no orchestrations)"),
    _runtime("worker_concurrency", "activities at once (0: no activities)"),
    _runtime("max_sessions", "activity sessions held at most",
             option="max_sessions_per_runtime"),
    _runtime("session_idle_timeout_ms", "release a session idle this long", "ms"),
    _runtime("orchestrator_lock_timeout_ms", "a crashed worker's turns resume after this", "ms"),
    _runtime("worker_lock_timeout_ms", "a crashed worker's activities resume after this", "ms"),
    _runtime("heartbeat_interval_ms", "worker registry heartbeat; a killed worker counts as "
             "gone after three", "ms", option="worker_heartbeat_interval_ms"),
    _runtime("retention", "delete instances finished this long ago, with their "
             "sub-orchestrations (`30d`, `12h`, `90s` or ms; one worker at a time)",
             "duration", option="retention_ms"),
    Setting("grace_ms", ("DURAFLOW_GRACE_MS",), "--grace-ms", "ms", 25_000,
            "on SIGTERM, time for running work to finish", ("worker",), minimum=0),
    Setting("metrics_port", ("DURAFLOW_METRICS_PORT",), "--metrics-port", "int", 9464,
            "`/metrics`, `/healthz`, `/readyz` (0: off)", ("worker",), minimum=0,
            maximum=65535),
    Setting("metrics_host", ("DURAFLOW_METRICS_HOST",), "--metrics-host", "text", "0.0.0.0",
            "address the metrics port binds", ("worker",)),
    Setting("log_level", ("DURAFLOW_LOG_LEVEL",), "--log-level", "choice", "info",
            ", ".join(f"`{level}`" for level in LOG_LEVELS), ("worker",), choices=LOG_LEVELS),
    Setting("log_format", ("DURAFLOW_LOG_FORMAT",), "--log-format", "choice", "text",
            "`text`, or `json` (one object per line)", ("worker",), choices=LOG_FORMATS),
    # duraflow operator
    Setting("namespaces", ("DURAFLOW_WATCH_NAMESPACES",), "--namespaces", "list", (),
            "comma-separated namespaces to watch", ("operator",), item="namespace",
            shown_default="all namespaces"),
    Setting("metrics_port", ("DURAFLOW_OPERATOR_METRICS_PORT",), "--metrics-port", "int", 9465,
            "`/metrics`, `/healthz`, `/readyz` (0: off)", ("operator",), minimum=0,
            maximum=65535),
    Setting("leader_election", ("DURAFLOW_LEADER_ELECTION",), "--no-leader-election", "bool",
            True, "a Lease decides which replica acts (off: one replica only!)", ("operator",)),
    Setting("lease_namespace", ("POD_NAMESPACE", "DURAFLOW_LEASE_NAMESPACE"), None, "text",
            "default", "namespace of the Lease", ("operator",)),
    Setting("identity", ("POD_NAME", "HOSTNAME"), None, "text", None,
            "this replica's name as the Lease holder", ("operator",),
            shown_default="`pid-<process id>`"),
    Setting("kube_url", ("DURAFLOW_KUBE_URL",), "--kube-url", "text", None,
            "API server URL instead of in-cluster config / `KUBECONFIG`", ("operator",)),
    Setting("kube_token_file", ("DURAFLOW_KUBE_TOKEN_FILE",), "--kube-token-file", "text",
            None, "bearer token file sent to `--kube-url` (re-read once a minute and after a "
            "401); none: no credentials", ("operator",)),
    # the root `duraflow` parser, before the subcommand
    Setting("log_level", ("DURAFLOW_LOG_LEVEL",), "--log-level", "choice", "warning",
            ", ".join(f"`{level}`" for level in LOG_LEVELS), ("duraflow",),
            choices=LOG_LEVELS),
)


def settings_of(command: Command) -> tuple[Setting, ...]:
    return tuple(s for s in SETTINGS if command in s.commands)


# ─── Reading ──────────────────────────────────────────────────────────────────────────────


class SettingValues(Mapping[str, Any]):
    """A command's settings by name, and where each came from (for errors found later, such
    as an app that does not import)."""

    def __init__(self, values: dict[str, Any], sources: dict[str, str],
                 given: frozenset[str]) -> None:
        self._values = values
        self._sources = sources
        self._given = given

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def given(self, name: str) -> bool:
        """Whether a flag or variable set it (else it is the default)."""
        return name in self._given

    def source(self, name: str) -> str:
        """The flag or variable the value came from; the flag when it is the default."""
        return self._sources[name]


def read_settings(
    command: Command, env: Mapping[str, str], flags: Mapping[str, str] | None = None
) -> SettingValues:
    """``command``'s settings from ``flags`` (name → text, as given on the command line) and
    ``env`` (the caller's environment: only the CLI and the operator pass ``os.environ``).

    A blank flag or variable counts as not given. Required settings may be missing
    (``None``): the caller says how to supply them. Raises ``ConfigError`` on the first
    value that does not parse.
    """
    flags = flags or {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    given: set[str] = set()
    for setting in settings_of(command):
        text, source = _raw(setting, env, flags)
        sources[setting.name] = source
        if text is None:
            values[setting.name] = setting.default
        else:
            values[setting.name] = setting.parse(text, source)
            given.add(setting.name)
    return SettingValues(values, sources, frozenset(given))


def _raw(setting: Setting, env: Mapping[str, str],
         flags: Mapping[str, str]) -> tuple[str | None, str]:
    """The text and where it came from: the flag, else the first variable set; neither gives
    ``None`` and the flag (or first variable) as the place to set it."""
    where = setting.flag or setting.env[0]
    if flags.get(setting.name, "").strip():
        return flags[setting.name], where
    for name in setting.env:
        if env.get(name, "").strip():
            return env[name], name
    return None, where


# ─── Flags and docs, derived from the table ───────────────────────────────────────────────


_METAVARS: dict[Kind, str] = {"text": "VALUE", "bool": "BOOL", "int": "N", "ms": "MS",
                              "duration": "DURATION", "list": "A,B,...", "choice": "NAME"}


def add_flags(parser: Any, command: Command) -> None:
    """Add ``command``'s flags to ``parser`` (an ``ArgumentParser`` or argument group). Every
    flag keeps its text, so that a flag and its variable go through one parser and errors."""
    for setting in settings_of(command):
        if setting.flag is None:
            continue
        extra: dict[str, Any] = {"metavar": _METAVARS[setting.kind]}
        default = "required" if setting.required else f"default: {setting.describe_default()}"
        text = f"{setting.help} ({default}; env {setting.env[0]})"
        if setting.flag.startswith("--no-"):  # a switch that turns a default-on bool off
            extra = {"action": "store_const", "const": "false"}
            text = f"switch off: {text}"
        elif setting.kind == "bool":  # given alone it means "true"
            extra |= {"nargs": "?", "const": "true"}
        parser.add_argument(setting.flag, dest=setting.dest, default=None,
                            help=text.replace("`", "").replace("%", "%%"), **extra)


def given_flags(args: argparse.Namespace, command: Command) -> dict[str, str]:
    """The flags of ``command`` present on the command line, by setting name."""
    found: dict[str, str] = {}
    for setting in settings_of(command):
        value = getattr(args, setting.dest, None)
        if value is not None:
            found[setting.name] = str(value)
    return found


def markdown_table(command: Command) -> str:
    """``command``'s settings as the Markdown table the docs carry."""
    lines = ["| env | flag | default | meaning |", "|---|---|---|---|"]
    for s in settings_of(command):
        flag = f"`{s.flag}`" if s.flag else ""
        lines.append(f"| `{s.env[0]}` | {flag} | {s.describe_default()} | {s.help} |")
    return "\n".join(lines)
