"""Streamlit dashboard: pages only load, call and render."""
