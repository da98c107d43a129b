"""The reporting API: roll-up figures per unit and period, trends, child rankings, products and
group customers, each filterable by unit, period, grade, industry and product, and as of a date.

Thin views: parse the query, call one selector of reporting.selectors (which trims every figure
to the caller's "report.view" scope: a unit outside it answers 404), serialise. Reading needs
"report.view" somewhere and the reporting module switched on.
"""
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _, gettext_lazy
from drf_spectacular.utils import extend_schema
from rest_framework.response import Response
from rest_framework.views import APIView

from key_accounts.models import Product
from permissions.api_permissions import ScopedPermission
from reporting import selectors

from . import serializers as s


class ReportView(APIView):
    permission_classes = [ScopedPermission]
    resource = "report"
    module = "reporting"
    query_class = s.ReportQuery

    def query(self):
        serializer = self.query_class(data=s.query_data(self.request.query_params))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = self.request.user
        data["unit"] = (
            selectors.report_unit_get(user=user, pk=data["unit"]) if "unit" in data else selectors.report_root(user=user)
        )
        data["product"] = self._product(data.get("product"))
        return data

    def _product(self, value):
        if value is None:
            return None
        products = Product.objects.all()
        found = products.filter(pk=int(value)).first() if value.isdigit() else products.filter(code=value).first()
        if found is None:
            raise ValidationError({"product": [_("Unknown product.")]})
        return found

    @staticmethod
    def no_segments(data, why):
        filters = data["filters"]
        if filters.grades or filters.industries:
            raise ValidationError({"product": [why]})

    @staticmethod
    def period(data):
        filters = data["filters"]
        return {"month_from": filters.first, "month_to": filters.last, "as_of": filters.as_of,
                "grade": list(filters.grades), "industry": list(filters.industries)}


PRODUCT_AND_SEGMENTS = gettext_lazy(
    "Product figures are kept per unit and month: they cannot be combined with grade or industry."
)


class FiguresView(ReportView):
    """A unit's figures over a period: its own customers and its whole subtree."""

    query_class = s.FiguresQuery

    @extend_schema(parameters=[s.FiguresQuery], responses=s.FiguresResponse)
    def get(self, request):
        data = self.query()
        unit, filters = data["unit"], data["filters"]
        body = {"unit": unit, "period": self.period(data),
                **selectors.unit_figures(user=request.user, unit=unit, filters=filters, by=data.get("by"))}
        if data["product"] is not None:
            self.no_segments(data, PRODUCT_AND_SEGMENTS)
            [body["product"]] = selectors.product_figures(user=request.user, unit=unit, filters=filters,
                                                          product=data["product"])
        return Response(s.render(body))


class TrendView(ReportView):
    """Month by month figures of a unit's subtree (or own customers), 12 months by default."""

    query_class = s.TrendQuery

    @extend_schema(parameters=[s.TrendQuery], responses=s.TrendResponse)
    def get(self, request):
        data = self.query()
        unit, filters, part = data["unit"], data["filters"], data["part"]
        body = {"unit": unit, "period": self.period(data), "part": part,
                "months": selectors.unit_trend(user=request.user, unit=unit, filters=filters, part=part)}
        if data["product"] is not None:
            self.no_segments(data, PRODUCT_AND_SEGMENTS)
            body["product"] = data["product"]
            body["product_months"] = selectors.product_trend(user=request.user, unit=unit, filters=filters,
                                                             product=data["product"], part=part)
        return Response(s.render(body))


class RankingView(ReportView):
    """The child units of a unit ranked by a metric, with the unit's own figures: drill-down."""

    query_class = s.RankingQuery

    @extend_schema(parameters=[s.RankingQuery], responses=s.RankingResponse)
    def get(self, request):
        data = self.query()
        if data["product"] is not None:
            raise ValidationError({"product": [_("Rank by product on the products report.")]})
        ranking = selectors.child_ranking(user=request.user, unit=data["unit"], filters=data["filters"],
                                          metric=data["metric"], descending=data["order"] == "desc")
        return Response(s.render(
            {"unit": data["unit"], "period": self.period(data), "metric": data["metric"], **ranking}
        ))


class ProductsView(ReportView):
    """Product penetration: every product (or one) for a unit's own customers and its subtree."""

    @extend_schema(parameters=[s.ReportQuery], responses=s.ProductsResponse)
    def get(self, request):
        data = self.query()
        self.no_segments(data, PRODUCT_AND_SEGMENTS)
        products = selectors.product_figures(user=request.user, unit=data["unit"], filters=data["filters"],
                                             product=data["product"])
        return Response(s.render({"unit": data["unit"], "period": self.period(data), "products": products}))


class GroupsView(ReportView):
    """Group customers (national key accounts) under a unit: each group's members counted at the
    units serving them, plus the group row; with ``group``, that group split by child unit."""

    query_class = s.GroupQuery

    @extend_schema(parameters=[s.GroupQuery], responses=s.GroupsResponse)
    def get(self, request):
        data = self.query()
        filters = data["filters"]
        if filters.grades or filters.industries or filters.as_of or data["product"] is not None:
            raise ValidationError({"group": [_("Group figures are filtered by unit and period only.")]})
        unit, period = data["unit"], self.period(data)
        if "group" in data:
            breakdown = selectors.group_breakdown(user=request.user, unit=unit, group_id=data["group"], filters=filters)
            return Response(s.render({"unit": unit, "period": period, **breakdown}))
        groups = selectors.group_figures(user=request.user, unit=unit, filters=filters)
        return Response(s.render({"unit": unit, "period": period, "groups": groups}))
