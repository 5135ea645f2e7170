"""Threads: one documented default, overridable by argument, --threads or AUTOMIMIC_THREADS."""

from __future__ import annotations

import pytest
import torch
from typer.testing import CliRunner

from automimic.cli import app
from automimic.threads import DEFAULT_THREADS, ENV_VAR, configure_threads, resolve_threads


@pytest.fixture(autouse=True)
def _restore_threads(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)  # other tests in this worker process keep the suite's 1 thread


def test_the_default_is_one_thread_and_is_applied():
    assert DEFAULT_THREADS == 1 and resolve_threads() == 1
    torch.set_num_threads(2)
    assert configure_threads() == 1 and torch.get_num_threads() == 1


def test_an_argument_beats_the_environment_variable(monkeypatch):
    monkeypatch.setenv(ENV_VAR, "2")
    assert resolve_threads() == 2
    assert configure_threads(1) == 1 and torch.get_num_threads() == 1
    assert configure_threads() == 2 and torch.get_num_threads() == 2


@pytest.mark.parametrize("raw", ["0", "-1", "two", "1.5"])
def test_a_bad_environment_variable_is_a_one_line_error_naming_it(monkeypatch, raw):
    monkeypatch.setenv(ENV_VAR, raw)
    with pytest.raises(ValueError, match=f"AUTOMIMIC_THREADS: expected a whole number >= 1, got '{raw}'"):
        resolve_threads()


@pytest.mark.parametrize("bad", [0, -3, 1.5, True])
def test_a_bad_argument_is_refused(bad):
    with pytest.raises(ValueError, match="threads: expected a whole number >= 1"):
        resolve_threads(bad)


def test_the_cli_sets_threads_from_the_option_or_the_variable(monkeypatch):
    runner = CliRunner()
    r = runner.invoke(app, ["--threads", "2", "envs"], catch_exceptions=False)
    assert r.exit_code == 0 and torch.get_num_threads() == 2
    monkeypatch.setenv(ENV_VAR, "1")
    r = runner.invoke(app, ["envs"], catch_exceptions=False)
    assert r.exit_code == 0 and torch.get_num_threads() == 1
    monkeypatch.setenv(ENV_VAR, "lots")
    r = runner.invoke(app, ["envs"], catch_exceptions=False)
    assert r.exit_code == 2 and "AUTOMIMIC_THREADS: expected a whole number >= 1, got 'lots'" in r.output
    r = runner.invoke(app, ["--threads", "0", "envs"], catch_exceptions=False)
    assert r.exit_code == 2 and "threads: expected a whole number >= 1, got 0" in r.output


def test_process_workers_use_one_thread(monkeypatch):
    # Workers are the parallelism: even when the learner is told 2, each worker keeps 1.
    from automimic.rollout import workers

    monkeypatch.setenv(ENV_VAR, "2")
    monkeypatch.setattr(workers, "Worker", lambda slots, load: None)
    monkeypatch.setattr(workers, "_process_worker", {})
    workers.init_process_worker(1)
    assert torch.get_num_threads() == 1
