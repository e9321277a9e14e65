"""Shared Hypothesis strategies and OpenAPI helpers for the fuzz tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st


def json_values(text: int = 8, keys: int = 4, items: int = 3, leaves: int = 6) -> Any:
    """Any JSON value, small: scalars, and lists and objects of them."""
    return st.recursive(
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text(max_size=text),
        lambda inner: (
            st.lists(inner, max_size=items)
            | st.dictionaries(st.text(max_size=keys), inner, max_size=items)
        ),
        max_leaves=leaves,
    )


def published_operations(api_schema: Any) -> set[tuple[str, str]]:
    """(METHOD, path) of every operation an OpenAPI schema (schemathesis) publishes."""
    return {
        (op.method.upper(), op.path)
        for result in api_schema.get_all_operations()
        if (op := result.ok())
    }
