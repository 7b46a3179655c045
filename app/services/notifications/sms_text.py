"""How an SMS text travels: GSM-7 (160 characters a message, 153 a part) when every character is
in the GSM 03.38 alphabet, else UCS-2 (70, 67 a part). Characters of the GSM extension table
take two places."""

from dataclasses import dataclass

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"
_BASIC = frozenset(GSM_BASIC) - {"\x1b"}
_EXTENSION = frozenset(GSM_EXTENSION)


@dataclass(frozen=True)
class SmsShape:
    encoding: str  # "GSM-7" or "UCS-2"
    length: int  # in the encoding's units (septets, or UTF-16 code units)
    segments: int


def shape(text: str) -> SmsShape:
    """The encoding an SMS needs and the number of parts it is sent in."""
    if all(ch in _BASIC or ch in _EXTENSION for ch in text):
        length = sum(2 if ch in _EXTENSION else 1 for ch in text)
        single, part = 160, 153
        encoding = "GSM-7"
    else:
        length = len(text.encode("utf-16-le")) // 2  # an emoji takes two units
        single, part = 70, 67
        encoding = "UCS-2"
    segments = 1 if length <= single else -(-length // part)
    return SmsShape(encoding, length, max(segments, 1))
