"""Forms of the import wizard: upload, then map the file's columns (key_accounts/views/imports.py).

The mapping step edits a spec (spec.py) in two ways at once: one select per file column (which
customer field it feeds) and the whole spec as JSON for everything else (value translations,
defaults, templates, grading). The selects are applied on top of the JSON.
"""
import json

from django import forms
from django.core.exceptions import ValidationError
from django.utils import translation
from django.utils.translation import gettext as _, gettext_lazy

from key_accounts.models import Customer

from .spec import ENCODINGS, FIELDS, check_spec, file_columns

FIELD_HINTS = {"org_unit": gettext_lazy("unit code"), "account_manager": gettext_lazy("username")}
# Header names people use for a field, besides its name and labels (matched case-insensitively).
ALIASES = {
    "external_id": ["id", "customer id", "customerid", "客户编号", "客户编码", "客户id", "编号"],
    "name": ["customer name", "客户名称", "名称", "客户名", "单位名称", "企业名称"],
    "credit_code": ["credit code", "uscc", "信用代码", "社会信用代码", "统一社会信用代码"],
    "org_unit": ["unit", "unit code", "owning unit", "归属单位", "单位编码", "归属单位编码", "所属单位"],
    "account_manager": ["manager", "客户经理"],
    "phone": ["telephone", "mobile", "电话", "联系电话", "手机"],
    "kind": ["type", "customer type", "客户类型", "类型"],
    "status": ["状态", "客户状态"],
}


def field_choices():
    choices = [("", _("— not imported —"))]
    for name in FIELDS:
        label = str(Customer._meta.get_field(name).verbose_name)
        hint = FIELD_HINTS.get(name)
        choices.append((name, f"{label} ({hint})" if hint else label))
    return choices


def guess_field(column):
    """The customer field a header name most likely means, or ''."""
    wanted = column.strip().lower().replace("_", " ")
    for name in FIELDS:
        labels = {name.replace("_", " "), *ALIASES.get(name, [])}
        for language in ("en", "zh-hans"):
            with translation.override(language):
                labels.add(str(Customer._meta.get_field(name).verbose_name).lower())
        if wanted in labels:
            return name
    return ""


def guessed_spec(header):
    """A first mapping for a file without a saved one: columns matched by their names."""
    columns, used = {}, set()
    for column in header:
        field = guess_field(column)
        if field and field not in used:
            columns[column] = {"field": field}
            used.add(field)
    return {"columns": columns}


class UploadForm(forms.Form):
    file = forms.FileField(label=gettext_lazy("File (CSV or XLSX)"),
                           widget=forms.ClearableFileInput(attrs={"class": "form-control", "accept": ".csv,.txt,.xlsx"}))
    mapping = forms.ModelChoiceField(
        label=gettext_lazy("Column mapping"), queryset=None, required=False,
        empty_label=gettext_lazy("— none: I will map the columns myself —"),
        widget=forms.Select(attrs={"class": "form-select"}),
    )

    def __init__(self, *args, mappings, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["mapping"].queryset = mappings


class MapForm(forms.Form):
    """One select per file column, the unit, the encoding, the spec as JSON, save-as."""

    unit = forms.ModelChoiceField(label=gettext_lazy("Unit the customers go to"), queryset=None, required=False,
                                  widget=forms.Select(attrs={"class": "form-select"}))
    encoding = forms.ChoiceField(label=gettext_lazy("Encoding"), choices=[(e, e.upper() if e != "auto" else gettext_lazy("detect"))
                                                                          for e in ENCODINGS],
                                 widget=forms.Select(attrs={"class": "form-select"}))
    spec = forms.CharField(label=gettext_lazy("The mapping as JSON"), required=False,
                           widget=forms.Textarea(attrs={"class": "form-control font-monospace", "rows": 12, "spellcheck": "false"}))
    save_as = forms.CharField(label=gettext_lazy("Save this mapping as"), max_length=100, required=False,
                              widget=forms.TextInput(attrs={"class": "form-control"}))

    def __init__(self, *args, header, units, spec, **kwargs):
        spec = dict(spec or {})
        fixed = dict(spec.get("fixed") or {})
        fixed.pop("org_unit", None)  # chosen with the unit select
        spec["fixed"] = fixed
        initial = kwargs.setdefault("initial", {})
        initial.setdefault("spec", json.dumps(spec, ensure_ascii=False, indent=2))
        initial.setdefault("encoding", spec.get("encoding") or "auto")
        super().__init__(*args, **kwargs)
        self.header = header
        self.fields["unit"].queryset = units
        columns = spec.get("columns") or {}
        choices = field_choices()
        try:  # columns the mapping reads for its rules (grading, templates, conditions, checks)
            checked = check_spec(spec)
            self.rule_columns = set(file_columns(checked)) - {n for n, e in checked["columns"].items() if e["field"]}
        except ValidationError:
            self.rule_columns = set()
        self.column_fields = []
        for position, column in enumerate(header):
            name = f"column_{position}"
            entry = columns.get(column) or {}
            self.fields[name] = forms.ChoiceField(
                label=column or _("(blank header)"), choices=choices, required=False, initial=entry.get("field") or "",
                widget=forms.Select(attrs={"class": "form-select form-select-sm", "data-column": column}),
            )
            self.column_fields.append((column, self[name]))

    def clean_spec(self):
        text = self.cleaned_data["spec"].strip() or "{}"
        try:
            spec = json.loads(text)
        except ValueError as exc:
            raise forms.ValidationError(_("Not valid JSON: %(error)s") % {"error": exc}) from None
        if not isinstance(spec, dict):
            raise forms.ValidationError(_("A mapping must be a JSON object."))
        return spec

    def built_spec(self):
        """The JSON spec with the column selects and the encoding applied."""
        spec = dict(self.cleaned_data["spec"])
        columns = {name: dict(entry) for name, entry in (spec.get("columns") or {}).items() if isinstance(entry, dict)}
        for position, column in enumerate(self.header):
            field = self.cleaned_data.get(f"column_{position}") or ""
            entry = columns.get(column, {})
            if field:
                entry["field"] = field
                entry.pop("type", None)
                columns[column] = entry
            elif entry.get("field"):
                entry.pop("field")
                # Still read for rules or templates when it says how; otherwise not at all.
                if {"type", "default", "required"} & set(entry):
                    columns[column] = entry
                else:
                    columns.pop(column)
        spec["columns"] = columns
        spec["encoding"] = self.cleaned_data["encoding"]
        fixed = dict(spec.get("fixed") or {})
        fixed.pop("org_unit", None)
        spec["fixed"] = fixed
        return spec
