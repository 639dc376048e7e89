"""One table of settings, one parser: the docs, ``--help`` and the values all come from it.

``duraflow.config.SETTINGS`` lists every setting the ``duraflow`` command and the operator
read. These tests keep the docs' tables equal to it, check that each kind of value is read
the same way wherever it comes from, and that the worker's runtime defaults are
``RuntimeOptions``' own.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from duraflow import RuntimeOptions
from duraflow.cli import build_parser
from duraflow.config import (
    SETTINGS,
    ConfigError,
    markdown_table,
    parse_bool,
    parse_choice,
    parse_duration,
    parse_int,
    parse_list,
    read_settings,
    settings_of,
)
from duraflow.core.durations import format_duration_ms

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(("doc", "command"), [
    ("worker.md", "worker"), ("cli.md", "admin"), ("cli.md", "duraflow"),
    ("operator.md", "operator")])
def test_the_docs_show_the_settings_table(doc: str, command: str) -> None:
    text = (DOCS / doc).read_text()
    assert markdown_table(command) in text, (
        f"docs/{doc} is out of date; paste duraflow.config.markdown_table({command!r})")


@pytest.mark.parametrize(("argv", "command"), [
    (["worker"], "worker"), (["instances", "list"], "admin"), (["operator"], "operator"),
    ([], "duraflow")])
def test_help_names_every_flag_and_variable(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args([*argv, "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for setting in settings_of(command):
        if setting.flag is not None:
            assert setting.flag in shown and f"env {setting.env[0]}" in shown


@pytest.mark.parametrize("text", ["1", "true", "Yes", " on ", "TRUE"])
def test_true_is_spelled_one_way_everywhere(text: str) -> None:
    assert parse_bool(text, "X") is True


@pytest.mark.parametrize("text", ["0", "false", "No", "off"])
def test_false_is_spelled_one_way_everywhere(text: str) -> None:
    assert parse_bool(text, "X") is False


def test_a_value_that_is_not_a_boolean_is_an_error_not_false() -> None:
    with pytest.raises(ConfigError, match="DURAFLOW_LEADER_ELECTION must be true or false, "
                                          "got 'flase'"):
        parse_bool("flase", "DURAFLOW_LEADER_ELECTION")


def test_numbers_lists_and_choices_name_their_source() -> None:
    assert parse_int(" 7 ", "--n", 0, 10) == 7
    with pytest.raises(ConfigError, match="--n must be a whole number, got 'x'"):
        parse_int("x", "--n")
    with pytest.raises(ConfigError, match="--n must be between 0 and 10, got 11"):
        parse_int("11", "--n", 0, 10)
    with pytest.raises(ConfigError, match="--n must be >= 1, got 0"):
        parse_int("0", "--n", 1)
    assert parse_list("a, b", "--l") == ("a", "b")
    with pytest.raises(ConfigError, match="--l has an empty tag in 'a,,b'"):
        parse_list("a,,b", "--l", "tag")
    with pytest.raises(ConfigError, match="--l lists a more than once"):
        parse_list("a,b,a", "--l")
    assert parse_choice("WARN", "--c", ("info", "warning")) == "warning"
    with pytest.raises(ConfigError, match="--c must be one of info, warning, got 'loud'"):
        parse_choice("loud", "--c", ("info", "warning"))


@pytest.mark.parametrize(("text", "ms"), [
    ("30d", 30 * 86_400_000), ("12h", 12 * 3_600_000), ("90s", 90_000), ("1h30m", 5_400_000),
    ("250ms", 250), ("2500", 2500), (" 2W ", 14 * 86_400_000)])
def test_durations_take_units_or_plain_milliseconds(text: str, ms: int) -> None:
    assert parse_duration(text, "--retention") == ms
    assert parse_duration(format_duration_ms(ms), "--retention") == ms  # shown as it is read


@pytest.mark.parametrize("text", ["", "30 days", "-5d", "1.5h", "1h1h", "h", "10x", "30d!"])
def test_a_bad_duration_names_its_source_and_the_spellings(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--retention must be a whole number of "
                                          r"milliseconds or a duration such as 90s"):
        parse_duration(text, "--retention")
    with pytest.raises(ConfigError, match="--retention must be at least 1000 ms, got '999'"):
        parse_duration("999", "--retention", 1000)


def test_a_flag_wins_a_blank_counts_as_unset_and_the_first_variable_set_wins() -> None:
    env = {"DURAFLOW_WATCH_NAMESPACES": "a, b", "DURAFLOW_OPERATOR_METRICS_PORT": " ",
           "POD_NAMESPACE": "", "DURAFLOW_LEASE_NAMESPACE": "leases"}
    values = read_settings("operator", env, {"namespaces": "c"})
    assert values["namespaces"] == ("c",) and values.source("namespaces") == "--namespaces"
    assert values["metrics_port"] == 9465 and not values.given("metrics_port")
    assert values["lease_namespace"] == "leases"
    assert values.source("lease_namespace") == "DURAFLOW_LEASE_NAMESPACE"
    both = read_settings("operator", {**env, "POD_NAMESPACE": "ns"})
    assert both["lease_namespace"] == "ns"


def test_worker_defaults_are_the_runtime_options_defaults() -> None:
    values = read_settings("worker", {})
    defaults = RuntimeOptions()
    assert values["orchestration_concurrency"] == defaults.orchestration_concurrency
    assert values["worker_concurrency"] == defaults.worker_concurrency
    assert values["max_sessions"] == defaults.max_sessions_per_runtime
    assert values["session_idle_timeout_ms"] == defaults.session_idle_timeout_ms
    assert values["orchestrator_lock_timeout_ms"] == defaults.orchestrator_lock_timeout_ms
    assert values["worker_lock_timeout_ms"] == defaults.worker_lock_timeout_ms


def test_every_setting_is_named_once_per_command() -> None:
    for command in ("duraflow", "worker", "admin", "operator"):
        names = [s.name for s in settings_of(command)]
        assert len(names) == len(set(names)), command
    assert all(s.env and all(name.isupper() for name in s.env) for s in SETTINGS)
