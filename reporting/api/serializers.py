"""Query parameters and response shapes of the reporting API (definitions: docs/reporting.md)."""
import datetime
import decimal
import re

from django.utils.translation import gettext as _, gettext_lazy
from rest_framework import serializers

from key_accounts.models import Customer, Grade, Industry, Product
from org_hierarchy.models import OrgUnit

from reporting import engine, selectors

MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
MAX_MONTHS = 36
LIST_PARAMS = ("grade", "industry")


class MonthField(serializers.CharField):
    """A month written ``YYYY-MM``; its value is the first day of the month."""

    def to_internal_value(self, data):
        match = MONTH.match(str(data).strip())
        if not match:
            raise serializers.ValidationError(_("Write a month as YYYY-MM."))
        return datetime.date(int(match.group(1)), int(match.group(2)), 1)

    def to_representation(self, value):
        return f"{value:%Y-%m}"


def query_data(query_params):
    """A plain dict of the query string; grade and industry may repeat or be comma separated."""
    data = {key: query_params.get(key) for key in query_params if key not in LIST_PARAMS}
    for key in LIST_PARAMS:
        values = [part.strip() for value in query_params.getlist(key) for part in value.split(",")]
        if values:
            data[key] = values
    return data


class ReportQuery(serializers.Serializer):
    unit = serializers.IntegerField(required=False, help_text=gettext_lazy("Org unit id; default: the highest unit you see."))
    month_from = MonthField(required=False, help_text=gettext_lazy("First month, YYYY-MM."))
    month_to = MonthField(required=False, help_text=gettext_lazy("Last month, YYYY-MM; default: the current month."))
    grade = serializers.ListField(child=serializers.ChoiceField(Grade.choices), required=False)
    industry = serializers.ListField(
        child=serializers.ChoiceField([("", "-")] + list(Industry.choices), allow_blank=True), required=False
    )
    product = serializers.CharField(required=False, help_text=gettext_lazy("Product id or code."))
    as_of = serializers.DateField(
        required=False, help_text=gettext_lazy("Add up subtrees as the org tree was at the end of this day.")
    )

    default_months = 1  # months in the period when month_from is not given

    def validate(self, data):
        last = data.get("month_to") or engine.window()[1]
        first = data.get("month_from") or engine.add_months(last, 1 - self.default_months)
        if first > last:
            raise serializers.ValidationError({"month_from": [_("The first month is after the last one.")]})
        if len(engine.months_between(first, last)) > MAX_MONTHS:
            raise serializers.ValidationError({"month_from": [_("At most %(n)d months at a time.") % {"n": MAX_MONTHS}]})
        data["filters"] = selectors.Filters(
            first, last, grades=tuple(data.get("grade", ())), industries=tuple(data.get("industry", ())),
            as_of=data.get("as_of"),
        )
        return data


class FiguresQuery(ReportQuery):
    by = serializers.ChoiceField(["grade", "industry"], required=False,
                                 help_text=gettext_lazy("Also break the subtree figures down by grade or industry."))


class TrendQuery(ReportQuery):
    default_months = 12
    part = serializers.ChoiceField(["subtree", "own"], default="subtree")


RANKING_METRICS = selectors.METRICS


class RankingQuery(ReportQuery):
    metric = serializers.ChoiceField(RANKING_METRICS, default="revenue")
    order = serializers.ChoiceField(["desc", "asc"], default="desc")


class GroupQuery(ReportQuery):
    group = serializers.IntegerField(required=False, help_text=gettext_lazy("One group customer: split by child unit."))


# --- Output ----------------------------------------------------------------------------------

class ReportLevel(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()


class ReportUnit(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    level = ReportLevel()
    parent = serializers.IntegerField(source="parent_id", allow_null=True)


def money():
    return serializers.DecimalField(max_digits=20, decimal_places=2, allow_null=True)


class Metrics(serializers.Serializer):
    customers = serializers.IntegerField()
    prospects = serializers.IntegerField()
    active = serializers.IntegerField()
    abnormal = serializers.IntegerField()
    churned = serializers.IntegerField()
    enterprises = serializers.IntegerField()
    governments = serializers.IntegerField()
    institutions = serializers.IntegerField()
    individuals = serializers.IntegerField()
    national = serializers.IntegerField()
    subscriptions = serializers.IntegerField()
    billed_customers = serializers.IntegerField()
    new_customers = serializers.IntegerField()
    lost_customers = serializers.IntegerField()
    revenue = money()
    arrears = money()
    discount = money()
    arpu = money()
    arpa = money()


class ProductRef(serializers.Serializer):
    id = serializers.IntegerField()
    code = serializers.CharField()
    name = serializers.CharField()
    category = serializers.CharField()


class ProductMetrics(serializers.Serializer):
    holders = serializers.IntegerField()
    subscriptions = serializers.IntegerField()
    quantity = serializers.IntegerField()
    monthly_fee = money()
    customers = serializers.IntegerField(help_text=gettext_lazy("Customers not churned: the penetration base."))
    penetration = serializers.DecimalField(max_digits=7, decimal_places=4, allow_null=True)


class ProductFigures(serializers.Serializer):
    product = ProductRef()
    own = ProductMetrics()
    subtree = ProductMetrics()


class Period(serializers.Serializer):
    month_from = MonthField()
    month_to = MonthField()
    as_of = serializers.DateField(allow_null=True)
    grade = serializers.ListField(child=serializers.CharField())
    industry = serializers.ListField(child=serializers.CharField())


class BreakdownRow(Metrics):
    grade = serializers.CharField(required=False)
    industry = serializers.CharField(required=False)


class FiguresResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    own = Metrics()
    subtree = Metrics()
    breakdown = BreakdownRow(many=True, required=False)
    product = ProductFigures(required=False)


class MonthMetrics(Metrics):
    month = MonthField()


class ProductMonth(ProductMetrics):
    month = MonthField()


class TrendResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    part = serializers.CharField()
    months = MonthMetrics(many=True)
    product = ProductRef(required=False)
    product_months = ProductMonth(many=True, required=False)


class RankedUnit(Metrics):
    unit = ReportUnit()


class RankingResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    metric = serializers.CharField()
    own = Metrics()
    children = RankedUnit(many=True)


class ProductsResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    products = ProductFigures(many=True)


class GroupRef(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    national = serializers.BooleanField(source="is_national_key_account")
    unit = serializers.IntegerField(source="org_unit_id")


class GroupRow(Metrics):
    group = GroupRef()


class GroupsResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    groups = GroupRow(many=True)


class GroupBreakdownResponse(serializers.Serializer):
    unit = ReportUnit()
    period = Period()
    group = GroupRef()
    total = Metrics()
    own = Metrics()
    children = RankedUnit(many=True)


# --- Rendering ---------------------------------------------------------------------------------
# The views render plain dicts: instantiating the nested serializers above for every response
# (they deep-copy their fields) cost more than the report's queries. The serializers describe the
# same shapes for the OpenAPI schema; tests/reporting/test_api.py checks the two agree.

_PLAIN = (int, str, bool, float)


def render(value):
    """JSON-ready: Decimals as strings (DRF's style), months as YYYY-MM, dates as ISO, units,
    products and group customers as the refs above."""
    if value is None or type(value) in _PLAIN:  # most values of a report: no further checks
        return value
    if isinstance(value, dict):
        return {key: render_month(item) if key in ("month", "month_from", "month_to") else render(item)
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [render(item) for item in value]
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.date):
        return value.isoformat()
    if isinstance(value, OrgUnit):
        return {"id": value.pk, "code": value.code, "name": value.name,
                "level": {"code": value.level.code, "name": value.level.name}, "parent": value.parent_id}
    if isinstance(value, Product):
        return {"id": value.pk, "code": value.code, "name": value.name, "category": value.category}
    if isinstance(value, Customer):
        return {"id": value.pk, "name": value.name, "national": value.is_national_key_account, "unit": value.org_unit_id}
    return value


def render_month(value):
    return f"{value:%Y-%m}" if isinstance(value, datetime.date) else value
