"""The model registry: the governance inventory of deployed models, kept as model cards.

A card is a TOML file (README section ``models`` documents every key). ``upsert_card`` creates a
model or updates it by name; an ingest-created placeholder (status ``unregistered``) is completed
in place so its AI results stay attached. Every change of version or card content adds an
``AIModelVersion`` row with a snapshot of the whole card (history is never overwritten), and every
write goes to the audit log.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from vigil.audit import record
from vigil.errors import InvalidInputError, NotFoundError
from vigil.store.db import session_scope
from vigil.store.tables import AIModel, AIModelVersion
from vigil.store.types import utcnow

STATUSES = ("pilot", "active", "suspended", "retired", "unregistered")

# card key -> (AIModel column, kind). Kinds: str, prob (float in [0, 1]), int, date.
_TOP_KEYS: dict[str, tuple[str, str]] = {
    "name": ("name", "str"),
    "vendor": ("vendor", "str"),
    "product": ("product", "str"),
    "finding": ("finding", "str"),
    "modality": ("modality", "str"),
    "body_part": ("body_part", "str"),
    "intended_use": ("intended_use", "str"),
    "clearance_id": ("clearance_id", "str"),
    "version": ("current_version", "str"),
    "current_version": ("current_version", "str"),
    "operating_threshold": ("operating_threshold", "prob"),
    "threshold": ("operating_threshold", "prob"),
    "go_live_date": ("go_live_date", "date"),
    "go_live": ("go_live_date", "date"),
    "owner": ("owner", "str"),
    "status": ("status", "str"),
}
_BASELINE_KEYS: dict[str, tuple[str, str]] = {
    "sensitivity": ("baseline_sensitivity", "prob"),
    "specificity": ("baseline_specificity", "prob"),
    "auc": ("baseline_auc", "prob"),
    "ppv": ("baseline_ppv", "prob"),
    "n": ("baseline_n", "int"),
    "period": ("baseline_period", "str"),
}
_TARGET_KEYS: dict[str, tuple[str, str]] = {
    "sensitivity": ("target_sensitivity", "prob"),
    "specificity": ("target_specificity", "prob"),
}
# Columns a card may set; the rest of the card (any other table) is kept in AIModel.card.
CARD_COLUMNS = sorted(
    {c for c, _ in _TOP_KEYS.values()}
    | {c for c, _ in _BASELINE_KEYS.values()}
    | {c for c, _ in _TARGET_KEYS.values()}
)
REQUIRED = ("name", "finding")


@dataclass
class ModelCard:
    """A validated card: AIModel column values plus the free-form rest of the card."""

    source: str
    columns: dict[str, Any]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.columns["name"]


@dataclass
class UpsertOutcome:
    name: str
    action: str  # created / completed / updated / unchanged
    version: str
    changed: list[str]


def _bad(source: str, key: str, problem: str, fix: str) -> InvalidInputError:
    return InvalidInputError(f"{source}: key '{key}': {problem}. Fix: {fix}")


def _convert(source: str, key: str, kind: str, value: Any) -> Any:
    if kind == "str":
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # version = 2 is a fair thing to write
        if not isinstance(value, str):
            raise _bad(source, key, f"expected text, got {value!r}", f'write {key} = "..."')
        return value.strip()
    if kind == "prob":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _bad(source, key, f"expected a number, got {value!r}", f"write {key} = 0.85")
        if not 0.0 <= float(value) <= 1.0:
            raise _bad(
                source, key, f"{value} is outside 0..1", "give a proportion, e.g. 0.85 not 85"
            )
        return float(value)
    if kind == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise _bad(source, key, f"expected a whole number >= 0, got {value!r}", f"{key} = 500")
        return value
    if kind == "date":
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                pass
        raise _bad(source, key, f"expected a date, got {value!r}", f"write {key} = 2025-01-31")
    raise AssertionError(kind)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def parse_card(data: dict[str, Any], source: str = "<card>") -> ModelCard:
    """Validate a card's TOML table; errors name the source, the key and the fix."""
    if set(data) == {"model"} and isinstance(data["model"], dict):
        data = data["model"]  # a card may wrap everything in [model]
    columns: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TOP_KEYS:
            col, kind = _TOP_KEYS[key]
            columns[col] = _convert(source, key, kind, value)
        elif key in ("baseline", "target"):
            table = _BASELINE_KEYS if key == "baseline" else _TARGET_KEYS
            if not isinstance(value, dict):
                raise _bad(
                    source, key, "expected a table", f"write [{key}] with keys {list(table)}"
                )
            for sub, subval in value.items():
                if sub not in table:
                    raise _bad(
                        source,
                        f"{key}.{sub}",
                        "unknown key",
                        f"use one of {', '.join(table)}",
                    )
                col, kind = table[sub]
                columns[col] = _convert(source, f"{key}.{sub}", kind, subval)
        elif key == "card" and isinstance(value, dict):  # an explicit table of extras
            extra.update(_jsonable(value))
        elif key.startswith(("baseline_", "target_")) and key in CARD_COLUMNS:
            kind = "int" if key == "baseline_n" else "str" if key == "baseline_period" else "prob"
            columns[key] = _convert(source, key, kind, value)
        else:
            extra[key] = _jsonable(value)
    for key in REQUIRED:
        if not columns.get(key):
            raise _bad(source, key, "missing", f'add {key} = "..." to the card')
    name = columns["name"]
    if len(name) > 100 or any(c.isspace() for c in name):
        raise _bad(
            source,
            "name",
            f"{name!r} must be one word of at most 100 characters",
            'use the feed\'s model name, e.g. name = "neurovue-ich"',
        )
    status = columns.get("status")
    if status is not None and status not in STATUSES:
        raise _bad(source, "status", f"{status!r} is not a status", f"use one of {STATUSES}")
    return ModelCard(source=source, columns=columns, extra=extra)


def load_card(path: Path) -> ModelCard:
    """Read and validate one TOML card file."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInputError(
            f"{path}: no such file. Fix: give the path of a model card TOML"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise InvalidInputError(
            f"{path}: not valid TOML ({exc}). Fix: correct the syntax"
        ) from None
    card = parse_card(data, str(path))
    resc = card.extra.get("rescoring")
    if isinstance(resc, dict) and isinstance(resc.get("spec"), str):
        spec = Path(resc["spec"]).expanduser()
        if not spec.is_absolute():  # relative to the card, not to where the command runs
            resc["spec"] = str((Path(path).parent / spec).resolve())
    return card


def snapshot(model: AIModel) -> dict[str, Any]:
    """The whole card as plain JSON (what a version row keeps)."""
    snap = {c: _jsonable(getattr(model, c)) for c in CARD_COLUMNS}
    snap["status"] = model.status
    snap["card"] = model.card or {}
    return snap


def _changed(model: AIModel, card: ModelCard) -> list[str]:
    out = [c for c, v in card.columns.items() if getattr(model, c) != v]
    if card.extra and (model.card or {}) != card.extra:
        out.append("card")
    return sorted(out)


def upsert_card(session: Session, card: ModelCard, *, actor: str, note: str = "") -> UpsertOutcome:
    """Create or update the model named on ``card``; history row and audit entry on change."""
    model = session.exec(select(AIModel).where(AIModel.name == card.name)).first()
    now = utcnow()
    if model is None:
        model = AIModel(**card.columns, card=card.extra or None, created_at=now, updated_at=now)
        if "status" not in card.columns:
            model.status = "active"
        action, changed = "created", sorted(card.columns)
    else:
        changed = _changed(model, card)
        was_unregistered = model.status == "unregistered"
        if not changed and not was_unregistered:
            return UpsertOutcome(card.name, "unchanged", model.current_version, [])
        old_version = model.current_version
        for col, value in card.columns.items():
            setattr(model, col, value)
        if card.extra:
            model.card = card.extra
        if was_unregistered and "status" not in card.columns:
            model.status = "active"
            changed = sorted({*changed, "status"})
        model.updated_at = now
        action = "completed" if was_unregistered else "updated"
        if model.current_version != old_version:
            note = note or f"version {old_version or '?'} -> {model.current_version}"
    session.add(model)
    session.flush()
    if not note:
        note = "card created" if action == "created" else f"card edit: {', '.join(changed)}"
    session.add(
        AIModelVersion(
            model_id=model.id,
            version=model.current_version,
            first_seen_at=now,
            card_snapshot=snapshot(model),
            changed_by=actor,
            note=note,
        )
    )
    record(
        session,
        actor=actor,
        action=f"model.{action}",
        target=f"model:{model.name}",
        detail={"source": card.source, "changed": changed, "version": model.current_version},
    )
    return UpsertOutcome(model.name, action, model.current_version, changed)


def add_cards(engine: Engine, paths: list[Path], *, actor: str) -> list[UpsertOutcome]:
    """Validate every file first (nothing is written when one is bad), then upsert them all."""
    cards = [load_card(p) for p in paths]
    names = [c.name for c in cards]
    dupes = {n for n in names if names.count(n) > 1}
    if dupes:
        raise InvalidInputError(
            f"the same model appears in several files: {', '.join(sorted(dupes))}. "
            "Fix: give each model once"
        )
    with session_scope(engine) as session:
        return [upsert_card(session, c, actor=actor) for c in cards]


def list_models(engine: Engine) -> list[AIModel]:
    with session_scope(engine) as session:
        return list(session.exec(select(AIModel).order_by(AIModel.name)).all())


def get_model(session: Session, name: str) -> AIModel:
    model = session.exec(select(AIModel).where(AIModel.name == name)).first()
    if model is None:
        known = session.exec(select(AIModel.name).order_by(AIModel.name)).all()
        raise NotFoundError(
            f"no model named {name!r}; known: {', '.join(known) or 'none'}. "
            "Fix: `vigil models add CARD.toml` or check the name with `vigil models list`"
        )
    return model


def history(engine: Engine, name: str) -> tuple[AIModel, list[AIModelVersion]]:
    """The model and its version rows, oldest first."""
    with session_scope(engine) as session:
        model = get_model(session, name)
        rows = session.exec(
            select(AIModelVersion)
            .where(AIModelVersion.model_id == model.id)
            .order_by(AIModelVersion.id)
        ).all()
        return model, list(rows)
