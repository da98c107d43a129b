"""Forms of the customer pages. They parse input only: the services validate with the models'
own rules (the credit code checksum included) and their ValidationErrors are shown on the
fields they name (``permissions.views.run_service``). Choices come from the selectors, so a
user is only offered units, people and groups of their own scope."""
from django import forms
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

from org_hierarchy.forms import UnitChoiceField
from org_hierarchy.models import OrgUnit

from .models import Contact, Customer, Grade, Industry, Interaction, Subscription


def style(form):
    """Bootstrap's classes on every widget (as org_hierarchy.forms.BootstrapForm does)."""
    for name, field in form.fields.items():
        widget = field.widget
        if getattr(widget, "input_type", None) == "checkbox":
            css = "form-check-input"
        elif isinstance(widget, forms.Select):
            css = "form-select"
        else:
            css = "form-control"
        invalid = form._errors is not None and name in form._errors  # never triggers validation
        widget.attrs["class"] = f"{css} is-invalid" if invalid else css


SHOWN_PEOPLE = 50


def person_label(user):
    return user.get_full_name() or user.get_username()


class PersonChoiceField(forms.ModelChoiceField):
    """A person from ``queryset`` (checked in full on submit), of whom only the first
    SHOWN_PEOPLE and the chosen one are rendered as options: a province has thousands of
    account managers. The search box next to it (``_person_search.html``) fetches others."""

    def label_from_instance(self, user):
        return person_label(user)

    def show(self, chosen):
        people = list(self.queryset[:SHOWN_PEOPLE])
        if chosen and str(chosen).isdigit() and all(str(p.pk) != str(chosen) for p in people):
            people += list(self.queryset.filter(pk=chosen))
        blank = [] if self.empty_label is None else [("", self.empty_label)]
        self.widget.choices = blank + [(p.pk, person_label(p)) for p in people]
        self.more = len(people) >= SHOWN_PEOPLE


def chosen_value(form, name):
    """The value a field will show: the submitted one, else its initial one."""
    if form.is_bound:
        return form.data.get(form.add_prefix(name))
    value = form.initial.get(name, form.fields[name].initial)
    return getattr(value, "pk", value)


class ServiceForm(forms.ModelForm):
    """A ModelForm that only parses: the model instance is never built or validated here, since
    the service does both (and refuses what the actor may not do)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        style(self)

    def _post_clean(self):
        pass

    def add_error(self, field, error):
        super().add_error(field, error)
        style(self)

    def service_data(self):
        """What to hand the service: every field on create, only the changed ones on edit."""
        names = self.changed_data if self.instance.pk else list(self.cleaned_data)
        return {name: self.cleaned_data[name] for name in names if name in self.cleaned_data}


class CustomerForm(ServiceForm):
    """``units``: where the user may put the customer (None: the owning unit and manager cannot
    be changed by this user); ``managers`` and ``groups``: what they may choose from (None for
    ``groups``: the customer's group is one the user may not see, so they cannot change it).
    The current unit and manager stay among the choices, so saving never drops them unasked."""

    class Meta:
        model = Customer
        fields = [
            "name", "kind", "credit_code", "industry", "size", "grade", "status", "org_unit", "account_manager",
            "is_group", "group", "is_national_key_account", "is_potential_key_account", "phone", "address",
            "credit_rating", "credit_limit", "satisfaction", "external_id",
        ]
        field_classes = {"org_unit": UnitChoiceField, "account_manager": PersonChoiceField}

    def __init__(self, *args, units, managers, groups, **kwargs):
        super().__init__(*args, **kwargs)
        fields = self.fields
        if units is None:
            for name in ("org_unit", "account_manager"):
                fields[name].disabled = True
                fields[name].help_text = _("Reassigning needs the assign permission.")
            # The current values only, so the disabled selects show them.
            fields["org_unit"].queryset = OrgUnit.objects.filter(pk=self.instance.org_unit_id)
            fields["account_manager"].queryset = managers.model.objects.filter(pk=self.instance.account_manager_id)
        else:
            current = self.instance
            fields["org_unit"].queryset = units | OrgUnit.objects.filter(pk=current.org_unit_id)
            fields["account_manager"].queryset = managers | managers.model.objects.filter(pk=current.account_manager_id)
        if groups is None:
            del fields["group"]
        else:
            fields["group"].queryset = groups
        fields["account_manager"].show(
            self.instance.account_manager_id if units is None else chosen_value(self, "account_manager")
        )
        fields["credit_code"].widget.attrs.update(autocapitalize="characters", spellcheck="false")
        fields["satisfaction"].widget.attrs.update(min="1", max="5", step="0.01")


class ContactForm(ServiceForm):
    class Meta:
        model = Contact
        fields = ["name", "role", "phones", "email", "is_primary"]


class DateInput(forms.DateInput):
    input_type = "date"

    def __init__(self, **kwargs):
        super().__init__(format="%Y-%m-%d", **kwargs)


class SubscriptionForm(ServiceForm):
    class Meta:
        model = Subscription
        fields = ["product", "quantity", "monthly_fee", "start_date", "end_date"]
        widgets = {"start_date": DateInput(), "end_date": DateInput()}


class InteractionForm(ServiceForm):
    satisfaction = forms.TypedChoiceField(
        label=capfirst(_("satisfaction (1-5)")), required=False, coerce=int, empty_value=None,
        choices=[("", "—")] + [(n, str(n)) for n in range(1, 6)],
    )

    class Meta:
        model = Interaction
        fields = ["occurred_at", "channel", "contact", "subject", "notes", "satisfaction"]
        widgets = {
            "occurred_at": forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
            "notes": forms.Textarea(attrs={"rows": 3}),
        }

    def __init__(self, *args, contacts, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["contact"].queryset = contacts
        self.fields["occurred_at"].input_formats = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


# --- The list's filters ------------------------------------------------------------------

def with_all(choices):
    return [("", _("All"))] + list(choices)


YES_NO = [("", _("All")), ("true", _("Yes")), ("false", _("No"))]


class CustomerSearchForm(forms.Form):
    """Renders the list's filters with the parameter names of key_accounts.filters.CustomerFilter,
    which does the filtering (and validating) itself."""

    q = forms.CharField(label=_("Search"), required=False, widget=forms.TextInput(attrs={
        "type": "search", "placeholder": _("Name, phone, credit code or external id"), "autocomplete": "off",
    }))
    kind = forms.ChoiceField(label=_("Type"), required=False, choices=with_all(Customer.Kind.choices))
    grade = forms.ChoiceField(label=_("Grade"), required=False, choices=with_all(Grade.choices))
    status = forms.ChoiceField(label=_("Status"), required=False, choices=with_all(Customer.Status.choices))
    industry = forms.ChoiceField(label=_("Industry"), required=False, choices=with_all(Industry.choices))
    unit = UnitChoiceField(label=_("Region"), required=False, queryset=OrgUnit.objects.none(), empty_label=_("All"))
    manager = PersonChoiceField(label=_("Account manager"), required=False, queryset=None, empty_label=_("All"))
    national = forms.ChoiceField(label=_("National key account"), required=False, choices=YES_NO)
    potential = forms.ChoiceField(label=_("Potential key account"), required=False, choices=YES_NO)

    def __init__(self, *args, units, managers, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = units
        self.fields["manager"].queryset = managers
        self.fields["manager"].show(chosen_value(self, "manager"))
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-select form-select-sm" if isinstance(field.widget, forms.Select) else "form-control"
