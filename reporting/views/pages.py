"""The dashboard (one page for every level) and its XLSX export.

The page shows a unit's figures (default: the viewer's top unit) for a period: KPI tiles with
the change against the period before, monthly trend charts, the ranking of its child units
(each a link to the same page for that child) and links to the customer list whose totals
match. Every figure comes from reporting.selectors, trimmed to the viewer's "report.view" scope:
a unit outside it answers 404 like a missing one. Login first, then the "reporting" module
switch (off: 404, as if the page did not exist).
"""
from django.contrib.auth.mixins import LoginRequiredMixin
from django.core.exceptions import PermissionDenied
from django.shortcuts import render
from django.utils import formats, numberformat, translation
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.views import View

from key_accounts.models import Grade, Industry, Product
from permissions.decorators import module_required
from reporting import exporting

from . import _dashboard as d


@method_decorator(module_required("reporting"), name="dispatch")
class _ModulePage(View):
    pass


class ReportPage(LoginRequiredMixin, _ModulePage):
    """Login first (anonymous users go to the login page), then the module switch."""


def _columns(board):
    """The ranking's sortable columns with the link that sorts by each (descending first)."""
    columns = []
    for name in d.RANKING_COLUMNS:
        current = board.metric == name
        order = "asc" if current and board.order == "desc" else "desc"
        columns.append({"name": name, "label": d.LABELS[name], "current": current,
                        "direction": board.order if current else None,
                        "link": d.dashboard_link(board, board.unit, metric=name, order=order)})
    return columns


def chart_data(board):
    """The trend charts' data, for json_script (numbers as floats, months as "YYYY-MM")."""
    def numbers(name, rows=board.trend):
        return [None if row[name] is None else float(row[name]) for row in rows]

    data = {
        "labels": [f"{row['month']:%Y-%m}" for row in board.trend],
        **{name: numbers(name) for name in ("revenue", "arrears", "customers", "new_customers", "lost_customers",
                                            "arpu", "arpa")},
    }
    if board.product is not None:
        data["holders"] = numbers("holders", board.product_trend)
        data["penetration"] = [None if row["penetration"] is None else float(row["penetration"]) * 100
                               for row in board.product_trend]
    return data


# The tables' figures are formatted here, as {{ value }} and |unlocalize would in the template:
# per cell, a template's variable lookups, filters and tags cost more than the page's queries.

def shown(values):
    """Figures as the page shows them, "—" for none: localized as {{ value }} would (numbers:
    django.utils.formats.number_format, with the locale's separators looked up once)."""
    lang = translation.get_language()
    decimal_sep, grouping, thousand_sep = (formats.get_format(name, lang) for name in
                                           ("DECIMAL_SEPARATOR", "NUMBER_GROUPING", "THOUSAND_SEPARATOR"))
    return [
        "—" if value is None else numberformat.format(value, decimal_sep, None, grouping, thousand_sep, use_l10n=True)
        for value in values
    ]


def raw(value):
    """A figure for a data- attribute (not localized, as |unlocalize gives it), "" for none."""
    return "" if value is None else str(value)


def _cells(board, row, list_link=None):
    texts = shown(row[name] for name in d.RANKING_COLUMNS)
    return [{"name": name, "text": text, "raw": raw(row[name]),
             "link": list_link if name == "customers" and row[name] is not None else None}
            for name, text in zip(d.RANKING_COLUMNS, texts)]


def ranking_rows(board):
    return [{"unit": row["unit"], "link": row["link"], "cells": _cells(board, row, row["list_link"])}
            for row in board.ranking["children"]]


class DashboardPage(ReportPage):
    def get(self, request):
        context = {
            "grades": Grade.choices, "industries": Industry.choices, "products": list(Product.objects.order_by("code")),
            "chosen_grades": request.GET.getlist("grade"), "chosen_industries": request.GET.getlist("industry"),
            "chosen_products": {request.GET.get("product")},
        }
        try:
            board = d.build(user=request.user, query=request.GET)
        except d.BadQuery as exc:
            context["errors"] = exc.messages
            return render(request, "reporting/dashboard.html", context, status=400)
        if board.product is not None:
            context["chosen_products"].add(board.product.code)
        context.update({
            "board": board,
            "columns": _columns(board),
            "chart": chart_data(board),
            "trend_columns": [(name, d.LABELS[name]) for name in d.TREND_COLUMNS],
            "trend_rows": [(f"{row['month']:%Y-%m}", shown(row[name] for name in d.TREND_COLUMNS))
                           for row in board.trend],
            "ranking_rows": ranking_rows(board),
            "footer_rows": [
                {"testid": "ranking-own", "label": _("Own customers of this unit"), "total": False,
                 "cells": _cells(board, board.ranking["own"])},
                {"testid": "ranking-total", "label": _("Total"), "total": True,
                 "cells": _cells(board, board.figures, board.tiles[0].link)},
            ],
            "top_links": [(top, d.dashboard_link(board, top)) for top in board.tops] if len(board.tops) > 1 else [],
            "path_links": [(unit, d.dashboard_link(board, unit)) for unit in board.path],
            "export_query": _export_query(board),
        })
        return render(request, "reporting/dashboard.html", context)


def _export_query(board):
    params = board.params.copy()
    params["unit"] = board.unit.pk
    return params.urlencode()


class DashboardExport(ReportPage):
    """The dashboard as an XLSX workbook (tiles, trend and ranking, one sheet each): needs
    "report.export" at the unit (403 otherwise; 404 outside "report.view" like the page)."""

    def get(self, request):
        try:
            board = d.build(user=request.user, query=request.GET)
        except d.BadQuery as exc:
            return render(request, "reporting/dashboard.html", {"errors": exc.messages}, status=400)
        if not board.may_export:
            raise PermissionDenied(_("You may not export these figures."))
        return exporting.xlsx_response(board)
