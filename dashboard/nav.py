"""The page list, grouped as the committee reads it; admin-only pages only for admins."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from vigil.users import Identity, Permission

PAGES_DIR = Path(__file__).resolve().parent / "pages"

# (file, title, url path, icon, permission needed to see it)
PAGE_SPECS: dict[str, list[tuple[str, str, str, str, Permission]]] = {
    "Monitoring": [
        ("overview.py", "Overview", "overview", ":material/dashboard:", Permission.READ),
        (
            "performance.py",
            "Model performance",
            "performance",
            ":material/show_chart:",
            Permission.READ,
        ),
        ("drift.py", "Drift", "drift", ":material/waves:", Permission.READ),
        ("fairness.py", "Fairness", "fairness", ":material/balance:", Permission.READ),
        ("alerts.py", "Alerts", "alerts", ":material/notifications:", Permission.READ),
        ("discordance.py", "Discordance review", "discordance", ":material/rule:", Permission.READ),
    ],
    "Value and governance": [
        (
            "turnaround.py",
            "Read time and turnaround",
            "turnaround",
            ":material/timer:",
            Permission.READ,
        ),
        (
            "business_case.py",
            "ROI and business case",
            "roi",
            ":material/payments:",
            Permission.READ,
        ),
        (
            "readiness.py",
            "Readiness checklist",
            "readiness",
            ":material/checklist:",
            Permission.READ,
        ),
        ("inventory.py", "Model inventory", "inventory", ":material/inventory_2:", Permission.READ),
        ("ingest.py", "Ingest health", "ingest", ":material/input:", Permission.READ),
    ],
    "Administration": [
        ("users.py", "Users", "users", ":material/group:", Permission.MANAGE_USERS),
        # admins manage users and settings (the same admin-only permission)
        ("settings.py", "Settings", "settings", ":material/settings:", Permission.MANAGE_USERS),
        ("audit.py", "Audit log", "audit", ":material/history:", Permission.VIEW_AUDIT),
    ],
}


def allowed_titles(ident: Identity) -> list[str]:
    """Titles of the pages this identity may open."""
    return [t for specs in PAGE_SPECS.values() for _, t, _, _, perm in specs if ident.can(perm)]


def pages_for(ident: Identity) -> dict[str, list[st.Page]]:
    out: dict[str, list[st.Page]] = {}
    for section, specs in PAGE_SPECS.items():
        pages = [
            st.Page(PAGES_DIR / f, title=t, url_path=u, icon=i, default=(u == "overview"))
            for f, t, u, i, perm in specs
            if ident.can(perm)
        ]
        if pages:
            out[section] = pages
    return out
