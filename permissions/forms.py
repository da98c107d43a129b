"""Forms of the roles, users, grants and modules pages. Choices come from querysets the view
narrowed to the user's scope; the services hold every rule."""
from django import forms
from django.utils.translation import gettext_lazy as _

from org_hierarchy.forms import BootstrapForm, UnitChoiceField
from org_hierarchy.models import OrgLevel, OrgUnit

from .catalog import ALL_PERMISSIONS, MODULES
from .models import Role

ACTION_LABELS = {
    "view": _("View"),
    "add": _("Add"),
    "change": _("Change"),
    "delete": _("Delete"),
    "export": _("Export"),
    "assign": _("Assign"),
}


class ActionForm(BootstrapForm):
    """A button with nothing to parse (remove, deactivate, delete): carries the refusal, if any."""


class RoleCreateForm(BootstrapForm):
    code = forms.SlugField(label=_("Code"), max_length=40)
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RoleForm(BootstrapForm):
    name = forms.CharField(label=_("Name"), max_length=100)
    description = forms.CharField(label=_("Description"), required=False, widget=forms.Textarea(attrs={"rows": 2}))
    permissions = forms.MultipleChoiceField(
        label=_("Permissions"), required=False, choices=[(code, code) for code in ALL_PERMISSIONS]
    )


class RoleChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, role):
        return role.name


class UserCreateForm(BootstrapForm):
    email = forms.EmailField(label=_("Email"), max_length=254)
    first_name = forms.CharField(label=_("Given name"), max_length=150, required=False)
    last_name = forms.CharField(label=_("Family name"), max_length=150, required=False)
    unit = UnitChoiceField(label=_("Unit"), queryset=OrgUnit.objects.none())
    role = RoleChoiceField(label=_("Role"), queryset=Role.objects.none())

    def __init__(self, *args, units, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = units
        self.fields["role"].queryset = roles


class MembershipForm(BootstrapForm):
    unit = UnitChoiceField(label=_("Unit"), queryset=OrgUnit.objects.none())
    role = RoleChoiceField(label=_("Role"), queryset=Role.objects.none())

    def __init__(self, *args, units, roles, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["unit"].queryset = units
        self.fields["role"].queryset = roles


class GrantForm(BootstrapForm):
    # The login name, not a list: a tenant may have tens of thousands of users.
    user = forms.CharField(label=_("User (email)"), max_length=254)
    unit = UnitChoiceField(label=_("Unit"), queryset=OrgUnit.objects.none())
    action = forms.ChoiceField(label=_("Permission"))

    def __init__(self, *args, users, units, actions, **kwargs):
        super().__init__(*args, **kwargs)
        self.users = users
        self.fields["unit"].queryset = units
        self.fields["action"].choices = [(action, ACTION_LABELS[action]) for action in actions]

    def clean_user(self):
        user = self.users.filter(username__iexact=self.cleaned_data["user"].strip()).first()
        if user is None:
            raise forms.ValidationError(_("No user you may see has this email address."))
        return user


class ModuleToggleForm(BootstrapForm):
    module = forms.ChoiceField(choices=list(MODULES.items()))
    level = forms.ModelChoiceField(queryset=OrgLevel.objects.all())
    enabled = forms.BooleanField(required=False)
