"""Users: local accounts and roles (admins only); the same as `vigil users add`."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import auth, data
from dashboard.widgets import flash
from vigil.errors import VigilError
from vigil.users import ROLE_LABELS, Permission, Role, add_user, list_users

ident = auth.require(Permission.MANAGE_USERS)
st.title("Users")
flash()
users = list_users(data.engine())
st.dataframe(
    pd.DataFrame(
        [
            {
                "user": u.username,
                "role": ROLE_LABELS[Role(u.role)],
                "sign-in": "local password" if u.password_hash else "SSO only",
                "created": u.created_at,
            }
            for u in users
        ],
        columns=["user", "role", "sign-in", "created"],
    ),
    hide_index=True,
    width="stretch",
)
st.caption(
    "SSO: set VIGIL_AUTH_HEADER to the header your sign-in proxy sets; users still need a role "
    "here (add them as SSO only)."
)
with st.form("add-user", clear_on_submit=True):
    st.markdown("**Add a user or change a role**")
    name = st.text_input("User name")
    role = st.selectbox("Role", list(Role), format_func=lambda r: ROLE_LABELS[r])
    password = st.text_input("Password (empty: SSO only)", type="password")
    if st.form_submit_button("Save user"):
        try:
            add_user(data.engine(), name, role, password or None, actor=ident.username)
        except VigilError as exc:
            st.error(str(exc))
        else:
            st.session_state["flash"] = f"User {name} saved."
            st.rerun()
