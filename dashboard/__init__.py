"""Streamlit dashboard over the scoring API and the prediction log."""
