import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import given, settings
from hypothesis import strategies as st

from key_accounts.validators import ALPHABET, credit_code_check_char, validate_credit_code

# Published codes of real companies (their check characters verified by hand against GB 32100-2015).
VALID = ["91350100M000100Y43", "91110000600037341L", "91440300708461136T"]


@pytest.mark.parametrize("code", VALID)
def test_published_codes_are_valid(code):
    assert validate_credit_code(code) == code


def test_messages_are_translated():
    with translation.override("zh-hans"), pytest.raises(ValidationError) as exc:
        validate_credit_code("91350100M000100Y44")
    assert "校验码" in exc.value.messages[0]


def test_lower_case_full_width_and_blanks_are_normalised():
    assert validate_credit_code(" 91350100m000100y43 ") == "91350100M000100Y43"
    assert validate_credit_code("９１３５０１００Ｍ０００１００Ｙ４３") == "91350100M000100Y43"


@pytest.mark.parametrize(
    "code, fragment",
    [
        ("91350100M000100Y4", "18 characters"),
        ("91350100M000100Y433", "18 characters"),
        ("", "18 characters"),
        ("91350100M00O100Y43", "O"),  # letters I, O, Z, S, V are not in the alphabet
        ("91350100M000100Y4I", "I"),
        ("9135010AM000100Y43", "administrative division"),
        ("91350100M000100Y44", "check character"),
    ],
)
def test_malformed_codes_say_what_is_wrong(code, fragment):
    with translation.override("en"), pytest.raises(ValidationError) as exc:
        validate_credit_code(code)
    assert exc.value.code == "invalid_credit_code"
    assert fragment in exc.value.messages[0]


codes17 = st.tuples(
    st.text(alphabet=ALPHABET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=ALPHABET, min_size=9, max_size=9),
).map("".join)


@settings(max_examples=300)
@given(codes17)
def test_any_code_with_its_check_character_is_valid(first17):
    code = first17 + credit_code_check_char(first17)
    assert validate_credit_code(code) == code


@settings(max_examples=300)
@given(codes17, st.integers(min_value=0, max_value=16), st.sampled_from(ALPHABET))
def test_any_single_substitution_is_caught(first17, position, char):
    code = first17 + credit_code_check_char(first17)
    typo = code[:position] + char + code[position + 1:]
    if typo == code or (2 <= position < 8 and not char.isdigit()):
        return  # no change, or caught earlier as a non-digit division code
    with pytest.raises(ValidationError):
        validate_credit_code(typo)
