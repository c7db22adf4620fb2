"""The organization rules every service applies to the caller's envelope."""

from __future__ import annotations

import pytest

from prs_shared.messaging.errors import PermanentError
from prs_shared.tenancy import may_act_on, organization_scope


@pytest.mark.parametrize(
    ("caller", "owner", "allowed"),
    [
        (None, "org-a", True),
        (None, None, True),
        ("org-a", "org-a", True),
        ("org-a", "org-b", False),
        ("org-a", None, False),
    ],
)
def test_a_caller_may_act_on_its_own_organizations_objects_and_an_admin_on_any(
    caller: str | None, owner: str | None, allowed: bool
) -> None:
    assert may_act_on(caller, owner) is allowed


@pytest.mark.parametrize(
    ("caller", "requested", "scope"),
    [
        (None, None, None),
        (None, "org-b", "org-b"),
        ("org-a", None, "org-a"),
        ("org-a", "org-a", "org-a"),
    ],
)
def test_a_scope_is_what_an_admin_asks_for_and_a_scoped_callers_own_organization(
    caller: str | None, requested: str | None, scope: str | None
) -> None:
    assert organization_scope(caller, requested, service="svc") == scope


def test_naming_another_organization_reads_the_same_whether_it_exists_or_not() -> None:
    errors = []
    for named in ("org-b", "org-nobody"):
        with pytest.raises(PermanentError) as raised:
            organization_scope("org-a", named, service="svc")
        errors.append(str(raised.value).replace(named, "<id>"))
    assert errors[0] == errors[1]
