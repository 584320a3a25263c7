"""The error every core module raises for bad input data or a request the data cannot satisfy."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data or a request the data cannot satisfy; the message is for the user."""
