"""Failures on the pages as messages for people, never tracebacks: `guard` around each panel,
`last_resort` around a whole page."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from larnn.errors import LarnnError


@contextmanager
def guard(what: str, retry: str = "Try another choice") -> Iterator[None]:
    """Show a failure inside `what` as a message: the error's own words for the project's
    errors, and `retry` with the error's type for anything unexpected."""
    try:
        yield
    except LarnnError as error:
        st.error(f"**{what}:** {error}")
    except Exception as error:
        st.error(
            f"**{what}** failed unexpectedly: {type(error).__name__}: {error}. "
            f"{retry} or reload the page; if it keeps happening, report this message."
        )


@contextmanager
def last_resort() -> Iterator[None]:
    """The last net around a page's `main()`: any failure `guard` did not catch as a message,
    never a traceback (Streamlit's own rerun and stop signals are not Exceptions: they pass)."""
    try:
        yield
    except Exception as error:
        st.error(
            f"The page failed: {type(error).__name__}: {error}. Reload the page; if it keeps "
            "happening, report this message."
        )
