"""Column mappings: what a saved ``ColumnMapping.spec`` may say, checked before any file is read.

A spec is plain JSON (docs/key-accounts-import.md has the full description)::

    {
      "key": "external_id",                     # or "credit_code": how rows find existing customers
      "columns": {                              # file column -> how its cells are read
        "customerID": {"field": "external_id"},
        "Churn": {"field": "status", "values": {"Yes": "churned", "No": "active"}},
        "TotalCharges": {"type": "decimal", "default": "0", "default_if": {"tenure": ["0"]}, "required": true}
      },
      "fixed": {"kind": "individual", "org_unit": "C11"},      # the same value on every row
      "templates": {"name": "IBM Telco {customerID}"},          # built from other cells
      "grading": {"monthly_revenue": "MonthlyCharges", "products": ["PhoneService"], "no_product": ["No"]},
      "encoding": "auto", "delimiter": ",", "sheet": ""
    }

``check_spec`` answers the same spec in a normalised form or raises ValidationError with one
message per problem; nothing about a file is known here (header checks are in ``rows.py``).
"""
import re

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

# Customer fields an import may set, and how their cells are read (see rows.py).
FIELDS = {
    "external_id": "text",
    "name": "text",
    "kind": "choice",
    "credit_code": "credit_code",
    "industry": "choice",
    "size": "choice",
    "grade": "choice",
    "status": "choice",
    "org_unit": "unit",  # a unit code
    "account_manager": "user",  # a username (login e-mail)
    "is_national_key_account": "boolean",
    "is_potential_key_account": "boolean",
    "phone": "text",
    "address": "text",
    "credit_rating": "choice",
    "credit_limit": "decimal",
    "satisfaction": "decimal",
}
VALUE_TYPES = ("text", "integer", "decimal", "boolean")  # of columns read only for rules and templates
KEYS = ("external_id", "credit_code")
ENCODINGS = ("auto", "utf-8", "utf-8-sig", "gb18030", "utf-16")
TOP_LEVEL = {"key", "columns", "fixed", "templates", "grading", "encoding", "delimiter", "sheet", "description"}
COLUMN_KEYS = {"field", "type", "values", "default", "default_if", "required", "optional"}
GRADING_KEYS = {"monthly_revenue", "products", "no_product"}
PLACEHOLDER = re.compile(r"\{([^{}]+)\}")


def _is_text_map(value):
    return isinstance(value, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


def _check_column(name, entry, problems):
    if not isinstance(entry, dict):
        problems.append(_("Column %(column)s: the entry must be an object.") % {"column": name})
        return None
    unknown = sorted(set(entry) - COLUMN_KEYS)
    if unknown:
        problems.append(_("Column %(column)s: unknown keys %(keys)s.") % {"column": name, "keys": ", ".join(unknown)})
    field = entry.get("field") or None
    if field is not None and field not in FIELDS:
        problems.append(_("Column %(column)s: %(field)s is not a customer field an import can set.") % {"column": name, "field": field})
    kind = entry.get("type") or "text"
    if field is None and kind not in VALUE_TYPES:
        problems.append(_("Column %(column)s: the type must be one of %(types)s.") % {"column": name, "types": ", ".join(VALUE_TYPES)})
    if field is not None and entry.get("type"):
        problems.append(_("Column %(column)s: a column that feeds a field takes the field's type.") % {"column": name})
    values = entry.get("values") or {}
    if not _is_text_map(values):
        problems.append(_("Column %(column)s: values must map texts to texts.") % {"column": name})
        values = {}
    default = entry.get("default")
    if default is not None and not isinstance(default, str):
        problems.append(_("Column %(column)s: the default must be a text.") % {"column": name})
    default_if = entry.get("default_if") or {}
    if not (isinstance(default_if, dict) and all(
        isinstance(k, str) and isinstance(v, list) and all(isinstance(x, str) for x in v) for k, v in default_if.items()
    )):
        problems.append(_("Column %(column)s: default_if must map columns to lists of values.") % {"column": name})
        default_if = {}
    if default_if and default is None:
        problems.append(_("Column %(column)s: default_if needs a default.") % {"column": name})
    return {
        "field": field,
        "type": FIELDS.get(field, kind) if field else kind,
        "values": {k.strip(): v for k, v in values.items()},
        "default": default,
        "default_if": default_if,
        "required": bool(entry.get("required", False)),
        "optional": bool(entry.get("optional", False)),
    }


def check_spec(spec):
    """The spec normalised (every key present), or ValidationError listing every problem."""
    problems = []
    if not isinstance(spec, dict):
        raise ValidationError(_("A mapping must be a JSON object."))
    unknown = sorted(set(spec) - TOP_LEVEL)
    if unknown:
        problems.append(_("Unknown keys: %(keys)s.") % {"keys": ", ".join(unknown)})

    raw_columns = spec.get("columns") or {}
    if not isinstance(raw_columns, dict):
        problems.append(_("columns must map file columns to entries."))
        raw_columns = {}
    columns = {}
    for name, entry in raw_columns.items():
        checked = _check_column(name.strip(), entry, problems)
        if checked is not None:
            columns[name.strip()] = checked

    fixed = spec.get("fixed") or {}
    if not _is_text_map(fixed):
        problems.append(_("fixed must map customer fields to texts."))
        fixed = {}
    templates = spec.get("templates") or {}
    if not _is_text_map(templates):
        problems.append(_("templates must map customer fields to texts."))
        templates = {}
    for field in list(fixed) + list(templates):
        if field not in FIELDS:
            problems.append(_("%(field)s is not a customer field an import can set.") % {"field": field})

    # Each field gets its value from one place only.
    sources = {}
    for name, entry in columns.items():
        if entry["field"]:
            sources.setdefault(entry["field"], []).append(_("column %(column)s") % {"column": name})
    for field in fixed:
        sources.setdefault(field, []).append(_("fixed"))
    for field in templates:
        sources.setdefault(field, []).append(_("templates"))
    for field, where in sorted(sources.items()):
        if len(where) > 1:
            problems.append(_("%(field)s gets its value from several places: %(places)s.") % {"field": field, "places": ", ".join(where)})

    grading = spec.get("grading") or {}
    if grading:
        if not isinstance(grading, dict) or set(grading) - GRADING_KEYS:
            problems.append(_("grading takes monthly_revenue, products and no_product."))
            grading = {}
        else:
            revenue = grading.get("monthly_revenue")
            products = grading.get("products") or []
            no_product = grading.get("no_product") or []
            if not isinstance(revenue, str) or not revenue:
                problems.append(_("grading.monthly_revenue must name a column."))
            elif revenue not in columns or columns[revenue]["type"] not in ("decimal", "integer"):
                problems.append(_("grading.monthly_revenue must be a mapped column of type decimal or integer."))
            if not (isinstance(products, list) and all(isinstance(p, str) for p in products)):
                problems.append(_("grading.products must list columns."))
                products = []
            if not (isinstance(no_product, list) and all(isinstance(p, str) for p in no_product)):
                problems.append(_("grading.no_product must list values."))
                no_product = []
            if "grade" in sources:
                problems.append(_("grade comes from the file or from grading, not both."))
            grading = {"monthly_revenue": revenue, "products": products, "no_product": no_product}

    key = spec.get("key") or ("external_id" if "external_id" in sources else "credit_code")
    if key not in KEYS:
        problems.append(_("key must be external_id or credit_code."))
    elif key not in sources:
        problems.append(_("The key field %(field)s must come from a column.") % {"field": key})
    elif key in fixed:
        problems.append(_("The key field %(field)s cannot be the same on every row.") % {"field": key})
    if "name" not in sources:
        problems.append(_("Customers need a name: map a column to name or give a name template."))

    encoding = (spec.get("encoding") or "auto").lower()
    if encoding not in ENCODINGS:
        problems.append(_("encoding must be one of %(encodings)s.") % {"encodings": ", ".join(ENCODINGS)})
    delimiter = spec.get("delimiter") or ","
    if not isinstance(delimiter, str) or len(delimiter) != 1:
        problems.append(_("delimiter must be one character."))
    sheet = spec.get("sheet") or ""
    if not isinstance(sheet, str):
        problems.append(_("sheet must be a sheet name."))
    if problems:
        raise ValidationError(problems)
    return {
        "key": key,
        "columns": columns,
        "fixed": dict(fixed),
        "templates": dict(templates),
        "grading": grading or None,
        "encoding": encoding,
        "delimiter": delimiter,
        "sheet": sheet,
        "description": spec.get("description") or "",
    }


def file_columns(spec):
    """Every file column a checked spec reads, in a stable order: its columns, then columns only
    named by templates, conditions and grading."""
    names = list(spec["columns"])
    extra = []
    for template in spec["templates"].values():
        extra += PLACEHOLDER.findall(template)
    for entry in spec["columns"].values():
        extra += list(entry["default_if"])
    if spec["grading"]:
        extra += spec["grading"]["products"]
    for name in extra:
        if name not in names:
            names.append(name)
    return names


def required_columns(spec):
    """The file columns that must be in the header (all except those marked optional)."""
    return [name for name in file_columns(spec) if not spec["columns"].get(name, {}).get("optional")]


def needs_unit(spec):
    """True when neither a column nor ``fixed`` says which unit customers go to: the importer
    chooses one (the wizard's unit, the API's ``unit``)."""
    return "org_unit" not in spec["fixed"] and not any(e["field"] == "org_unit" for e in spec["columns"].values())


def with_unit(spec, unit_code):
    """A copy of the raw ``spec`` with every customer going to ``unit_code``."""
    spec = dict(spec)
    spec["fixed"] = {**(spec.get("fixed") or {}), "org_unit": unit_code}
    return spec
