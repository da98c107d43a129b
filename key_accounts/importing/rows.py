"""From text cells to the values of a customer row, in Python, row by row (everything that does
not need the database: the archive-wide checks are set-based, in staging.py).

``RowReader(spec, header, context)`` compiles a checked spec against a file's header once (a
missing column is one file-level error); ``read(line, cells)`` then returns the row's staging
values, or its errors as ``(line, column, reason, value)``. It is on the hot path of a
million-row import: each column becomes one small function, chosen once.
"""
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from operator import mul

from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _

from key_accounts import phones
from key_accounts.models import Customer, Grade
from key_accounts.validators import ALPHABET, LENGTH, WEIGHTS, validate_credit_code

from .spec import FIELDS, PLACEHOLDER, required_columns

TRUE = {"1", "true", "t", "yes", "y", "x", "是", "真", "✓"}
FALSE = {"0", "false", "f", "no", "n", "否", "假", ""}
GRADE_ORDER = [Grade.STRATEGIC, Grade.A, Grade.B, Grade.C]


class Invalid(Exception):
    """A cell's value cannot be used; the message says why."""


@dataclass
class Context:
    """What the rows are checked against, loaded once per run (see run.py)."""

    units: dict  # code -> (id, is_active)
    add_units: object  # ids of units where the importer holds "customer.add"; None: everywhere
    users: dict = field(default_factory=dict)  # lower-cased username -> id (active users)
    rules: list = field(default_factory=list)  # GradingRule rows


class SpecProblem(Exception):
    """The mapping cannot be used with this file (missing columns, a bad fixed value)."""

    def __init__(self, column, reason):
        super().__init__(reason)
        self.column, self.reason = column, reason


# --- One converter per field type -------------------------------------------------------------

def _model_field(name):
    return Customer._meta.get_field(name)


def _text(name):
    max_length = _model_field(name).max_length
    blank = None if _model_field(name).null else ""

    def convert(raw):
        if len(raw) > max_length:
            raise Invalid(_("At most %(max)d characters; this has %(count)d.") % {"max": max_length, "count": len(raw)})
        return raw

    return convert, blank


def _choice(name):
    model_field = _model_field(name)
    lookup = {}
    for value, label in model_field.choices:
        lookup[str(value).lower()] = value
        for language in ("en", "zh-hans"):
            with translation.override(language):
                lookup.setdefault(str(label).strip().lower(), value)
    allowed = ", ".join(str(value) for value, _label in model_field.choices)

    def convert(raw):
        try:
            return lookup[raw.lower()]
        except KeyError:
            raise Invalid(_("Not one of the choices (%(choices)s).") % {"choices": allowed}) from None

    default = model_field.get_default()
    return convert, str(default) if default is not None else ""


CREDIT_VALUES = {char: value for value, char in enumerate(ALPHABET)}


def credit_code_ok(code):
    """The validator's verdict on an upper-case ASCII ``code``, without building its messages
    (a million rows: ~1 µs instead of ~7). Anything else goes through the validator itself."""
    if len(code) != LENGTH or not code[2:8].isdigit():
        return False
    try:
        total = sum(map(mul, map(CREDIT_VALUES.__getitem__, code[:17]), WEIGHTS))
    except KeyError:
        return False
    return code[17] in CREDIT_VALUES and ALPHABET[(31 - total % 31) % 31] == code[17]


def _credit_code(name):
    def convert(raw):
        if raw.isascii():
            code = raw.upper()
            if credit_code_ok(code):
                return code
        try:
            return validate_credit_code(raw)
        except ValidationError as exc:
            raise Invalid(exc.messages[0]) from None

    return convert, None


def phone_digits(text):
    """phones.digits_of(text), with a shortcut for the usual cell: one number, ASCII digits
    only, no international prefix (what phones.normalize would return unchanged)."""
    if text.isascii() and text.isdigit() and len(text) >= phones.MIN_DIGITS and not text.startswith("0086") \
            and not (len(text) == 13 and text.startswith("861")):
        return [text[:phones.MAX_DIGITS]]
    return phones.digits_of(text)


def _boolean(name=None):
    def convert(raw):
        lowered = raw.lower()
        if lowered in TRUE:
            return "t"
        if lowered in FALSE:
            return "f"
        raise Invalid(_("Not a yes/no value (use 1/0, yes/no, true/false or 是/否)."))

    return convert, "f"


def _decimal_of(raw):
    try:
        number = Decimal(raw.replace(",", "")) if "," in raw else Decimal(raw)
    except InvalidOperation:
        raise Invalid(_("Not a number.")) from None
    if not number.is_finite():
        raise Invalid(_("Not a number."))
    return number


def _decimal(name=None):
    if name is None:
        return _decimal_of, None
    model_field = _model_field(name)
    max_digits, places = model_field.max_digits, model_field.decimal_places
    limit = Decimal(10) ** (max_digits - places)

    def convert(raw):
        number = _decimal_of(raw)
        if number.as_tuple().exponent < -places:
            raise Invalid(_("At most %(places)d decimal places.") % {"places": places})
        if abs(number) >= limit:
            raise Invalid(_("Too large: at most %(digits)d digits before the decimal point.") % {"digits": max_digits - places})
        return number

    return convert, None


def _integer(name=None):
    def convert(raw):
        try:
            return int(raw.replace(",", "")) if "," in raw else int(raw)
        except ValueError:
            raise Invalid(_("Not a whole number.")) from None

    return convert, None


def _unit(context):
    def convert(raw):
        found = context.units.get(raw) or context.units.get(raw.upper())
        if found is None:
            raise Invalid(_("No unit has this code."))
        unit_id, is_active = found
        if not is_active:
            raise Invalid(_("This unit is closed."))
        if context.add_units is not None and unit_id not in context.add_units:
            raise Invalid(_("You may not add customers to this unit."))
        return unit_id

    return convert, None


def _user(context):
    def convert(raw):
        user_id = context.users.get(raw.lower())
        if user_id is None:
            raise Invalid(_("No active user has this username."))
        return user_id

    return convert, None


VALUE_CONVERTERS = {"text": lambda name=None: ((lambda raw: raw), ""), "integer": _integer, "decimal": _decimal,
                    "boolean": _boolean}
FIELD_CONVERTERS = {"text": _text, "choice": _choice, "credit_code": _credit_code, "boolean": _boolean, "decimal": _decimal}


def field_converter(name, context):
    kind = FIELDS[name]
    if kind == "unit":
        return _unit(context)
    if kind == "user":
        return _user(context)
    return FIELD_CONVERTERS[kind](name)


# --- The compiled reader ----------------------------------------------------------------------

def staging_fields(spec):
    """The customer fields a spec sets, in a fixed order (the staging table's columns)."""
    mapped = {e["field"] for e in spec["columns"].values() if e["field"]} | set(spec["fixed"]) | set(spec["templates"])
    if spec["grading"]:
        mapped.add("grade")
    return [name for name in FIELDS if name in mapped]


class RowReader:
    def __init__(self, spec, header, context):
        self.spec = spec
        self.width = len(header)
        index = {}
        for position, name in enumerate(header):
            index.setdefault(name, position)
        missing = sorted(name for name in required_columns(spec) if name not in index)
        if missing:
            raise SpecProblem(", ".join(missing), _("The file has no column %(columns)s (its columns: %(header)s).") % {
                "columns": ", ".join(missing), "header": ", ".join(header) or "-"})
        self.index = index
        self.fields = staging_fields(spec)
        self.slot = {name: position for position, name in enumerate(self.fields)}
        self.key = spec["key"]
        self.with_phones = "phone" in self.slot

        # Fixed values: converted once; a bad one is a problem of the mapping, not of a row.
        self.blank_values = [None] * len(self.fields)
        for name, raw in spec["fixed"].items():
            convert, blank = field_converter(name, context)
            try:
                value = convert(raw.strip()) if raw.strip() else blank
            except Invalid as exc:
                raise SpecProblem(name, _("fixed %(field)s = %(value)s: %(reason)s") % {
                    "field": name, "value": raw, "reason": exc}) from None
            self.blank_values[self.slot[name]] = value

        # Cells are padded to the header's width plus one blank cell, which stands for the
        # optional columns the file does not have: every lookup is then a plain index.
        self.pad = len(header) + 1
        blank_cell = len(header)
        extra = [name for name, entry in spec["columns"].items() if not entry["field"]]
        self.extra_slot = {name: position for position, name in enumerate(extra)}
        self.columns = []
        # In the file's order, so a row's errors read left to right (a spec kept as jsonb has
        # lost the order it was written in).
        for name, entry in sorted(spec["columns"].items(), key=lambda item: index.get(item[0], blank_cell)):
            if entry["field"]:
                convert, blank = field_converter(entry["field"], context)
                required = entry["required"] or entry["field"] in ("name", self.key)
            else:
                convert, blank = VALUE_CONVERTERS[entry["type"]]()
                required = entry["required"]
            condition = tuple((index.get(column, blank_cell), frozenset(values)) for column, values in entry["default_if"].items())
            if condition:
                blank_reason = _("This cell is blank; blank is only allowed when %(condition)s.") % {"condition": _(" and ").join(
                    f"{column} = {' / '.join(values)}" for column, values in entry["default_if"].items())}
            else:
                blank_reason = _("This cell is required.")
            in_values = self.slot[entry["field"]] if entry["field"] else None
            self.columns.append((
                index.get(name, blank_cell), name, convert, blank, entry["values"] or None, entry["default"], condition,
                required, blank_reason, in_values, None if entry["field"] else self.extra_slot[name],
            ))

        self.templates = []
        for name, template in spec["templates"].items():
            convert, blank = field_converter(name, context)
            pieces, last = [], 0
            for match in PLACEHOLDER.finditer(template):
                pieces.append((template[last:match.start()], index[match.group(1)]))
                last = match.end()
            self.templates.append((self.slot[name], name, convert, tuple(pieces), template[last:]))

        self.grading = None
        if spec["grading"]:
            grading = spec["grading"]
            rules = sorted(context.rules, key=lambda rule: GRADE_ORDER.index(rule.grade))
            self.grading = (
                self.extra_slot[grading["monthly_revenue"]], tuple(index[c] for c in grading["products"]),
                frozenset(grading["no_product"]), [(rule.grade, rule.min_monthly_revenue, rule.min_products) for rule in rules],
                self.slot["grade"],
            )
        self.individual_check = (self.slot["credit_code"], self.slot["kind"]) if {"credit_code", "kind"} <= set(self.slot) else None
        self.phone_slot = self.slot.get("phone")

    def read(self, line, cells):
        """``(values, None)`` for a good row (values in ``self.fields`` order, then the phone
        digits as an array literal when phones are imported), or ``(None, errors)``."""
        errors = []
        values = self.blank_values.copy()
        extra = [None] * len(self.extra_slot)
        width = len(cells)
        if width > self.width:
            errors.append((line, "", _("The row has %(cells)d cells; the header has %(header)d.") % {
                "cells": width, "header": self.width}, ""))
        if width < self.pad:
            cells = cells + [""] * (self.pad - width)
        for position, name, convert, blank, translate, default, condition, required, blank_reason, slot, extra_slot \
                in self.columns:
            raw = cells[position].strip()
            if translate is not None:
                raw = translate.get(raw, raw)
            if not raw and default is not None and all(cells[p].strip() in allowed for p, allowed in condition):
                raw = default
            if raw:
                try:
                    value = convert(raw)
                except Invalid as exc:
                    errors.append((line, name, str(exc), raw[:200]))
                    continue
            elif required:
                errors.append((line, name, blank_reason, ""))
                continue
            else:
                value = blank
            if slot is not None:
                values[slot] = value
            else:
                extra[extra_slot] = value

        for slot, name, convert, pieces, tail in self.templates:
            raw = ("".join([text + cells[p].strip() for text, p in pieces]) + tail).strip()
            if not raw and name in ("name", self.key):
                errors.append((line, name, _("This cell is required."), ""))
                continue
            try:
                values[slot] = convert(raw)
            except Invalid as exc:
                errors.append((line, name, str(exc), raw[:200]))

        if self.grading is not None:
            revenue_slot, product_positions, no_product, rules, slot = self.grading
            revenue = extra[revenue_slot]
            if revenue is None:
                values[slot] = Grade.C
            else:
                products = 0
                for p in product_positions:
                    taken = cells[p].strip()
                    if taken and taken not in no_product:
                        products += 1
                values[slot] = next((grade for grade, minimum, count in rules if revenue >= minimum and products >= count), Grade.C)

        if self.individual_check is not None:
            code_slot, kind_slot = self.individual_check
            if values[code_slot] and values[kind_slot] == Customer.Kind.INDIVIDUAL:
                errors.append((line, self.column_of("credit_code"), _("Individuals have no unified social credit code."),
                               values[code_slot]))
        if errors:
            return None, errors
        if self.phone_slot is not None:
            # A PostgreSQL array literal (digits need no quoting) for the staging COPY.
            values.append("{" + ",".join(phone_digits(values[self.phone_slot])) + "}")
        return values, None

    def column_of(self, field_name):
        """The file column a field comes from (or the field's name, for fixed values and templates)."""
        for name, entry in self.spec["columns"].items():
            if entry["field"] == field_name:
                return name
        return field_name
