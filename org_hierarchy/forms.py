"""Forms of the tenant-admin org pages. They parse input only; the services hold the rules,
and their ValidationErrors are shown on the form's fields through ``add_service_errors``."""
from django import forms
from django.utils.translation import gettext_lazy as _

from .models import OrgLevel, OrgUnit


def add_service_errors(form, exc, rename=None):
    """Show a service's ValidationError on ``form``: on the field it names, else above the form."""
    rename = rename or {}
    errors = exc.message_dict if hasattr(exc, "error_dict") else {None: exc.messages}
    for field, messages in errors.items():
        field = rename.get(field, field)
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


class BootstrapForm(forms.Form):
    """Bootstrap's classes on every widget, and ``is-invalid`` on the fields that have errors
    (Django itself adds aria-invalid and aria-describedby pointing at ``<id>_error``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            widget = field.widget
            if getattr(widget, "input_type", None) == "checkbox":
                css = "form-check-input"
            elif isinstance(widget, forms.Select):
                css = "form-select"
            else:
                css = "form-control"
            widget.attrs["class"] = css

    def add_error(self, field, error):
        super().add_error(field, error)
        for name in self.errors:
            if name in self.fields:
                classes = self.fields[name].widget.attrs.get("class", "")
                if "is-invalid" not in classes:
                    self.fields[name].widget.attrs["class"] = f"{classes} is-invalid".strip()


class UnitChoiceField(forms.ModelChoiceField):
    """Units as "— name (code)", indented by depth, from a queryset the view narrowed to the user's scope."""

    def label_from_instance(self, unit):
        return f"{'— ' * (unit.depth - 1)}{unit.name} ({unit.code})"


class UnitCreateForm(BootstrapForm):
    code = forms.CharField(label=_("Code"), max_length=64)
    name = forms.CharField(label=_("Name"), max_length=200)
    level = forms.ModelChoiceField(label=_("Level"), queryset=OrgLevel.objects.none())

    def __init__(self, *args, levels, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["level"].queryset = levels


class UnitRenameForm(BootstrapForm):
    name = forms.CharField(label=_("New name"), max_length=200)


class UnitMoveForm(BootstrapForm):
    new_parent = UnitChoiceField(label=_("New parent unit"), queryset=OrgUnit.objects.none())

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_parent"].queryset = units


class UnitMergeForm(BootstrapForm):
    survivor = UnitChoiceField(label=_("Merge into"), queryset=OrgUnit.objects.none())

    def __init__(self, *args, units, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["survivor"].queryset = units


class UnitCloseForm(BootstrapForm):
    confirm = forms.BooleanField(label=_("Yes, close this unit"))


class LevelForm(BootstrapForm):
    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=100)
    rank = forms.IntegerField(label=_("Rank"), min_value=0, max_value=32767)


class LevelUpdateForm(BootstrapForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    rank = forms.IntegerField(label=_("Rank"), min_value=0, max_value=32767)
