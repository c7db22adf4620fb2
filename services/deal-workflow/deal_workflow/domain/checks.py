"""Automated verification of a deal: named checks, each passing, failing or asking for a person.

A failed check rejects the deal; a check that cannot decide on its own (an attachment not scanned
yet, a client PRS has not registered, a possible duplicate) sends it to manual review. Every
reason is one readable line naming what is wrong.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from deal_workflow.domain.money import format_money
from deal_workflow.domain.payments import paid_total
from deal_workflow.domain.states import Outcome
from prs_shared.messaging.prs_events import UserRole

DUPLICATE_WINDOW = timedelta(days=30)
"""Deals of one client with the same value created this close together look like duplicates."""

CLEAN = "clean"


class Severity(enum.StrEnum):
    PASS = "pass"
    REVIEW = "review"
    FAIL = "fail"


@dataclass(frozen=True)
class DealFacts:
    deal_id: str
    organization_id: str
    client_id: str | None
    client_name: str
    value: Decimal
    currency: str
    salesperson_id: str | None
    due_date: date | None
    attachment_ids: Sequence[str]
    created_at: datetime


@dataclass(frozen=True)
class OrganizationFacts:
    organization_id: str
    currency: str


@dataclass(frozen=True)
class UserFacts:
    user_id: str
    organization_id: str
    full_name: str
    roles: Sequence[str]
    active: bool


@dataclass(frozen=True)
class PaymentFacts:
    payment_id: str
    amount: Decimal
    currency: str


@dataclass(frozen=True)
class RejectedFile:
    original_filename: str
    reason: str


@dataclass(frozen=True)
class VerificationInput:
    deal: DealFacts
    organization: OrganizationFacts | None
    salesperson: UserFacts | None
    other_deals: Sequence[DealFacts] = ()
    """Other deals of the organization that are not rejected (duplicate candidates)."""
    payments: Sequence[PaymentFacts] = ()
    scan_verdicts: dict[str, str] = field(default_factory=dict)
    """Attachment id → scan verdict from ``file.processed``."""
    rejected_files: Sequence[RejectedFile] = ()
    """``file.rejected`` for this deal (that event names the file, not its id)."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    severity: Severity
    reasons: tuple[str, ...] = ()


@dataclass(frozen=True)
class Verification:
    results: tuple[CheckResult, ...]

    @property
    def outcome(self) -> Outcome:
        severities = {r.severity for r in self.results}
        if Severity.FAIL in severities:
            return Outcome.FAILED
        if Severity.REVIEW in severities:
            return Outcome.NEEDS_REVIEW
        return Outcome.PASSED

    @property
    def passed(self) -> list[str]:
        return [r.name for r in self.results if r.severity is Severity.PASS]

    @property
    def reasons(self) -> list[str]:
        """Failures first, then what needs a person."""
        ordered = sorted(self.results, key=lambda r: r.severity is not Severity.FAIL)
        return [reason for r in ordered if r.severity is not Severity.PASS for reason in r.reasons]


def _result(name: str, fails: list[str], reviews: list[str] | None = None) -> CheckResult:
    if fails:
        return CheckResult(name, Severity.FAIL, tuple(fails + (reviews or [])))
    if reviews:
        return CheckResult(name, Severity.REVIEW, tuple(reviews))
    return CheckResult(name, Severity.PASS)


def check_required_fields(v: VerificationInput) -> CheckResult:
    d = v.deal
    missing = []
    if not d.client_name.strip():
        missing.append("client name")
    if not d.salesperson_id:
        missing.append("salesperson")
    if d.due_date is None:
        missing.append("due date")
    return _result("required_fields", [f"required field missing: {m}" for m in missing])


def check_positive_value(v: VerificationInput) -> CheckResult:
    d = v.deal
    fails = [] if d.value > 0 else [f"deal value must be positive, got {d.value:f}"]
    return _result("positive_value", fails)


def check_known_organization(v: VerificationInput) -> CheckResult:
    d = v.deal
    if v.organization is None:
        return _result("known_organization", [f"organization {d.organization_id} is not known"])
    if v.organization.currency != d.currency:
        return _result(
            "known_organization",
            [
                f"deal currency {d.currency} differs from the organization's currency "
                f"{v.organization.currency}"
            ],
        )
    return _result("known_organization", [])


def check_known_client(v: VerificationInput) -> CheckResult:
    d = v.deal
    if d.client_id:
        return _result("known_client", [])
    return _result(
        "known_client",
        [],
        [f"client {d.client_name.strip()!r} is not a registered PRS client (no client id)"],
    )


def check_known_salesperson(v: VerificationInput) -> CheckResult | None:
    d = v.deal
    if not d.salesperson_id:
        return None  # reported by required_fields
    user = v.salesperson
    if user is None:
        return _result("known_salesperson", [f"salesperson {d.salesperson_id} is not known"])
    fails = []
    if user.organization_id != d.organization_id:
        fails.append(f"salesperson {user.user_id} belongs to another organization")
    if not user.active:
        fails.append(f"salesperson {user.user_id} is inactive")
    if UserRole.SALESPERSON.value not in user.roles:
        fails.append(f"user {user.user_id} does not have the salesperson role")
    return _result("known_salesperson", fails)


def _client_key(d: DealFacts) -> str:
    if d.client_id:
        return f"id:{d.client_id}"
    return "name:" + " ".join(d.client_name.casefold().split())


def check_no_duplicate(v: VerificationInput) -> CheckResult:
    d = v.deal
    key = _client_key(d)
    earlier = [
        o
        for o in v.other_deals
        if o.deal_id != d.deal_id
        and o.organization_id == d.organization_id
        and _client_key(o) == key
        and o.value == d.value
        and o.currency == d.currency
        and abs(o.created_at - d.created_at) <= DUPLICATE_WINDOW
        # The earlier deal is the original; only the later one is held back.
        and (o.created_at, o.deal_id) < (d.created_at, d.deal_id)
    ]
    reviews = [
        f"possible duplicate of deal {o.deal_id} (same client, value and currency, "
        f"created {o.created_at.date().isoformat()})"
        for o in earlier
    ]
    return _result("no_duplicate", [], reviews)


def check_attachments(v: VerificationInput) -> CheckResult | None:
    d = v.deal
    if not d.attachment_ids:
        return None  # nothing to scan
    fails: list[str] = []
    reviews: list[str] = []
    for attachment in d.attachment_ids:
        verdict = v.scan_verdicts.get(attachment)
        if verdict is None:
            reviews.append(f"attachment {attachment} has no scan verdict yet")
        elif verdict != CLEAN:
            fails.append(f"attachment {attachment} did not scan clean: {verdict}")
    if reviews and v.rejected_files:
        # A rejected upload for this deal is most likely one of the unscanned attachments.
        fails.extend(
            f"attachment {f.original_filename!r} was rejected by the file scan: {f.reason}"
            for f in v.rejected_files
        )
    return _result("attachments_clean", fails, reviews)


def check_payments_within_value(v: VerificationInput) -> CheckResult:
    d = v.deal
    fails = [
        f"payment {p.payment_id} is in {p.currency}, the deal in {d.currency}"
        for p in v.payments
        if p.currency != d.currency
    ]
    paid = paid_total(p.amount for p in v.payments if p.currency == d.currency)
    if paid > d.value:
        fails.append(
            f"payments of {format_money(paid, d.currency)} exceed the deal value of "
            f"{format_money(d.value, d.currency)}"
        )
    return _result("payments_within_value", fails)


CHECKS = (
    check_required_fields,
    check_positive_value,
    check_known_organization,
    check_known_client,
    check_known_salesperson,
    check_no_duplicate,
    check_attachments,
    check_payments_within_value,
)


def verify(v: VerificationInput) -> Verification:
    """Run every check that applies to the deal."""
    results = [r for check in CHECKS if (r := check(v)) is not None]
    return Verification(tuple(results))
