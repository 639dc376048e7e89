"""``duraflow replay-check``: would this code reproduce these histories? Nothing is written.

A team changes an orchestration and wants to know, before the change ships, whether the new
code can take over the executions already running (and whether it still reproduces the
finished ones). The command loads the app (``--app module:callable``, as ``duraflow worker``
does, without starting a runtime) and replays recorded histories against what it registers
(``duraflow.replay_history``): stored ones, read from the database (running instances and
the most recent finished ones, newest first, at most ``--sample`` per orchestration), or
exported ones (``--history-file``, the JSON of ``duraflow history ID --json``).

Per orchestration it prints how many histories were checked, reproduced and diverged, and
the first diverging event (index, expected, got). Exit 0: every history reproduced; 1: at
least one diverged (or names a version the app does not register); 2: bad input (a file
that is not a history, an app that does not import); 4: the database cannot be reached.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from duraflow.cli import output
from duraflow.cli.admin import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
    common_options,
    fail,
    positive,
    report,
    run_admin,
)

if TYPE_CHECKING:
    from duraflow import AsyncClient, ReplayCheck
    from duraflow.runtime.registrations import Registrations

DEFAULT_SAMPLE = 100


def add_parser(sub: Any) -> None:
    check = sub.add_parser(
        "replay-check", parents=[common_options()],
        help="replay recorded histories against an app's code (writes nothing)",
        description="Replay stored histories (--database-url) or exported ones "
                    "(--history-file) against the orchestrations an app registers; exit 1 "
                    "when any diverges.")
    check.add_argument("--app", required=True, metavar="MODULE:CALLABLE",
                       help="the callable that registers the code to check, as for "
                            "duraflow worker")
    check.add_argument("--history-file", action="extend", nargs="+", default=[],
                       metavar="FILE", help="JSON of `duraflow history ID --json` (one or "
                                            "many); without it, histories come from the "
                                            "database")
    check.add_argument("--orchestration", action="append", default=[], metavar="NAME",
                       help="only this orchestration (repeatable)")
    check.add_argument("--sample", type=positive, default=DEFAULT_SAMPLE, metavar="N",
                       help=f"stored histories per orchestration at most, newest first "
                            f"(default {DEFAULT_SAMPLE})")
    check.set_defaults(func=run)


# ─── What was found ───────────────────────────────────────────────────────────


@dataclass
class Tally:
    """The histories of one orchestration version and the first one that diverged."""

    name: str
    version: str
    checked: int = 0
    reproduced: int = 0
    diverged: int = 0
    unregistered: int = 0
    first: tuple[str, ReplayCheck] | None = None  # (where the history came from, its check)

    def add(self, source: str, check: ReplayCheck | None) -> None:
        self.checked += 1
        if check is None:
            self.unregistered += 1
        elif check.reproduced:
            self.reproduced += 1
        else:
            self.diverged += 1
            if self.first is None:
                self.first = (source, check)


@dataclass
class Findings:
    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)

    def add(self, name: str, version: str, source: str, check: ReplayCheck | None) -> None:
        key = (name, version)
        self.tallies.setdefault(key, Tally(name, version)).add(source, check)

    @property
    def failed(self) -> bool:
        return any(t.diverged or t.unregistered for t in self.tallies.values())


# ─── Running ──────────────────────────────────────────────────────────────────


def run(args: argparse.Namespace) -> int:
    try:
        registrations = load_registrations(args.app)
        if args.history_file:
            return show(check_files(registrations, args.history_file, args.orchestration),
                        args)
    except CliError as exc:
        return report(exc.code, exc.message)

    async def from_store(client: AsyncClient, parsed: argparse.Namespace) -> int:
        return show(await check_store(client, registrations, parsed), parsed)

    return run_admin(from_store, args)


def load_registrations(spec: str) -> Registrations:
    """The app's registrations, made on a bare ``Registrations`` (no store, no runtime)."""
    from duraflow.cli.worker_config import ConfigError, load_app
    from duraflow.runtime.registrations import Registrations

    try:
        register = load_app(spec, "--app")
    except ConfigError as exc:
        fail(EXIT_USAGE, str(exc))
    registrations = Registrations()
    try:
        register(registrations)
    except Exception as exc:
        fail(EXIT_USAGE, f"app {spec!r} failed while registering: {type(exc).__name__}: {exc}")
    if not registrations.orchestrations.names():
        fail(EXIT_USAGE, f"app {spec!r} registers no orchestration: nothing to check")
    return registrations


def _check(registrations: Registrations, history: Any, findings: Findings, source: str,
           wanted: list[str]) -> None:
    from duraflow.core.recorded import executions_of
    from duraflow.core.replay_check import check_execution, pick

    execution = pick(executions_of(history), None)
    started = execution.events[0].data
    name, version = str(started.get("name") or ""), str(started.get("version") or "")
    if wanted and name not in wanted:
        return
    fn = registrations.orchestrations.lookup(name, version)
    check = None if fn is None else check_execution(
        execution.events, lambda *_: fn, execution.instance_id, execution.execution_id)
    findings.add(name, version, execution.instance_id or source, check)


def check_files(registrations: Registrations, paths: Iterable[str],
                wanted: list[str]) -> Findings:
    findings = Findings()
    for path in paths:
        try:
            with open(path, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            fail(EXIT_USAGE, f"cannot read {path!r}: {exc.strerror or exc}")
        try:
            _check(registrations, text, findings, path, wanted)
        except ValueError as exc:  # HistoryFormatError included
            fail(EXIT_USAGE, f"{path}: {' '.join(str(exc).split())}")
    return findings


async def check_store(client: AsyncClient, registrations: Registrations,
                      args: argparse.Namespace) -> Findings:
    """The current execution of running and finished instances of the app's
    orchestrations, newest first, ``--sample`` per orchestration at most."""
    wanted = args.orchestration or registrations.orchestrations.names()
    taken: dict[str, int] = {}
    findings = Findings()
    for instance_id in await client.list_all_instances():
        if all(taken.get(name, 0) >= args.sample for name in wanted):
            break
        try:
            info = await client.get_instance_info(instance_id)
        except Exception:  # deleted since the listing: nothing to check
            continue
        name = info.orchestration_name
        if name not in wanted or taken.get(name, 0) >= args.sample:
            continue
        events = await client.read_execution_history(instance_id, info.current_execution_id)
        if not events:
            continue
        taken[name] = taken.get(name, 0) + 1
        history = {"instance_id": instance_id, "execution_id": info.current_execution_id,
                   "events": events}
        _check(registrations, history, findings, instance_id, [])
    return findings


# ─── Printing ─────────────────────────────────────────────────────────────────


def show(findings: Findings, args: argparse.Namespace) -> int:
    tallies = sorted(findings.tallies.values(), key=lambda t: (t.name, t.version))
    code = EXIT_FAILED if findings.failed else EXIT_OK
    if args.json:
        output.print_json({"ok": code == EXIT_OK,
                           "orchestrations": [_tally_dict(t) for t in tallies]})
        return code
    if not tallies:
        print("no histories to check")
        return code
    output.print_table(
        ("ORCHESTRATION", "VERSION", "CHECKED", "REPRODUCED", "DIVERGED", "UNREGISTERED"),
        ((t.name, t.version, str(t.checked), str(t.reproduced), str(t.diverged),
          str(t.unregistered)) for t in tallies))
    diverged = [t for t in tallies if t.first is not None]
    if diverged:
        print()
        output.print_table(
            ("ORCHESTRATION", "HISTORY", "EXECUTION", "INDEX", "EVENT", "EXPECTED", "GOT"),
            (_divergence_row(t) for t in diverged), title="First divergence")
    for t in tallies:
        if t.unregistered:
            print(f"{t.name} version {t.version or '-'}: not registered by the app "
                  f"({t.unregistered} histories cannot run on this code)")
    return code


def _divergence_row(tally: Tally) -> tuple[str, ...]:
    assert tally.first is not None
    source, check = tally.first
    d = check.divergence
    assert d is not None
    return (tally.name, source, str(check.execution_id), str(d.index),
            "-" if d.event_id is None else str(d.event_id), d.expected, d.got)


def _tally_dict(tally: Tally) -> dict[str, Any]:
    first = None
    if tally.first is not None:
        source, check = tally.first
        d = check.divergence
        assert d is not None
        first = {"history": source, "execution_id": check.execution_id, "index": d.index,
                 "event_id": d.event_id, "expected": d.expected, "got": d.got,
                 "reason": d.reason}
    return {"orchestration": tally.name, "version": tally.version, "checked": tally.checked,
            "reproduced": tally.reproduced, "diverged": tally.diverged,
            "unregistered": tally.unregistered, "first_divergence": first}

