"""The unified social credit code (统一社会信用代码, GB 32100-2015) of organisations.

18 characters from a 31-character alphabet (digits and capitals without I, O, Z, S, V): the
registering authority, the organisation category, the 6-digit administrative division, the
9-character organisation code, and a check character computed with weights 3^i mod 31.
"""
import unicodedata

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
WEIGHTS = [pow(3, i, 31) for i in range(17)]  # 1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28
LENGTH = 18


def normalise_credit_code(value):
    """Upper-case, full-width characters made half-width, surrounding blanks removed."""
    return unicodedata.normalize("NFKC", value or "").strip().upper()


def credit_code_check_char(first17):
    total = sum(ALPHABET.index(char) * weight for char, weight in zip(first17, WEIGHTS))
    return ALPHABET[(31 - total % 31) % 31]


def validate_credit_code(value):
    """Raise ValidationError (code ``invalid_credit_code``) unless ``value`` is a well-formed
    code with a correct check character. Returns the normalised code."""
    code = normalise_credit_code(value)
    if len(code) != LENGTH:
        raise ValidationError(
            _("A unified social credit code has 18 characters; this one has %(count)d.") % {"count": len(code)},
            code="invalid_credit_code",
        )
    bad = sorted({char for char in code if char not in ALPHABET})
    if bad:
        raise ValidationError(
            _("A unified social credit code cannot contain %(chars)s.") % {"chars": ", ".join(bad)},
            code="invalid_credit_code",
        )
    if not code[2:8].isdigit():
        raise ValidationError(_("Characters 3 to 8 must be the administrative division code (digits)."), code="invalid_credit_code")
    if credit_code_check_char(code[:17]) != code[17]:
        raise ValidationError(_("The check character does not match: the code has a typing error."), code="invalid_credit_code")
    return code
