"""The history tab's rows: key_accounts.history's change entries made readable, with the fields'
verbose names, choice labels and the names behind foreign keys (one query per related model
for the whole page, whatever the number of entries)."""
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.translation import gettext_lazy as _

from org_hierarchy.models import OrgUnit

from .. import selectors
from ..history import TRACKED
from ..models import Contact, Product

MODELS = {model._meta.model_name: model for model, _lookup in TRACKED}
LABELS = {"insert": _("created"), "update": _("changed"), "delete": _("deleted")}
# The field that names an object of each kind, for the row's title.
TITLE_FIELDS = {"contact": "name", "interaction": "subject", "billingaccount": "number", "subscription": "product"}


def _names(user, customer, wanted):
    """``{model: {id: name}}`` for the ids ``wanted`` ({model: set of ids}); group customers only
    when the user may view them, contacts only of this customer."""
    User = get_user_model()
    names = {}
    if wanted.get(OrgUnit):
        names[OrgUnit] = dict(OrgUnit.objects.filter(pk__in=wanted[OrgUnit]).values_list("pk", "name"))
    if wanted.get(User):
        names[User] = {u.pk: u.get_full_name() or u.get_username() for u in User.objects.filter(pk__in=wanted[User])}
    if wanted.get(Product):
        names[Product] = dict(Product.objects.filter(pk__in=wanted[Product]).values_list("pk", "name"))
    if wanted.get(Contact):
        names[Contact] = dict(Contact.objects.filter(pk__in=wanted[Contact], customer=customer).values_list("pk", "name"))
    customer_model = MODELS["customer"]
    if wanted.get(customer_model):
        visible = selectors.customers(user=user).filter(pk__in=wanted[customer_model])
        names[customer_model] = dict(visible.values_list("pk", "name"))
    return names


def _display(field, value, names):
    if value is None or value == "":
        return "—"
    if field.is_relation:
        return names.get(field.related_model, {}).get(value, f"#{value}")
    if isinstance(field, models.DateTimeField):
        moment = parse_datetime(value)
        return date_format(timezone.localtime(moment), "SHORT_DATETIME_FORMAT") if moment else value
    if field.choices:
        return dict(field.flatchoices).get(value, value)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    return value


def present(entries, user, customer):
    """Rows for the template: ``{"entry", "what", "title", "action", "changes": [{"name", "label", "before", "after"}]}``."""
    wanted = {}
    for entry in entries:
        model = MODELS[entry["model"]]
        for name, pair in entry["changes"].items():
            field = model._meta.get_field(name)
            if field.is_relation:
                related = field.related_model
                wanted.setdefault(related, set()).update(v for v in pair if v is not None)
    names = _names(user, customer, wanted)
    titles = {}
    for entry in reversed(entries):  # oldest first: an object keeps the last name it was given
        title_field = TITLE_FIELDS.get(entry["model"])
        if title_field and title_field in entry["changes"]:
            field = MODELS[entry["model"]]._meta.get_field(title_field)
            titles[(entry["model"], entry["object_id"])] = _display(field, entry["changes"][title_field][1], names)
    rows = []
    for entry in entries:
        model = MODELS[entry["model"]]
        changes = []
        for name, (before, after) in entry["changes"].items():
            field = model._meta.get_field(name)
            changes.append({"name": name, "label": field.verbose_name, "before": _display(field, before, names),
                            "after": _display(field, after, names), "raw": (before, after)})
        rows.append({
            "entry": entry,
            "what": model._meta.verbose_name,
            "title": titles.get((entry["model"], entry["object_id"]), "") if entry["model"] != "customer" else "",
            "action": LABELS.get(entry["label"], entry["label"]),
            "changes": changes,
        })
    return rows
