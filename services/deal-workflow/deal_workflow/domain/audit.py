"""The audit log's tamper evidence: entries chained by SHA-256.

Each entry's hash covers its own content and the previous entry's hash, so editing, removing or
reordering an entry breaks every hash after it. There is one chain per organization (entries
without one share :data:`GLOBAL_CHAIN`), which keeps writers of different organizations from
queueing behind each other. A chain head (last sequence number and hash) is stored apart from the
entries, so cutting entries off the end is detected too.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

GENESIS_HASH = "0" * 64
GLOBAL_CHAIN = "_global"

JSONValue = None | bool | int | str | list["JSONValue"] | dict[str, "JSONValue"]


def to_json_value(value: Any) -> JSONValue:
    """Plain JSON for an audit snapshot: decimals and dates as strings, never floats.

    Floats are refused: their text form is not stable enough to hash.
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, enum.Enum):
        return to_json_value(value.value)
    if isinstance(value, Decimal):
        return f"{value:f}"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value) if isinstance(value, set | frozenset) else value
        return [to_json_value(v) for v in items]
    raise TypeError(f"not allowed in an audit snapshot: {type(value).__name__}")


def chain_for(organization_id: str | None) -> str:
    return organization_id or GLOBAL_CHAIN


@dataclass(frozen=True)
class AuditContent:
    """What happened: who, when, what, before, after, why."""

    chain: str
    seq: int
    occurred_at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    organization_id: str | None
    before: JSONValue
    after: JSONValue
    reason: str

    def canonical(self, prev_hash: str) -> bytes:
        document = {
            "chain": self.chain,
            "seq": self.seq,
            "occurred_at": self.occurred_at.isoformat(timespec="microseconds"),
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "organization_id": self.organization_id,
            "before": self.before,
            "after": self.after,
            "reason": self.reason,
            "prev_hash": prev_hash,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()


def entry_hash(content: AuditContent, prev_hash: str) -> str:
    return hashlib.sha256(content.canonical(prev_hash)).hexdigest()


@dataclass(frozen=True)
class StoredEntry:
    content: AuditContent
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainHead:
    chain: str
    last_seq: int
    last_hash: str


@dataclass(frozen=True)
class ChainVerdict:
    chain: str
    entries_checked: int
    problems: tuple[str, ...]
    first_bad_seq: int | None

    @property
    def intact(self) -> bool:
        return not self.problems


def verify_chain(
    chain: str, entries: Iterable[StoredEntry], head: ChainHead | None
) -> ChainVerdict:
    """Recompute every hash of one chain (entries in sequence order) and compare with the head."""
    problems: list[str] = []
    first_bad: int | None = None
    expected_prev = GENESIS_HASH
    expected_seq = 1
    count = 0

    def problem(seq: int, text: str) -> None:
        nonlocal first_bad
        problems.append(text)
        if first_bad is None:
            first_bad = seq

    for entry in entries:
        count += 1
        c = entry.content
        if c.chain != chain:
            problem(c.seq, f"entry {c.seq} claims chain {c.chain!r}")
        if c.seq != expected_seq:
            problem(c.seq, f"entry {c.seq} found where {expected_seq} was expected (missing rows)")
        if entry.prev_hash != expected_prev:
            problem(c.seq, f"entry {c.seq} does not link to the entry before it")
        if entry_hash(c, entry.prev_hash) != entry.hash:
            problem(c.seq, f"entry {c.seq} was altered: its content no longer matches its hash")
        expected_prev = entry.hash
        expected_seq = c.seq + 1
    last_seq = expected_seq - 1
    if head is not None and (head.last_seq != last_seq or head.last_hash != expected_prev):
        problem(
            last_seq + 1,
            f"chain ends at entry {last_seq} but its head records entry {head.last_seq} "
            "(entries removed from the end, or the head was edited)",
        )
    if head is None and count:
        problem(1, "entries exist but the chain has no head")
    return ChainVerdict(chain, count, tuple(problems), first_bad)
