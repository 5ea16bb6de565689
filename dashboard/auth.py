"""Who is using the dashboard: local login form, or the SSO proxy's trusted header.

The identity lives in ``st.session_state["vigil_identity"]`` (tests set it directly to sign in
with a role). Pages call :func:`require` before a write so that a role's limits hold even if a
button were shown by mistake.
"""

from __future__ import annotations

import streamlit as st

from vigil.users import (
    ROLE_LABELS,
    AuthError,
    Identity,
    Permission,
    Role,
    authenticate,
    identity_from_header,
)

SESSION_KEY = "vigil_identity"


def _coerce(value: object) -> Identity | None:
    if isinstance(value, Identity):
        return value
    if isinstance(value, dict) and "username" in value and "role" in value:
        return Identity(str(value["username"]), Role(value["role"]), str(value.get("via", "local")))
    return None


def current_identity() -> Identity | None:
    """The signed-in person, from the SSO header when configured, else the session."""
    from dashboard.data import engine, settings

    header = settings().auth_header
    if header:
        name = st.context.headers.get(header)
        if not name:
            st.error(
                f"Vigil expects the sign-in proxy to send the {header!r} header, and it is "
                "missing. Open Vigil through the hospital's sign-in page."
            )
            st.stop()
        existing = _coerce(st.session_state.get(SESSION_KEY))
        if existing is None or existing.username != name.strip():
            try:
                existing = identity_from_header(engine(), name)
            except AuthError as exc:
                st.error(str(exc))
                st.stop()
            st.session_state[SESSION_KEY] = existing
        return existing
    return _coerce(st.session_state.get(SESSION_KEY))


def login_form() -> None:
    """Local accounts (made with `vigil users add`)."""
    from dashboard.data import engine

    st.title("Vigil")
    st.caption("Governance and monitoring for AI in medical imaging")
    with st.form("login"):
        username = st.text_input("User name")
        password = st.text_input("Password", type="password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            st.session_state[SESSION_KEY] = authenticate(engine(), username, password)
        except AuthError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    st.caption("No account? An admin adds one with `vigil users add NAME --role ROLE`.")


def sidebar_identity(ident: Identity) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{ident.username}** ({ROLE_LABELS[ident.role]})")
        if ident.via == "local" and st.button("Sign out"):
            st.session_state.pop(SESSION_KEY, None)
            st.rerun()


def identity() -> Identity:
    """The signed-in identity inside a page (the app has already enforced sign-in)."""
    ident = current_identity()
    if ident is None:
        st.stop()
    return ident


def require(permission: Permission) -> Identity:
    """Stop with a clear message unless the signed-in role has ``permission``."""
    ident = identity()
    if not ident.can(permission):
        st.error(f"Your role ({ROLE_LABELS[ident.role]}) may not do this.")
        st.stop()
    return ident
