"""Pieces of Celery's API real projects import: `conveyor.states` constants, states that print
as plain strings, `uuid()`, and `config_from_object(a_dict)` reading every key."""

from __future__ import annotations

import uuid as std_uuid

import pytest

from conveyor import Conveyor, states, uuid
from conveyor.errors import ConfigurationError
from conveyor.states import TaskState


def test_states_print_and_compare_as_their_names() -> None:
    assert str(states.SUCCESS) == "SUCCESS" and f"{TaskState.FAILURE}" == "FAILURE"
    assert repr(str(TaskState.RETRY)) == "'RETRY'" and f"{states.PENDING:>8}" == " PENDING"
    assert states.SUCCESS == "SUCCESS" and "REVOKED" in states.READY_STATES
    assert states.PENDING in states.UNREADY_STATES and states.STARTED in states.UNREADY_STATES
    assert states.READY_STATES | states.UNREADY_STATES == states.ALL_STATES
    propagate, exceptions = states.PROPAGATE_STATES, states.EXCEPTION_STATES
    assert propagate == {"FAILURE", "REVOKED"} and exceptions == {"RETRY", "FAILURE", "REVOKED"}


def test_uuid_gives_a_new_task_id_each_call() -> None:
    first, second = uuid(), uuid()
    assert first != second and str(std_uuid.UUID(first)) == first


def test_config_from_a_dict_reads_every_key_and_refuses_an_unknown_one() -> None:
    app = Conveyor("t", set_as_current=False)
    app.config_from_object({"broker_url": "memory://", "task_acks_late": True})
    assert (app.conf.broker_url, app.conf.task_acks_late) == ("memory://", True)
    with pytest.raises(ConfigurationError, match="did you mean 'broker_url'"):
        app.config_from_object({"brokr_url": "memory://"})
    with pytest.raises(ConfigurationError, match="strings"):
        app.config_from_object({1: "x"})
    app.config_from_object({"CELERY_TASK_ACKS_LATE": False, "DEBUG": True}, namespace="CELERY")
    assert app.conf.task_acks_late is False
