"""Money rules: rounding to minor units with ROUND_HALF_EVEN, flat and tiered commissions."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deal_workflow.domain.money import (
    describe_policy,
    exact_commission,
    minor_unit,
    quote_commission,
    round_money,
)
from deal_workflow.testing import flat_policy, tiered_policy
from prs_shared.messaging.prs_events import CommissionPolicy, CommissionTier

CURRENCIES = ["USD", "EUR", "JPY", "KWD"]

amounts = st.decimals(
    min_value=Decimal(0), max_value=Decimal("99999999999999.9999"), places=4, allow_nan=False
)
rates = st.decimals(min_value=Decimal(0), max_value=Decimal(1), places=6, allow_nan=False)


@st.composite
def policies(draw: st.DrawFn) -> CommissionPolicy:
    if draw(st.booleans()):
        return CommissionPolicy(kind="flat", rate=draw(rates))
    bounds = sorted(
        draw(
            st.sets(
                st.decimals(min_value=Decimal("0.01"), max_value=Decimal(10**9), places=2),
                min_size=1,
                max_size=4,
            )
        )
    )
    tiers = [CommissionTier(up_to=b, rate=draw(rates)) for b in bounds]
    tiers.append(CommissionTier(up_to=None, rate=draw(rates)))
    return CommissionPolicy(kind="tiered", tiers=tiers)


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("2.345", "USD", "2.34"),  # half to even: 4 is even
        ("2.355", "USD", "2.36"),  # half to even: 6 is even
        ("2.3451", "USD", "2.35"),  # more than half rounds up
        ("0.5", "JPY", "0"),
        ("1.5", "JPY", "2"),
        ("1.0005", "KWD", "1.000"),
        ("1.0015", "KWD", "1.002"),
    ],
)
def test_amounts_round_to_the_currency_minor_unit_half_to_even(
    amount: str, currency: str, expected: str
) -> None:
    rounded = round_money(Decimal(amount), currency)
    assert rounded == Decimal(expected)
    assert rounded.as_tuple().exponent == minor_unit(currency).as_tuple().exponent


def test_a_flat_commission_is_the_rate_times_the_value() -> None:
    quote = quote_commission(Decimal("1234.56"), "USD", flat_policy("0.05"))
    assert quote.exact == Decimal("61.7280")
    assert quote.amount == Decimal("61.73")
    assert quote.description == "flat 5%"


def test_a_tiered_commission_applies_each_rate_to_its_slice_only() -> None:
    policy = tiered_policy(("10000", "0.05"), ("50000", "0.075"), (None, "0.10"))
    quote = quote_commission(Decimal("60000"), "USD", policy)
    # 10000 * 5% + 40000 * 7.5% + 10000 * 10%
    assert quote.amount == Decimal("4500.00")
    assert [s.amount for s in quote.shares] == [Decimal("500"), Decimal("3000"), Decimal("1000")]
    assert describe_policy(policy) == (
        "tiered (marginal): 5% up to 10000, 7.5% up to 50000, 10% above"
    )


def test_tier_shares_that_each_round_up_do_not_create_a_cent() -> None:
    # Each tier's exact share ends in .005: rounding each one would give 0.01 + 0.01 = 0.02
    # although the exact total 0.01 rounds to 0.01.
    policy = tiered_policy(("0.10", "0.05"), (None, "0.05"))
    quote = quote_commission(Decimal("0.20"), "USD", policy)
    assert quote.exact == Decimal("0.0100")
    assert quote.amount == Decimal("0.01")
    assert sum(s.amount for s in quote.shares) == Decimal("0.01")


@settings(max_examples=300, deadline=None)
@given(value=amounts, policy=policies(), currency=st.sampled_from(CURRENCIES))
def test_no_cent_is_created_or_lost_between_tiers_and_the_total(
    value: Decimal, policy: CommissionPolicy, currency: str
) -> None:
    quote = quote_commission(value, currency, policy)
    unit = minor_unit(currency)
    assert sum(s.amount for s in quote.shares) == quote.amount
    assert sum(s.exact for s in quote.shares) == quote.exact
    assert quote.exact == exact_commission(value, policy)
    assert abs(quote.amount - quote.exact) <= unit / 2
    for share in quote.shares:
        assert share.amount % unit == 0
        assert abs(share.amount - share.exact) < unit
    assert sum(s.base for s in quote.shares) == value


@settings(max_examples=300, deadline=None)
@given(value=amounts, currency=st.sampled_from(CURRENCIES))
def test_rounding_is_stable(value: Decimal, currency: str) -> None:
    once = round_money(value, currency)
    assert round_money(once, currency) == once
    assert abs(once - value) <= minor_unit(currency) / 2


@settings(max_examples=200, deadline=None)
@given(policy=policies(), data=st.data())
def test_tiered_commissions_are_continuous_at_their_bounds(
    policy: CommissionPolicy, data: st.DataObject
) -> None:
    for tier in policy.tiers:
        if tier.up_to is None:
            continue
        bound = tier.up_to
        step = data.draw(st.decimals(min_value=Decimal("0.0001"), max_value=Decimal(1), places=4))
        at = exact_commission(bound, policy)
        above = exact_commission(bound + step, policy)
        below = exact_commission(max(Decimal(0), bound - step), policy)
        # Moving by `step` changes the commission by at most step * (largest rate): no jump.
        largest = max(t.rate for t in policy.tiers)
        assert abs(above - at) <= step * largest
        assert abs(at - below) <= step * largest


@settings(max_examples=200, deadline=None)
@given(policy=policies(), a=amounts, b=amounts, currency=st.sampled_from(CURRENCIES))
def test_a_bigger_deal_never_earns_a_smaller_commission(
    policy: CommissionPolicy, a: Decimal, b: Decimal, currency: str
) -> None:
    low, high = sorted((a, b))
    assert (
        quote_commission(low, currency, policy).amount
        <= quote_commission(high, currency, policy).amount
    )
