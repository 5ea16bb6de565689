"""Store writer: mapped messages -> store tables, in bulk, one transaction per batch.

Why bulk: a year of a 1M-study network is ~5M messages; row-at-a-time ORM writes manage a few
hundred a second. Here every batch costs a handful of executemany statements (ledger, sites,
models, patients, study upsert, AI result upsert, final reads, dead letters) plus one commit.

Pairing happens in the data model, not in a matching step: every event upserts its Study on
(site_code, accession), so an AI result and the final read of the same study meet on the same
``study.id`` whatever order they arrive in. A message without an accession falls back to the
Study Instance UID (a placeholder accession ``uid:...`` that is renamed once the accession shows
up). Idempotency: the (sender, MSH-10) ledger is consulted in the same transaction, so a resent
message is reported ``duplicate`` and stored once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    JSON,
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    func,
    literal_column,
    select,
    text,
)
from sqlalchemy import column as sa_column
from sqlalchemy import table as sa_table
from sqlalchemy.exc import IntegrityError

from connectors.events import MappedMessage
from connectors.rows import (
    EARLIEST_COLS,
    FIRST_COLS,
    LATEST_COLS,
    MIN_US,
    S_SITE,
    S_UID,
    FlatMessage,
    Folded,
    flatten,
    fold,
    from_us,
    sqlite_utc_text,
    to_us,
    uid_only_studies,
)
from vigil.errors import StoreError
from vigil.store.tables import (
    PLACEHOLDER_SQL,
    AIModel,
    AIResult,
    DeadLetter,
    FinalRead,
    Patient,
    ReceivedMessage,
    Site,
    Study,
)
from vigil.store.types import UTCDateTime

# --- what the writer is handed ------------------------------------------------------------


@dataclass(slots=True)
class Accepted:
    """A message the pipeline mapped: its events are stored."""

    mapped: MappedMessage


@dataclass(slots=True)
class Ignored:
    """A valid message of a type Vigil does not use: ledgered (so it is ACKed once), not stored."""

    sender: str
    control_id: str
    message_type: str
    profile: str = ""


@dataclass(slots=True)
class Rejected:
    """A message that could not be parsed or mapped: goes to dead letters, raw bytes encrypted."""

    sender: str
    control_id: str
    message_type: str
    reason_code: str
    reason: str
    raw: bytes
    ack_code: str = "AE"


Item = Accepted | Ignored | Rejected

STORED, DUPLICATE, IGNORED, DEADLETTER = "stored", "duplicate", "ignored", "deadletter"


def item_key(item: Item) -> tuple[str, str]:
    if isinstance(item, Accepted):
        return item.mapped.sender, item.mapped.control_id
    return item.sender, item.control_id


def fallback_control_id(raw: bytes) -> str:
    """Ledger key for a message without a usable MSH-10: a digest of its bytes (same on resend)."""
    return "sha256:" + hashlib.sha256(raw).hexdigest()[:40]


def placeholder_accession(study_uid: str) -> str:
    """Accession used for a study known only by its Study Instance UID (fits 64 characters)."""
    if len(study_uid) <= 60:
        return "uid:" + study_uid
    return "uid#" + hashlib.sha256(study_uid.encode()).hexdigest()[:40]


def is_placeholder(accession: str) -> bool:
    return accession.startswith(("uid:", "uid#"))


# --- table clauses used for writes (JSON None must be SQL NULL for COALESCE to work) --------


def _clause(model: Any, json_cols: Sequence[str] = ()) -> Any:
    cols = []
    for c in model.__table__.columns:
        typ = JSON(none_as_null=True) if c.name in json_cols else c.type
        cols.append(sa_column(c.name, typ))
    return sa_table(model.__table__.name, *cols)


T_SITE = _clause(Site)
T_PATIENT = _clause(Patient)
T_STUDY = _clause(Study, ["extra"])
T_MODEL = _clause(AIModel, ["card"])
T_RESULT = _clause(AIResult)
T_READ = _clause(FinalRead)
T_LEDGER = _clause(ReceivedMessage)
T_DEAD = _clause(DeadLetter)

# Is there any study known by its UID alone? Answered from the partial index
# ix_study_placeholder (an index of exactly those studies), so it costs one look-up per batch
# whatever the store's size. The predicate is literal SQL because a planner matches a partial
# index only against the same expression, not against bound parameters; SQLite is told the
# index by name (without statistics it prefers a full scan of the covering unique index).
PLACEHOLDER_PROBE = {
    "sqlite": f"SELECT 1 FROM {T_STUDY.name} INDEXED BY ix_study_placeholder "
    f"WHERE ({PLACEHOLDER_SQL}) LIMIT 1",
    "postgresql": f"SELECT 1 FROM {T_STUDY.name} WHERE ({PLACEHOLDER_SQL}) LIMIT 1",
}

STATUS_RANK = {"F": 1, "C": 2, "A": 2}  # P never current; a correction/addendum beats a final
CHUNK = 900  # bound parameters per IN list
BULK_CACHE_MIB = 512  # SQLite page cache of a backfill's writer connection
# A backfill's connection checkpoints the WAL into the database once it holds this many pages
# (256 MiB; SQLite's default is 1,000, i.e. after every batch): a page that several batches
# change is copied once, and the checkpoint's fsync waits come a few times less often. The
# last connection to close checkpoints the rest.
BULK_CHECKPOINT_PAGES = 65_536


def _chunks(seq: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


@dataclass
class BatchResult:
    outcomes: list[str]
    counts: dict[str, int] = field(default_factory=dict)


Params = tuple[str, list[Any]]  # a compiled statement and its driver parameters


@dataclass(slots=True)
class Prepared:
    """A batch worked out as far as it can be without the database (:meth:`StoreWriter.prepare`).

    ``vigil ingest``'s workers prepare their piece before their turn to store, so that the
    serial part (the turn) is only the database's own work: flattening, folding and building
    the driver rows of the ledger, patients and studies happen in parallel with other workers'
    stores. ``first``: each ledger key's first item; ``flat``: the accepted first items,
    flattened, by index; ``folded`` and the parameters: the batch as if every key were new
    (none when a study is named by its UID alone: that key needs the store).
    """

    items: Sequence[Item]
    now: datetime
    first: dict[tuple[str, str], int]
    ledger: dict[tuple[str, str], dict[str, Any]]
    flat: dict[int, FlatMessage]
    ledger_params: Params | None = None  # SQLite's ledger insert (PostgreSQL claims by RETURNING)
    folded: Folded | None = None
    patient_params: Params | None = None
    study_params: Params | None = None


class StoreWriter:
    """Writes batches of :data:`Item` to the store. One instance per process (it caches ids).

    Safe beside other writers (the listener, ``vigil ingest``'s workers, which take turns): it
    caches only what another writer cannot change (site, model and study ids; a study's id
    survives the adoption of its accession), and reads everything else in the batch's own
    transaction. Conflicts are resolved by the unique constraints and a retried batch.
    """

    def __init__(
        self, engine: Engine, deadletter_key: str | None = None, *, bulk: bool = False
    ) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        # Backfill (``vigil ingest``): on SQLite each commit is written to the WAL without an
        # fsync (synchronous=NORMAL). The database stays consistent on power loss, only the
        # last batches may be lost, and a re-run stores exactly those (the ledger is
        # idempotent). The listener keeps FULL: its ACK promises durability. A backfill's
        # connection also gets a page cache of BULK_CACHE_MIB instead of SQLite's 2 MB: once the
        # study and ledger indexes outgrow it (a 1M-study year is a 1.7 GB file), every insert
        # reads its B-tree pages back from the OS.
        self.bulk = bulk and self.dialect == "sqlite"
        if self.dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        elif self.dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:  # pragma: no cover - only the two supported backends
            raise StoreError(f"unsupported database backend {self.dialect!r}")
        self._insert = insert
        self._fernet = None
        if deadletter_key:
            from cryptography.fernet import Fernet

            self._fernet = Fernet(deadletter_key.encode())
        self._sites: set[str] = set()
        self._models: dict[str, int] = {}
        self._studies: dict[tuple[str, str], int] = {}
        self._compiled: dict[int, tuple[str, list[Any]]] = {}
        self._build_statements()

    # -- statements, built once ------------------------------------------------------------

    def _build_statements(self) -> None:
        ins = self._insert
        s = ins(T_STUDY)
        ex = s.excluded
        sets: dict[str, Any] = {}
        for c in LATEST_COLS:
            sets[c] = func.coalesce(ex[c], T_STUDY.c[c])
        # DICOM-derived extras from different messages add up (as inside one batch), so where
        # batches happen to be cut never changes what is stored.
        cur_extra, new_extra = T_STUDY.c.extra, ex.extra
        if self.dialect == "sqlite":
            merged = func.json_patch(cur_extra, new_extra)
        else:
            t = T_STUDY.name
            merged = literal_column(f'("{t}".extra::jsonb || excluded.extra::jsonb)::json')
        sets["extra"] = case(
            (new_extra.is_(None), cur_extra),
            (cur_extra.is_(None), new_extra),
            else_=merged,
        )
        for c in EARLIEST_COLS:
            sets[c] = case(
                (T_STUDY.c[c].is_(None), ex[c]),
                (and_(ex[c].is_not(None), ex[c] < T_STUDY.c[c]), ex[c]),
                else_=T_STUDY.c[c],
            )
        for c in FIRST_COLS:
            sets[c] = func.coalesce(T_STUDY.c[c], ex[c])
        self._study_upsert = s.on_conflict_do_update(
            index_elements=["site_code", "accession"], set_=sets
        )
        r = ins(T_RESULT)
        rex = r.excluded
        self._result_upsert = r.on_conflict_do_update(
            index_elements=["study_id", "model_id", "finding"],
            set_={
                c: rex[c]
                for c in ("model_version", "score", "call", "received_at", "source_message_id")
            },
            where=(
                T_RESULT.c.received_at.is_(None)
                | rex.received_at.is_(None)
                | (rex.received_at >= T_RESULT.c.received_at)
            ),
        )
        p = ins(T_PATIENT)
        pex = p.excluded
        self._patient_upsert = p.on_conflict_do_update(
            index_elements=["pseudonym"],
            set_={
                "sex": func.coalesce(pex.sex, T_PATIENT.c.sex),
                "race": func.coalesce(pex.race, T_PATIENT.c.race),
                "ethnicity": func.coalesce(pex.ethnicity, T_PATIENT.c.ethnicity),
                "merged_into": func.coalesce(pex.merged_into, T_PATIENT.c.merged_into),
                "updated_at": pex.updated_at,
            },
        )
        self._site_insert = ins(T_SITE).on_conflict_do_nothing(index_elements=["code"])
        self._model_insert = ins(T_MODEL).on_conflict_do_nothing(index_elements=["name"])
        self._ledger_insert = T_LEDGER.insert()
        self._ledger_claim = (
            ins(T_LEDGER)
            .on_conflict_do_nothing(index_elements=["sender", "control_id"])
            .returning(T_LEDGER.c.sender, T_LEDGER.c.control_id)
        )
        self._read_insert = T_READ.insert()
        self._dead_insert = T_DEAD.insert()
        self._placeholder_probe = text(PLACEHOLDER_PROBE[self.dialect])

    # -- public ----------------------------------------------------------------------------

    def write(
        self,
        items: Sequence[Item],
        *,
        now: datetime | None = None,
        after: Callable[[Connection, list[str]], None] | None = None,
    ) -> list[str]:
        """Store ``items`` in one transaction; returns one outcome per item, in order.

        Outcomes: ``stored``, ``ignored``, ``deadletter`` or ``duplicate`` (already in the ledger).
        ``after(conn, outcomes)`` runs inside the same transaction (dead-letter replay uses it).
        """
        return self.write_prepared(self.prepare(items, now=now), after=after)

    def prepare(self, items: Sequence[Item], *, now: datetime | None = None) -> Prepared:
        """The part of :meth:`write` that needs no database: pure CPU, in any process.

        Nothing here depends on the store or on this writer's caches, so a batch may be written
        long after it was prepared; when some of its keys turn out to be in the ledger by then,
        the write folds the new messages again.
        """
        now = now or datetime.now(UTC)
        first: dict[tuple[str, str], int] = {}
        for i, it in enumerate(items):
            first.setdefault(item_key(it), i)
        ledger = {key: self._ledger_row(key, items[i], now) for key, i in first.items()}
        flat = {
            i: flatten(it.mapped) for i in first.values() if isinstance(it := items[i], Accepted)
        }
        p = Prepared(items, now, first, ledger, flat)
        if ledger and self.dialect == "sqlite":
            p.ledger_params = self._params(self._ledger_insert, list(ledger.values()))
        messages = list(flat.values())
        if messages and not uid_only_studies(messages):
            # Models are not filtered by this writer's cache here: a reset between now and the
            # write must not leave a model out; the write ensures only the unknown ones.
            b = p.folded = fold(messages, {}, {}, now)
            if b.patients:
                p.patient_params = self._params(self._patient_upsert, self._patient_rows(b, now))
            if b.studies:
                p.study_params = self._params(self._study_upsert, self._study_rows(b))
        return p

    def write_prepared(
        self, p: Prepared, *, after: Callable[[Connection, list[str]], None] | None = None
    ) -> list[str]:
        """Store a prepared batch in one transaction (see :meth:`write`)."""
        for attempt in range(3):
            try:
                with self.engine.connect() as conn:
                    if self.bulk:
                        conn.exec_driver_sql("PRAGMA synchronous=NORMAL")
                        conn.exec_driver_sql(f"PRAGMA cache_size=-{BULK_CACHE_MIB * 1024}")
                        conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint={BULK_CHECKPOINT_PAGES}")
                        conn.commit()
                    with conn.begin():
                        outcomes = self._write(conn, p)
                        if after is not None:
                            after(conn, outcomes)
                return outcomes
            except IntegrityError:
                # Another writer claimed a key between our read and our insert: forget caches
                # that may now be wrong and retry; the ledger read then sees its rows.
                self._reset_caches()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _reset_caches(self) -> None:
        self._sites.clear()
        self._models.clear()
        self._studies.clear()

    # -- one batch -------------------------------------------------------------------------

    def _write(self, conn: Connection, p: Prepared) -> list[str]:
        items = p.items
        outcomes = [DUPLICATE] * len(items)
        fresh, all_new = self._claim(conn, p, outcomes)
        if all_new:
            accepted, ready = list(p.flat.values()), p
        else:  # some were in the ledger already: fold the new ones only
            accepted, ready = [p.flat[i] for i in fresh if i in p.flat], None
        dead = [it for i in fresh if isinstance(it := items[i], Rejected)]
        if accepted:
            self._store_events(conn, accepted, p.now, ready)
        if dead:
            self._store_dead(conn, dead, p.now)
        return outcomes

    def _claim(self, conn: Connection, p: Prepared, outcomes: list[str]) -> tuple[list[int], bool]:
        """Ledger: decide which items are new, record them. Returns indexes of new items, and
        whether they are all the batch's keys (the prepared fold then holds).

        Fast path (a fresh backfill, live traffic): insert every key under a savepoint; only if
        one already exists does the batch fall back to reading the ledger first.
        """
        items, first, rows, now = p.items, p.first, p.ledger, p.now
        if not rows:  # an empty batch: nothing to claim (an empty INSERT would be DEFAULT VALUES)
            return [], True
        if self.dialect == "postgresql":
            # INSERT .. ON CONFLICT DO NOTHING RETURNING says which keys are new, without an
            # error (an error inside psycopg's pipeline mode is costly and noisy).
            got = conn.execute(self._ledger_claim, list(rows.values())).all()
            new = {(s, c) for s, c in got}
            if len(new) == len(rows):
                for key, i in first.items():
                    outcomes[i] = rows[key]["outcome"]
                return sorted(first.values()), True
            claimed = [i for key, i in first.items() if (key[0][:200], key[1][:200]) in new]
            for i in claimed:
                outcomes[i] = rows[item_key(items[i])]["outcome"]
            rest = {k: i for k, i in first.items() if (k[0][:200], k[1][:200]) not in new}
            fresh = self._claim_slow(conn, items, outcomes, rest, rows, now)
            return sorted(claimed + fresh), False
        try:
            assert p.ledger_params is not None  # prepare builds it for every SQLite batch
            with conn.begin_nested():
                conn.exec_driver_sql(*p.ledger_params)
        except IntegrityError:
            return self._claim_slow(conn, items, outcomes, first, rows, now), False
        for key, i in first.items():
            outcomes[i] = rows[key]["outcome"]
        return sorted(first.values()), True

    @staticmethod
    def _ledger_row(key: tuple[str, str], it: Item, now: datetime) -> dict[str, Any]:
        if isinstance(it, Accepted):
            mt, profile, outcome = it.mapped.message_type, it.mapped.profile, STORED
        elif isinstance(it, Ignored):
            mt, profile, outcome = it.message_type, it.profile, IGNORED
        else:
            mt, profile, outcome = it.message_type, "", DEADLETTER
        return {
            "sender": key[0][:200],
            "control_id": key[1][:200],
            "message_type": mt[:32],
            "profile": profile[:100],
            "outcome": outcome,
            "received_at": now,
        }

    def _claim_slow(
        self,
        conn: Connection,
        items: Sequence[Item],
        outcomes: list[str],
        first: dict[tuple[str, str], int],
        rows: dict[tuple[str, str], dict[str, Any]],
        now: datetime,
    ) -> list[int]:
        by_sender: dict[str, list[str]] = {}
        for sender, ctrl in first:
            by_sender.setdefault(sender, []).append(ctrl)
        known: dict[tuple[str, str], str] = {}
        lc = T_LEDGER.c
        for sender, ctrls in by_sender.items():
            for part in _chunks(ctrls):
                q = select(lc.control_id, lc.outcome).where(
                    lc.sender == sender[:200], lc.control_id.in_([c[:200] for c in part])
                )
                for ctrl, outcome in conn.execute(q):
                    known[(sender, ctrl)] = outcome
        new_rows: list[dict[str, Any]] = []
        upgraded: list[dict[str, Any]] = []
        fresh: list[int] = []
        for key, i in first.items():
            row = rows[key]
            outcome = row["outcome"]
            prior = known.get((key[0], key[1][:200]))
            if prior is None:
                new_rows.append(row)
            elif prior == DEADLETTER and outcome != DEADLETTER:
                # Resent (or replayed) after the profile was fixed: store it this time.
                upgraded.append(
                    {"s": row["sender"], "c": row["control_id"], "o": outcome, "now": now}
                )
            else:
                continue
            outcomes[i] = outcome
            fresh.append(i)
        if new_rows:
            self._executemany(conn, self._ledger_insert, new_rows)
        if upgraded:
            conn.execute(
                T_LEDGER.update()
                .where(lc.sender == bindparam("s"), lc.control_id == bindparam("c"))
                .values(outcome=bindparam("o")),
                upgraded,
            )
            dc = T_DEAD.c
            conn.execute(
                T_DEAD.update()
                .where(
                    dc.sender == bindparam("s"),
                    dc.control_id == bindparam("c"),
                    dc.replayed_at.is_(None),
                )
                .values(replayed_at=bindparam("now"), replay_outcome=bindparam("o")),
                upgraded,
            )
        fresh.sort()
        return fresh

    def _executemany(self, conn: Connection, stmt: Any, rows: list[dict[str, Any]]) -> None:
        if rows:
            conn.exec_driver_sql(*self._params(stmt, rows))

    def _params(self, stmt: Any, rows: list[dict[str, Any]]) -> Params:
        """``stmt`` compiled, and ``rows`` as its driver parameters (about 2x faster).

        SQLAlchemy's generic path builds and type-processes a parameter dict per row (and on
        PostgreSQL rewrites the statement into multi-row VALUES); here the statement is compiled
        once and each row goes through the same bind processors, except timestamps, which get a
        cheaper equivalent (naive times are still refused). Needs no connection, so a batch's
        rows can be built before its turn to write (:meth:`prepare`).
        """
        spec = self._compiled.get(id(stmt))
        if spec is None:
            dialect = self.engine.dialect
            compiled = stmt.compile(dialect=dialect, column_keys=list(rows[0]))
            names = compiled.positiontup if self.dialect == "sqlite" else list(compiled.binds)
            procs = []
            for name in names:
                bind = compiled.binds[name]
                if isinstance(bind.type, UTCDateTime):
                    fast = (
                        _last_value_cached(sqlite_utc_text)
                        if self.dialect == "sqlite"
                        else _aware_utc
                    )
                    procs.append((name, bind.key, fast))
                else:
                    procs.append((name, bind.key, bind.type._cached_bind_processor(dialect)))
            spec = self._compiled[id(stmt)] = (compiled.string, _row_builder(procs, self.dialect))
        sql, build = spec
        return sql, build(rows)

    def _store_dead(self, conn: Connection, dead: list[Rejected], now: datetime) -> None:
        if self._fernet is None:
            raise StoreError("no dead-letter key: cannot store a rejected message's bytes")
        rows = [
            {
                "received_at": now,
                "sender": d.sender[:200],
                "control_id": d.control_id[:200],
                "message_type": d.message_type[:32],
                "reason_code": d.reason_code[:64],
                "reason": d.reason,
                "raw_encrypted": self._fernet.encrypt(d.raw),
                "replayed_at": None,
                "replay_outcome": "",
            }
            for d in dead
        ]
        self._executemany(conn, self._dead_insert, rows)

    # -- events ----------------------------------------------------------------------------

    def _store_events(
        self, conn: Connection, messages: list[FlatMessage], now: datetime, p: Prepared | None
    ) -> None:
        """Store the batch's events; ``p``: the prepared batch, when its fold is of exactly
        ``messages`` (otherwise they are folded here)."""
        if p is not None and p.folded is not None:
            b, uid_only = p.folded, []
            patient_params, study_params = p.patient_params, p.study_params
        else:
            uid_only = uid_only_studies(messages)
            uid_keys = self._resolve_uid_only(conn, uid_only) if uid_only else {}
            b = fold(messages, uid_keys, {}, now)
            patient_params = study_params = None
        self._ensure_sites(conn, {k[0] for k in b.studies})
        if b.patients:
            conn.exec_driver_sql(
                *(patient_params or self._params(self._patient_upsert, self._patient_rows(b, now)))
            )
        ids = self._upsert_studies(conn, b, study_params, placeholders=bool(uid_only))
        if b.merges:
            self._apply_merges(conn, b.merges, now)
        new_models = {n: r for n, r in b.new_models.items() if n not in self._models}
        if new_models:
            self._ensure_models(conn, new_models, now)
        if b.results:
            rows = []
            for (skey, model_name, finding), vals in b.results.items():
                vals["study_id"] = ids[skey]
                vals["model_id"] = self._models[model_name]
                vals["finding"] = finding[:64]
                rows.append(vals)
            self._executemany(conn, self._result_upsert, rows)
        if b.reads:
            self._insert_reads(conn, b.reads, ids)

    @staticmethod
    def _patient_rows(b: Folded, now: datetime) -> list[dict[str, Any]]:
        # Every patient of the batch, every time: a cache of what was written before would let
        # this writer skip a newer value after another writer's batch changed the row (measured
        # in bench/README.md: skipping saved under 1 % of a backfill's CPU).
        return [
            {
                "pseudonym": pseudo[:64],
                "sex": vals[0],
                "race": vals[1],
                "ethnicity": vals[2],
                "merged_into": None,
                "updated_at": now,
            }
            for pseudo, vals in b.patients.items()
        ]

    @staticmethod
    def _study_rows(b: Folded) -> list[dict[str, Any]]:
        rows = []
        for (site, acc), vals in b.studies.items():
            vals["site_code"] = site
            vals["accession"] = acc
            rows.append(vals)
        return rows

    def _apply_merges(self, conn: Connection, merges: list[tuple[str, str]], now: datetime) -> None:
        """``merges``: (surviving, prior) pseudonyms, in message order."""
        rows = [
            {
                "pseudonym": m[1][:64],
                "sex": None,
                "race": None,
                "ethnicity": None,
                "merged_into": m[0][:64],
                "updated_at": now,
            }
            for m in merges
        ]
        rows += [
            {
                "pseudonym": m[0][:64],
                "sex": None,
                "race": None,
                "ethnicity": None,
                "merged_into": None,
                "updated_at": now,
            }
            for m in merges
        ]
        for r in rows:  # two statements per merge at most: merges are rare
            conn.execute(self._patient_upsert, [r])
        sc = T_STUDY.c
        conn.execute(
            T_STUDY.update()
            .where(sc.patient_pseudonym == bindparam("prior"))
            .values(patient_pseudonym=bindparam("surviving")),
            [{"prior": m[1], "surviving": m[0]} for m in merges],
        )

    def _ensure_sites(self, conn: Connection, codes: set[str]) -> None:
        missing = [c for c in codes if c not in self._sites]
        if missing:
            conn.execute(self._site_insert, [{"code": c[:32], "name": ""} for c in missing])
            self._sites.update(missing)

    def _ensure_models(
        self, conn: Connection, new: dict[str, dict[str, Any]], now: datetime
    ) -> None:
        mc = T_MODEL.c
        names = list(new)
        for part in _chunks(names):
            for mid, name in conn.execute(select(mc.id, mc.name).where(mc.name.in_(part))):
                self._models[name] = mid
        missing = [n for n in names if n not in self._models]
        if missing:
            rows = []
            for n in missing:
                r = new[n]
                rows.append(
                    {
                        **r,
                        "status": "unregistered",
                        "created_at": now,
                        "updated_at": now,
                        "operating_threshold": 0.5,
                        "vendor": "",
                        "product": "",
                        "modality": "",
                        "body_part": "",
                        "intended_use": "",
                        "clearance_id": "",
                        "baseline_period": "",
                        "owner": "",
                    }
                )
            conn.execute(self._model_insert, rows)
            for part in _chunks(missing):
                for mid, name in conn.execute(select(mc.id, mc.name).where(mc.name.in_(part))):
                    self._models[name] = mid

    def _resolve_uid_only(
        self, conn: Connection, infos: list[tuple[Any, ...]]
    ) -> dict[tuple[str, str], tuple[str, str]]:
        """(site, study_uid) -> the study key to use for messages without an accession."""
        sc = T_STUDY.c
        out: dict[tuple[str, str], tuple[str, str]] = {}
        by_site: dict[str, set[str]] = {}
        for st in infos:
            by_site.setdefault(st[S_SITE], set()).add(st[S_UID] or "")
        for site, uids in by_site.items():
            for part in _chunks(sorted(uids)):
                rows = conn.execute(
                    select(sc.accession, sc.study_uid)
                    .where(sc.site_code == site, sc.study_uid.in_(part))
                    .order_by(sc.id)
                )
                for acc, uid in rows:
                    prev = out.get((site, uid))
                    if prev is None or is_placeholder(prev[1]):
                        out[(site, uid)] = (site, acc)
            for uid in uids:
                out.setdefault((site, uid), (site, placeholder_accession(uid)))
        return out

    def _upsert_studies(
        self,
        conn: Connection,
        b: Folded,
        params: Params | None,
        *,
        placeholders: bool,
    ) -> dict[tuple[str, str], int]:
        """Upsert the batch's studies (``params``: their rows, built by :meth:`prepare`);
        returns their ids. ``placeholders``: the batch itself names studies by UID alone
        (otherwise the store is asked whether any exist)."""
        sc = T_STUDY.c
        studies = b.studies
        if placeholders or conn.execute(self._placeholder_probe).first() is not None:
            self._adopt_placeholders(conn, studies)
        if studies:
            conn.exec_driver_sql(*(params or self._params(self._study_upsert, self._study_rows(b))))
        ids: dict[tuple[str, str], int] = {}
        missing: dict[str, list[str]] = {}
        for key in studies:
            sid = self._studies.get(key)
            if sid is None:
                missing.setdefault(key[0], []).append(key[1])
            else:
                ids[key] = sid
        for site, accs in missing.items():
            for part in _chunks(accs):
                q = select(sc.id, sc.accession).where(sc.site_code == site, sc.accession.in_(part))
                for sid, acc in conn.execute(q):
                    ids[(site, acc)] = sid
                    self._studies[(site, acc)] = sid
        if len(self._studies) > 3_000_000:
            self._studies.clear()
        return ids

    def _adopt_placeholders(
        self, conn: Connection, studies: dict[tuple[str, str], dict[str, Any]]
    ) -> None:
        """A study first known by UID only gets its real accession when a message brings it."""
        sc = T_STUDY.c
        cands: dict[str, dict[str, str]] = {}
        for (site, acc), vals in studies.items():
            uid = vals.get("study_uid")
            if uid and not is_placeholder(acc) and (site, acc) not in self._studies:
                cands.setdefault(site, {})[uid] = acc
        for site, by_uid in cands.items():
            uids = list(by_uid)
            for part in _chunks(uids):
                rows = conn.execute(
                    select(sc.id, sc.accession, sc.study_uid).where(
                        sc.site_code == site,
                        sc.study_uid.in_(part),
                        text(f"({PLACEHOLDER_SQL})"),
                    )
                ).all()
                for sid, old_acc, uid in rows:
                    acc = by_uid[uid]
                    taken = conn.execute(
                        select(sc.id).where(sc.site_code == site, sc.accession == acc)
                    ).first()
                    if taken is not None:
                        continue  # both exist already; left as two studies (rare)
                    conn.execute(T_STUDY.update().where(sc.id == sid).values(accession=acc))
                    self._studies.pop((site, old_acc), None)

    def _insert_reads(
        self,
        conn: Connection,
        reads: list[tuple[tuple[str, str], tuple[Any, ...], str, int | None]],
        ids: dict[tuple[str, str], int],
    ) -> None:
        fc = T_READ.c
        # ev: ("F", study, patient, finding, label, source, evidence, status, radiologist,
        #      reported_at, read_started_at, read_ended_at)
        pairs = {(ids[k], ev[3][:64]) for k, ev, _, _ in reads}
        study_ids = sorted({p[0] for p in pairs})
        # The current read of each (study, finding) so far: only it can lose to a new one.
        current: dict[tuple[int, str], tuple[tuple[Any, ...], int | None]] = {}
        existing: dict[tuple[int, str], int] = {}
        for part in _chunks(study_ids):
            q = select(fc.id, fc.study_id, fc.finding, fc.report_status, fc.reported_at).where(
                fc.study_id.in_(part), fc.is_current.is_(True)
            )
            for rid, sid, finding, status, rep in conn.execute(q):
                if (sid, finding) in pairs:
                    rank = (STATUS_RANK.get(status, 1), MIN_US if rep is None else to_us(rep), rid)
                    current[(sid, finding)] = (rank, rid)
                    existing[(sid, finding)] = rid
        rows: list[dict[str, Any]] = []
        winner_row: dict[tuple[int, str], int] = {}
        seq = 1 << 62  # new rows come after every existing row
        for key, ev, src, reported_at in reads:
            pair = (ids[key], ev[3][:64])
            status = (ev[7] or "F").upper()[:4]
            rows.append(
                {
                    "study_id": pair[0],
                    "finding": pair[1],
                    "label": ev[4][:16],
                    "label_source": ev[5][:16],
                    "evidence": (ev[6] or "")[:300],
                    "report_status": status,
                    "radiologist": ev[8][:64] if ev[8] else None,
                    "reported_at": reported_at,
                    "is_current": False,
                    "source_message_id": src,
                }
            )
            seq += 1
            if status not in STATUS_RANK:
                continue  # a preliminary read is never the current final read
            rank = (STATUS_RANK[status], MIN_US if reported_at is None else reported_at, seq)
            best = current.get(pair)
            if best is None or rank > best[0]:
                current[pair] = (rank, None)
                winner_row[pair] = len(rows) - 1
        for idx in winner_row.values():
            rows[idx]["is_current"] = True
        # Existing current rows that a new row beat: flip them.
        losers = [existing[p] for p in winner_row if p in existing]
        for part in _chunks(losers):
            conn.execute(T_READ.update().where(fc.id.in_(part)).values(is_current=False))
        self._executemany(conn, self._read_insert, rows)


def _row_builder(
    procs: list[tuple[str, str, Callable[[Any], Any] | None]], dialect: str
) -> Callable[[list[dict[str, Any]]], list[Any]]:
    """A function turning row dicts into driver parameters, generated once per statement.

    One list comprehension with the keys and processors inlined: a generic loop over the
    processors per value cost more than the sqlite3 executemany it feeds.
    """
    env: dict[str, Any] = {}
    parts = []
    for k, (name, key, proc) in enumerate(procs):
        value = f"r[{key!r}]"
        if proc is not None:  # processors pass None through: skip the call for it
            env[f"p{k}"] = proc
            value = f"(None if (v{k} := {value}) is None else p{k}(v{k}))"
        parts.append(value if dialect == "sqlite" else f"{name!r}: {value}")
    body = f"({', '.join(parts)},)" if dialect == "sqlite" else "{" + ", ".join(parts) + "}"
    src = f"def build(rows):\n    return [{body} for r in rows]\n"
    exec(compile(src, "<store_writer row builder>", "exec"), env)  # our own generated text
    return env["build"]  # type: ignore[no-any-return]


def _last_value_cached(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``fn`` remembering its last argument (by identity): a batch's rows share ``now``."""
    last: list[Any] = [object(), None]

    def cached(value: Any) -> Any:
        if value is last[0]:
            return last[1]
        out = fn(value)
        last[0], last[1] = value, out
        return out

    return cached


def _aware_utc(value: datetime | int | None) -> datetime | None:
    """UTCDateTime's bind step for PostgreSQL (timestamptz takes aware datetimes as they are;
    the batch fold's microseconds become one)."""
    if type(value) is int:
        return from_us(value)
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: Vigil stores timezone-aware UTC only")
    return value


# --- dashboard query ----------------------------------------------------------------------


@dataclass(frozen=True)
class UnpairedRow:
    model: str
    finding: str
    results: int
    paired: int
    waiting: int  # no current final read yet, younger than the cut-off
    read_never_came: int  # no current final read, older than the cut-off


def unpaired_summary(engine: Engine, now: datetime, stale_after_days: int = 7) -> list[UnpairedRow]:
    """Per model and finding: AI results paired with a current final read, waiting, or stale.

    Age is the AI result's ``received_at``; a result without one counts as waiting.
    """
    cutoff = now - timedelta(days=stale_after_days)
    r, m, f = T_RESULT.c, T_MODEL.c, T_READ.c
    paired = f.id.is_not(None)
    old = and_(r.received_at.is_not(None), r.received_at < cutoff)
    q = (
        select(
            m.name,
            r.finding,
            func.count(),
            func.sum(case((paired, 1), else_=0)),
            func.sum(case((and_(~paired, old), 1), else_=0)),
        )
        .select_from(
            T_RESULT.join(T_MODEL, m.id == r.model_id).outerjoin(
                T_READ,
                and_(f.study_id == r.study_id, f.finding == r.finding, f.is_current.is_(True)),
            )
        )
        .group_by(m.name, r.finding)
        .order_by(m.name, r.finding)
    )
    out = []
    with engine.connect() as conn:
        for name, finding, n, n_paired, n_old in conn.execute(q):
            n_paired, n_old = int(n_paired or 0), int(n_old or 0)
            out.append(
                UnpairedRow(name, finding, int(n), n_paired, int(n) - n_paired - n_old, n_old)
            )
    return out
