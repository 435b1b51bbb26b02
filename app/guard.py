"""Failures on the page as messages for people, never tracebacks."""

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
