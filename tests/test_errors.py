"""Every entry point reports a project error as one line (wtc.errors)."""

import pytest

from wtc.errors import one_line


@pytest.mark.parametrize("exc, kwargs, expected", [
    (ValueError("a\n  b\tc"), {}, "a b c"),
    (ValueError(""), {}, "ValueError"),
    (ValueError("x" * 50), {"limit": 10, "with_type": True}, "ValueError"),
    (KeyError("k"), {"with_type": True}, "KeyError: 'k'"),
])
def test_one_line(exc, kwargs, expected):
    assert one_line(exc, **kwargs) == expected
