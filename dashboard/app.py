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

from dashboard import auth, data  # noqa: E402
from dashboard.nav import pages_for  # noqa: E402
from vigil.errors import VigilError  # noqa: E402


@st.cache_resource(show_spinner=False)
def _favicon():
    """Drawn here: a material or emoji page icon makes the browser fetch the icon from
    fonts.gstatic.com, and nothing may leave the hospital (tests/test_dashboard_browser.py)."""
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (32, 32), "#0072B2")  # Okabe-Ito blue
    ImageDraw.Draw(img).line(
        [(3, 17), (10, 17), (13, 8), (18, 26), (21, 17), (29, 17)], fill="white", width=3
    )
    return img


st.set_page_config(page_title="Vigil", page_icon=_favicon(), layout="wide")


@st.cache_resource(show_spinner=False)
def _warm_up_started(db_url: str, version: object) -> bool:
    """Compute the aggregates in the background once per process and data version."""
    import threading

    threading.Thread(target=data.warm_up, name="vigil-warm-up", daemon=True).start()
    return True


def _main() -> None:
    if data.WARM_UP_IN_BACKGROUND:
        _warm_up_started(data.url(), data.data_version())
    ident = auth.current_identity()
    if ident is None:
        st.navigation([st.Page(auth.login_form, title="Sign in", url_path="login")]).run()
        st.stop()
    auth.sidebar_identity(ident)
    st.navigation(pages_for(ident), expanded=True).run()


try:
    _main()
except VigilError as exc:  # one friendly line (e.g. the database cannot be reached)
    st.error(str(exc))
