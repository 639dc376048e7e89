"""``duraflow instances list|show|history``, ``duraflow history`` and ``duraflow tree``:
read-only views of instances, answering first "is it done, did it fail, with what" (and
``instances move``, whose command lives with the other build commands in ``builds``).
"""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from duraflow import Status
from duraflow.cli import builds, output
from duraflow.cli.admin import (
    EXIT_OK,
    EXIT_USAGE,
    common_options,
    fail,
    non_negative,
    positive,
    require_instance,
    run_admin,
)

if TYPE_CHECKING:
    from duraflow import AsyncClient, Event, ExecutionInfo, InstanceInfo

STATUSES = Status.EXECUTION_STATUSES
DEFAULT_LIMIT = 100
LIST_COLUMNS = ("ID", "ORCHESTRATION", "VERSION", "STATUS", "CREATED (UTC)", "UPDATED (UTC)",
                "OUTPUT / ERROR", "BUILD")


def add_parser(sub: Any) -> None:
    common = common_options()
    instances = sub.add_parser("instances", help="list and inspect orchestration instances")
    verbs = instances.add_subparsers(dest="verb", required=True)

    listing = verbs.add_parser("list", parents=[common], help="instances, newest first")
    listing.add_argument("--status", type=_status, help="only this status: " + ", ".join(STATUSES))
    listing.add_argument("--limit", type=non_negative, default=DEFAULT_LIMIT,
                         help=f"at most N rows (default {DEFAULT_LIMIT}; 0 = all)")
    listing.set_defaults(func=lambda args: run_admin(list_instances, args))

    show = verbs.add_parser("show", parents=[common], help="one instance in full")
    show.add_argument("instance_id", metavar="ID")
    show.set_defaults(func=lambda args: run_admin(show_instance, args))

    for parent in (verbs, sub):  # `instances history ID` and the short `history ID`
        history = parent.add_parser("history", parents=[common],
                                    help="the history events of an instance")
        history.add_argument("instance_id", metavar="ID")
        history.add_argument("--execution", type=positive, default=None, metavar="N",
                             help="execution to show (default: the current one)")
        history.set_defaults(func=lambda args: run_admin(show_history, args))

    builds.add_move_parser(verbs, common)

    tree = sub.add_parser("tree", parents=[common],
                          help="an instance and its sub-orchestrations")
    tree.add_argument("instance_id", metavar="ID")
    tree.set_defaults(func=lambda args: run_admin(show_tree, args))


def _status(text: str) -> Status:
    for status in STATUSES:
        if text.lower() == status.lower():
            return status
    raise argparse.ArgumentTypeError(f"unknown status {text!r}; one of {', '.join(STATUSES)}")


# ─── Shaping ──────────────────────────────────────────────────────────────────


def instance_dict(info: InstanceInfo) -> dict[str, Any]:
    """An instance as JSON: ``output`` decoded when completed, ``error`` in full if failed."""
    failed = info.status == Status.FAILED
    return {
        "instance_id": info.instance_id,
        "orchestration_name": info.orchestration_name,
        "orchestration_version": info.orchestration_version,
        "status": info.status,
        "current_execution_id": info.current_execution_id,
        "parent_instance_id": info.parent_instance_id,
        "created_at": info.created_at,
        "updated_at": info.updated_at,
        "output": None if failed else output.decode(info.output),
        "error": info.output if failed else None,
        "build_id": info.build_id,
    }


def instance_row(info: InstanceInfo) -> tuple[str, ...]:
    if info.status == Status.FAILED:
        result = output.clip(output.error_summary(info.output))
    else:
        result = output.clip(info.output)
    return (info.instance_id, info.orchestration_name, info.orchestration_version or "",
            info.status, output.when(info.created_at), output.when(info.updated_at), result,
            info.build_id or "-")


def execution_dict(execution: ExecutionInfo) -> dict[str, Any]:
    failed = execution.status == Status.FAILED
    return {
        "execution_id": execution.execution_id,
        "status": execution.status,
        "started_at": execution.started_at,
        "completed_at": execution.completed_at,
        "event_count": execution.event_count,
        "output": None if failed else output.decode(execution.output),
        "error": execution.output if failed else None,
        "build_id": execution.build_id,
    }


def event_dict(event: Event) -> dict[str, Any]:
    """An event as JSON: duroxide's display ``data``, and under ``recorded`` the event as
    stored, which ``duraflow replay-check --history-file`` and ``replay_history`` replay
    (the display form leaves out sessions, tags, KV values and more)."""
    return {
        "event_id": event.event_id,
        "kind": event.kind,
        "source_event_id": event.source_event_id,
        "timestamp_ms": event.timestamp_ms,
        "data": output.decode(event.data),
        "recorded": None if event.recorded is None else json.loads(event.recorded.to_json()),
    }


# ─── Commands ─────────────────────────────────────────────────────────────────


async def list_instances(client: AsyncClient, args: argparse.Namespace) -> int:
    if args.status is None:
        ids = await client.list_all_instances()
    else:
        ids = await client.list_instances_by_status(args.status)
    if args.limit:
        ids = ids[: args.limit]
    infos = []
    for instance_id in ids:
        try:
            infos.append(await client.get_instance_info(instance_id))
        except Exception:  # deleted between the listing and this read: not worth a failure
            if (await client.get_status(instance_id)).status != Status.NOT_FOUND:
                raise
    if args.json:
        output.print_json([instance_dict(info) for info in infos])
    elif not infos:
        print("no instances" + (f" with status {args.status}" if args.status else ""))
    else:
        output.print_table(LIST_COLUMNS, (instance_row(info) for info in infos))
    return EXIT_OK


async def show_instance(client: AsyncClient, args: argparse.Namespace) -> int:
    await require_instance(client, args.instance_id)
    info = await client.get_instance_info(args.instance_id)
    status = await client.get_status(args.instance_id)
    executions = [await client.get_execution_info(args.instance_id, n)
                  for n in await client.list_executions(args.instance_id)]
    stats = await client.get_orchestration_stats(args.instance_id)
    if args.json:
        data = instance_dict(info)
        data["custom_status"] = status.custom_status
        data["custom_status_version"] = status.custom_status_version
        data["executions"] = [execution_dict(e) for e in executions]
        data["stats"] = None if stats is None else {
            "history_event_count": stats.history_event_count,
            "history_size_bytes": stats.history_size_bytes,
            "queue_pending_count": stats.queue_pending_count,
            "kv_user_key_count": stats.kv_user_key_count,
            "kv_total_value_bytes": stats.kv_total_value_bytes,
        }
        output.print_json(data)
        return EXIT_OK
    fields = [
        ("Instance", info.instance_id),
        ("Orchestration", f"{info.orchestration_name} {info.orchestration_version or ''}".strip()),
        ("Status", info.status),
        ("Custom status", status.custom_status or "-"),
        ("Execution", str(info.current_execution_id)),
        ("Build", info.build_id or "-"),
        ("Parent", info.parent_instance_id or "-"),
        ("Created", output.when(info.created_at) + " UTC"),
        ("Updated", output.when(info.updated_at) + " UTC"),
    ]
    if info.status == Status.FAILED:
        fields.append(("Error", info.output or ""))
    elif info.status == Status.COMPLETED:
        fields.append(("Output", info.output or "null"))
    if stats is not None:
        fields.append(("History", f"{stats.history_event_count} events, "
                                  f"{stats.history_size_bytes} bytes"))
        fields.append(("Pending messages", str(stats.queue_pending_count)))
    output.print_fields(fields)
    if len(executions) > 1:
        print()
        output.print_table(
            ("EXECUTION", "STATUS", "STARTED (UTC)", "COMPLETED (UTC)", "EVENTS", "BUILD",
             "OUTPUT / ERROR"),
            ((str(e.execution_id), e.status, output.when(e.started_at),
              output.when(e.completed_at), str(e.event_count), e.build_id or "-",
              output.clip(output.error_summary(e.output) if e.status == Status.FAILED
                          else e.output))
             for e in executions),
            title="Executions",
        )
    return EXIT_OK


async def show_history(client: AsyncClient, args: argparse.Namespace) -> int:
    await require_instance(client, args.instance_id)
    executions = await client.list_executions(args.instance_id)
    execution = args.execution or (executions[-1] if executions else 1)
    if execution not in executions:
        fail(EXIT_USAGE, f"instance {args.instance_id!r} has no execution {execution} "
                         f"(it has {', '.join(map(str, executions)) or 'none'})")
    events = await client.read_execution_history(args.instance_id, execution)
    if args.json:
        output.print_json({"instance_id": args.instance_id, "execution_id": execution,
                           "events": [event_dict(e) for e in events]})
        return EXIT_OK
    output.print_table(
        ("#", "KIND", "SOURCE", "TIME (UTC)", "DATA"),
        ((str(e.event_id), e.kind, "" if e.source_event_id is None else str(e.source_event_id),
          output.when(e.timestamp_ms),
          output.clip(output.error_summary(e.data) if "Failed" in e.kind else e.data))
         for e in events),
        title=f"{args.instance_id}, execution {execution}",
    )
    return EXIT_OK


async def show_tree(client: AsyncClient, args: argparse.Namespace) -> int:
    from rich.text import Text
    from rich.tree import Tree

    await require_instance(client, args.instance_id)
    tree = await client.get_instance_tree(args.instance_id)
    infos = {i: await client.get_instance_info(i) for i in tree.all_ids}
    children: dict[str, list[str]] = {i: [] for i in tree.all_ids}
    for instance_id in tree.all_ids[1:]:
        parent = infos[instance_id].parent_instance_id
        children[parent if parent in children else tree.root_id].append(instance_id)

    def as_dict(instance_id: str) -> dict[str, Any]:
        info = infos[instance_id]
        return {"instance_id": instance_id, "orchestration_name": info.orchestration_name,
                "orchestration_version": info.orchestration_version, "status": info.status,
                "children": [as_dict(child) for child in children[instance_id]]}

    def label(instance_id: str) -> Text:
        info = infos[instance_id]
        version = info.orchestration_version or ""
        return Text(f"{instance_id}  {info.orchestration_name} {version}  ({info.status})")

    if args.json:
        output.print_json(as_dict(tree.root_id))
        return EXIT_OK
    root = Tree(label(tree.root_id))
    pending = [(root, tree.root_id)]
    while pending:
        node, instance_id = pending.pop(0)
        for child in children[instance_id]:
            pending.append((node.add(label(child)), child))
    output.print_renderable(root)
    return EXIT_OK
