"""Re-record the golden histories: ``python -m tests.core.record_histories``.

Runs every orchestration of ``golden_orchestrations`` on a real runtime over a temporary
SQLite file and writes the committed history of each to ``histories/<name>.json``.
"""

from __future__ import annotations

import json
import pathlib
import tempfile

from duraflow import Client, Runtime, RuntimeOptions, SqliteProvider
from duraflow.bridge import run_sync
from tests.core.golden_orchestrations import ORCHESTRATIONS, register_activities

HERE = pathlib.Path(__file__).parent / "histories"


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        provider = SqliteProvider.open(f"{tmp}/golden.db")
        rt = Runtime(provider, RuntimeOptions(dispatcher_poll_interval_ms=10))
        register_activities(rt)
        for name, (fn, _) in ORCHESTRATIONS.items():
            rt.register_orchestration(name, fn)
        rt.start()
        client = Client(provider)
        try:
            for name, (_, payload) in ORCHESTRATIONS.items():
                client.start_orchestration(name, name, payload)
                if name == "race_with_event":
                    client.wait_for_status_change(name, 0, 10, 10_000)
                    client.raise_event(name, "go", {"who": "Linus"})
                result = client.wait_for_orchestration(name, 20_000)
                assert result.status == "Completed", (name, result)
                history = run_sync(provider.read_history(name, 1))
                document = {
                    "orchestration": name,
                    "input": payload,
                    "output": result.output,
                    "history": [json.loads(event.to_json()) for event in history],
                }
                (HERE / f"{name}.json").write_text(json.dumps(document, indent=1) + "\n")
        finally:
            rt.shutdown(1000)


if __name__ == "__main__":
    main()
