"""Reads of the roll-ups, trimmed to the viewer (R3, issue #5 item 4).

A viewer sees figures of the units in their "report.view" scope only: a unit outside it answers
404 (exactly like a missing id), a subtree figure is only shown for a unit they cover (their scope
holds its whole current subtree), and as-of figures leave out the units they do not cover today.
Object grants on single customers never count here: aggregates come from scopes alone.

Every figure is a sum of stored rows (reporting/models.py); ratios are computed last, from the
sums (docs/reporting.md has the definitions). A period's stock figures (customers, statuses,
subscriptions, billed customers) are those of its last month; flows (new and lost customers,
revenue, arrears, discounts) add up over its months; ARPU and ARPA divide the period's revenue by
its subscription-months and billed-customer-months.
"""
import datetime
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import F, Q, Sum
from django.http import Http404

from key_accounts.models import Customer, Product
from org_hierarchy.models import OrgUnit
from permissions.scope import resolve_scope
from permissions.selectors import AnyOf, is_active_user

from . import asof, engine
from .models import GroupMonth, SubtreeMonth, SubtreeProductMonth, UnitMonth, UnitProductMonth

REPORT_VIEW = "report.view"
CENT = Decimal("0.01")
STOCK = engine.STOCK + ("billed_customers",)
FLOWS = ("new_customers", "lost_customers", "revenue", "arrears", "discount")
MONEY = ("revenue", "arrears", "discount", "arpu", "arpa", "monthly_fee")
METRICS = STOCK + FLOWS + ("arpu", "arpa")
PRODUCT_STOCK = engine.PRODUCT_MEASURES


@dataclass(frozen=True)
class Filters:
    """What a report reads: months ``first``..``last`` (first days), optionally some grades and
    industries only, and the tree as of a date instead of today's."""

    first: datetime.date
    last: datetime.date
    grades: tuple = ()
    industries: tuple = ()
    as_of: datetime.date | None = None
    months: list = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "months", engine.months_between(self.first, self.last))


# --- Who sees what ---------------------------------------------------------------------------

def report_scope(user):
    """Ids of the units ``user`` may see figures of; None for every unit."""
    if not is_active_user(user):
        return frozenset()
    scope = resolve_scope(user)
    if scope.covers_every_unit(REPORT_VIEW):
        return None
    return scope.units(REPORT_VIEW)


def _among(column, ids):
    return Q(AnyOf(F(column), ids)) if ids else Q(pk__in=[])


def report_unit_get(*, user, pk):
    """The unit ``pk`` if ``user`` may see its figures, else Http404 (also for unknown ids)."""
    scope = report_scope(user)
    try:
        unit = OrgUnit.objects.select_related("level").get(pk=pk)
    except (OrgUnit.DoesNotExist, ValueError, TypeError):
        raise Http404 from None
    if scope is not None and unit.pk not in scope:
        raise Http404
    return unit


def _scope_for(user, unit):
    """The viewer's report scope, after checking they cover ``unit`` (Http404 otherwise): every
    public selector starts here, so a unit that was not looked up through report_unit_get is
    still never read for someone outside it."""
    scope = report_scope(user)
    if scope is not None and unit.pk not in scope:
        raise Http404
    return scope


def report_root(*, user):
    """The highest unit whose figures ``user`` sees (the first root for whole-tree viewers), or
    Http404 when they see none."""
    scope = report_scope(user)
    units = OrgUnit.objects.select_related("level").order_by("depth", "path")
    if scope is not None:
        units = units.filter(_among("pk", scope))
    unit = units.first()
    if unit is None:
        raise Http404
    return unit


# --- Sums of stored rows ------------------------------------------------------------------------

def _sums(model, units, filters, *, by=()):
    """``{(unit id, *by values): {measure: sum}}`` of ``model``'s rows for ``units`` in the months
    of ``filters``, grouped by unit and ``by`` (e.g. ``("month",)``). Without "month" in ``by``,
    stock measures are those of the period's last month; ``subscription_months`` and
    ``billed_months`` add up every month (the ARPU and ARPA denominators)."""
    if not units:
        return {}
    rows = model.objects.filter(_among("unit_id", list(units)), month__gte=filters.first, month__lte=filters.last)
    if filters.grades:
        rows = rows.filter(grade__in=filters.grades)
    if filters.industries:
        rows = rows.filter(industry__in=filters.industries)
    keys = ("unit_id", *by)
    return _summed(rows, keys, _annotations(None if "month" in by else filters.last))


def _annotations(last=None):
    """Sums of the measures; stock ones at month ``last`` only when given."""
    at_last = None if last is None else Q(month=last)
    annotations = {name: Sum(name, filter=at_last) for name in STOCK}
    annotations.update({name: Sum(name) for name in FLOWS})
    annotations.update(subscription_months=Sum("subscriptions"), billed_months=Sum("billed_customers"))
    return annotations


def _summed(rows, keys, annotations):
    """``{key values: sums}``; the sums are aliased while querying (an alias may not shadow the
    column another sum reads)."""
    aliased = {f"sum_{name}": value for name, value in annotations.items()}
    found = {}
    for row in rows.order_by().values(*keys).annotate(**aliased):
        key = tuple(row.pop(k) for k in keys)
        found[key] = {name[4:]: value for name, value in row.items()}
    return found


def _add(total, part):
    for name, value in part.items():
        if value is not None:
            total[name] = total.get(name, 0) + value
    return total


def _parts(targets, filters, scope):
    """``{target: (subtree units, own units)}`` whose stored rows make up each target's subtree."""
    if filters.as_of is None:
        return {target: ({target}, set()) for target in targets}
    now = asof.current_tree()
    decomposition = asof.Decomposition(now, asof.tree_as_of(filters.as_of, now), scope)
    return {target: decomposition.parts(target) for target in targets}


def _subtree_sums(targets, filters, scope, *, by=(), parts=None):
    """``{target: {by values: sums}}`` of each target's subtree (as of ``filters.as_of`` if given)."""
    parts = parts if parts is not None else _parts(targets, filters, scope)
    stored = _sums(SubtreeMonth, set().union(*(s for s, _o in parts.values())), filters, by=by)
    own = _sums(UnitMonth, set().union(*(o for _s, o in parts.values())), filters, by=by)
    result = {}
    for target, (subtree_units, own_units) in parts.items():
        totals = {}
        for source, units in ((stored, subtree_units), (own, own_units)):
            for (unit, *rest), sums in source.items():
                if unit in units:
                    _add(totals.setdefault(tuple(rest), {}), sums)
        result[target] = totals
    return result


# --- Metrics ------------------------------------------------------------------------------------

def _money(value):
    return None if value is None else Decimal(value).quantize(CENT, ROUND_HALF_UP)


def _ratio(numerator, denominator):
    return None if not denominator else (Decimal(numerator) / Decimal(denominator)).quantize(CENT, ROUND_HALF_UP)


def metrics(sums):
    """The published figures of summed rows (zeros for nothing)."""
    sums = sums or {}
    result = {name: sums.get(name) or 0 for name in STOCK + ("new_customers", "lost_customers")}
    for name in ("revenue", "arrears", "discount"):
        result[name] = _money(sums.get(name) or 0)
    result["arpu"] = _ratio(sums.get("revenue") or 0, sums.get("subscription_months"))
    result["arpa"] = _ratio(sums.get("revenue") or 0, sums.get("billed_months"))
    return result


def _month_list(filters, by_month_sums):
    return [{"month": month, **metrics(by_month_sums.get((month,)))} for month in filters.months]


# --- Reports -----------------------------------------------------------------------------------

def unit_figures(*, user, unit, filters, by=None):
    """Figures of ``unit`` over the period: ``own`` (its own customers) and ``subtree`` (it and
    everything under it; as of ``filters.as_of`` if given), optionally with a ``breakdown`` of
    the subtree by ``by`` ("grade" or "industry")."""
    scope = _scope_for(user, unit)
    own = _sums(UnitMonth, [unit.pk], filters).get((unit.pk,))
    subtree = _subtree_sums([unit.pk], filters, scope)[unit.pk].get(())
    result = {"own": metrics(own), "subtree": metrics(subtree)}
    if by is not None:
        result["breakdown"] = _breakdown(unit, filters, scope, by)
    return result


def _breakdown(unit, filters, scope, by):
    sums = _subtree_sums([unit.pk], filters, scope, by=(by,))[unit.pk]
    return [{by: value, **metrics(part)} for (value,), part in sorted(sums.items())]


def unit_trend(*, user, unit, filters, part="subtree"):
    """Month by month figures of ``unit``'s subtree (or its own customers with ``part="own"``)."""
    scope = _scope_for(user, unit)
    if part == "own":
        found = {(month,): sums for (_unit, month), sums in _sums(UnitMonth, [unit.pk], filters, by=("month",)).items()}
    else:
        found = _subtree_sums([unit.pk], filters, scope, by=("month",))[unit.pk]
    return _month_list(filters, found)


def _children(unit, filters):
    if filters.as_of is None:
        return sorted(OrgUnit.objects.filter(parent=unit).order_by().values_list("pk", flat=True))
    return asof.tree_as_of(filters.as_of).children_of(unit.pk)


def child_ranking(*, user, unit, filters, metric="revenue", descending=True):
    """``unit``'s own figures and each child unit's subtree figures (as of ``filters.as_of`` if
    given: the children it had then), ranked by ``metric`` (units without a value, such as an
    ARPU without subscriptions, last). A child with nothing the viewer covers is left out; the
    subtree figure of ``unit`` is its own plus those of the children listed."""
    scope = _scope_for(user, unit)
    parts = _parts(_children(unit, filters), filters, scope)
    children = [child for child, (subtree, own) in parts.items() if subtree or own]
    sums = _subtree_sums(children, filters, scope, parts=parts)
    info = {u.pk: u for u in OrgUnit.objects.filter(pk__in=children).select_related("level")}
    rows = [{"unit": info[child], **metrics(sums[child].get(()))} for child in children]
    rows.sort(key=lambda row: row[metric] or 0, reverse=descending)
    rows.sort(key=lambda row: row[metric] is None)  # stable: the order above stays within each part
    own = _sums(UnitMonth, [unit.pk], filters).get((unit.pk,))
    return {"own": metrics(own), "children": rows}


def product_figures(*, user, unit, filters, product=None):
    """Per product (or for ``product`` only), at the period's last month: holders, active
    subscriptions, lines and monthly fees, and penetration (holders / customers not churned),
    for ``unit``'s own customers and its subtree. Grade and industry filters do not apply."""
    scope = _scope_for(user, unit)
    whole = Filters(filters.first, filters.last, as_of=filters.as_of)
    products = list(Product.objects.order_by("code")) if product is None else [product]
    own, subtree = _product_parts(unit, whole, scope, product, by_month=False)
    return [{"product": p, "own": own(p.pk, ()), "subtree": subtree(p.pk, ())} for p in products]


def product_trend(*, user, unit, filters, product, part="subtree"):
    """Month by month figures of one product for ``unit``'s subtree (or own customers)."""
    whole = Filters(filters.first, filters.last, as_of=filters.as_of)
    own, subtree = _product_parts(unit, whole, _scope_for(user, unit), product, by_month=True)
    pick = own if part == "own" else subtree
    return [{"month": month, **pick(product.pk, (month,))} for month in whole.months]


def _product_parts(unit, filters, scope, product, *, by_month):
    """Two look-ups ``(product id, key) -> metrics``, for the own rows of ``unit`` and for its
    subtree, with the penetration base (customers not churned) of the same part and month."""
    extra = None if product is None else Q(product_id=product.pk)
    parts = _parts([unit.pk], filters, scope)
    subtree_units, own_units = parts[unit.pk]
    own_rows = _product_sums(UnitProductMonth, [unit.pk], filters, extra, by_month)
    subtree_rows = {}
    for model, units in ((SubtreeProductMonth, subtree_units), (UnitProductMonth, own_units)):
        for key, sums in _product_sums(model, units, filters, extra, by_month).items():
            _add(subtree_rows.setdefault(key, {}), sums)
    by = ("month",) if by_month else ()
    own_base = {key[1:]: sums for key, sums in _sums(UnitMonth, [unit.pk], filters, by=by).items()}
    subtree_base = _subtree_sums([unit.pk], filters, scope, by=by, parts=parts)[unit.pk]

    def lookup(rows, base):
        return lambda product_id, key: _product_metrics(rows.get((product_id, *key)), _base(base.get(key)))

    return lookup(own_rows, own_base), lookup(subtree_rows, subtree_base)


def _product_sums(model, units, filters, extra, by_month):
    """``{(product id[, month]): sums}`` over ``units``: at the period's last month, or by month."""
    if not units:
        return {}
    rows = model.objects.filter(_among("unit_id", list(units)))
    rows = rows.filter(month__gte=filters.first, month__lte=filters.last) if by_month else rows.filter(month=filters.last)
    if extra is not None:
        rows = rows.filter(extra)
    keys = ("product_id", "month") if by_month else ("product_id",)
    return _summed(rows, keys, {m: Sum(m) for m in PRODUCT_STOCK})


def _base(sums):
    return (sums.get("customers") or 0) - (sums.get("churned") or 0) if sums else 0


def _product_metrics(sums, base):
    sums = sums or {}
    holders = sums.get("holders") or 0
    return {
        "holders": holders,
        "subscriptions": sums.get("subscriptions") or 0,
        "quantity": sums.get("quantity") or 0,
        "monthly_fee": _money(sums.get("monthly_fee") or 0),
        "customers": base,
        "penetration": None if not base else (Decimal(holders) / Decimal(base)).quantize(Decimal("0.0001"), ROUND_HALF_UP),
    }


# --- Group customers (national key accounts) -----------------------------------------------------

def _subtree_ids(unit):
    return list(OrgUnit.objects.filter(path__startswith=unit.path).order_by().values_list("pk", flat=True))


def group_figures(*, user, unit, filters):
    """Each group customer with figures under ``unit``: the group row itself and its members,
    each counted at the unit serving it, summed over ``unit``'s subtree (for HQ: the whole
    national account across provinces)."""
    _scope_for(user, unit)  # covering a unit is covering its whole subtree
    units = _subtree_ids(unit)
    rows = GroupMonth.objects.filter(_among("unit_id", units), month__gte=filters.first, month__lte=filters.last)
    sums = {group_id: row for (group_id,), row in _summed(rows, ("group_id",), _annotations(filters.last)).items()}
    groups = Customer.objects.filter(pk__in=list(sums)).select_related("org_unit").order_by("name", "pk")
    result = [{"group": group, **metrics(sums[group.pk])} for group in groups]
    result.sort(key=lambda row: row["revenue"], reverse=True)
    return result


def group_breakdown(*, user, unit, group_id, filters):
    """One group's figures under ``unit``, split by the child units of ``unit`` serving it (and
    ``unit`` itself): their sum is the group's total under ``unit``. Http404 if the group has no
    figures there."""
    _scope_for(user, unit)
    units = OrgUnit.objects.filter(path__startswith=unit.path).order_by()
    path_of = dict(units.values_list("pk", "path"))
    rows = GroupMonth.objects.filter(group_id=group_id, month__gte=filters.first, month__lte=filters.last)
    rows = rows.filter(_among("unit_id", list(path_of)))
    per_unit = {unit_id: sums for (unit_id,), sums in _summed(rows, ("unit_id",), _annotations(filters.last)).items()}
    group = Customer.objects.filter(pk=group_id, is_group=True).first()
    if group is None or not per_unit:
        raise Http404
    length = len(unit.path) + OrgUnit.steplen
    child_by_path = dict(OrgUnit.objects.filter(parent=unit).values_list("path", "pk"))
    per_child, own, total = {}, {}, {}
    for unit_id, sums in per_unit.items():
        _add(total, sums)
        if unit_id == unit.pk:
            _add(own, sums)
        else:
            _add(per_child.setdefault(child_by_path[path_of[unit_id][:length]], {}), sums)
    info = {u.pk: u for u in OrgUnit.objects.filter(pk__in=list(per_child)).select_related("level")}
    children = [{"unit": info[pk], **metrics(sums)} for pk, sums in per_child.items()]
    children.sort(key=lambda row: row["revenue"], reverse=True)
    return {"group": group, "total": metrics(total), "own": metrics(own), "children": children}
