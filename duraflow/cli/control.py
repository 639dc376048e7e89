"""``duraflow cancel | raise-event | enqueue | delete``: commands that change an instance.

Each checks that the instance exists first (exit 3 otherwise) and refuses, with exit 1, what
would silently do nothing: signalling or cancelling an instance that already finished is
acknowledged by the runtime without effect, which an operator would mistake for success.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from duraflow import ProviderError, Status
from duraflow.cli.admin import (
    EXIT_FAILED,
    common_options,
    done,
    fail,
    parse_json_data,
    require_instance,
    run_admin,
)

if TYPE_CHECKING:
    from duraflow import AsyncClient

DATA_HELP = "JSON value (quote strings: '\"yes\"'); - reads stdin, @FILE reads a file"


def add_parser(sub: Any) -> None:
    common = common_options()

    cancel = sub.add_parser("cancel", parents=[common], help="cancel a running instance")
    cancel.add_argument("instance_id", metavar="ID")
    cancel.add_argument("--reason", default=None, help="recorded as the cancellation reason")
    cancel.set_defaults(func=lambda args: run_admin(cancel_instance, args))

    event = sub.add_parser("raise-event", parents=[common],
                           help="deliver an external event to a running instance")
    event.add_argument("instance_id", metavar="ID")
    event.add_argument("name", metavar="NAME", help="event name the orchestration waits for")
    event.add_argument("data", metavar="DATA", help=DATA_HELP)
    event.set_defaults(func=lambda args: run_admin(raise_event, args))

    enqueue = sub.add_parser("enqueue", parents=[common],
                             help="put a message on a running instance's event queue")
    enqueue.add_argument("instance_id", metavar="ID")
    enqueue.add_argument("queue", metavar="QUEUE", help="queue name the orchestration dequeues")
    enqueue.add_argument("data", metavar="DATA", help=DATA_HELP)
    enqueue.set_defaults(func=lambda args: run_admin(enqueue_message, args))

    delete = sub.add_parser("delete", parents=[common],
                            help="delete an instance with its sub-orchestrations and history")
    delete.add_argument("instance_id", metavar="ID")
    delete.add_argument("--force", action="store_true",
                        help="also delete a running instance (its in-flight work is dropped)")
    delete.set_defaults(func=lambda args: run_admin(delete_instance, args))


async def _require_running(client: AsyncClient, instance_id: str, doing: str) -> None:
    status = await require_instance(client, instance_id)
    if status in Status.TERMINAL:
        fail(EXIT_FAILED, f"instance {instance_id!r} is already {status}; {doing}")


async def cancel_instance(client: AsyncClient, args: argparse.Namespace) -> int:
    await _require_running(client, args.instance_id, "nothing to cancel")
    await client.cancel_instance(args.instance_id, args.reason)
    reason = f" (reason: {args.reason})" if args.reason else ""
    return done(args, {"instance_id": args.instance_id, "action": "cancel",
                        "reason": args.reason},
                 f"cancellation requested for {args.instance_id}{reason}")


async def raise_event(client: AsyncClient, args: argparse.Namespace) -> int:
    data = parse_json_data(args.data, "DATA")
    await _require_running(client, args.instance_id, "the event would be ignored")
    await client.raise_event(args.instance_id, args.name, data)
    return done(args, {"instance_id": args.instance_id, "action": "raise-event",
                        "event_name": args.name, "data": data},
                 f"event {args.name!r} raised on {args.instance_id}")


async def enqueue_message(client: AsyncClient, args: argparse.Namespace) -> int:
    data = parse_json_data(args.data, "DATA")
    await _require_running(client, args.instance_id, "the message would be ignored")
    await client.enqueue_event(args.instance_id, args.queue, data)
    return done(args, {"instance_id": args.instance_id, "action": "enqueue",
                        "queue": args.queue, "data": data},
                 f"message enqueued on {args.instance_id} queue {args.queue!r}")


async def delete_instance(client: AsyncClient, args: argparse.Namespace) -> int:
    await require_instance(client, args.instance_id)
    try:
        result = await client.delete_instance(args.instance_id, args.force)
    except ProviderError as exc:  # running without --force, or not a root instance
        fail(EXIT_FAILED, str(exc).replace("Use force=true", "Use --force"))
    return done(
        args,
        {"instance_id": args.instance_id, "action": "delete",
         "instances_deleted": result.instances_deleted,
         "executions_deleted": result.executions_deleted,
         "events_deleted": result.events_deleted,
         "queue_messages_deleted": result.queue_messages_deleted},
        f"deleted {args.instance_id}: {result.instances_deleted} instance(s), "
        f"{result.executions_deleted} execution(s), {result.events_deleted} event(s), "
        f"{result.queue_messages_deleted} queued message(s)",
    )
