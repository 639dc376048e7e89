"""``duraflow prune``: reclaim storage, in one of two modes.

* Default: remove **old executions** (the history left behind by continue-as-new) through
  ``prune_executions_bulk``. An instance's current execution and any running execution are
  never touched, so this is safe on live instances; instances themselves stay. With
  ``--keep-last N`` the newest N executions of each instance stay; with
  ``--completed-before TIME`` only executions that finished before TIME go. Every instance
  (or each ``--instance``) is processed, in batches of ``BATCH`` ids per transaction.
* ``--delete-instances``: delete **whole finished instances** (Completed or Failed roots,
  with their sub-orchestrations, history and KV) through ``delete_instance_bulk``. Running
  instances are skipped. Because this loses data, it needs ``--completed-before`` or
  ``--instance`` (``--completed-before now`` means every finished instance).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from duraflow import DeleteInstanceResult, InstanceFilter, PruneOptions, PruneResult, Status
from duraflow.cli import output
from duraflow.cli.admin import (
    EXIT_OK,
    EXIT_USAGE,
    common_options,
    fail,
    require_instance,
    run_admin,
)
from duraflow.cli.times import parse_time

if TYPE_CHECKING:
    from duraflow import AsyncClient

BATCH = 500
DESCRIPTION = """\
Default: remove old executions (left behind by continue-as-new). The current execution and
running executions are never touched; no instance disappears. No options keeps only each
instance's current execution; --keep-last N keeps the newest N; --completed-before TIME
removes only executions that finished before TIME.

--delete-instances: delete whole Completed/Failed root instances (with sub-orchestrations,
history and KV); running instances are skipped. Needs --completed-before or --instance
(--completed-before now deletes every finished instance).

TIME: now, an age (30d, 12h, 90m, 45s, 2w, 1h30m), an ISO date or time (UTC unless stated), or
epoch milliseconds.
"""


def _keep_last(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more (1 keeps only the current "
                                         f"execution), got {value}")
    return value


def add_parser(sub: Any) -> None:
    prune = sub.add_parser(
        "prune", parents=[common_options()],
        help="remove old executions, or whole finished instances",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    prune.add_argument("--completed-before", type=parse_time, default=None, metavar="TIME",
                       help="only what finished before TIME (now, 30d, 12h, 2026-12-01, "
                            "2026-12-01T08:00:00Z, epoch ms)")
    prune.add_argument("--keep-last", type=_keep_last, default=None, metavar="N",
                       help="keep the newest N executions of each instance")
    prune.add_argument("--instance", action="append", default=None, metavar="ID",
                       dest="instances", help="only this instance (repeatable)")
    prune.add_argument("--delete-instances", action="store_true",
                       help="delete whole finished instances instead of old executions")
    prune.set_defaults(func=lambda args: run_admin(prune_command, args))


async def prune_command(client: AsyncClient, args: argparse.Namespace) -> int:
    for instance_id in args.instances or []:
        await require_instance(client, instance_id)
    if args.delete_instances:
        data = await _delete_finished(client, args)
    else:
        data = await _prune_executions(client, args)
    if args.json:
        output.print_json(data)
    elif args.delete_instances:
        print(f"deleted {data['instances_deleted']} finished instance(s): "
              f"{data['executions_deleted']} execution(s), {data['events_deleted']} event(s), "
              f"{data['queue_messages_deleted']} queued message(s)")
        if data["skipped_running"]:
            print("skipped (still running): " + ", ".join(data["skipped_running"]))
    else:
        print(f"pruned {data['executions_deleted']} old execution(s) "
              f"({data['events_deleted']} event(s)) across {data['instances_processed']} "
              "instance(s)")
    return EXIT_OK


async def _prune_executions(client: AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    # The cut-off goes in the options (per execution), not the filter, which would select
    # instances by when their *current* execution finished and so skip live instances.
    options = PruneOptions(keep_last=args.keep_last, completed_before=args.completed_before)
    ids = args.instances or await client.list_all_instances()
    total = PruneResult()
    for start in range(0, len(ids), BATCH):
        batch = ids[start:start + BATCH]
        result = await client.prune_executions_bulk(
            InstanceFilter(instance_ids=batch, limit=len(batch)), options)
        total.instances_processed += result.instances_processed
        total.executions_deleted += result.executions_deleted
        total.events_deleted += result.events_deleted
    return {"mode": "executions", "instances_processed": total.instances_processed,
            "executions_deleted": total.executions_deleted,
            "events_deleted": total.events_deleted}


async def _delete_finished(client: AsyncClient, args: argparse.Namespace) -> dict[str, Any]:
    if args.keep_last is not None:
        fail(EXIT_USAGE, "--keep-last applies to executions, not to --delete-instances")
    if args.completed_before is None and not args.instances:
        fail(EXIT_USAGE, "--delete-instances needs --completed-before TIME or --instance ID "
                         "(--completed-before now deletes every finished instance)")
    total = DeleteInstanceResult()
    while True:  # each batch deletes what it selects, so the next one selects new roots
        result = await client.delete_instance_bulk(InstanceFilter(
            instance_ids=args.instances, completed_before=args.completed_before, limit=BATCH))
        if result.instances_deleted == 0:
            break
        total.instances_deleted += result.instances_deleted
        total.executions_deleted += result.executions_deleted
        total.events_deleted += result.events_deleted
        total.queue_messages_deleted += result.queue_messages_deleted
    # Named instances that are still there were running: say so rather than stay silent.
    skipped = [i for i in args.instances or []
               if (await client.get_status(i)).status != Status.NOT_FOUND]
    return {"mode": "instances", "instances_deleted": total.instances_deleted,
            "executions_deleted": total.executions_deleted,
            "events_deleted": total.events_deleted,
            "queue_messages_deleted": total.queue_messages_deleted,
            "skipped_running": skipped}
