"""GSM-7 versus UCS-2, and the parts an SMS is sent in."""

import pytest

from app.services.notifications.sms_text import shape


@pytest.mark.parametrize(
    ("text", "encoding", "length", "segments"),
    [
        ("", "GSM-7", 0, 1),
        ("a" * 160, "GSM-7", 160, 1),
        ("a" * 161, "GSM-7", 161, 2),
        ("a" * 306, "GSM-7", 306, 2),
        ("a" * 307, "GSM-7", 307, 3),
        ("Repayment of KES 1,500.00 received. Balance: KES 10,500.00", "GSM-7", 58, 1),
        ("€" * 80, "GSM-7", 160, 1),  # extension characters take two places
        ("€" * 81, "GSM-7", 162, 2),
        ("Asante sana 🙏", "UCS-2", 14, 1),  # the emoji is two UTF-16 units
        ("ç" * 70, "UCS-2", 70, 1),  # lower-case c-cedilla is not GSM (only Ç is)
        ("ç" * 71, "UCS-2", 71, 2),
        ("ç" * 135, "UCS-2", 135, 3),
    ],
)
def test_encoding_and_parts(text, encoding, length, segments):
    found = shape(text)
    assert (found.encoding, found.length, found.segments) == (encoding, length, segments)
