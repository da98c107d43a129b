"""A customer's change history (R9), read from the django-pghistory snapshots.

Each tracked model keeps a full snapshot per insert, update and delete; a change is the
difference between a snapshot and the one before it of the same object. Context (who, acting
unit, channel) is what kam.history.acting() set around the write.
"""
from django.apps import apps

from .models import BillingAccount, Contact, Customer, Interaction, Subscription

SKIPPED = {"id", "customer", "created_at", "updated_at"}
# (model, how its snapshots name the customer)
TRACKED = ((Customer, "pgh_obj_id"), (Contact, "customer_id"), (Subscription, "customer_id"),
           (BillingAccount, "customer_id"), (Interaction, "customer_id"))


def event_model(model):
    return apps.get_model(model._meta.app_label, f"{model.__name__}Event")


def _fields(model):
    return [f for f in model._meta.concrete_fields if f.name not in SKIPPED]


def _value(snapshot, field):
    value = getattr(snapshot, field.attname)
    return value if value is None or isinstance(value, (bool, int, str)) else str(value)


def _entries(model, lookup, customer_id, limit):
    events = (
        event_model(model).objects.filter(**{lookup: customer_id})
        .select_related("pgh_context").order_by("-pgh_id")[:limit]
    )
    fields = _fields(model)
    by_object = {}
    for snapshot in reversed(list(events)):  # oldest first, to diff against the one before
        by_object.setdefault(snapshot.pgh_obj_id, []).append(snapshot)
    for object_id, snapshots in by_object.items():
        previous = None
        for snapshot in snapshots:
            if snapshot.pgh_label == "delete":
                changes = {}
            else:
                changes = {
                    f.name: [None if previous is None else _value(previous, f), _value(snapshot, f)]
                    for f in fields
                    if previous is None and _value(snapshot, f) not in (None, "", False)
                    or previous is not None and _value(previous, f) != _value(snapshot, f)
                }
            previous = snapshot
            if snapshot.pgh_label == "update" and not changes:
                continue
            context = snapshot.pgh_context.metadata if snapshot.pgh_context_id else {}
            yield {
                "id": f"{model._meta.model_name}:{snapshot.pgh_id}",
                "seq": snapshot.pgh_id,
                "at": snapshot.pgh_created_at,
                "model": model._meta.model_name,
                "object_id": object_id,
                "label": snapshot.pgh_label,
                "actor": context.get("actor", ""),
                "actor_id": context.get("actor_id"),
                "unit": context.get("unit", ""),
                "via": context.get("via", ""),
                "changes": changes,
            }


def changes_of(customer, limit=500):
    """The latest ``limit`` changes to ``customer`` and what hangs off it, newest first."""
    entries = [entry for model, lookup in TRACKED for entry in _entries(model, lookup, customer.pk, limit)]
    entries.sort(key=lambda e: (e["at"], e["seq"]), reverse=True)
    return entries[:limit]
