"""A failed run's stored error is one line with the user's line that raised it."""

from __future__ import annotations

from batchlab.errortext import error_text


def _raise(message: str) -> None:
    raise RuntimeError(message)


def test_a_message_of_several_lines_is_one_line_with_its_type_and_place():
    """A two-line message was stored as two lines: the sweep's paragraph then said '2 runs
    failed with the same error: second line (at ...)', without the error's type or head."""
    try:
        _raise("boom: width 7 is cursed\n  second line")
    except RuntimeError as err:
        text = error_text(err)
    assert text == ("RuntimeError: boom: width 7 is cursed second line "
                    "(at test_errortext.py:9 in _raise)")
