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

from django.db import connection
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
    units = OrgUnit.objects.select_related("level")
    if scope is None:
        units = units.order_by("path")  # the first path is the first root's: a LIMIT 1 on the path index
    else:
        units = units.filter(_among("pk", scope)).order_by("depth", "path")
    unit = units.first()
    if unit is None:
        raise Http404
    return unit


def report_tops(*, user):
    """The viewer's top units: the units of their "report.view" scope whose parent is outside it
    (the roots for whole-tree viewers), in tree order. Where their dashboards start."""
    scope = report_scope(user)
    units = OrgUnit.objects.select_related("level").order_by("depth", "path")
    if scope is None:
        return list(units.filter(depth=1))
    return list(units.filter(_among("pk", scope)).filter(Q(parent__isnull=True) | ~_among("parent_id", scope)))


def report_path(*, user, unit):
    """The units from the viewer's top unit down to ``unit`` (both included), for breadcrumbs:
    ``unit``'s ancestors inside the viewer's scope (a scope is made of whole subtrees, so they
    form one unbroken chain). Http404 if ``user`` does not cover ``unit``."""
    scope = _scope_for(user, unit)
    prefixes = [unit.path[:length] for length in range(OrgUnit.steplen, len(unit.path) + 1, OrgUnit.steplen)]
    units = OrgUnit.objects.filter(path__in=prefixes).order_by("depth")
    return [u for u in units if scope is None or u.pk in scope]


# --- Sums of stored rows ------------------------------------------------------------------------

SUM_NAMES = STOCK + FLOWS + ("subscription_months", "billed_months")


def _fetch(parts, filters, *, by=()):
    """Sums of stored rows in one query: ``parts`` is ``[(label, model, unit ids)]``, the answer
    ``{label: {(unit id, *by values): {measure: sum}}}``. Rows are grouped by unit and ``by``
    (e.g. ``("month",)``); without "month" in ``by``, stock measures are those of the period's
    last month, while ``subscription_months`` and ``billed_months`` add up every month (the ARPU
    and ARPA denominators). Hand-written SQL: this is the read every dashboard makes."""
    keys = ", ".join(("unit_id", *by))
    at_last = "" if "month" in by else " FILTER (WHERE month = %(last)s)"
    sums = ", ".join([f"sum({m}){at_last}" for m in STOCK] + [f"sum({m})" for m in FLOWS]
                     + ["sum(subscriptions)", "sum(billed_customers)"])
    where = "month BETWEEN %(first)s AND %(last)s"
    where += " AND grade = ANY(%(grades)s)" if filters.grades else ""
    where += " AND industry = ANY(%(industries)s)" if filters.industries else ""
    params = {"first": filters.first, "last": filters.last, "grades": list(filters.grades),
              "industries": list(filters.industries)}
    selects = []
    for index, (_label, model, units) in enumerate(parts):
        if units:
            params[f"units{index}"] = sorted(units)
            selects.append(f"SELECT {index}, {keys}, {sums} FROM {model._meta.db_table} "
                           f"WHERE unit_id = ANY(%(units{index})s) AND {where} GROUP BY {keys}")
    found = {label: {} for label, _model, _units in parts}
    if not selects:
        return found
    with connection.cursor() as cursor:
        cursor.execute(" UNION ALL ".join(selects), params)
        width = 2 + len(by)
        for row in cursor.fetchall():
            found[parts[row[0]][0]][tuple(row[1:width])] = dict(zip(SUM_NAMES, row[width:]))
    return found


def _sums(model, units, filters, *, by=()):
    """``{(unit id, *by values): sums}`` of ``model``'s rows for ``units`` (see ``_fetch``)."""
    return _fetch([("rows", model, units)], filters, by=by)["rows"]


def _add(total, part):
    for name, value in part.items():
        if value is not None:
            total[name] = total.get(name, 0) + value
    return total


def _parts(targets, filters, scope, leaves=()):
    """``{target: (subtree units, own units)}`` whose stored rows make up each target's subtree.
    Today's tree: a unit's subtree row, or its own rows for a leaf (``leaves``: targets without
    children), which has none; as of a date: the decomposition of reporting/asof.py."""
    if filters.as_of is None:
        return {target: (set(), {target}) if target in leaves else ({target}, set()) for target in targets}
    now = asof.current_tree()
    decomposition = asof.Decomposition(now, asof.tree_as_of(filters.as_of, now), scope)
    return {target: decomposition.parts(target) for target in targets}


def _subtree_sums(targets, filters, scope, *, by=(), parts=None, leaves=(), own_of=None):
    """``{target: {by values: sums}}`` of each target's subtree (as of ``filters.as_of`` if given),
    in one query; with ``own_of``, also that unit's own sums under the key ``"own"``."""
    parts = parts if parts is not None else _parts(targets, filters, scope, leaves)
    stored_units = set().union(*(s for s, _o in parts.values()))
    own_units = set().union(*(o for _s, o in parts.values()))
    found = _fetch([("stored", SubtreeMonth, stored_units),
                    ("own", UnitMonth, own_units | ({own_of} if own_of is not None else set()))], filters, by=by)
    result = {}
    for target, (subtree_units, target_own) in parts.items():
        totals = {}
        for source, units in ((found["stored"], subtree_units), (found["own"], target_own)):
            for (unit, *rest), sums in source.items():
                if unit in units:
                    _add(totals.setdefault(tuple(rest), {}), sums)
        result[target] = totals
    if own_of is not None:
        result["own"] = {tuple(rest): sums for (unit, *rest), sums in found["own"].items() if unit == own_of}
    return result


def _leaves(units):
    return {unit.pk for unit in units if not unit.numchild}


def _annotations(last):
    """ORM sums of the measures (group rows); stock ones at month ``last``."""
    at_last = Q(month=last)
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
    sums = _subtree_sums([unit.pk], filters, scope, leaves=_leaves([unit]), own_of=unit.pk)
    result = {"own": metrics(sums["own"].get(())), "subtree": metrics(sums[unit.pk].get(()))}
    if by is not None:
        result["breakdown"] = _breakdown(unit, filters, scope, by)
    return result


def _breakdown(unit, filters, scope, by):
    sums = _subtree_sums([unit.pk], filters, scope, by=(by,), leaves=_leaves([unit]))[unit.pk]
    return [{by: value, **metrics(part)} for (value,), part in sorted(sums.items())]


def unit_trend(*, user, unit, filters, part="subtree"):
    """Month by month figures of ``unit``'s subtree (or its own customers with ``part="own"``)."""
    scope = _scope_for(user, unit)
    if part == "own":
        found = {(month,): sums for (_unit, month), sums in _sums(UnitMonth, [unit.pk], filters, by=("month",)).items()}
    else:
        found = _subtree_sums([unit.pk], filters, scope, by=("month",), leaves=_leaves([unit]))[unit.pk]
    return _month_list(filters, found)


def _children(unit, filters):
    """``(child ids, the leaves among them, {id: unit} or None)`` of today's tree (its units read
    in the same query), or of the tree as of the date (units left to the caller)."""
    if filters.as_of is None:
        units = list(OrgUnit.objects.filter(parent=unit).select_related("level").order_by("pk"))
        return [u.pk for u in units], _leaves(units), {u.pk: u for u in units}
    return asof.tree_as_of(filters.as_of).children_of(unit.pk), set(), None


def child_ranking(*, user, unit, filters, metric="revenue", descending=True):
    """``unit``'s own figures and each child unit's subtree figures (as of ``filters.as_of`` if
    given: the children it had then), ranked by ``metric`` (units without a value, such as an
    ARPU without subscriptions, last). A child with nothing the viewer covers is left out; the
    subtree figure of ``unit`` is its own plus those of the children listed."""
    scope = _scope_for(user, unit)
    children, leaves, info = _children(unit, filters)
    parts = _parts(children, filters, scope, leaves)
    children = [child for child, (subtree, own) in parts.items() if subtree or own]
    sums = _subtree_sums(children, filters, scope, parts=parts, own_of=unit.pk)
    if info is None:
        info = {u.pk: u for u in OrgUnit.objects.filter(pk__in=children).select_related("level")}
    rows = [{"unit": info[child], **metrics(sums[child].get(()))} for child in children]
    rows.sort(key=lambda row: row[metric] or 0, reverse=descending)
    rows.sort(key=lambda row: row[metric] is None)  # stable: the order above stays within each part
    return {"own": metrics(sums["own"].get(())), "children": rows}


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
    parts = _parts([unit.pk], filters, scope, _leaves([unit]))
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
