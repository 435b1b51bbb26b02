"""Download buttons for the numbers behind a figure, as CSV and JSON, under the figure."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from app import export


def numbers_downloads(
    name: str, stem: str, table: Callable[[], pd.DataFrame], document: Callable[[], dict]
) -> None:
    """'<name> (CSV)' and '<name> (JSON)' side by side; each file is built when clicked."""
    row = st.container(horizontal=True)
    slug = name.lower().replace(" ", "_")
    row.download_button(
        f"{name} (CSV)",
        lambda: export.csv_bytes(table()),
        file_name=f"{stem}_{slug}.csv",
        mime="text/csv",
        on_click="ignore",
        key=f"numbers_csv_{slug}",
    )
    row.download_button(
        f"{name} (JSON)",
        lambda: export.json_bytes(document()),
        file_name=f"{stem}_{slug}.json",
        mime="application/json",
        on_click="ignore",
        key=f"numbers_json_{slug}",
    )
