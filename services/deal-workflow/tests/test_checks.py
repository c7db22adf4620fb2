"""Automated verification: each check names what is wrong; failures reject, doubts go to a person."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from deal_workflow.domain.checks import (
    DealFacts,
    OrganizationFacts,
    PaymentFacts,
    RejectedFile,
    UserFacts,
    VerificationInput,
    verify,
)
from deal_workflow.domain.states import Outcome
from deal_workflow.testing import NOW

DEAL = DealFacts(
    deal_id="d-2",
    organization_id="org-1",
    client_id="c-1",
    client_name="Globex",
    value=Decimal("1000"),
    currency="USD",
    salesperson_id="sp-1",
    due_date=NOW.date() + timedelta(days=30),
    attachment_ids=(),
    created_at=NOW,
)
ORG = OrganizationFacts("org-1", "USD")
SALESPERSON = UserFacts("sp-1", "org-1", "Sam", ("salesperson",), True)
GOOD = VerificationInput(deal=DEAL, organization=ORG, salesperson=SALESPERSON)


def test_a_complete_deal_passes_every_check() -> None:
    result = verify(GOOD)
    assert result.outcome is Outcome.PASSED
    assert result.reasons == []
    assert result.passed == [
        "required_fields",
        "positive_value",
        "known_organization",
        "known_client",
        "known_salesperson",
        "no_duplicate",
        "payments_within_value",
    ]


@pytest.mark.parametrize(
    ("change", "outcome", "reason"),
    [
        (
            {"deal": replace(DEAL, salesperson_id=None)},
            Outcome.FAILED,
            "required field missing: salesperson",
        ),
        (
            {"deal": replace(DEAL, due_date=None)},
            Outcome.FAILED,
            "required field missing: due date",
        ),
        (
            {"deal": replace(DEAL, client_name="  ")},
            Outcome.FAILED,
            "required field missing: client name",
        ),
        (
            {"deal": replace(DEAL, value=Decimal(0))},
            Outcome.FAILED,
            "deal value must be positive, got 0",
        ),
        ({"organization": None}, Outcome.FAILED, "organization org-1 is not known"),
        (
            {"organization": OrganizationFacts("org-1", "EUR")},
            Outcome.FAILED,
            "deal currency USD differs from the organization's currency EUR",
        ),
        ({"salesperson": None}, Outcome.FAILED, "salesperson sp-1 is not known"),
        (
            {"salesperson": replace(SALESPERSON, active=False)},
            Outcome.FAILED,
            "salesperson sp-1 is inactive",
        ),
        (
            {"salesperson": replace(SALESPERSON, roles=("finance",))},
            Outcome.FAILED,
            "user sp-1 does not have the salesperson role",
        ),
        (
            {"salesperson": replace(SALESPERSON, organization_id="org-2")},
            Outcome.FAILED,
            "salesperson sp-1 belongs to another organization",
        ),
        (
            {"deal": replace(DEAL, client_id=None)},
            Outcome.NEEDS_REVIEW,
            "client 'Globex' is not a registered PRS client (no client id)",
        ),
        (
            {"payments": [PaymentFacts("p-1", Decimal("600"), "USD")] * 2},
            Outcome.FAILED,
            "payments of 1,200.00 USD exceed the deal value of 1,000.00 USD",
        ),
        (
            {"payments": [PaymentFacts("p-1", Decimal("10"), "EUR")]},
            Outcome.FAILED,
            "payment p-1 is in EUR, the deal in USD",
        ),
        (
            {"deal": replace(DEAL, attachment_ids=("f-1",))},
            Outcome.NEEDS_REVIEW,
            "attachment f-1 has no scan verdict yet",
        ),
        (
            {"deal": replace(DEAL, attachment_ids=("f-1",)), "scan_verdicts": {"f-1": "infected"}},
            Outcome.FAILED,
            "attachment f-1 did not scan clean: infected",
        ),
        (
            {
                "deal": replace(DEAL, attachment_ids=("f-1",)),
                "rejected_files": [RejectedFile("contract.exe", "executable content")],
            },
            Outcome.FAILED,
            "attachment 'contract.exe' was rejected by the file scan: executable content",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_each_check_names_its_reason(change: dict, outcome: Outcome, reason: str) -> None:
    result = verify(replace(GOOD, **change))
    assert result.outcome is outcome
    assert reason in result.reasons


def test_clean_attachments_pass() -> None:
    deal = replace(DEAL, attachment_ids=("f-1", "f-2"))
    result = verify(replace(GOOD, deal=deal, scan_verdicts={"f-1": "clean", "f-2": "clean"}))
    assert result.outcome is Outcome.PASSED
    assert "attachments_clean" in result.passed


def test_a_later_deal_like_an_earlier_one_goes_to_manual_review_but_the_earlier_does_not() -> None:
    earlier = replace(DEAL, deal_id="d-1", created_at=NOW - timedelta(days=3))
    later = verify(replace(GOOD, other_deals=[earlier]))
    assert later.outcome is Outcome.NEEDS_REVIEW
    assert later.reasons == [
        "possible duplicate of deal d-1 (same client, value and currency, created "
        f"{earlier.created_at.date().isoformat()})"
    ]
    original = verify(replace(GOOD, deal=earlier, other_deals=[DEAL]))
    assert original.outcome is Outcome.PASSED


def test_deals_far_apart_or_for_other_clients_are_not_duplicates() -> None:
    old = replace(DEAL, deal_id="d-0", created_at=NOW - timedelta(days=45))
    other_client = replace(DEAL, deal_id="d-1", client_id="c-9", created_at=NOW - timedelta(1))
    assert verify(replace(GOOD, other_deals=[old, other_client])).outcome is Outcome.PASSED


def test_a_client_without_id_is_matched_by_name_ignoring_case_and_spacing() -> None:
    deal = replace(DEAL, client_id=None, client_name="Globex  corp")
    earlier = replace(deal, deal_id="d-1", client_name="GLOBEX corp", created_at=NOW - timedelta(1))
    reasons = verify(replace(GOOD, deal=deal, other_deals=[earlier])).reasons
    assert any("possible duplicate of deal d-1" in r for r in reasons)


def test_a_failure_outweighs_a_doubt_and_failures_are_listed_first() -> None:
    deal = replace(DEAL, client_id=None, value=Decimal(-5))
    result = verify(replace(GOOD, deal=deal))
    assert result.outcome is Outcome.FAILED
    assert result.reasons[0].startswith("deal value must be positive")
    assert "is not a registered PRS client" in result.reasons[-1]
