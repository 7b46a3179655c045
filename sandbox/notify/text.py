"""SMS text facts the providers report: GSM-7 or UCS-2, and how many parts a text is sent in."""

import math

# GSM 03.38 basic character set (without the escape) and the extension table, whose characters
# take two septets each.
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")


def encoding(text: str) -> str:
    """`GSM-7` when every character is in the GSM alphabet, else `UCS-2`."""
    if all(c in GSM7_BASIC or c in GSM7_EXTENSION for c in text):
        return "GSM-7"
    return "UCS-2"


def segments(text: str) -> int:
    """Parts the text is sent in: 160/153 septets (GSM-7) or 70/67 UTF-16 units (UCS-2)."""
    if encoding(text) == "GSM-7":
        units = sum(2 if c in GSM7_EXTENSION else 1 for c in text)
        single, part = 160, 153
    else:
        units = len(text.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else math.ceil(units / part)
