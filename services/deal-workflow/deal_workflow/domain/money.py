"""Money rules: minor units, the rounding rule, flat and tiered (marginal) commissions.

Amounts are :class:`~decimal.Decimal` in the currency's major unit. A commission is computed
exactly, then rounded **once**, to the currency's minor unit, with ``ROUND_HALF_EVEN`` (banker's
rounding: halves go to the even neighbour, so rounding errors do not drift one way over many
deals). Rounding per tier and adding up could create or lose a cent; instead the rounded total is
split back over the tiers by largest remainder, so the per-tier amounts always add up to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Decimal, localcontext

from deal_workflow.domain.errors import InvalidPolicy
from prs_shared.messaging.prs_events import CommissionPolicy

ROUNDING = ROUND_HALF_EVEN
"""The one rounding rule for money this service produces."""

# ISO 4217 exponents that differ from the usual two decimal places.
MINOR_UNIT_EXPONENTS: Mapping[str, int] = {
    "BIF": 0,
    "CLP": 0,
    "DJF": 0,
    "GNF": 0,
    "ISK": 0,
    "JPY": 0,
    "KMF": 0,
    "KRW": 0,
    "PYG": 0,
    "RWF": 0,
    "UGX": 0,
    "VND": 0,
    "VUV": 0,
    "XAF": 0,
    "XOF": 0,
    "XPF": 0,
    "BHD": 3,
    "IQD": 3,
    "JOD": 3,
    "KWD": 3,
    "LYD": 3,
    "OMR": 3,
    "TND": 3,
}
DEFAULT_EXPONENT = 2
STORAGE_PLACES = 4
"""Decimal places every stored amount has (``Numeric(18, 4)``)."""

# Exact products of 18-digit amounts and arbitrary rates need more than the default 28 digits.
_PRECISION = 80


def minor_unit_exponent(currency: str) -> int:
    return MINOR_UNIT_EXPONENTS.get(currency, DEFAULT_EXPONENT)


def minor_unit(currency: str) -> Decimal:
    """The smallest coin: ``0.01`` for USD, ``1`` for JPY, ``0.001`` for KWD."""
    return Decimal(1).scaleb(-minor_unit_exponent(currency))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """``amount`` rounded to the currency's minor unit with :data:`ROUNDING`."""
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        return amount.quantize(minor_unit(currency), rounding=ROUNDING)


def as_stored(amount: Decimal) -> Decimal:
    """``amount`` with the four places it has once stored, so snapshots before and after a
    write read alike."""
    return amount.quantize(Decimal(1).scaleb(-STORAGE_PLACES))


def format_money(amount: Decimal, currency: str) -> str:
    """``1,234.50 USD``: rounded as stored, grouped for reading."""
    return f"{round_money(amount, currency):,f} {currency}"


@dataclass(frozen=True)
class TierShare:
    """The part of a deal's value that falls in one tier and what it earns."""

    lower: Decimal
    upper: Decimal | None
    rate: Decimal
    base: Decimal
    exact: Decimal
    amount: Decimal


@dataclass(frozen=True)
class CommissionQuote:
    base_value: Decimal
    currency: str
    exact: Decimal
    amount: Decimal
    shares: tuple[TierShare, ...]
    description: str


def percent(rate: Decimal) -> str:
    """``0.075`` → ``7.5%``."""
    return f"{(rate * 100).normalize():f}%"


def describe_policy(policy: CommissionPolicy) -> str:
    if policy.kind == "flat":
        assert policy.rate is not None
        return f"flat {percent(policy.rate)}"
    parts: list[str] = []
    for tier in policy.tiers:
        bound = "above" if tier.up_to is None else f"up to {tier.up_to.normalize():f}"
        parts.append(f"{percent(tier.rate)} {bound}")
    return "tiered (marginal): " + ", ".join(parts)


def _bands(policy: CommissionPolicy) -> list[tuple[Decimal, Decimal | None, Decimal]]:
    if policy.kind == "flat":
        if policy.rate is None:
            raise InvalidPolicy("a flat commission policy needs a rate")
        return [(Decimal(0), None, policy.rate)]
    if not policy.tiers:
        raise InvalidPolicy("a tiered commission policy needs tiers")
    bands: list[tuple[Decimal, Decimal | None, Decimal]] = []
    lower = Decimal(0)
    for tier in policy.tiers:
        bands.append((lower, tier.up_to, tier.rate))
        if tier.up_to is not None:
            lower = tier.up_to
    return bands


def exact_commission(value: Decimal, policy: CommissionPolicy) -> Decimal:
    """The unrounded commission: each tier's rate applies to the part of the value inside it."""
    return sum((share[1] for share in _exact_shares(value, policy)), Decimal(0))


def _exact_shares(
    value: Decimal, policy: CommissionPolicy
) -> list[tuple[tuple[Decimal, Decimal | None, Decimal, Decimal], Decimal]]:
    shares: list[tuple[tuple[Decimal, Decimal | None, Decimal, Decimal], Decimal]] = []
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        for lower, upper, rate in _bands(policy):
            top = value if upper is None else min(value, upper)
            base = max(Decimal(0), top - lower)
            shares.append(((lower, upper, rate, base), base * rate))
    return shares


def quote_commission(value: Decimal, currency: str, policy: CommissionPolicy) -> CommissionQuote:
    """The commission on ``value``: exact, rounded once, and split over the tiers exactly."""
    if value < 0:
        raise InvalidPolicy("a commission needs a non-negative deal value")
    unit = minor_unit(currency)
    shares = _exact_shares(value, policy)
    with localcontext() as ctx:
        ctx.prec = _PRECISION
        exact = sum((e for _, e in shares), Decimal(0))
        amount = round_money(exact, currency)
        floors = [e.quantize(unit, rounding=ROUND_FLOOR) for _, e in shares]
        spare = int((amount - sum(floors, Decimal(0))) / unit)
        # Largest remainder first; ties go to the lower tier, so the split is deterministic.
        order = sorted(range(len(shares)), key=lambda i: (-(shares[i][1] - floors[i]), i))
        allocated = list(floors)
        for i in order[:spare]:
            allocated[i] += unit
    tiers = tuple(
        TierShare(lower=lower, upper=upper, rate=rate, base=base, exact=e, amount=a)
        for ((lower, upper, rate, base), e), a in zip(shares, allocated, strict=True)
    )
    return CommissionQuote(
        base_value=value,
        currency=currency,
        exact=exact,
        amount=amount,
        shares=tiers,
        description=describe_policy(policy),
    )
