"""What a dashboard shows, assembled from reporting.selectors alone: the page and its XLSX
export both read it, so the file holds exactly what the page showed.

Figures are those of the unit's subtree (the unit and everything under it), like the API's
``subtree`` figures; the tiles compare the period with the period of the same length just
before it (the previous month for a one-month period).
"""
import copy
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import urlencode

from django.http import QueryDict
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from key_accounts.models import Customer, Product
from permissions.scope import resolve_scope
from permissions.selectors import module_enabled
from reporting import engine, selectors
from reporting.api import serializers as s

# The tiles, in order: (metric, label, kind).
TILES = [
    ("customers", _("Customers"), "count"),
    ("new_customers", _("New customers"), "count"),
    ("lost_customers", _("Churned customers"), "count"),
    ("revenue", _("Revenue"), "money"),
    ("arpu", _("ARPU"), "money"),
    ("arpa", _("ARPA"), "money"),
    ("arrears", _("Arrears"), "money"),
]
# The customers tile's breakdown: (metric, the customer list's status value).
STATUSES = [("prospects", Customer.Status.PROSPECT), ("active", Customer.Status.ACTIVE),
            ("abnormal", Customer.Status.ABNORMAL), ("churned", Customer.Status.CHURNED)]
RANKING_COLUMNS = ["customers", "new_customers", "lost_customers", "revenue", "arpu", "arpa", "arrears"]
TREND_COLUMNS = RANKING_COLUMNS + ["subscriptions", "billed_customers"]
PRODUCT_TILES = [
    ("holders", _("Holders"), "count"),
    ("penetration", _("Penetration"), "percent"),
    ("subscriptions", _("Subscriptions"), "count"),
    ("monthly_fee", _("Monthly fees"), "money"),
]
LABELS = {
    **{name: label for name, label, _kind in TILES},
    "prospects": Customer.Status.PROSPECT.label, "active": Customer.Status.ACTIVE.label,
    "abnormal": Customer.Status.ABNORMAL.label, "churned": Customer.Status.CHURNED.label,
    "subscriptions": _("Subscriptions"), "billed_customers": _("Billed customers"),
}
# Query parameters that describe the figures (kept when drilling down); metric and order sort
# the ranking only.
FILTER_PARAMS = ("month_from", "month_to", "grade", "industry", "product", "as_of")
TREND_MONTHS = 12
RISING_IS_WORSE = {"lost_customers", "churned", "abnormal", "arrears"}

PRODUCT_AND_SEGMENTS = _("Product figures are kept per unit and month: they cannot be combined with grade or industry.")


class BadQuery(Exception):
    """The query string does not validate: ``messages`` say why, per parameter."""

    def __init__(self, messages):
        super().__init__(messages)
        self.messages = messages


@dataclass
class Tile:
    name: str
    label: str
    kind: str
    value: object
    previous: object
    link: str | None = None
    parts: list = field(default_factory=list)  # the customers tile's statuses (tiles themselves)

    @cached_property  # the tile's template reads it up to six times
    def change(self):
        if self.value is None or self.previous is None:
            return None
        return self.value - self.previous

    @property
    def tone(self):
        """Green for a change for the better, red for the worse (more churn or arrears is worse)."""
        change = self.change
        if not change:
            return "text-muted"
        better = change < 0 if self.name in RISING_IS_WORSE else change > 0
        return "text-success" if better else "text-danger"

    @cached_property
    def change_percent(self):
        change = self.change
        if change is None or not self.previous:
            return None
        return round(float(change) / float(self.previous) * 100, 1)


@dataclass
class Dashboard:
    unit: object
    filters: selectors.Filters
    previous_filters: selectors.Filters
    trend_filters: selectors.Filters
    params: QueryDict  # the validated query's own parameters (filters, metric, order)
    metric: str
    order: str
    figures: dict
    previous: dict
    tiles: list
    trend: list
    ranking: dict
    path: list
    tops: list
    product: object = None
    product_tiles: list = field(default_factory=list)
    product_trend: list = field(default_factory=list)
    lists_match: bool = False  # the customer list links are shown (see list_link)
    may_export: bool = False
    urls: dict = field(default_factory=dict)  # reversed once per page: see _url


def clean_params(query):
    """``query`` without empty values: the filter form sends every field, "All" as empty."""
    params = QueryDict(mutable=True)
    for name in query:
        values = [value for value in query.getlist(name) if value.strip()]
        if values:
            params.setlist(name, values)
    return params


def _flat(messages):
    if isinstance(messages, dict):  # a list parameter's errors, per position
        return [text for value in messages.values() for text in _flat(value)]
    if isinstance(messages, list):
        return [text for value in messages for text in _flat(value)]
    return [str(messages)]


def parse(query):
    """The validated report query of a page's query string (the API's own rules: reporting.api
    serializers), or BadQuery."""
    params = clean_params(query)
    serializer = s.RankingQuery(data=s.query_data(params))
    if not serializer.is_valid():
        raise BadQuery({name: _flat(messages) for name, messages in serializer.errors.items()})
    data = serializer.validated_data
    data["product"] = value = data.get("product")
    if value:
        products = Product.objects.all()
        data["product"] = (products.filter(pk=int(value)) if value.isdigit() else products.filter(code=value)).first()
        if data["product"] is None:
            raise BadQuery({"product": [str(_("Unknown product."))]})
        if data["filters"].grades or data["filters"].industries:
            raise BadQuery({"product": [str(PRODUCT_AND_SEGMENTS)]})
    kept = QueryDict(mutable=True)
    for name in (*FILTER_PARAMS, "metric", "order"):
        if name in params:
            kept.setlist(name, params.getlist(name))
    return data, kept


def build(*, user, query):
    """The dashboard ``user`` asked for with ``query`` (a QueryDict): Http404 for a unit outside
    their "report.view" scope (or when they see no unit at all), BadQuery for bad parameters."""
    from django.http import Http404

    data, params = parse(query)
    tops = selectors.report_tops(user=user)
    if not tops:
        raise Http404
    unit = selectors.report_unit_get(user=user, pk=data["unit"]) if "unit" in data else tops[0]
    filters = data["filters"]
    if "month_from" in params or "month_to" in params:
        trend_filters = _months(filters, min(filters.first, engine.add_months(filters.last, 1 - TREND_MONTHS)),
                                filters.last)
        trend = selectors.unit_trend(user=user, unit=unit, filters=trend_filters)
    else:
        filters, trend_filters, trend = _latest_billed(user, unit, filters, params)
    length = len(filters.months)
    previous_filters = _months(filters, engine.add_months(filters.first, -length), engine.add_months(filters.first, -1))
    if length == 1:
        # A month's figures are its row of the trend (the same sums of the same stored rows),
        # and the trend holds the month before too: two reads fewer for the usual view.
        figures, previous = _month_of(trend[-1]), _month_of(trend[-2])
    else:
        figures = selectors.unit_figures(user=user, unit=unit, filters=filters)["subtree"]
        previous = selectors.unit_figures(user=user, unit=unit, filters=previous_filters)["subtree"]
    scope = resolve_scope(user)
    board = Dashboard(
        unit=unit, filters=filters, previous_filters=previous_filters, trend_filters=trend_filters, params=params,
        metric=data["metric"], order=data["order"], figures=figures, previous=previous, tiles=[],
        trend=trend,
        ranking=selectors.child_ranking(user=user, unit=unit, filters=filters, metric=data["metric"],
                                        descending=data["order"] == "desc"),
        path=[unit] if unit in tops else selectors.report_path(user=user, unit=unit), tops=tops,
        lists_match=_lists_match(user, scope, unit, filters),
        may_export=scope.allows("report.export", unit.pk),
    )
    board.tiles = _tiles(board)
    for row in board.ranking["children"]:
        row["link"] = dashboard_link(board, row["unit"])
        row["list_link"] = list_link(board, row["unit"])
    if data["product"] is not None:
        board.product = data["product"]
        [now] = selectors.product_figures(user=user, unit=unit, filters=filters, product=board.product)
        [before] = selectors.product_figures(user=user, unit=unit, filters=previous_filters, product=board.product)
        board.product_tiles = [
            Tile(name, label, kind, _shown(kind, now["subtree"][name]), _shown(kind, before["subtree"][name]))
            for name, label, kind in PRODUCT_TILES
        ]
        board.product_trend = selectors.product_trend(user=user, unit=unit, filters=trend_filters,
                                                      product=board.product)
    return board


def _month_of(row):
    return {name: value for name, value in row.items() if name != "month"}


def _latest_billed(user, unit, filters, params):
    """The default period: the current month once it has billing records in the unit's subtree,
    else the month before (a month is billed after it ends, so its revenue would read as zero).
    Reads the trend with one month more, so choosing costs no query; the chosen month goes into
    ``params`` so drill-down links and the export keep it."""
    current = filters.last
    trend = selectors.unit_trend(user=user, unit=unit,
                                 filters=_months(filters, engine.add_months(current, -TREND_MONTHS), current))
    if trend[-1]["billed_customers"] or not trend[-2]["billed_customers"]:
        trend = trend[1:]
    else:
        trend = trend[:-1]
    last = trend[-1]["month"]
    for name in ("month_from", "month_to"):
        params[name] = f"{last:%Y-%m}"
    return (_months(filters, last, last), _months(filters, engine.add_months(last, 1 - TREND_MONTHS), last), trend)


def _months(filters, first, last):
    """``filters`` over other months."""
    return selectors.Filters(first, last, grades=filters.grades, industries=filters.industries, as_of=filters.as_of)


def _shown(kind, value):
    """Penetration is shown in percent (0.1234 -> 12.34)."""
    return value * 100 if kind == "percent" and value is not None else value


def _tiles(board):
    tiles = [Tile(name, label, kind, board.figures[name], board.previous[name]) for name, label, kind in TILES]
    customers = tiles[0]
    customers.link = list_link(board, board.unit)
    for name, status in STATUSES:
        customers.parts.append(Tile(name, LABELS[name], "count", board.figures[name], board.previous[name],
                                    link=list_link(board, board.unit, status=status)))
    return tiles


# --- Links -------------------------------------------------------------------------------------

def dashboard_link(board, unit, **changes):
    """The dashboard of ``unit`` with the same filters and sort (``changes`` replace some)."""
    params = copy.copy(board.params)  # shallow (QueryDict.copy() deep-copies): setting a key replaces its list
    params["unit"] = unit.pk
    for name, value in changes.items():
        params[name] = value
    return f"{_url(board, 'reporting:dashboard')}?{params.urlencode()}"


def _url(board, name):
    """``reverse(name)``, once per dashboard: a page has a link per child unit and column."""
    url = board.urls.get(name)
    if url is None:
        url = board.urls[name] = reverse(name)
    return url


def _lists_match(user, scope, unit, filters):
    """Whether the customer list can show the customers behind the figures: see list_link."""
    return (
        filters.as_of is None
        and filters.last == engine.window()[1]
        and "" not in filters.industries
        and module_enabled(user, "customers")
        and scope.allows("customer.view", unit.pk)
    )


def list_link(board, unit, status=None):
    """The customer list whose total equals ``unit``'s customers figure (or one status's), or None.

    The rule (docs/reporting.md, "Dashboards"): the customers figure of the current month is
    every customer owned by a unit of the subtree today (churned ones included), so it is the
    list filtered by ``unit`` (its whole subtree) and the same grades and industries, and each
    status figure that list narrowed to the status. It holds for the current month only (older
    months count the customers that existed then), for today's tree only (no ``as_of``), and
    for viewers whose "customer.view" scope covers the unit (a scope is made of whole subtrees,
    so they see every customer under it, group members included: each counts at the unit
    serving it, in both). Otherwise no link is offered.
    """
    if not board.lists_match:
        return None
    pairs = [("unit", unit.pk)]
    pairs += [("grade", grade) for grade in board.filters.grades]
    pairs += [("industry", industry) for industry in board.filters.industries]
    if status:
        pairs.append(("status", status))
    return f"{_url(board, 'key_accounts:list')}?{urlencode(pairs)}"
