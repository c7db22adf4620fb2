"""Appending to and verifying the hash-chained audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from deal_workflow.adapters.clock import Clock
from deal_workflow.adapters.sql import insert_if_absent
from deal_workflow.domain.audit import (
    GENESIS_HASH,
    AuditContent,
    ChainHead,
    ChainVerdict,
    StoredEntry,
    chain_for,
    entry_hash,
    to_json_value,
    verify_chain,
)
from deal_workflow.models import AuditChainHead, AuditEntry

_PAGE = 1000


class AuditLog:
    """The audit log of one transaction: entries become visible when it commits."""

    def __init__(self, session: AsyncSession, clock: Clock) -> None:
        self._session = session
        self._clock = clock

    async def record(
        self,
        *,
        actor: str,
        action: str,
        entity_type: str,
        entity_id: str,
        organization_id: str | None,
        before: Any,
        after: Any,
        reason: str,
    ) -> AuditEntry:
        """Append one entry to its organization's chain.

        The chain head row is locked until the transaction ends, so entries of one chain are
        appended one transaction at a time and each links to the one really before it.
        """
        chain = chain_for(organization_id)
        await insert_if_absent(
            self._session,
            AuditChainHead,
            {"chain": chain, "last_seq": 0, "last_hash": GENESIS_HASH},
        )
        stmt = (
            select(AuditChainHead)
            .where(AuditChainHead.chain == chain)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        head = (await self._session.execute(stmt)).scalar_one()
        content = AuditContent(
            chain=chain,
            seq=head.last_seq + 1,
            occurred_at=self._clock.now(),
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            organization_id=organization_id,
            before=to_json_value(before),
            after=to_json_value(after),
            reason=reason,
        )
        digest = entry_hash(content, head.last_hash)
        entry = AuditEntry(
            chain=chain,
            seq=content.seq,
            occurred_at=content.occurred_at,
            actor=actor,
            action=action,
            entity_type=entity_type,
            entity_id=entity_id,
            organization_id=organization_id,
            before=content.before,
            after=content.after,
            reason=reason,
            prev_hash=head.last_hash,
            hash=digest,
        )
        self._session.add(entry)
        head.last_seq = content.seq
        head.last_hash = digest
        await self._session.flush()
        return entry


async def _entries(session: AsyncSession, chain: str) -> AsyncIterator[StoredEntry]:
    after = 0
    while True:
        stmt = (
            select(AuditEntry)
            .where(AuditEntry.chain == chain, AuditEntry.seq > after)
            .order_by(AuditEntry.seq)
            .limit(_PAGE)
        )
        rows = (await session.execute(stmt)).scalars().all()
        for row in rows:
            yield stored_entry(row)
        if len(rows) < _PAGE:
            return
        after = rows[-1].seq


def stored_entry(row: AuditEntry) -> StoredEntry:
    content = AuditContent(
        chain=row.chain,
        seq=row.seq,
        occurred_at=row.occurred_at,
        actor=row.actor,
        action=row.action,
        entity_type=row.entity_type,
        entity_id=row.entity_id,
        organization_id=row.organization_id,
        before=row.before,
        after=row.after,
        reason=row.reason,
    )
    return StoredEntry(content=content, prev_hash=row.prev_hash, hash=row.hash)


async def verify_audit_log(session: AsyncSession, chain: str | None = None) -> list[ChainVerdict]:
    """Verify every chain (or one) as stored; a chain with entries but no head is reported."""
    names_stmt = select(AuditEntry.chain).distinct()
    heads_stmt = select(AuditChainHead)
    if chain is not None:
        names_stmt = names_stmt.where(AuditEntry.chain == chain)
        heads_stmt = heads_stmt.where(AuditChainHead.chain == chain)
    heads = {
        h.chain: ChainHead(h.chain, h.last_seq, h.last_hash)
        for h in (await session.execute(heads_stmt)).scalars().all()
    }
    names = set((await session.execute(names_stmt)).scalars().all()) | set(heads)
    verdicts: list[ChainVerdict] = []
    for name in sorted(names):
        entries = [e async for e in _entries(session, name)]
        verdicts.append(verify_chain(name, entries, heads.get(name)))
    return verdicts
