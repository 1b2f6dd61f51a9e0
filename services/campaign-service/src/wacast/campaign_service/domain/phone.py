"""Phone numbers in E.164, read with a default region when written without a country code.

Reasons for refusing a number never repeat it: they end up in import reports, which must
not hold personal data.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException


class InvalidPhone(ValueError):
    """The reason never repeats the number: row errors must not hold personal data."""


_PARSE_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: "unknown country code",
    NumberParseException.NOT_A_NUMBER: "not a phone number",
    NumberParseException.TOO_SHORT_AFTER_IDD: "too short",
    NumberParseException.TOO_SHORT_NSN: "too short",
    NumberParseException.TOO_LONG: "too long",
}
_LENGTH_REASONS = {
    phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
    phonenumbers.ValidationResult.TOO_SHORT: "too short",
    phonenumbers.ValidationResult.TOO_LONG: "too long",
    phonenumbers.ValidationResult.INVALID_LENGTH: "wrong length",
    phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY: "a local number without area code",
}


def normalize_phone(raw: str, region: str) -> str:
    """E.164 of `raw`, read with `region` when it has no country code."""
    text = raw.strip()
    if not text:
        raise InvalidPhone("phone is empty")
    try:
        parsed = phonenumbers.parse(text, region.upper())
    except NumberParseException as exc:
        reason = _PARSE_REASONS.get(exc.error_type, "not a phone number")
        raise InvalidPhone(f"invalid phone: {reason}") from None
    possible = phonenumbers.is_possible_number_with_reason(parsed)
    if possible in _LENGTH_REASONS:
        raise InvalidPhone(f"invalid phone: {_LENGTH_REASONS[possible]}")
    if not phonenumbers.is_valid_number(parsed):
        where = phonenumbers.region_code_for_number(parsed) or f"+{parsed.country_code}"
        raise InvalidPhone(f"invalid phone: not a valid number in {where}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
