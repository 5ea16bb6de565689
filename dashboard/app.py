"""Vigil dashboard entry point: sign-in, then navigation to pages this role may open.

Served by `vigil dashboard`. Pages live in dashboard/pages/ and only load, call and render.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` from anywhere
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import auth  # noqa: E402
from dashboard.nav import pages_for  # noqa: E402

st.set_page_config(page_title="Vigil", page_icon=":material/monitor_heart:", layout="wide")

ident = auth.current_identity()
if ident is None:
    st.navigation([st.Page(auth.login_form, title="Sign in", url_path="login")]).run()
    st.stop()

auth.sidebar_identity(ident)
st.navigation(pages_for(ident), expanded=True).run()
