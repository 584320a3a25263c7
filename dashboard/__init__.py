"""Streamlit front end: app.py wires the pages, ui.py holds what several pages share."""
