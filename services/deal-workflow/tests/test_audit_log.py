"""The audit log: append-only entries chained by hash; editing, removing or cutting is detected."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, update

from deal_workflow.adapters.audit_log import AuditLog, verify_audit_log
from deal_workflow.adapters.clock import FixedClock
from deal_workflow.domain.audit import (
    GENESIS_HASH,
    AuditContent,
    ChainHead,
    StoredEntry,
    entry_hash,
    to_json_value,
    verify_chain,
)
from deal_workflow.models import AuditEntry
from deal_workflow.testing import NOW
from prs_shared.db.engine import SessionFactory


def _chain(n: int) -> list[StoredEntry]:
    entries: list[StoredEntry] = []
    prev = GENESIS_HASH
    for seq in range(1, n + 1):
        content = AuditContent(
            chain="org-1",
            seq=seq,
            occurred_at=NOW + timedelta(seconds=seq),
            actor="user:7",
            action="deal.verify_deal",
            entity_type="deal",
            entity_id=f"d-{seq}",
            organization_id="org-1",
            before={"state": "pending_verification"},
            after={"state": "verified", "value": "10.00"},
            reason="checks passed",
        )
        digest = entry_hash(content, prev)
        entries.append(StoredEntry(content, prev, digest))
        prev = digest
    return entries


def _head(entries: list[StoredEntry]) -> ChainHead:
    return ChainHead("org-1", entries[-1].content.seq, entries[-1].hash)


def test_an_untouched_chain_verifies() -> None:
    entries = _chain(5)
    verdict = verify_chain("org-1", entries, _head(entries))
    assert verdict.intact
    assert verdict.entries_checked == 5


def test_an_edited_entry_is_detected_where_it_was_edited() -> None:
    entries = _chain(5)
    forged = replace(entries[2].content, after={"state": "verified", "value": "99.00"})
    entries[2] = replace(entries[2], content=forged)
    verdict = verify_chain("org-1", entries, _head(entries))
    assert not verdict.intact
    assert verdict.first_bad_seq == 3
    assert "entry 3 was altered" in verdict.problems[0]


def test_an_edit_with_a_recomputed_hash_still_breaks_the_next_link() -> None:
    entries = _chain(5)
    forged = replace(entries[1].content, actor="user:1")
    entries[1] = StoredEntry(forged, entries[1].prev_hash, entry_hash(forged, entries[1].prev_hash))
    verdict = verify_chain("org-1", entries, _head(entries))
    assert verdict.first_bad_seq == 3
    assert "entry 3 does not link" in verdict.problems[0]


def test_a_removed_entry_is_detected() -> None:
    entries = _chain(5)
    del entries[1]
    verdict = verify_chain("org-1", entries, _head(entries))
    assert verdict.first_bad_seq == 3
    assert "missing rows" in verdict.problems[0]


def test_entries_cut_off_the_end_are_detected_through_the_head() -> None:
    entries = _chain(5)
    head = _head(entries)
    verdict = verify_chain("org-1", entries[:3], head)
    assert not verdict.intact
    assert "chain ends at entry 3 but its head records entry 5" in verdict.problems[0]


def test_snapshots_hold_decimals_as_text_and_refuse_floats() -> None:
    from decimal import Decimal

    assert to_json_value({"amount": Decimal("1.50"), "when": NOW}) == {
        "amount": "1.50",
        "when": NOW.isoformat(),
    }
    with pytest.raises(TypeError):
        to_json_value({"amount": 1.5})


async def _record_some(sessions: SessionFactory, clock: FixedClock) -> None:
    async with sessions() as session, session.begin():
        log = AuditLog(session, clock)
        for i in range(3):
            for org in ("org-1", "org-2", None):
                clock.advance(timedelta(seconds=1))
                await log.record(
                    actor="user:admin",
                    action="deal.calculate_commission",
                    entity_type="deal",
                    entity_id=f"d-{i}",
                    organization_id=org,
                    before={"commission": None},
                    after={"amount": f"{i}0.00", "note": "Zoë — ü"},
                    reason=f"commission {i}",
                )


async def test_stored_chains_verify_on_both_databases(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    await _record_some(sessions, clock)
    async with sessions() as session:
        verdicts = await verify_audit_log(session)
    assert [(v.chain, v.entries_checked, v.intact) for v in verdicts] == [
        ("_global", 3, True),
        ("org-1", 3, True),
        ("org-2", 3, True),
    ]


async def test_an_edited_row_in_the_database_is_detected(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    await _record_some(sessions, clock)
    async with sessions() as session, session.begin():
        await session.execute(
            update(AuditEntry)
            .where(AuditEntry.chain == "org-1", AuditEntry.seq == 2)
            .values(after={"amount": "1000000.00", "note": "Zoë — ü"})
        )
    async with sessions() as session:
        verdicts = {v.chain: v for v in await verify_audit_log(session)}
    assert verdicts["org-2"].intact
    assert verdicts["_global"].intact
    assert not verdicts["org-1"].intact
    assert verdicts["org-1"].first_bad_seq == 2
    assert "entry 2 was altered" in verdicts["org-1"].problems[0]


async def test_a_deleted_row_in_the_database_is_detected(
    sessions: SessionFactory, clock: FixedClock
) -> None:
    await _record_some(sessions, clock)
    async with sessions() as session, session.begin():
        last = await session.scalar(
            select(AuditEntry.id).where(AuditEntry.chain == "org-2", AuditEntry.seq == 3)
        )
        await session.execute(delete(AuditEntry).where(AuditEntry.id == last))
    async with sessions() as session:
        (verdict,) = await verify_audit_log(session, "org-2")
    assert not verdict.intact
    assert "head records entry 3" in verdict.problems[0]
