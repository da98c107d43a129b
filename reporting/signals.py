"""Writes that reach the roll-ups without going through a service call that marks them.

- Billing records have no service: whoever saves or deletes one through the ORM (the admin, a
  future billing feed) marks its unit and month here. Bulk loads (COPY, bulk_create) send no
  signals and call ``reporting.services.mark_dirty`` or ``recompute_later`` themselves.
- Re-orgs are recognised by their audit entries (org_hierarchy.services writes one per move
  and merge, also for imports), so the org tree code needs no reporting hook.
"""
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from key_accounts.models import BillingRecord, Customer
from org_hierarchy.models import OrgAuditEntry

from . import services


def _unit_of(customer_id):
    return Customer.objects.filter(pk=customer_id).values_list("org_unit_id", flat=True).first()


@receiver(pre_save, sender=BillingRecord)
def _billing_before(sender, instance, raw=False, **kwargs):
    if raw or instance.pk is None:
        return
    before = BillingRecord.objects.filter(pk=instance.pk).values_list("customer_id", "month").first()
    if before and before != (instance.customer_id, instance.month):
        services.mark_dirty([_unit_of(before[0])], [before[1]])


@receiver(post_save, sender=BillingRecord)
@receiver(post_delete, sender=BillingRecord)
def _billing_changed(sender, instance, raw=False, **kwargs):
    if not raw:
        services.mark_dirty([_unit_of(instance.customer_id)], [instance.month])


def _ref_id(ref):
    return ref.get("id") if isinstance(ref, dict) else None


@receiver(post_save, sender=OrgAuditEntry)
def _tree_changed(sender, instance, created=False, raw=False, **kwargs):
    if raw or not created:
        return
    detail = instance.detail or {}
    if instance.action == OrgAuditEntry.Action.MOVED:
        services.tree_changed(_ref_id(detail.get("old_parent")), _ref_id(detail.get("new_parent")))
    elif instance.action == OrgAuditEntry.Action.MERGED:
        services.tree_changed(*detail.get("merged_ids", []))
    elif instance.action == OrgAuditEntry.Action.CREATED:
        services.mark_dirty([_ref_id(detail.get("parent"))])  # a leaf with its first child gets subtree rows
