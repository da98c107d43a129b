"""How each model is owned by an org unit, and which object grants apply to it.

A registered model belongs to the unit named by ``unit_field`` ("pk" for OrgUnit itself, a
foreign key such as "org_unit" for a customer). Its permission codes are
``"<resource>.<action>"``. Object grants (django-guardian, a direct-FK grant model) give one
action on one object: the action maps to a Django permission codename on the model, explicitly
below; a grant on an org unit covers that unit only, never its subtree.

A model with a ``group_field`` (customers: ``group``) has group rows (``group_flag`` true) whose
members may live anywhere in the tree: whoever may view or export a group may view or export
its members (GROUP_ACTIONS); changing a member stays with the scopes over its own unit.
"""
from dataclasses import dataclass, field

from django.db import models

# Our action -> the Django permission codename pattern a grant uses. view/add/change/delete are
# Django's default model permissions; export and assign must be declared in the model's
# Meta.permissions (e.g. ("export_customer", "Can export customer")).
GRANT_CODENAMES = {
    "view": "view_{model}",
    "add": "add_{model}",
    "change": "change_{model}",
    "delete": "delete_{model}",
    "export": "export_{model}",
    "assign": "assign_{model}",
}


# Actions that a group passes on to its members.
GROUP_ACTIONS = ("view", "export")


@dataclass(frozen=True)
class Registration:
    model: type
    resource: str
    unit_field: str
    grant_model: type | None = None
    grant_codenames: dict = field(default_factory=dict)  # action -> permission codename
    group_field: str | None = None  # FK to the group row of the same model
    group_flag: str | None = None  # boolean field marking group rows

    @property
    def unit_lookup(self):
        """The queryset lookup for "owned by one of these units": ``<unit_field>__in``."""
        return "pk__in" if self.unit_field == "pk" else f"{self.unit_field}__in"

    def unit_id(self, obj):
        if self.unit_field == "pk":
            return obj.pk
        *hops, last = self.unit_field.split("__")
        for hop in hops:
            obj = getattr(obj, hop)
            if obj is None:
                return None
        return getattr(obj, obj._meta.get_field(last).attname)

    def codename(self, action):
        """The permission codename an object grant of ``action`` uses, or None if not grantable."""
        return self.grant_codenames.get(action) if self.grant_model is not None else None


_registry: dict = {}


def register(model, *, resource, unit_field, grant_model=None, grant_actions=None, group_field=None,
             group_flag=None):
    """Declare that ``model`` rows belong to an org unit through ``unit_field``.

    ``grant_actions`` limits which actions can be granted per object (default: every action in
    GRANT_CODENAMES); the codenames follow GRANT_CODENAMES with the model's name.
    """
    name = model._meta.model_name
    actions = GRANT_CODENAMES if grant_actions is None else {a: GRANT_CODENAMES[a] for a in grant_actions}
    codenames = {action: pattern.format(model=name) for action, pattern in actions.items()}
    _registry[model] = Registration(model, resource, unit_field, grant_model, codenames, group_field, group_flag)
    if grant_model is not None:  # grants are cached with the scopes: any write to one makes them stale
        from django.db.models.signals import post_delete, post_save

        for signal in (post_save, post_delete):
            signal.connect(_grant_written, sender=grant_model, dispatch_uid=f"grant-{signal is post_save}-{grant_model._meta.label}")
    return _registry[model]


def _grant_written(**kwargs):
    from .scope import invalidate_scopes

    invalidate_scopes()


def get(model_or_obj):
    """The registration of a model, instance or queryset; LookupError if it has none."""
    if isinstance(model_or_obj, models.QuerySet):
        model = model_or_obj.model
    elif isinstance(model_or_obj, models.Model):
        model = type(model_or_obj)
    else:
        model = model_or_obj
    model = model._meta.concrete_model
    try:
        return _registry[model]
    except KeyError:
        raise LookupError(f"{model._meta.label} is not registered with permissions.registry") from None


def is_registered(model):
    return model._meta.concrete_model in _registry
