"""Which errors mean "a server is away, try again" (503) and which are faults (500)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from gateway.api.unavailable import unavailable


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def _raised(exc: BaseException) -> BaseException:
    try:
        raise exc
    except BaseException as caught:
        return caught


@pytest.mark.parametrize(
    ("sqlstate", "expected"),
    [
        ("53300", "database"),  # too many connections
        ("57P01", "database"),  # administrator shutdown
        ("08006", "database"),  # connection failure
        ("57P03", "database"),  # cannot connect now (starting up)
        ("57014", None),  # statement cancelled (statement_timeout): the statement's doing
        ("53200", None),  # out of memory
        ("23505", None),  # unique violation: a fault, not an outage
        ("42P01", None),  # undefined table
    ],
)
def test_a_driver_error_is_an_outage_by_its_sqlstate_class(
    sqlstate: str, expected: str | None
) -> None:
    assert unavailable(DBAPIError("SELECT 1", None, _DriverError(sqlstate))) == expected


def test_an_invalidated_connection_and_an_exhausted_pool_are_outages() -> None:
    invalidated = DBAPIError("SELECT 1", None, _DriverError("XX000"), connection_invalidated=True)
    assert unavailable(invalidated) == "database"
    assert unavailable(PoolTimeout("QueuePool limit reached")) == "database"


def test_a_driver_error_that_arrives_unwrapped_is_judged_by_its_sqlstate() -> None:
    assert unavailable(_DriverError("53300")) == "database"
    assert unavailable(_DriverError("42P01")) is None


def test_a_refused_connection_outside_the_database_drivers_is_another_server() -> None:
    assert unavailable(_raised(ConnectionRefusedError(111, "refused"))) == "server"


def test_faults_stay_faults() -> None:
    assert unavailable(ValueError("bad")) is None
    assert unavailable(FileNotFoundError("gone")) is None
    assert unavailable(IntegrityError("INSERT", None, _DriverError("23505"))) is None
