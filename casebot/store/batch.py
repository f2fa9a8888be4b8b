"""A batch transaction: the ingest of several messages in one transaction, with a fixed number of statements.

Owns answering the pipeline's look-ups (`pipeline.Lookup`) for a whole batch from a few queries made up front for
the keys the batch's mails name (`BatchKeys`: their Message-IDs and the ones they answer, the references in their
subjects, the rate limit's addresses), and keeping those answers exactly what a query would give at that moment:
whatever the batch itself writes (messages, cases, queued mail, acknowledgements) is added to what was read, and
a key nobody named up front is read from the database when asked, then kept. Writes stay in the session until the
commit, where the unit of work inserts each table with one statement; reference numbers come from a block minted
with one UPDATE (the counter row stays locked until the commit, so nobody else mints meanwhile) and trimmed back
to the last one used; case ids come from a block allocated with one statement. Must not decide anything about a
message (the pipeline does), commit (the caller's `Store.batch` does) or hold anything past its transaction.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, event, func, inspect, literal, or_, select, text, union_all, update
from sqlalchemy.orm import Session

from casebot.pipeline.base import CaseView
from casebot.store.outbox import Bounced
from casebot.store.records import MessageRecord, NewCase
from casebot.store.schema import AttachmentRow, Case, Counter, Event, Message, Outbox, Participant, PauseRow
from casebot.store.tx import Tx

# The tables a batch inserts into whose integer ids it hands out itself on SQLite.
_NUMBERED = (Case, Participant, Message, AttachmentRow, Event, Outbox, PauseRow)
MAX_KEYS = 2000  # Message-IDs read up front (a long References chain past this is read when asked)


@dataclass(frozen=True)
class BatchKeys:
    """What the batch's mails will ask about, named by the ingest job before the pipeline runs."""

    size: int  # messages in the batch: the most cases it can open
    message_ids: frozenset[str] = frozenset()  # their own Message-IDs and those they answer
    references: frozenset[str] = frozenset()  # case references in their subjects
    addresses: frozenset[str] = frozenset()  # where acknowledgements would go (rate limit per destination)
    senders: frozenset[str] = frozenset()  # who sent them (rate limit per sender)
    since: dt.datetime | None = None  # the earliest rate-limit window start; None: no rate limit


@dataclass(frozen=True)
class _Ack:
    """An acknowledgement the rate limit counts: its destination, its case's first sender, when that mail arrived
    (None: stored before arrival times were kept) and when the acknowledgement was queued."""

    key: str  # the outbox row's idempotency key: one row counts once, read or queued
    to: str
    sender: str
    arrived_at: dt.datetime | None
    queued_at: dt.datetime

    def within(self, since: dt.datetime, until: dt.datetime) -> bool:
        if self.arrived_at is not None:
            return since <= self.arrived_at <= until
        return self.queued_at >= since


class BatchTx(Tx):
    """A `Tx` for a batch of messages: the same operations, the look-ups answered from what was read up front
    plus what the batch wrote, the inserts left to the commit."""

    def __init__(self, session: Session, keys: BatchKeys) -> None:
        super().__init__(session)
        self._keys = keys
        self._ids: set[str] = set()  # Message-IDs whose rows below are complete
        self._cases_of: dict[str, set[int]] = {}  # Message-ID -> the cases that stored or sent it
        self._sent: set[str] = set()  # Message-IDs of mail casebot sent (any case, or none)
        # What this batch wrote, added to the answers above without reading the database for it.
        self._added: dict[str, set[int]] = {}  # Message-ID -> cases this batch stored or queued it on
        self._queued: set[str] = set()  # Message-IDs of mail this batch queued
        self._refs: set[str] = set()  # references whose answer below is complete
        self._by_ref: dict[str, Case] = {}
        self._objs: dict[int, Case] = {}  # every case read or opened by this batch, by id
        self._acks: list[_Ack] | None = None  # rows the rate limit counts, read up front (None: not read)
        self._opened_by: dict[int, tuple[str, dt.datetime | None]] = {}  # new case -> its first sender, arrival
        self._numbers: list[int] = []  # reserved reference numbers still unused, next last
        self._counter: str | None = None  # the counter a block was reserved from
        self._case_ids: list[int] = []  # allocated case ids still unused, next last
        self._queued_acks: list[_Ack] = []  # acknowledgements this batch queued
        # SQLite: row ids handed out here (see _number_rows); None on PostgreSQL, whose sequences batch anyway.
        self._top: dict[type[Any], int] | None = None
        if session.get_bind().dialect.name == "sqlite":
            self._top = {}
            event.listen(session, "before_flush", self._number_rows)
        with self.session.no_autoflush:
            self._read(keys)

    # -- reading up front --

    def _read(self, keys: BatchKeys) -> None:
        ids = sorted(keys.message_ids)[:MAX_KEYS]
        self._fetch_ids(ids)
        self._fetch_cases(set().union(*self._cases_of.values()) if self._cases_of else set(), keys.references)
        if keys.since is not None and (keys.addresses or keys.senders):
            self._acks = self._fetch_acks(keys.addresses, keys.senders, keys.since)

    def _fetch_ids(self, ids: Iterable[str]) -> None:
        wanted = [i for i in ids if i not in self._ids]
        if not wanted:
            return
        rows: Any = union_all(
            select(literal("m", String).label("src"), Message.message_id, Message.case_id)
            .where(Message.message_id.in_(wanted), Message.case_id.is_not(None)),
            select(literal("o", String).label("src"), Outbox.message_id, Outbox.case_id)
            .where(Outbox.message_id.in_(wanted)),
        )
        for src, mid, case_id in self.session.execute(rows):
            if src == "o":
                self._sent.add(str(mid))
            if case_id is not None:
                self._cases_of.setdefault(str(mid), set()).add(int(case_id))
        self._ids.update(wanted)

    def _fetch_cases(self, case_ids: set[int], references: Iterable[str]) -> None:
        ids = [i for i in case_ids if i not in self._objs]
        refs = [r for r in references if r not in self._refs]
        if ids or refs:
            # Participants come with them (the relationship loads "selectin": one more statement for all).
            for case in self.session.scalars(select(Case).where(or_(Case.id.in_(ids), Case.reference.in_(refs)))):
                self._objs[case.id] = case
                self._by_ref[case.reference] = case
        self._refs.update(refs)

    def _fetch_acks(self, addresses: Iterable[str], senders: Iterable[str], since: dt.datetime) -> list[_Ack]:
        recent = or_(Message.arrived_at >= since, and_(Message.arrived_at.is_(None), Outbox.created_at >= since))
        opened = (Message.case_id == Outbox.case_id) & (Message.disposition == "opened")
        acks = select(Outbox.key, Outbox.primary_recipient, Message.sender, Message.arrived_at, Outbox.created_at)
        rows: Any = union_all(
            acks.join(Message, opened).where(Outbox.kind == "ack", Outbox.primary_recipient.in_(list(addresses)),
                                             recent),
            acks.join(Message, opened).where(Outbox.kind == "ack", Message.sender.in_(list(senders)), recent),
        )
        found = {str(k): _Ack(str(k), str(to), str(sender), arrived, queued)
                 for k, to, sender, arrived, queued in self.session.execute(rows)}
        return list(found.values())

    @contextmanager
    def _db(self) -> Iterator[None]:
        """A query about a key not read up front: nothing the batch wrote can change its answer (what the batch
        wrote is added from memory), so pending rows are not flushed for it."""
        with self.session.no_autoflush:
            yield

    # -- the pipeline's look-ups --

    def case_for_message_ids(self, message_ids: tuple[str, ...]) -> CaseView | None:
        if not message_ids:
            return None
        with self._db():
            self._fetch_ids(message_ids)
        for mid in message_ids:  # nearest first; an id on several cases says nothing (as IntakeOps)
            cases = self._cases_of.get(mid, set()) | self._added.get(mid, set())
            if len(cases) == 1:
                case = self._load(next(iter(cases)))
                if case is not None:
                    return self._view(case)
        return None

    def _load(self, case_id: int) -> Case | None:
        case = self._objs.get(case_id)
        if case is None:
            with self._db():
                case = self.session.get(Case, case_id)
            if case is not None:
                self._objs[case.id] = case
                self._by_ref[case.reference] = case
        return case

    def case_view(self, reference: str) -> CaseView | None:
        if reference not in self._refs:
            with self._db():
                self._fetch_cases(set(), [reference])
        case = self._by_ref.get(reference)
        return self._view(case) if case is not None else None

    def is_own_message_id(self, message_id: str) -> bool:
        with self._db():
            self._fetch_ids([message_id])
        return message_id in self._sent or message_id in self._queued

    def acks_to(self, address: str, since: dt.datetime, until: dt.datetime) -> int:
        return self._count_acks(address, since, until, by_sender=False)

    def acks_for_sender(self, sender: str, since: dt.datetime, until: dt.datetime) -> int:
        return self._count_acks(sender, since, until, by_sender=True)

    def _count_acks(self, who: str, since: dt.datetime, until: dt.datetime, by_sender: bool) -> int:
        keys = self._keys
        named = keys.senders if by_sender else keys.addresses
        if self._acks is not None and keys.since is not None and since >= keys.since and who in named:
            rows = self._acks  # read up front, with what the batch queued since
        else:
            with self._db():  # rows flushed meanwhile come back from the database too: counted once, by key
                stored = self._fetch_acks(() if by_sender else (who,), (who,) if by_sender else (), since)
            rows = list({a.key: a for a in (*stored, *self._queued_acks)}.values())
        return sum((a.sender if by_sender else a.to) == who and a.within(since, until) for a in rows)

    # -- writes: as Tx, and what they change in the answers above --

    def add_message(self, record: MessageRecord, *, case_id: int | None, disposition: str) -> None:
        super().add_message(record, case_id=case_id, disposition=disposition)
        if record.message_id and case_id is not None:
            self._added.setdefault(record.message_id, set()).add(case_id)
        if disposition == "opened" and case_id is not None:
            self._opened_by[case_id] = (record.sender, record.arrived_at)

    def enqueue(self, *, key: str, case_id: int | None, kind: str, envelope_from: str, recipients: list[str],
                message_id: str, raw: bytes, now: dt.datetime, known_new: bool = False) -> bool:
        if not known_new:
            with self._db():  # a key queued earlier in this batch is in the session's new rows
                if key in {o.key for o in self.session.new if isinstance(o, Outbox)} or self.outbox_has(key):
                    return False
        queued = super().enqueue(key=key, case_id=case_id, kind=kind, envelope_from=envelope_from,
                                 recipients=recipients, message_id=message_id, raw=raw, now=now, known_new=True)
        self._queued.add(message_id)
        if case_id is not None:
            self._added.setdefault(message_id, set()).add(case_id)
        if kind == "ack":
            sender, arrived = self._opened_by.get(case_id, ("", None)) if case_id is not None else ("", None)
            if not sender and case_id is not None:
                # An acknowledgement for a case this batch did not open: read its first message's sender.
                with self._db():
                    row = self.session.execute(select(Message.sender, Message.arrived_at).where(
                        Message.case_id == case_id, Message.disposition == "opened").limit(1)).first()
                sender, arrived = (str(row[0]), row[1]) if row is not None else ("", None)
            ack = _Ack(key, recipients[0] if recipients else "", sender, arrived, now)
            self._queued_acks.append(ack)
            if self._acks is not None:
                self._acks.append(ack)
        return queued

    def mark_bounced(self, message_id: str, *, at: dt.datetime, recipients: tuple[str, ...], diagnostic: str,
                     dedupe_key: str) -> Bounced | None:
        if not self.is_own_message_id(message_id):
            return None
        return super().mark_bounced(message_id, at=at, recipients=recipients, diagnostic=diagnostic,
                                    dedupe_key=dedupe_key)

    def mint_number(self, name: str = "case") -> int:
        """From a block reserved with one UPDATE for the whole batch; `finish` gives back what was not used."""
        if name != "case":
            return super().mint_number(name)
        if not self._numbers:
            k = max(1, self._keys.size)
            with self._db():
                end = self.session.scalar(update(Counter).where(Counter.name == name)
                                          .values(value=Counter.value + k).returning(Counter.value))
                if end is None:
                    self.session.add(Counter(name=name, value=k))
                    self.session.flush()
                    end = k
            self._counter = name
            self._numbers = list(range(int(end), int(end) - k, -1))
        return self._numbers.pop()

    def _next_case_id(self) -> int:
        if self._top is not None:
            return self._take(Case)
        if not self._case_ids:
            k = max(1, self._keys.size)
            with self._db():
                self._case_ids = sorted((int(i) for i in self.session.scalars(text(
                    "SELECT nextval(pg_get_serial_sequence('cases', 'id')) FROM generate_series(1, :k)"),
                    {"k": k})), reverse=True)
        return self._case_ids.pop()

    def _take(self, kind: type[Any]) -> int:
        """SQLite: the next row id of a table, counted here from the tables' highest ids read once (in one
        statement): the transaction began IMMEDIATE and holds SQLite's write lock, so nobody inserts meanwhile."""
        top = self._top
        assert top is not None
        if not top:
            with self._db():
                row = self.session.execute(select(*(select(func.max(c.id)).scalar_subquery() for c in _NUMBERED)))
                top.update({c: int(v or 0) for c, v in zip(_NUMBERED, row.one(), strict=True)})
        top[kind] += 1
        return top[kind]

    def _number_rows(self, session: Any, _context: Any, _instances: Any) -> None:
        """Before a flush on SQLite: give each new row its id, in the order the rows were added (what SQLite would
        have given them one INSERT at a time). With its id known the unit of work inserts a table's rows in one
        statement; left to SQLite it would insert them one by one to read each id back (SQLite does not promise
        RETURNING's order, so SQLAlchemy cannot batch those)."""
        new = [o for o in session.new if isinstance(o, _NUMBERED) and o.id is None]
        for row in sorted(new, key=lambda o: inspect(o).insert_order):
            row.id = self._take(type(row))

    def open_case(self, new: NewCase) -> int:
        linked: int | None = None
        if new.linked_to:
            case = self._by_ref.get(new.linked_to) if new.linked_to in self._refs else None
            if case is None:
                with self._db():
                    linked = self.case_id(new.linked_to)
            else:
                linked = case.id
        case = self._new_case(new, linked, self._next_case_id())
        self.session.add(case)
        self._objs[case.id] = case
        self._by_ref[case.reference] = case
        self._refs.add(case.reference)
        return case.id

    def _case(self, case_id: int) -> Case | None:
        return self._load(case_id)

    def add_participants(self, case_id: int, addresses: list[tuple[str, str]], known: frozenset[str]) -> None:
        """Through the case's loaded participants, so a later message of the batch sees them (the views above
        are built from these same objects)."""
        case = self._load(case_id)
        if case is None:
            super().add_participants(case_id, addresses, known)
            return
        seen = set(known) | {p.address for p in case.participants}
        for address, role in addresses:
            if address and address not in seen:
                seen.add(address)
                case.participants.append(Participant(address=address, role=role))

    def finish(self) -> None:
        """Give back the reference numbers reserved and not used, before the commit."""
        if self._counter is not None and self._numbers:
            with self._db():
                self.session.execute(update(Counter).where(Counter.name == self._counter)
                                     .values(value=min(self._numbers) - 1))
            self._numbers = []
