"""Local accounts and roles: who may see and do what in the dashboard.

The embedded default is local accounts with bcrypt-hashed passwords in the ``app_user`` table.
Behind a hospital SSO the reverse proxy authenticates and passes the user name in a trusted
header (``settings.auth_header``); the role then still comes from this table, so access is
decided in one place whichever way people log in.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import bcrypt
from sqlalchemy import Engine
from sqlmodel import select

from vigil.audit import record
from vigil.errors import InvalidInputError, NotFoundError, VigilError
from vigil.store.db import session_scope
from vigil.store.tables import User
from vigil.store.types import utcnow


class Role(StrEnum):
    COE_MEMBER = "coe_member"  # reads every page
    QUALITY_OFFICER = "quality_officer"  # + acknowledges/resolves alerts, adjudicates cases
    ADMINISTRATOR = "administrator"  # + edits ROI inputs and the readiness checklist
    ADMIN = "admin"  # everything, + users, settings and the audit log


class Permission(StrEnum):
    READ = "read"
    ACT_ON_ALERTS = "act_on_alerts"
    ADJUDICATE = "adjudicate"
    EDIT_ROI = "edit_roi"
    EDIT_CHECKLIST = "edit_checklist"
    MANAGE_USERS = "manage_users"
    VIEW_AUDIT = "view_audit"


ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.COE_MEMBER: frozenset({Permission.READ}),
    Role.QUALITY_OFFICER: frozenset(
        {Permission.READ, Permission.ACT_ON_ALERTS, Permission.ADJUDICATE}
    ),
    Role.ADMINISTRATOR: frozenset(
        {Permission.READ, Permission.EDIT_ROI, Permission.EDIT_CHECKLIST}
    ),
    Role.ADMIN: frozenset(Permission),
}

ROLE_LABELS: dict[Role, str] = {
    Role.COE_MEMBER: "CoE member",
    Role.QUALITY_OFFICER: "quality officer",
    Role.ADMINISTRATOR: "administrator",
    Role.ADMIN: "admin",
}

MIN_PASSWORD_LENGTH = 8
BCRYPT_ROUNDS = 12  # ~0.25 s per check on this hardware: slow for guessing, fine for a login


class AuthError(VigilError):
    """Login refused (unknown user or wrong password: deliberately not told apart)."""


class PermissionDeniedError(VigilError):
    """The signed-in role may not do this."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The person using the dashboard and how they were identified."""

    username: str
    role: Role
    via: str = "local"  # local / sso

    def can(self, permission: Permission) -> bool:
        return permission in ROLE_PERMISSIONS[self.role]

    def require(self, permission: Permission) -> None:
        if not self.can(permission):
            raise PermissionDeniedError(
                f"{self.username} ({ROLE_LABELS[self.role]}) may not {permission.value}"
            )


def parse_role(value: str) -> Role:
    """Accept 'quality_officer', 'quality officer' or 'Quality-Officer'."""
    norm = value.strip().lower().replace(" ", "_").replace("-", "_")
    if norm == "coe":
        norm = "coe_member"
    try:
        return Role(norm)
    except ValueError:
        raise InvalidInputError(
            f"unknown role {value!r}; choose one of: {', '.join(r.value for r in Role)}"
        ) from None


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInputError(
            f"password too short: use at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password.encode()) > 72:
        raise InvalidInputError("password too long: bcrypt uses at most 72 bytes")
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()


def _check(password: str, hashed: str) -> bool:
    if not hashed:
        return False
    try:
        return bcrypt.checkpw(password.encode()[:72], hashed.encode())
    except ValueError:
        return False


def add_user(
    engine: Engine, username: str, role: Role | str, password: str | None, *, actor: str
) -> User:
    """Create (or replace the role/password of) a user; ``password`` None means SSO-only."""
    username = username.strip()
    if not username or len(username) > 100:
        raise InvalidInputError("user name must be 1-100 characters")
    role = parse_role(role) if isinstance(role, str) else role
    hashed = hash_password(password) if password is not None else ""
    with session_scope(engine) as s:
        user = s.get(User, username)
        action = "user.update" if user else "user.add"
        if user is None:
            user = User(username=username, role=role.value, created_at=utcnow())
        user.role = role.value
        user.password_hash = hashed
        s.add(user)
        record(
            s,
            actor=actor,
            action=action,
            target=username,
            detail={"role": role.value, "local_password": bool(hashed)},
        )
    return user


def remove_user(engine: Engine, username: str, *, actor: str) -> None:
    with session_scope(engine) as s:
        user = s.get(User, username)
        if user is None:
            raise NotFoundError(f"no user {username!r}")
        s.delete(user)
        record(s, actor=actor, action="user.remove", target=username)


def list_users(engine: Engine) -> list[User]:
    with session_scope(engine) as s:
        return list(s.exec(select(User).order_by(User.username)))


def authenticate(engine: Engine, username: str, password: str) -> Identity:
    """Check a local password; raise AuthError without saying which part was wrong."""
    with session_scope(engine) as s:
        user = s.get(User, username.strip())
        hashed = user.password_hash if user else ""
        role = user.role if user else None
    if not _check(password, hashed) or role is None:
        raise AuthError("unknown user or wrong password")
    return Identity(username=username.strip(), role=Role(role), via="local")


def identity_from_header(engine: Engine, username: str) -> Identity:
    """SSO: the proxy vouched for ``username``; its role comes from the user table."""
    username = username.strip()
    with session_scope(engine) as s:
        user = s.get(User, username)
        role = user.role if user else None
    if role is None:
        raise AuthError(
            f"{username!r} is signed in through SSO but has no Vigil role; ask an admin"
        )
    return Identity(username=username, role=Role(role), via="sso")
