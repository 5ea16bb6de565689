"""Monitors: pure functions over the case frame (no SQL, no Streamlit, no I/O)."""
