"""The pieces of an import that need no database: the mapping spec's checks, encoding
detection, and the per-row fast paths, which must agree exactly with the validators they
shortcut (property tests)."""
import codecs

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation
from hypothesis import given, settings, strategies as st

from key_accounts import phones
from key_accounts.importing.reader import FileProblem, detect_encoding
from key_accounts.importing.rows import credit_code_ok, phone_digits
from key_accounts.importing.spec import check_spec, file_columns, needs_unit, required_columns, with_unit
from key_accounts.validators import ALPHABET, credit_code_check_char, validate_credit_code

@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


GOOD = {"columns": {"id": {"field": "external_id"}, "名称": {"field": "name"}, "单位": {"field": "org_unit"}}}


def problems(spec):
    with pytest.raises(ValidationError) as refused:
        check_spec(spec)
    return " ".join(refused.value.messages)


def test_a_good_spec_is_normalised():
    spec = check_spec(GOOD)
    assert spec["key"] == "external_id" and spec["encoding"] == "auto" and spec["delimiter"] == ","
    assert spec["columns"]["单位"] == {"field": "org_unit", "type": "unit", "values": {}, "default": None,
                                      "default_if": {}, "required": False, "optional": False}
    assert not needs_unit(spec)


@pytest.mark.parametrize("spec, says", [
    ({"columns": {"a": {"field": "nope"}, "名称": {"field": "name"}}}, "not a customer field"),
    ({"columns": {"a": {"field": "name"}, "b": {"field": "name"}, "id": {"field": "external_id"}}}, "several places"),
    ({"columns": {"名称": {"field": "name"}}}, "key field credit_code must come from a column"),
    ({"columns": {"id": {"field": "external_id"}}}, "Customers need a name"),
    ({**GOOD, "fixed": {"external_id": "x"}}, "several places"),
    ({**GOOD, "grading": {"monthly_revenue": "id", "products": []}}, "decimal or integer"),
    ({**GOOD, "encoding": "latin-1"}, "encoding must be one of"),
    ({**GOOD, "surprise": 1}, "Unknown keys: surprise"),
    ({"columns": {**GOOD["columns"], "x": {"default_if": {"y": ["0"]}}}}, "default_if needs a default"),
    ({"columns": {**GOOD["columns"], "x": {"type": "date"}}}, "type must be one of"),
    ({"columns": {**GOOD["columns"], "x": {"values": {"a": 1}}}}, "values must map texts to texts"),
])
def test_a_bad_spec_is_refused_with_every_reason(spec, says):
    assert says in problems(spec)


def test_the_unit_may_be_left_to_the_importer_and_every_column_named_is_required():
    spec = {"columns": {"id": {"field": "external_id"}, "m": {"type": "decimal"}, "o": {"optional": True}},
            "templates": {"name": "客户 {id} {城市}"},
            "grading": {"monthly_revenue": "m", "products": ["宽带"], "no_product": ["否"]}}
    checked = check_spec(spec)
    assert needs_unit(checked)
    assert file_columns(checked) == ["id", "m", "o", "城市", "宽带"]
    assert required_columns(checked) == ["id", "m", "城市", "宽带"]
    assert with_unit(spec, "C11")["fixed"] == {"org_unit": "C11"} and "fixed" not in spec


def test_encodings_are_detected_and_a_hopeless_file_names_its_line():
    text = "编号,名称\nA-1,广州公司\n"
    assert detect_encoding(text.encode("utf-8")) == "utf-8"
    assert detect_encoding(codecs.BOM_UTF8 + text.encode("utf-8")) == "utf-8-sig"
    assert detect_encoding(text.encode("gb18030")) == "gb18030"
    assert detect_encoding(text.encode("utf-16")) == "utf-16"
    assert detect_encoding("中文".encode("utf-8")[:-1]) == "utf-8"  # a character cut by the sample's end
    with pytest.raises(FileProblem) as hopeless:
        detect_encoding(b"a,b\n1,2\n3,\xff\n")
    assert hopeless.value.line == 3


ALPHABET_CHARS = st.sampled_from(ALPHABET + "IOZSVio-0 ")


@st.composite
def credit_codes(draw):
    """Valid codes, and codes with one typo, and random near-codes."""
    body = draw(st.text(alphabet=ALPHABET, min_size=17, max_size=17))
    body = body[:2] + draw(st.text(alphabet="0123456789", min_size=6, max_size=6)) + body[8:]
    code = body + credit_code_check_char(body)
    kind = draw(st.integers(0, 3))
    if kind == 1:
        position = draw(st.integers(0, 17))
        code = code[:position] + draw(ALPHABET_CHARS) + code[position + 1:]
    elif kind == 2:
        code = draw(st.text(alphabet=ALPHABET + "IOZSV", min_size=16, max_size=19))
    elif kind == 3:
        code = code.lower()
    return code


@settings(max_examples=500, deadline=None)
@given(credit_codes())
def test_the_fast_credit_code_check_agrees_with_the_validator(code):
    try:
        expected = validate_credit_code(code)
    except ValidationError:
        expected = None
    fast = code.upper() if code.isascii() and credit_code_ok(code.upper()) else None
    if fast is not None:
        assert fast == expected
    if expected is not None and code.isascii() and code == code.strip():
        assert fast == expected


@settings(max_examples=500, deadline=None)
@given(st.one_of(
    st.text(alphabet="0123456789", min_size=0, max_size=24),
    st.from_regex(r"\A(\+86|0086|86)?1[3-9][0-9]{9}\Z"),
    st.text(alphabet="0123456789 -+,;x转()", max_size=30),
))
def test_the_fast_phone_path_agrees_with_the_phone_rules(text):
    assert phone_digits(text) == phones.digits_of(text)
