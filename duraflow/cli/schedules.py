"""``duraflow schedules list | show | create | update | pause | resume | trigger | backfill |
delete``: durable schedules from the command line.

Each verb is one call of the public schedule API (``AsyncClient.create_schedule`` ...), so
the command and a program see the same rules and errors. Mistakes a person makes end as one
line: a bad expression, zone, duration or time is exit 2 (the schedule API's
``InvalidScheduleError`` names the field), an unknown schedule is exit 3, a schedule that
exists already is exit 1. Durations (``--every``, ``--catchup-window``, ``--jitter``) are
``90s``, ``1h30m`` or milliseconds; times (``--from``, ``--to``) are ISO 8601 (a zone or ``Z``;
UTC otherwise), epoch milliseconds, ``now`` or an age such as ``2h`` (that long ago).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from duraflow import ScheduleExistsError, ScheduleNotFoundError
from duraflow.cli import output
from duraflow.cli.admin import (
    EXIT_FAILED,
    EXIT_NOT_FOUND,
    EXIT_OK,
    EXIT_USAGE,
    common_options,
    fail,
    parse_json_data,
    run_admin,
)
from duraflow.cli.times import parse_time
from duraflow.core.durations import DurationError, format_duration_ms, parse_duration_ms

if TYPE_CHECKING:
    from duraflow import AsyncClient, ScheduleInfo

OVERLAPS = ("skip", "buffer_one", "buffer_all", "cancel_other", "allow_all")
LIST_COLUMNS = ("ID", "ORCHESTRATION", "SCHEDULE", "TIME ZONE", "OVERLAP", "PAUSED",
                "NEXT (UTC)", "LAST RUN (UTC)", "RUNNING", "MISSED")
Verb = Callable[["AsyncClient", argparse.Namespace], Awaitable[int]]


def add_parser(sub: Any) -> None:
    common = common_options()
    schedules = sub.add_parser("schedules", help="durable cron schedules: list, create, pause, "
                                                 "trigger, backfill ...")
    verbs = schedules.add_subparsers(dest="verb", required=True)

    def verb(name: str, action: Verb, help: str, with_id: bool = True) -> Any:
        parser = verbs.add_parser(name, parents=[common], help=help)
        if with_id:
            parser.add_argument("schedule_id", metavar="ID")
        parser.set_defaults(func=lambda args: run_admin(_guarded(action), args))
        return parser

    verb("list", list_schedules, "every schedule, with its next and last run", with_id=False)
    verb("show", show_schedule, "one schedule in full, with its recent runs")
    _spec_flags(verb("create", create_schedule, "create a schedule"), creating=True)
    _spec_flags(verb("update", update_schedule, "change a schedule's fields"), creating=False)
    verb("pause", pause_schedule, "stop a schedule's ticks").add_argument(
        "--note", default=None, help="why (shown by show)")
    verb("resume", resume_schedule, "tick again, from the next tick on")
    verb("trigger", trigger_schedule, "run now (the overlap policy applies)")
    backfill = verb("backfill", backfill_schedule, "run every tick of a past range, oldest first")
    backfill.add_argument("--from", dest="start", required=True, metavar="TIME",
                          help="first tick at or after TIME (ISO 8601, epoch ms, 2h = 2h ago)")
    backfill.add_argument("--to", dest="end", required=True, metavar="TIME",
                          help="ticks before TIME")
    backfill.add_argument("--overlap", choices=OVERLAPS, default=None,
                          help="policy for these ticks (default: the schedule's)")
    verb("delete", delete_schedule, "delete a schedule (its instances stay)")


def _spec_flags(parser: Any, creating: bool) -> None:
    parser.add_argument("--orchestration", required=creating, metavar="NAME",
                        help="orchestration each tick starts")
    timing = parser.add_mutually_exclusive_group(required=creating)
    timing.add_argument("--cron", metavar="EXPR",
                        help="5 fields, @hourly/@daily/@weekly/@monthly/@yearly or @every 90s")
    timing.add_argument("--every", metavar="DURATION", help="a fixed interval: 30s, 5m, 1h30m")
    parser.add_argument("--timezone", metavar="TZ", default="UTC" if creating else None,
                        help="IANA zone the cron fields are read in (default UTC)")
    parser.add_argument("--input", metavar="JSON", default=None,
                        help="the orchestration input, JSON (- reads stdin, @FILE a file)")
    parser.add_argument("--overlap", choices=OVERLAPS, default="skip" if creating else None,
                        help="a tick while the previous run still runs (default skip)")
    parser.add_argument("--catchup-window", metavar="DURATION",
                        default="60s" if creating else None,
                        help="fire ticks missed while no worker ran if this recent (default 60s)")
    parser.add_argument("--jitter", metavar="DURATION", default="0" if creating else None,
                        help="delay each tick by a stable random offset up to this")
    parser.add_argument("--version", metavar="V", default=None,
                        help="orchestration version (default: the latest registered)")
    if creating:
        parser.add_argument("--paused", action="store_true", help="create it paused")


def _guarded(action: Verb) -> Verb:
    """The schedule API's own errors as the command's exit codes."""
    async def run(client: AsyncClient, args: argparse.Namespace) -> int:
        try:
            return await action(client, args)
        except ScheduleNotFoundError:
            fail(EXIT_NOT_FOUND, f"schedule {args.schedule_id!r} not found")
        except ScheduleExistsError:
            fail(EXIT_FAILED, f"schedule {args.schedule_id!r} already exists (use update)")
    return run


def _duration(text: str, flag: str) -> int:
    try:
        return parse_duration_ms(text)
    except DurationError as exc:
        fail(EXIT_USAGE, f"{flag}: {exc}")


def _time(text: str, flag: str) -> int:
    try:
        return parse_time(text)
    except argparse.ArgumentTypeError as exc:
        fail(EXIT_USAGE, f"{flag}: {exc}")


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The spec flags given, as ``create_schedule`` / ``update_schedule`` keywords."""
    fields: dict[str, Any] = {}
    for flag, name in (("orchestration", "orchestration"), ("cron", "cron"),
                       ("timezone", "timezone"), ("overlap", "overlap"),
                       ("version", "version")):
        if getattr(args, flag) is not None:
            fields[name] = getattr(args, flag)
    if args.every is not None:
        fields["every_ms"] = _duration(args.every, "--every")
    if args.catchup_window is not None:
        fields["catchup_window_ms"] = _duration(args.catchup_window, "--catchup-window")
    if args.jitter is not None:
        fields["jitter_ms"] = _duration(args.jitter, "--jitter")
    if args.input is not None:
        fields["input"] = parse_json_data(args.input, "--input")
    return fields


def _timing(info: ScheduleInfo) -> str:
    if info.cron is not None:
        return info.cron
    return f"@every {format_duration_ms(info.every_ms or 0)}"


def _row(info: ScheduleInfo) -> tuple[str, ...]:
    last = info.last_runs[0].scheduled_at_ms if info.last_runs else None
    return (info.schedule_id, info.orchestration, _timing(info), info.timezone, info.overlap,
            "yes" if info.paused else "no",
            output.when(info.next_run_times_ms[0] if info.next_run_times_ms else None),
            output.when(last), str(len(info.running)), str(info.missed))


def _done(args: argparse.Namespace, info: ScheduleInfo | None, message: str) -> int:
    if args.json:
        output.print_json(info.to_dict() if info is not None else {
            "schedule_id": args.schedule_id, "action": args.verb})
    else:
        print(message)
    return EXIT_OK


async def list_schedules(client: AsyncClient, args: argparse.Namespace) -> int:
    infos = await client.list_schedules()
    if args.json:
        output.print_json([info.to_dict() for info in infos])
    elif not infos:
        print("no schedules")
    else:
        output.print_table(LIST_COLUMNS, (_row(info) for info in infos))
    return EXIT_OK


async def show_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    info = await client.describe_schedule(args.schedule_id)
    if args.json:
        output.print_json(info.to_dict())
        return EXIT_OK
    fields = [
        ("Schedule", info.schedule_id),
        ("Orchestration", f"{info.orchestration} {info.version or ''}".strip()),
        ("Input", output.clip(json.dumps(info.input))),
        ("When", f"{_timing(info)} ({info.timezone})"),
        ("Overlap", info.overlap),
        ("Catch-up window", f"{info.catchup_window_ms} ms"),
        ("Jitter", f"{info.jitter_ms} ms"),
        ("Paused", f"yes ({info.note})" if info.paused and info.note else
         "yes" if info.paused else "no"),
        ("Next runs", ", ".join(output.when(t) for t in info.next_run_times_ms) or "-"),
        ("Running", ", ".join(info.running) or "-"),
        ("Buffered", str(info.buffered)),
        ("Missed", str(info.missed)),
    ]
    output.print_fields(fields)
    if info.last_runs:
        print()
        output.print_table(
            ("INSTANCE", "SCHEDULED (UTC)", "STARTED (UTC)", "STATUS"),
            ((r.instance_id, output.when(r.scheduled_at_ms), output.when(r.started_at_ms),
              r.status) for r in info.last_runs),
            title="Recent runs")
    return EXIT_OK


async def create_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    fields = _fields(args)
    info = await client.create_schedule(
        args.schedule_id, fields.pop("orchestration"), fields.pop("input", None),
        paused=args.paused, **fields)
    when = output.when(info.next_run_times_ms[0]) if info.next_run_times_ms else "-"
    return _done(args, info, f"created schedule {info.schedule_id} ({_timing(info)}, "
                             f"{info.timezone}); next run {when} UTC")


async def update_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    fields = _fields(args)
    if not fields:
        fail(EXIT_USAGE, "nothing to update: give at least one of --orchestration, --cron, "
                         "--every, --timezone, --input, --overlap, --catchup-window, "
                         "--jitter, --version")
    info = await client.update_schedule(args.schedule_id, **fields)
    return _done(args, info, f"updated schedule {info.schedule_id}")


async def pause_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    await client.pause_schedule(args.schedule_id, args.note)
    return _done(args, None, f"paused schedule {args.schedule_id}")


async def resume_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    await client.resume_schedule(args.schedule_id)
    return _done(args, None, f"resumed schedule {args.schedule_id}")


async def trigger_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    await client.trigger_schedule(args.schedule_id)
    return _done(args, None, f"triggered schedule {args.schedule_id} (a worker starts the run)")


async def backfill_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    start, end = _time(args.start, "--from"), _time(args.end, "--to")
    await client.backfill_schedule(args.schedule_id, start, end, args.overlap)
    return _done(args, None, f"backfilling schedule {args.schedule_id}: ticks from "
                             f"{output.when(start)} to {output.when(end)} UTC")


async def delete_schedule(client: AsyncClient, args: argparse.Namespace) -> int:
    await client.delete_schedule(args.schedule_id)
    return _done(args, None, f"deleted schedule {args.schedule_id}")
