"""Writes to the key-account archive (R6, R9).

Every service names its ``actor`` (a tenant user, whose permissions are checked, or a string
such as ``"import:42"`` for trusted callers), runs in one transaction inside a history context
(who, acting unit, channel), validates with the model's own rules and raises
ValidationError({field: [message]}) on bad input without writing anything. Refusals raise
Http404 (the actor may not even see the customer) or PermissionDenied.

Permissions: "customer.add" at the owning unit to create; "customer.change" to edit the customer
and everything around it (contacts, subscriptions, billing accounts, interactions); moving a
customer to another unit or account manager needs "customer.assign" at both the old and the new
unit; "customer.delete" to delete.
"""
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from kam import history
from org_hierarchy.models import OrgUnit
from permissions.models import Membership
from permissions.selectors import can, require
from reporting.services import mark_dirty as rollups_dirty

from . import phones
from .models import BillingAccount, Contact, Customer, GradingRule, Grade, Interaction, PhoneNumber, Subscription

ASSIGN_FIELDS = ("org_unit", "account_manager")


def is_user(actor):
    return actor is not None and not isinstance(actor, str)


def acting_unit(actor, unit_id):
    """The unit the actor acts from on ``unit_id``: their deepest membership unit at or above it
    (None for trusted callers and for tenant admins without a membership there)."""
    if not is_user(actor) or unit_id is None:
        return None
    path = OrgUnit.objects.filter(pk=unit_id).values_list("path", flat=True).first() or ""
    steplen = OrgUnit.steplen
    prefixes = [path[:end] for end in range(steplen, len(path) + 1, steplen)]
    membership = (
        Membership.objects.filter(user=actor, unit__path__in=prefixes).select_related("unit").order_by("-unit__depth").first()
    )
    return membership.unit if membership else None


def _acting(actor, customer, via):
    return history.acting(actor, unit=acting_unit(actor, customer.org_unit_id), via=via)


def _check(actor, code, obj):
    if is_user(actor):
        require(actor, code, obj)


def _check_create(actor, customer):
    """Creating needs "customer.add" at the new customer's unit (no "view" yet to fall back on)."""
    if is_user(actor) and not can(actor, "customer.add", customer):
        raise PermissionDenied(_("You may not add customers to this unit."))


def _check_assignable(actor, customer, new_unit_id):
    if not is_user(actor):
        return
    before = Customer(org_unit_id=customer.org_unit_id)
    after = Customer(org_unit_id=new_unit_id)
    if not (can(actor, "customer.assign", before) and can(actor, "customer.assign", after)):
        raise PermissionDenied(_("Reassigning a customer needs the assign permission at both units."))


def _apply(instance, data, fields):
    unknown = set(data) - set(fields)
    if unknown:
        raise ValidationError({name: [_("This field cannot be set here.")] for name in sorted(unknown)})
    for name, value in data.items():
        field = instance._meta.get_field(name)
        setattr(instance, field.attname if field.is_relation and not hasattr(value, "_meta") else name, value)


def _validate(instance, exclude=None):
    # Organisations carry a credit code, individuals never do.
    if isinstance(instance, Customer):
        if instance.credit_code == "":
            instance.credit_code = None
        if instance.credit_code:
            instance.credit_code = instance.credit_code.strip().upper()
        if instance.kind == Customer.Kind.INDIVIDUAL and instance.credit_code:
            raise ValidationError({"credit_code": [_("Individuals have no unified social credit code.")]})
        if instance.group_id and instance.is_group:
            raise ValidationError({"group": [_("A group customer cannot itself belong to a group.")]})
        if instance.group_id and instance.group_id == instance.pk:
            raise ValidationError({"group": [_("A customer cannot be its own group.")]})
    instance.full_clean(exclude=exclude)


CUSTOMER_FIELDS = (
    "external_id", "kind", "name", "credit_code", "industry", "size", "grade", "status", "org_unit",
    "account_manager", "is_national_key_account", "is_potential_key_account", "is_group", "group", "phone",
    "address", "credit_rating", "credit_limit", "satisfaction",
)


def _check_group(actor, customer):
    if customer.group_id is None:
        return
    group = Customer.objects.filter(pk=customer.group_id).first()
    if group is None or not group.is_group:
        raise ValidationError({"group": [_("Choose a group customer.")]})
    if is_user(actor) and not can(actor, "customer.view", group):
        raise ValidationError({"group": [_("Choose a group customer.")]})


@transaction.atomic
def customer_create(*, actor, data, via="web"):
    customer = Customer()
    _apply(customer, data, CUSTOMER_FIELDS)
    _validate(customer)
    _check_create(actor, customer)
    _check_group(actor, customer)
    with _acting(actor, customer, via):
        customer.save()
        reindex_phones(customer)
    rollups_dirty([customer.org_unit_id])
    return customer


@transaction.atomic
def customer_update(*, actor, customer, data, via="web"):
    _check(actor, "customer.change", customer)
    customer = Customer.objects.select_for_update().get(pk=customer.pk)
    old_unit = customer.org_unit_id
    old_manager = customer.account_manager_id
    old_group = customer.group_id
    _apply(customer, data, CUSTOMER_FIELDS)
    _validate(customer)
    if customer.org_unit_id != old_unit or customer.account_manager_id != old_manager:
        _check_assignable(actor, Customer(org_unit_id=old_unit), customer.org_unit_id)
    if customer.is_group is False and Customer.objects.filter(group=customer).exists():
        raise ValidationError({"is_group": [_("This group still has members.")]})
    if customer.group_id != old_group:  # a branch's city may edit it without seeing its group
        _check_group(actor, customer)
    with _acting(actor, customer, via):
        customer.save()
        reindex_phones(customer)
    rollups_dirty([old_unit, customer.org_unit_id])
    return customer


@transaction.atomic
def customer_delete(*, actor, customer, via="web"):
    _check(actor, "customer.delete", customer)
    if customer.is_group and Customer.objects.filter(group=customer).exists():
        raise ValidationError({"is_group": [_("This group still has members.")]})
    with _acting(actor, customer, via):
        customer.delete()
    rollups_dirty([customer.org_unit_id])


def reindex_phones(customer):
    """Rebuild the phone search rows of ``customer`` from its main phone and its contacts."""
    PhoneNumber.objects.filter(customer=customer).delete()
    rows = [PhoneNumber(customer=customer, digits=d, reversed_digits=d[::-1]) for d in phones.digits_of(customer.phone)]
    for contact in Contact.objects.filter(customer=customer).only("pk", "phones"):
        rows += [
            PhoneNumber(customer=customer, contact=contact, digits=d, reversed_digits=d[::-1])
            for d in phones.digits_of(contact.phones)
        ]
    PhoneNumber.objects.bulk_create(rows)


# --- Around the customer: all need "customer.change" on it -------------------------------

def _child_save(actor, customer, instance, data, fields, via):
    _check(actor, "customer.change", customer)
    _apply(instance, data, fields)
    instance.customer = customer
    _validate(instance)
    with _acting(actor, customer, via):
        instance.save()
    return instance


def _child_delete(actor, instance, via):
    customer = instance.customer
    _check(actor, "customer.change", customer)
    with _acting(actor, customer, via):
        instance.delete()


CONTACT_FIELDS = ("name", "role", "phones", "email", "is_primary")
SUBSCRIPTION_FIELDS = ("product", "quantity", "monthly_fee", "start_date", "end_date")
BILLING_ACCOUNT_FIELDS = ("number", "name", "is_active")
INTERACTION_FIELDS = ("contact", "channel", "occurred_at", "subject", "notes", "satisfaction")


@transaction.atomic
def contact_save(*, actor, customer, data, contact=None, via="web"):
    contact = _child_save(actor, customer, contact or Contact(), data, CONTACT_FIELDS, via)
    reindex_phones(customer)
    return contact


@transaction.atomic
def contact_delete(*, actor, contact, via="web"):
    customer = contact.customer
    _child_delete(actor, contact, via)
    reindex_phones(customer)


@transaction.atomic
def subscription_save(*, actor, customer, data, subscription=None, via="web"):
    rollups_dirty([customer.org_unit_id])
    return _child_save(actor, customer, subscription or Subscription(), data, SUBSCRIPTION_FIELDS, via)


@transaction.atomic
def subscription_delete(*, actor, subscription, via="web"):
    rollups_dirty([subscription.customer.org_unit_id])
    _child_delete(actor, subscription, via)


@transaction.atomic
def billing_account_save(*, actor, customer, data, account=None, via="web"):
    return _child_save(actor, customer, account or BillingAccount(), data, BILLING_ACCOUNT_FIELDS, via)


@transaction.atomic
def interaction_save(*, actor, customer, data, interaction=None, via="web"):
    interaction = interaction or Interaction(recorded_by=actor if is_user(actor) else None)
    if data.get("contact") is not None and getattr(data["contact"], "customer_id", None) != customer.pk:
        raise ValidationError({"contact": [_("Choose a contact of this customer.")]})
    return _child_save(actor, customer, interaction, data, INTERACTION_FIELDS, via)


@transaction.atomic
def interaction_delete(*, actor, interaction, via="web"):
    _child_delete(actor, interaction, via)


# --- Grading -----------------------------------------------------------------------------

def grade_for(monthly_revenue, product_count, rules=None):
    """The highest grade whose rule both figures meet; C when none does."""
    rules = list(GradingRule.objects.all()) if rules is None else rules
    order = [Grade.STRATEGIC, Grade.A, Grade.B, Grade.C]
    for rule in sorted(rules, key=lambda r: order.index(r.grade)):
        if monthly_revenue >= rule.min_monthly_revenue and product_count >= rule.min_products:
            return rule.grade
    return Grade.C


# --- Tenant configuration: products and grading rules --------------------------------------
# One list per tenant, so changing them needs "customer.change" across the whole tree (tenant
# admins, or an HQ role that changes customers everywhere).

def _check_tenant_wide(actor):
    from permissions.selectors import holds_tenant_wide

    if is_user(actor) and not holds_tenant_wide(actor, "customer.change"):
        raise PermissionDenied(_("Only those who change customers across the whole organisation can do this."))


PRODUCT_FIELDS = ("code", "name", "category")
GRADING_RULE_FIELDS = ("grade", "min_monthly_revenue", "min_products")


@transaction.atomic
def product_save(*, actor, data, product=None):
    """Create or update a product of the tenant's catalogue."""
    from .models import Product

    _check_tenant_wide(actor)
    product = product or Product()
    _apply(product, data, PRODUCT_FIELDS)
    _validate(product)
    product.save()
    return product


@transaction.atomic
def grading_rule_save(*, actor, data, rule=None):
    """Create or update the rule of one grade (one rule per grade). Grades change when
    ``regrade`` runs, not here."""
    _check_tenant_wide(actor)
    rule = rule or GradingRule()
    _apply(rule, data, GRADING_RULE_FIELDS)
    _validate(rule)
    rule.save()
    return rule


@transaction.atomic
def grading_rule_delete(*, actor, rule):
    _check_tenant_wide(actor)
    rule.delete()


def _batches(ids, size=5000):
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


@transaction.atomic
def regrade(*, actor, customers=None, via="regrade"):
    """Set each customer's grade from the tenant's rules (``grade_for``): its revenue in the
    latest billed month of the tenant (all its billing accounts; no record counts as 0) and
    the number of distinct products it subscribes to today.

    ``customers`` (instances or a queryset; default all) is narrowed to those a user ``actor``
    may change; the others are left alone. Only grades that change are written, in a few
    set-based updates, so history records one update per regraded customer. Returns
    ``{grade: number of customers moved to it}``.
    """
    from django.db.models import Count, DecimalField, Max, OuterRef, Q, QuerySet, Subquery, Sum, Value
    from django.db.models.functions import Coalesce
    from django.utils import timezone

    from permissions.selectors import visible

    from .models import BillingRecord

    queryset = Customer.objects.all()
    if customers is not None:
        ids = customers.values("pk") if isinstance(customers, QuerySet) else [c.pk for c in customers]
        queryset = queryset.filter(pk__in=ids)
    if is_user(actor):
        queryset = visible(actor, queryset, action="change")
    month = BillingRecord.objects.aggregate(month=Max("month"))["month"]
    today = timezone.localdate()
    revenue = (
        BillingRecord.objects.filter(customer=OuterRef("pk"), month=month)
        .values("customer").annotate(total=Sum("revenue")).values("total")
    )
    products = (
        Subscription.objects.filter(customer=OuterRef("pk"), start_date__lte=today)
        .filter(Q(end_date__isnull=True) | Q(end_date__gte=today))
        .values("customer").annotate(count=Count("product", distinct=True)).values("count")
    )
    rows = queryset.annotate(
        revenue=Coalesce(Subquery(revenue), Value(0), output_field=DecimalField(max_digits=14, decimal_places=2)),
        products=Coalesce(Subquery(products), Value(0)),
    ).values_list("pk", "grade", "revenue", "products")
    rules = list(GradingRule.objects.all())
    moves = {}
    for pk, grade, monthly_revenue, product_count in rows.iterator(chunk_size=5000):
        new_grade = grade_for(monthly_revenue, product_count, rules)
        if new_grade != grade:
            moves.setdefault(new_grade, []).append(pk)
    now = timezone.now()
    with history.acting(actor, via=via):
        for grade, ids in moves.items():
            for batch in _batches(ids):
                Customer.objects.filter(pk__in=batch).update(grade=grade, updated_at=now)
    moved = [pk for ids in moves.values() for pk in ids]
    if moved:  # by-grade roll-ups of their units
        rollups_dirty(sorted({unit for batch in _batches(moved)
                              for unit in Customer.objects.filter(pk__in=batch).values_list("org_unit_id", flat=True)}))
    return {grade: len(ids) for grade, ids in moves.items()}
