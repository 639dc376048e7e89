"""Bad worker configuration stops the command at once with ONE clear line and exit code 2.

A pod log is read by someone who did not write the configuration: the line must name the
flag or env variable and what is wrong, and there must be no traceback.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys

import pytest

from duraflow.cli import build_parser, main
from duraflow.cli.worker_config import ConfigError, load_config
from tests.worker.support import ROOT, free_port

APP = "tests.worker.app:register"


def run_worker(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["worker", *args])
    err = capsys.readouterr().err
    return code, err


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--worker-concurrency", "eight"), "--worker-concurrency must be a whole number, "
                                             "got 'eight'"),
        (("--orchestration-concurrency", "-1"), "--orchestration-concurrency must be >= 0"),
        (("--tags", "a,b,c,d,e,f"), "--tags lists 6 tags; a worker takes at most 5"),
        (("--tags", "gpu,,cpu"), "--tags has an empty tag"),
        (("--tags", "gpu,gpu"), "--tags lists gpu more than once"),
        (("--include-untagged", "maybe"), "--include-untagged must be true or false"),
        (("--metrics-port", "70000"), "--metrics-port must be between 0 and 65535"),
        (("--grace-ms", "soon"), "--grace-ms must be a whole number"),
        (("--log-format", "xml"), "--log-format must be one of text, json"),
        (("--log-level", "loud"), "--log-level must be one of debug, info"),
        (("--app", "no_such_module_xyz:register"),
         "--app: cannot import module 'no_such_module_xyz': ModuleNotFoundError"),
        (("--app", "tests.worker.app:missing"),
         "--app: module 'tests.worker.app' has no attribute 'missing'"),
        (("--app", "tests.worker.app:not_callable"), "is a int, not a callable"),
        (("--app", "not a module"), "--app must be module:callable"),
        (("--session-idle-timeout-ms", "10"), "session_idle_timeout_ms (10) must exceed"),
        (("--build-id", "v1 final"), "--build-id must be 1-63 characters of letters, digits"),
        (("--build-id", "x" * 64), "--build-id must be 1-63 characters"),
        (("--retention", "a month"), "--retention must be a whole number of milliseconds or a "
                                     "duration such as 90s"),
        (("--retention", "500"), "--retention must be at least 1000 ms, got '500'"),
    ],
)
def test_a_bad_value_is_one_line_naming_its_flag(
    capsys: pytest.CaptureFixture[str], args: tuple[str, ...], expected: str
) -> None:
    base = ["--database-url", "sqlite::memory:", "--app", APP]
    code, err = run_worker(capsys, *base, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("duraflow worker: error: ")
    assert expected in lines[0]


def test_env_variables_are_named_when_they_are_the_source(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DURAFLOW_DATABASE_URL", "sqlite::memory:")
    monkeypatch.setenv("DURAFLOW_APP", APP)
    monkeypatch.setenv("DURAFLOW_WORKER_CONCURRENCY", "4x")
    code, err = run_worker(capsys)
    assert code == 2
    assert "DURAFLOW_WORKER_CONCURRENCY must be a whole number, got '4x'" in err


def test_missing_database_and_app_are_reported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("DURAFLOW_DATABASE_URL", raising=False)
    monkeypatch.delenv("DURAFLOW_APP", raising=False)
    code, err = run_worker(capsys, "--app", APP)
    assert code == 2 and "no database: set DURAFLOW_DATABASE_URL" in err
    code, err = run_worker(capsys, "--database-url", "sqlite::memory:")
    assert code == 2 and "no app: set DURAFLOW_APP" in err


def parse(*args: str) -> argparse.Namespace:
    return build_parser().parse_args(["worker", *args])


def test_flags_win_over_env_and_defaults_follow_the_interface() -> None:
    env = {"DURAFLOW_DATABASE_URL": "sqlite::memory:", "DURAFLOW_APP": APP,
           "DURAFLOW_WORKER_CONCURRENCY": "3", "DURAFLOW_TAGS": "gpu, cpu",
           "DURAFLOW_INCLUDE_UNTAGGED": "true", "POD_NAME": "pool-a-2", "HOSTNAME": "host"}
    config = load_config(parse("--worker-concurrency", "5"), env)
    assert config.worker_concurrency == 5
    assert config.tag_filter.mode == "default_and" and config.tag_filter.tags == ("gpu", "cpu")
    assert config.worker_node_id == "pool-a-2"
    assert config.metrics_port == 9464 and config.grace_ms == 25_000
    assert (config.log_level, config.log_format) == ("info", "text")
    no_pod = {k: v for k, v in env.items() if k != "POD_NAME"}
    assert load_config(parse(), no_pod).worker_node_id == "host"
    assert load_config(parse("--worker-node-id", "n1"), env).worker_node_id == "n1"
    only_tags = {**env, "DURAFLOW_INCLUDE_UNTAGGED": ""}
    assert load_config(parse(), only_tags).tag_filter.mode == "tags"
    switched = load_config(parse("--tags", "gpu", "--include-untagged"), only_tags)
    assert switched.tag_filter.mode == "default_and"
    untagged = {**env, "DURAFLOW_TAGS": ""}
    assert load_config(parse(), untagged).tag_filter.mode == "default_only"
    with pytest.raises(ConfigError, match="DURAFLOW_TAGS"):
        load_config(parse(), {**env, "DURAFLOW_TAGS": ","})


def test_the_build_and_its_promotion_come_from_flags_or_env() -> None:
    env = {"DURAFLOW_DATABASE_URL": "sqlite::memory:", "DURAFLOW_APP": APP}
    plain = load_config(parse(), env)
    assert (plain.build_id, plain.build_auto_promote) == (None, True)
    built = {**env, "DURAFLOW_BUILD_ID": "img-3f2a", "DURAFLOW_BUILD_AUTO_PROMOTE": "false"}
    config = load_config(parse(), built)
    assert (config.build_id, config.build_auto_promote) == ("img-3f2a", False)
    flagged = load_config(parse("--build-id", "v2", "--no-auto-promote"), env)
    assert (flagged.build_id, flagged.build_auto_promote) == ("v2", False)


def test_retention_is_a_duration_that_reaches_the_runtime_options() -> None:
    from duraflow.cli.worker import _options

    env = {"DURAFLOW_DATABASE_URL": "sqlite::memory:", "DURAFLOW_APP": APP}
    assert load_config(parse(), env).retention_ms is None
    assert load_config(parse(), {**env, "DURAFLOW_RETENTION": "12h"}).retention_ms == 43_200_000
    config = load_config(parse("--retention", "30d"), {**env, "DURAFLOW_RETENTION": "12h"})
    assert config.retention_ms == 30 * 86_400_000
    assert _options(config).retention_ms == 30 * 86_400_000


def test_an_unreachable_database_is_one_line_naming_host_and_port() -> None:
    port = free_port()  # nothing listens there
    proc = subprocess.run(
        [sys.executable, "-m", "duraflow.cli", "worker", "--app", APP,
         "--database-url", f"postgresql://postgres@127.0.0.1:{port}/db",
         "--metrics-port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"127.0.0.1:{port}" in lines[0] and "connection refused" in lines[0]
    assert "Traceback" not in proc.stderr


def test_an_app_that_raises_while_registering_is_one_line() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "duraflow.cli", "worker", "--app", "tests.worker.app:broken",
         "--database-url", "sqlite::memory:", "--metrics-port", "0"],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert ("app 'tests.worker.app:broken' failed while registering: RuntimeError: "
            "API_KEY is not set") in lines[0]


def test_a_metrics_port_in_use_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "duraflow.cli", "worker", "--app", APP,
             "--database-url", "sqlite::memory:", "--metrics-host", "127.0.0.1",
             "--metrics-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=60,
        )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert f"cannot serve metrics on 127.0.0.1:{port}" in lines[0]
