"""Build the case frame (monitors.frame's contract) from the store: one SQL query, no ORM rows.

Why one raw SQL query read through an Apache Arrow ADBC driver: a million studies must load in
seconds, and building one ORM object (or even one Python value) per row costs far more than the
query. The ADBC drivers put the result straight into Arrow columns in C (SQLite: two study-id
ranges in two reader processes at once; PostgreSQL: binary COPY); SQLite's naive UTC text times are
parsed by Arrow in one vectorised step and strings become pandas categories. Without a driver
(or for an in-memory SQLite) the older paths run: rows as delimited text parsed by pyarrow's
CSV reader, PostgreSQL COPY as CSV, else plain SQLAlchemy rows.

The reference label of a study x finding comes from its read: an adjudication (the quality
officer's decision) beats any report; otherwise the current final read (status F/C/A). A study
with only a preliminary read, or none, is ``pending``.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from monitors.frame import AGE_BANDS, CASE_FRAME_COLUMNS, age_band, empty_case_frame
from vigil.errors import NotFoundError

DICOM_PREFIX = "dicom_"  # Study.extra keys become dicom_<key> columns (monitors.drift watches them)

_TIME_COLUMNS = {
    "ordered_at": "s.ordered_at",
    "exam_at": "COALESCE(s.exam_started_at, s.exam_ended_at)",
    "ai_received_at": "r.received_at",
    "prelim_report_at": "s.prelim_report_at",
    "final_report_at": "s.final_report_at",
    "read_started_at": "s.read_started_at",
    "read_ended_at": "s.read_ended_at",
}


def _epoch(expr: str, dialect: str) -> str:
    if dialect == "sqlite":
        # stored as naive UTC text; julianday parses it (fractions included)
        return f"((julianday({expr}) - 2440587.5) * 86400.0)"
    return f"CAST(EXTRACT(EPOCH FROM {expr}) AS DOUBLE PRECISION)"


NOT_INPUTS = frozenset({"order_control"})  # Study.extra keys that are ingest bookkeeping


def _dicom_keys(conn: Any, dialect: str) -> list[str]:
    """Keys of Study.extra (DICOM-derived inputs, e.g. kvp, slice_thickness_mm, as the sender
    profiles map them) seen in ~2,000 studies sampled evenly over the table."""
    top = conn.execute(text("SELECT MAX(id) FROM study")).scalar() or 0
    step = max(1, int(top) // 2000)
    rows = conn.execute(
        text("SELECT extra FROM study WHERE extra IS NOT NULL AND id % :step = 0 LIMIT 2000"),
        {"step": step},
    ).fetchall()
    keys: set[str] = set()
    for (extra,) in rows:
        value = json.loads(extra) if isinstance(extra, str) else extra
        if isinstance(value, dict):
            keys.update(k for k, v in value.items() if isinstance(v, (int, float, str)))
    return sorted(k for k in keys - NOT_INPUTS if k.replace("_", "").isalnum())


def _json_field(key: str, dialect: str) -> str:
    if dialect == "sqlite":
        return f"json_extract(s.extra, '$.{key}')"
    return f"(s.extra::json ->> '{key}')"


_STRING_COLUMNS = (
    "site", "modality", "procedure", "scanner_manufacturer", "scanner_model", "patient_class",
    "sex", "race", "ethnicity", "model", "model_version", "finding", "read_label",
    "read_source", "report_status",
)  # fmt: skip


def _select_items(
    dialect: str, dicom: list[str], *, raw_times: bool = False
) -> list[tuple[str, str]]:
    """(output name, SQL expression) of every column the query returns, in order. Times are
    epoch seconds, or (``raw_times``, SQLite) the stored text, which pandas parses faster than
    SQLite's julianday()."""
    items = [
        ("study_id", "s.id"),
        ("site", "s.site_code"),
        ("accession", "s.accession"),
        ("modality", "s.modality"),
        ("procedure", "COALESCE(s.procedure_code, s.procedure_name)"),
        ("scanner_manufacturer", "s.scanner_manufacturer"),
        ("scanner_model", "s.scanner_model"),
        ("patient_class", "s.patient_class"),
        ("age", "s.age_at_study"),
        ("sex", "s.sex"),
        ("race", "s.race"),
        ("ethnicity", "s.ethnicity"),
        ("model", "m.name"),
        ("model_version", "r.model_version"),
        ("finding", "r.finding"),
        ("score", "r.score"),
        ("vendor_call", "CASE WHEN r.call IS NULL THEN NULL WHEN r.call THEN 1 ELSE 0 END"),
        ("threshold", "m.operating_threshold"),
        ("read_label", "fr.label"),
        ("read_source", "fr.label_source"),
        ("report_status", "fr.report_status"),
    ]
    items += [
        (name, expr if raw_times else _epoch(expr, dialect)) for name, expr in _TIME_COLUMNS.items()
    ]
    items += [(f"{DICOM_PREFIX}{k}", _json_field(k, dialect)) for k in dicom]
    return items


def _from_where(dialect: str, where: list[str]) -> str:
    """FROM ... WHERE ...: one read per study x finding, an adjudication first, then the current
    read, then the latest. SQLite seeks it per row through ix_finalread_current (cheaper there
    than materialising a window); PostgreSQL ranks with a window function."""
    cond = "WHERE " + " AND ".join(where) if where else ""
    head = """
FROM airesult r
JOIN study s ON s.id = r.study_id
JOIN aimodel m ON m.id = r.model_id
"""
    if dialect == "sqlite":
        return (
            head
            + """LEFT JOIN finalread fr ON fr.id = (
  SELECT f.id FROM finalread f
  WHERE f.study_id = r.study_id AND f.finding = r.finding
    AND (f.is_current = 1 OR f.label_source = 'adjudication')
  ORDER BY CASE WHEN f.label_source = 'adjudication' THEN 0 ELSE 1 END, f.is_current DESC,
           f.reported_at DESC, f.id DESC
  LIMIT 1)
"""
            + cond
        )
    return (
        head
        + """LEFT JOIN (
  SELECT f.study_id, f.finding, f.label, f.label_source, f.report_status,
         ROW_NUMBER() OVER (
           PARTITION BY f.study_id, f.finding
           ORDER BY CASE WHEN f.label_source = 'adjudication' THEN 0 ELSE 1 END,
                    CASE WHEN f.is_current THEN 0 ELSE 1 END,
                    f.reported_at DESC, f.id DESC) AS rn
  FROM finalread f
  WHERE f.is_current OR f.label_source = 'adjudication'
) fr ON fr.study_id = r.study_id AND fr.finding = r.finding AND fr.rn = 1
"""
        + cond
    )


def _query(dialect: str, dicom: list[str], where: list[str]) -> str:
    """The plain query (one column per item): the portable path."""
    cols = ",\n  ".join(f"{expr} AS {name}" for name, expr in _select_items(dialect, dicom))
    return f"SELECT\n  {cols}{_from_where(dialect, where)}"


_SEP = "\x1f"  # ASCII unit separator: never inside an HL7-derived value


def _read_delimited(data: bytes, names: list[str], *, sep: str, quoted: bool) -> pd.DataFrame:
    """Parse the rows the database wrote as delimited text with pyarrow's CSV reader (C++,
    ~4x pandas' parser here): strings dictionary-encoded (-> categories), numbers typed."""
    import pyarrow as pa
    from pyarrow import csv as pacsv

    types: dict[str, Any] = {n: pa.float64() for n in names}
    types.update({n: pa.dictionary(pa.int32(), pa.string()) for n in _STRING_COLUMNS})
    types["accession"] = pa.string()
    types["study_id"] = pa.int64()
    for n in names:
        if n.startswith(DICOM_PREFIX):
            types[n] = pa.string()
    raw_times = not quoted  # SQLite's stored text; PostgreSQL sends epoch seconds
    if raw_times:
        for n in _TIME_COLUMNS:
            types[n] = pa.timestamp("us")
    table = pacsv.read_csv(
        pa.py_buffer(data),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(
            delimiter=sep, quote_char='"' if quoted else False, newlines_in_values=quoted
        ),
        convert_options=pacsv.ConvertOptions(
            column_types=types,
            strings_can_be_null=True,
            null_values=[""],
            timestamp_parsers=["%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", pacsv.ISO8601],
        ),
    )
    df = table.to_pandas()
    if raw_times:
        for n in _TIME_COLUMNS:
            df[n] = df[n].dt.tz_localize("UTC")
    df["accession"] = df["accession"].astype("string")
    return df


SQLITE_PARALLEL_MIN_ROWS = 100_000  # below this one connection is quicker than two


def _sqlite_rows(engine: Engine, sql: str, params: dict) -> list[tuple[str]]:
    with engine.connect() as conn:
        cur = conn.connection.dbapi_connection.cursor()
        try:
            cur.execute("PRAGMA cache_size = -262144")  # 256 MiB page cache for this scan
            cur.execute(sql, params)  # named :params, sqlite3's own style
            return cur.fetchall()
        finally:
            cur.close()


def _fetch_sqlite(
    engine: Engine, items: list[tuple[str, str]], where: list[str], params: dict, workers: int
) -> Any:
    """SQLite: each row comes back as ONE delimited string (one Python object per row instead
    of ~30), then pyarrow parses the lot in C++. Large stores are read as ``workers`` ranges of
    study ids on as many connections at once (sqlite3 releases the GIL while SQLite works).
    Returns None when a value held a line break (the caller then takes the portable path)."""
    from concurrent.futures import ThreadPoolExecutor

    concat = " || char(31) || ".join(f"IFNULL(CAST({expr} AS TEXT), '')" for _, expr in items)
    with engine.connect() as conn:
        n, lo, hi = conn.execute(
            text("SELECT COUNT(*), MIN(study_id), MAX(study_id) FROM airesult")
        ).one()
    names = [name for name, _ in items]
    if not n:
        return pd.DataFrame(columns=names)
    k = workers if n >= SQLITE_PARALLEL_MIN_ROWS else 1
    edges = np.linspace(lo, hi + 1, k + 1).round().astype("int64")
    sqls = [
        f"SELECT {concat}"
        + _from_where("sqlite", [*where, f"s.id >= {int(a)}", f"s.id < {int(b)}"])
        for a, b in itertools.pairwise(edges)
    ]
    if k == 1:
        parts = [_sqlite_rows(engine, sqls[0], params)]
    else:
        with ThreadPoolExecutor(k) as pool:
            parts = list(pool.map(lambda q: _sqlite_rows(engine, q, params), sqls))
    rows = [r[0] for part in parts for r in part]
    if not rows:
        return pd.DataFrame(columns=names)
    joined = "\n".join(rows)
    if joined.count("\n") != len(rows) - 1:
        return None
    raw = _read_delimited(joined.encode(), names, sep=_SEP, quoted=False)
    return raw if len(raw) == len(rows) else None


def _fetch_postgres(conn: Any, items: list[tuple[str, str]], body: str, params: dict) -> Any:
    """PostgreSQL: COPY (query) TO STDOUT as CSV, parsed by pandas' C parser."""
    import io

    names = [n for n, _ in items]
    sql = "SELECT " + ", ".join(f"{expr} AS {name}" for name, expr in items) + body
    for key, value in params.items():  # numbers only (epoch seconds, ids): safe to inline
        sql = sql.replace(f":{key}", repr(float(value)) if key != "model_id" else str(int(value)))
    buf = io.BytesIO()
    cur = conn.connection.dbapi_connection.cursor()
    try:
        with cur.copy(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                buf.write(block)
    finally:
        cur.close()
    if buf.getbuffer().nbytes == 0:
        return pd.DataFrame(columns=names)
    return _read_delimited(buf.getvalue(), names, sep=",", quoted=True)


ADBC_BATCH_ROWS = "adbc.sqlite.query.batch_rows"
USE_ADBC = True  # False: the previous paths (benchmarks compare them; tests check both agree)


def _adbc_uri(engine: Engine) -> str | None:
    """Where an ADBC driver can open the engine's database, or None (in-memory SQLite, or no
    driver installed: the caller takes the other paths)."""
    url = engine.url
    if not USE_ADBC:
        return None
    if engine.dialect.name == "sqlite":
        db = url.database
        if not db or db == ":memory:" or db.startswith("file:"):
            return None
        mod = "adbc_driver_sqlite"
    elif engine.dialect.name == "postgresql":
        mod = "adbc_driver_postgresql"
    else:
        return None
    # find, do not import: the SQLite driver's own copy of SQLite must never be loaded into a
    # process that also uses Python's sqlite3 (see _SQLITE_CHILD below)
    if importlib.util.find_spec(mod) is None:
        return None
    if engine.dialect.name == "sqlite":
        return str(Path(db).resolve())
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


# Runs in a child process: the ADBC SQLite driver bundles its own copy of SQLite, and two
# copies in one process break SQLite's POSIX locking (sqlite.org/howtocorrupt.html 2.2.1): on
# our WAL store it read stale rows next to Python's sqlite3 and could corrupt it. In a child it
# is just another reader process, which SQLite fully supports. The table comes back as Arrow IPC.
_SQLITE_CHILD = """
import sys
import pyarrow as pa
from adbc_driver_sqlite import dbapi
conn = dbapi.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("PRAGMA cache_size = -262144")
cur.adbc_statement.set_options(**{sys.argv[2]: sys.argv[3]})
cur.execute(sys.stdin.read())
table = cur.fetch_arrow_table()
with pa.ipc.new_stream(sys.stdout.buffer, table.schema) as out:
    out.write_table(table)
"""


class _ChildFailed(Exception):
    """The SQLite reader process failed: the caller takes the other paths."""


def _adbc_table(dialect: str, uri: str, sql: str, rows_hint: int) -> Any:
    """Run ``sql`` through the ADBC driver: the result lands in Arrow in C, no Python per row.

    SQLite has no column types, so the SQLite driver infers each column's type from its first
    batch; one batch holding the whole result (``rows_hint``) makes that inference see every
    row (a column NULL in the first thousand rows would otherwise break on the first value)."""
    if dialect == "sqlite":
        import subprocess
        import sys

        import pyarrow as pa

        batch = str(max(1024, rows_hint + 1))
        proc = subprocess.run(
            [sys.executable, "-c", _SQLITE_CHILD, uri, ADBC_BATCH_ROWS, batch],
            input=sql.encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode:
            raise _ChildFailed(proc.stderr.decode(errors="replace")[-500:])
        return pa.ipc.open_stream(pa.py_buffer(proc.stdout)).read_all()
    from adbc_driver_postgresql import dbapi as adbc

    conn = adbc.connect(uri)
    try:
        cur = conn.cursor()
        try:
            cur.execute(sql)
            return cur.fetch_arrow_table()
        finally:
            cur.close()
    finally:
        conn.close()


def _arrow_to_raw(table: Any, names: list[str]) -> pd.DataFrame:
    """Arrow result -> the raw frame ``frame_from_rows`` takes: strings as categories (encoded
    in C), times as UTC datetimes (SQLite's naive text parsed by Arrow), numbers as floats."""
    import pyarrow as pa
    import pyarrow.compute as pc

    cols: dict[str, Any] = {}
    for name, col in zip(names, table.columns, strict=True):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
        if name in _TIME_COLUMNS:
            if not pa.types.is_timestamp(col.type):  # SQLite: naive UTC text, ISO 8601
                col = col.cast(pa.string()).cast(pa.timestamp("ns"))
            col = col.cast(pa.timestamp("ns", tz="UTC"))
            cols[name] = pd.Series(col.to_pandas(), name=name)
        elif name in _STRING_COLUMNS:
            enc = pc.dictionary_encode(col.cast(pa.string()))
            cols[name] = pd.Series(enc.to_pandas(), name=name)
        elif name == "accession":
            cols[name] = pd.Series(col.cast(pa.string()).to_pandas(), name=name, dtype="string")
        elif name == "study_id":
            cols[name] = pd.Series(col.cast(pa.int64()).to_numpy(), name=name)
        elif name.startswith(DICOM_PREFIX):  # numbers when every value is one, else text
            try:
                cols[name] = pd.Series(col.cast(pa.float64()).to_numpy(zero_copy_only=False))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                cols[name] = pd.Series(col.cast(pa.string()).to_pandas(), dtype=object)
        else:  # age, score, vendor_call, threshold
            cols[name] = pd.Series(col.cast(pa.float64()).to_numpy(zero_copy_only=False), name=name)
    return pd.DataFrame(cols)


def _inline(sql: str, params: dict, dialect: str) -> str:
    """Bind the loader's few parameters as literals (times in one fixed format, integer ids)."""
    for key, value in params.items():
        if key == "model_id":
            lit = str(int(value))
        elif dialect == "sqlite":
            lit = "'" + str(value).replace("'", "") + "'"
        else:
            lit = repr(float(value))
        sql = sql.replace(f":{key}", lit)
    return sql


def _fetch_adbc(
    engine: Engine, uri: str, dicom: list[str], where: list[str], params: dict, workers: int
) -> pd.DataFrame:
    """The fast path: the query's result straight into Arrow through an ADBC driver. SQLite
    reads ``workers`` ranges of study ids in as many reader processes at once; PostgreSQL
    streams binary COPY."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    dialect = engine.dialect.name
    items = _select_items(dialect, dicom, raw_times=True)
    names = [n for n, _ in items]
    select = "SELECT " + ", ".join(f"{expr} AS {name}" for name, expr in items)
    with engine.connect() as conn:
        n, lo, hi = conn.execute(
            text("SELECT COUNT(*), MIN(study_id), MAX(study_id) FROM airesult")
        ).one()
    if not n:
        return pd.DataFrame(columns=names)
    k = workers if dialect == "sqlite" and n >= SQLITE_PARALLEL_MIN_ROWS else 1
    edges = np.linspace(lo, hi + 1, k + 1).round().astype("int64")
    sqls = [
        _inline(
            select
            + _from_where(dialect, [*where, f"s.id >= {int(a)}", f"s.id < {int(b)}"] if k > 1
                          else where),
            params,
            dialect,
        )
        for a, b in itertools.pairwise(edges)
    ]  # fmt: skip
    if k == 1:
        tables = [_adbc_table(dialect, uri, sqls[0], int(n))]
    else:
        with ThreadPoolExecutor(k) as pool:
            tables = list(pool.map(lambda q: _adbc_table(dialect, uri, q, int(n)), sqls))
    tables = [t for t in tables if t.num_rows]
    if not tables:
        return pd.DataFrame(columns=names)
    if len(tables) > 1:  # types inferred per connection: make them agree before concatenating
        tables = [_unify(t, tables) for t in tables]
    return _arrow_to_raw(pa.concat_tables(tables), names)


def _unify(table: Any, tables: list[Any]) -> Any:
    """Cast ``table``'s columns to one type across ``tables`` (an all-NULL column comes back
    as int64 from SQLite's inference; a column of numbers in one range may be text in another)."""
    import pyarrow as pa

    out = []
    for i in range(table.num_columns):
        seen = {t.schema.field(i).type for t in tables if t.column(i).null_count < t.num_rows}
        if len(seen) == 1:
            target = seen.pop()
        elif seen and all(pa.types.is_integer(t) or pa.types.is_floating(t) for t in seen):
            target = pa.float64()
        else:
            target = pa.string()
        out.append(table.column(i).cast(target))
    return pa.table(out, names=table.column_names)


def _to_utc(seconds: pd.Series) -> pd.Series:
    if isinstance(seconds.dtype, pd.DatetimeTZDtype):
        return seconds.astype("datetime64[ns, UTC]")
    x = pd.to_numeric(seconds, errors="coerce").astype("float64")
    # microsecond precision; julianday rounding is undone by rounding to the millisecond
    ns = (np.round(x.to_numpy() * 1000.0) * 1_000_000).astype("float64")
    out = pd.to_datetime(pd.Series(ns, index=x.index), unit="ns", utc=True)
    return out.astype("datetime64[ns, UTC]")


def _label_state(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    label = raw["read_label"].astype("string").str.lower()
    source = raw["read_source"].astype("string").str.lower()
    status = raw["report_status"].astype("string").str.upper()
    final = label.notna() & ((status != "P") | (source == "adjudication")).fillna(True)
    state = pd.Series(
        np.where(final, label.fillna("pending"), "pending"), index=raw.index, dtype="string"
    )
    state = state.where(state.isin(["positive", "negative", "uncertain"]), "pending")
    num = pd.Series(pd.NA, index=raw.index, dtype="Int8")
    num[state == "positive"] = 1
    num[state == "negative"] = 0
    src = source.where(state != "pending")
    return num, state, src


def frame_from_rows(raw: pd.DataFrame) -> pd.DataFrame:
    """Turn the query's columns into the case frame contract (dtypes, labels, derived columns)."""
    if raw.empty:
        out = empty_case_frame()
        for c in raw.columns:
            if c.startswith(DICOM_PREFIX):
                out[c] = pd.Series(dtype="object")
        return out
    df = pd.DataFrame(index=raw.index)
    df["study_id"] = raw["study_id"].astype("int64")
    for c in ("site", "modality", "procedure", "scanner_manufacturer", "scanner_model"):
        df[c] = raw[c].astype("category")
    df["accession"] = raw["accession"].astype("string")
    df["patient_class"] = raw["patient_class"].astype("category")
    df["age"] = pd.to_numeric(raw["age"], errors="coerce").round().astype("Int64")
    df["age_band"] = age_band(df["age"])
    for c in ("sex", "race", "ethnicity", "model", "model_version", "finding"):
        df[c] = raw[c].astype("category")
    df["score"] = pd.to_numeric(raw["score"], errors="coerce").astype("float64")
    df["threshold"] = pd.to_numeric(raw["threshold"], errors="coerce").astype("float64")
    vc = pd.to_numeric(raw["vendor_call"], errors="coerce")
    vendor = pd.Series(pd.array(vc == 1, dtype="boolean"), index=raw.index).where(vc.notna())
    by_score = pd.array(df["score"] >= df["threshold"], dtype="boolean")
    df["ai_call"] = pd.Series(by_score, index=df.index).where(df["score"].notna(), vendor)
    df["ai_call"] = df["ai_call"].astype("boolean")
    df["label"], state, source = _label_state(raw)
    df["label_state"] = state.astype(
        pd.CategoricalDtype(["positive", "negative", "uncertain", "pending"])
    )
    df["label_source"] = source.astype("category")
    times = {name: _to_utc(raw[name]) for name in _TIME_COLUMNS}
    for name in ("ordered_at", "exam_at", "ai_received_at", "prelim_report_at", "final_report_at"):
        df[name] = times[name]
    first_report = pd.concat([times["prelim_report_at"], times["final_report_at"]], axis=1).min(
        axis=1
    )
    df["turnaround_min"] = (first_report - times["exam_at"]).dt.total_seconds() / 60.0
    df["read_min"] = (times["read_ended_at"] - times["read_started_at"]).dt.total_seconds() / 60.0
    for c in raw.columns:
        if c.startswith(DICOM_PREFIX):
            num = pd.to_numeric(raw[c], errors="coerce")
            df[c] = num if num.notna().sum() >= raw[c].notna().sum() else raw[c].astype("category")
    cols = list(CASE_FRAME_COLUMNS) + [c for c in df.columns if c.startswith(DICOM_PREFIX)]
    return df[cols].reset_index(drop=True)


def load_case_frame(
    engine: Engine,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
) -> pd.DataFrame:
    """The case frame of every AI result whose study's exam time lies in [since, until).

    ``model`` (AIModel.name) restricts to one model and raises NotFoundError when unknown.
    Studies without an exam time are kept unless a time bound is given.
    """
    dialect = engine.dialect.name
    where: list[str] = []
    params: dict[str, Any] = {}
    exam = "COALESCE(s.exam_started_at, s.exam_ended_at)"
    for name, bound, op in (("since", since, ">="), ("until", until, "<")):
        if bound is None:
            continue
        if bound.tzinfo is None:
            raise ValueError(f"{name} must be timezone-aware UTC")
        if dialect == "sqlite":  # stored as naive UTC text in one fixed format: compare text
            where.append(f"{exam} {op} :{name}")
            params[name] = bound.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
        else:
            where.append(f"{_epoch(exam, dialect)} {op} :{name}")
            params[name] = bound.timestamp()
    with engine.connect() as conn:
        if model is not None:
            found = conn.execute(
                text("SELECT id FROM aimodel WHERE name = :n"), {"n": model}
            ).first()
            if found is None:
                names = [r[0] for r in conn.execute(text("SELECT name FROM aimodel ORDER BY name"))]
                raise NotFoundError(
                    f"no model named {model!r}; known models: {', '.join(names) or 'none'}"
                )
            where.append("r.model_id = :model_id")
            params["model_id"] = found[0]
        dicom = _dicom_keys(conn, dialect)
        items = _select_items(dialect, dicom)
        body = _from_where(dialect, where)
        raw = None
        uri = _adbc_uri(engine)
        if uri is not None:
            from adbc_driver_manager import Error as AdbcError

            try:
                raw = _fetch_adbc(
                    engine, uri, dicom, where, params, workers=max(1, min(2, os.cpu_count() or 1))
                )
            except (AdbcError, _ChildFailed):  # e.g. an option libpq's URI lacks: other paths
                raw = None
        if raw is None and dialect == "sqlite":
            raw = _fetch_sqlite(
                engine,
                _select_items(dialect, dicom, raw_times=True),
                where,
                params,
                workers=max(1, min(2, os.cpu_count() or 1)),
            )
        elif raw is None and dialect == "postgresql" and conn.dialect.driver == "psycopg":
            raw = _fetch_postgres(conn, items, body, params)
        if raw is None:  # the portable path: one column per item through SQLAlchemy
            result = conn.execute(text(_query(dialect, dicom, where)), params)
            raw = pd.DataFrame.from_records(
                result.fetchall(), columns=list(result.keys()), coerce_float=True
            )
    if len(raw):
        order = np.argsort(raw["study_id"].to_numpy(), kind="stable")
        raw = raw.iloc[order].reset_index(drop=True)
    return frame_from_rows(raw)


def read_case_frame(path: str | Path) -> pd.DataFrame:
    """Read a file written by ``vigil export cases`` back into the contract's dtypes."""
    path = Path(path)
    if path.suffix.lower() == ".parquet":
        raw = pd.read_parquet(path)
    else:
        raw = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""])
    out = pd.DataFrame(index=raw.index)
    for col, dtype in CASE_FRAME_COLUMNS.items():
        s = raw[col]
        if dtype.startswith("datetime64"):
            s = pd.to_datetime(s, utc=True, format="ISO8601").astype(dtype)
        elif dtype in ("float64", "int64", "Int64", "Int8"):
            s = pd.to_numeric(s).astype(dtype)
        elif dtype == "boolean":
            if not isinstance(s.dtype, pd.BooleanDtype):
                s = s.map({"True": True, "False": False}, na_action="ignore")
            s = s.astype("boolean")
        elif dtype == "category" and col == "label_state":
            s = s.astype(pd.CategoricalDtype(["positive", "negative", "uncertain", "pending"]))
        elif dtype == "category" and col == "age_band":
            s = s.astype(pd.CategoricalDtype([b[0] for b in AGE_BANDS], ordered=True))
        else:
            s = s.astype(dtype)
        out[col] = s
    for col in raw.columns:
        if col.startswith(DICOM_PREFIX):
            num = pd.to_numeric(raw[col], errors="coerce")
            out[col] = num if num.notna().sum() >= raw[col].notna().sum() else raw[col]
    return out
