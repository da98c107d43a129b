"""The dashboard pages (/reports/ and /reports/export/): scope, figures equal to the selectors,
drill-down and customer-list links whose totals match, the XLSX export, and a pinned query
count that does not grow with the number of child units."""
import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from org_hierarchy.models import OrgUnit
from permissions import services as perm_services
from reporting import selectors, services

from .conftest import this_month
from tests.support.people import client_for, make_user

DASHBOARD = "/reports/"
EXPORT = "/reports/export/"


def page(client, params=None):
    response = client.get(DASHBOARD, params or {})
    assert response.status_code == 200, response.content[:2000]
    return response.content.decode()


def tile(html, name):
    match = re.search(rf'data-testid="tile-{name}" data-value="([^"]*)"', html)
    assert match, f"no tile {name}"
    return match.group(1)


def ranking(html):
    """``{unit id: {metric: value}}`` of the ranking rows."""
    rows = {}
    for unit, body in re.findall(r'<tr data-unit="(\d+)">(.*?)</tr>', html, re.S):
        rows[int(unit)] = dict(re.findall(r'data-metric="(\w+)" data-value="([^"]*)"', body))
    return rows


def without_tokens(response):
    """The body without what differs between any two requests: the CSRF token and the address
    the language form returns to."""
    return re.sub(rb'name="(csrfmiddlewaretoken|next)" (type="hidden" )?value="[^"]*"', b"", response.content)


def month_param(offset=0):
    return f"{this_month(offset):%Y-%m}"


# --- Scope -----------------------------------------------------------------------------------

@pytest.mark.parametrize("who, default_unit", [("hq", "hq"), ("province", "p1"), ("city", "c11")])
def test_each_level_opens_on_its_own_top_unit(in_alpha, rolled, people, tree, who, default_unit):
    html = page(client_for(in_alpha, getattr(people, who)))
    assert f'data-testid="dashboard-unit" data-unit="{getattr(tree, default_unit).pk}"' in html


@pytest.mark.parametrize("url", [DASHBOARD, EXPORT])
def test_a_province_user_cannot_open_another_provinces_dashboard_or_export(in_alpha, rolled, people, tree, url):
    client = client_for(in_alpha, people.province)
    missing = client.get(url, {"unit": 999999})
    assert missing.status_code == 404
    for unit in (tree.hq, tree.p2, tree.c21):
        response = client.get(url, {"unit": unit.pk})
        assert response.status_code == 404, unit.code
        assert without_tokens(response) == without_tokens(missing)
    assert client.get(url, {"unit": tree.c12.pk}).status_code == 200


def test_without_export_permission_the_export_is_refused(in_alpha, rolled, people):
    client = client_for(in_alpha, people.city)  # an account manager views reports but may not export them
    assert 'data-testid="dashboard-export"' not in page(client)
    assert client.get(EXPORT).status_code == 403
    assert 'data-testid="dashboard-export"' in page(client_for(in_alpha, people.province))


def test_the_menu_shows_the_dashboard_only_with_the_module_and_permission(in_alpha, rolled, people, tree):
    assert 'data-testid="reports-menu"' in client_for(in_alpha, people.city).get("/").content.decode()
    perm_services.module_set(actor="system", module="reporting", level=tree.levels["city"], enabled=False)
    client = client_for(in_alpha, people.city)
    assert 'data-testid="reports-menu"' not in client.get("/").content.decode()
    assert client.get(DASHBOARD).status_code == 404
    nobody = make_user("nobody")
    assert client_for(in_alpha, nobody).get(DASHBOARD).status_code == 404


def test_anonymous_visitors_go_to_the_login_page(in_alpha):
    response = in_alpha.client().get(DASHBOARD)
    assert response.status_code == 302 and response["Location"].startswith("/login/")


# --- Figures -------------------------------------------------------------------------------------

def test_the_tiles_and_ranking_equal_the_selectors(in_alpha, rolled, people, tree):
    user = people.hq
    html = page(client_for(in_alpha, user), {"unit": tree.hq.pk})
    filters = selectors.Filters(this_month(), this_month())
    before = selectors.Filters(this_month(-1), this_month(-1))
    figures = selectors.unit_figures(user=user, unit=tree.hq, filters=filters)["subtree"]
    previous = selectors.unit_figures(user=user, unit=tree.hq, filters=before)["subtree"]
    for name in ("customers", "new_customers", "lost_customers", "revenue", "arpu", "arpa", "arrears",
                 "prospects", "active", "abnormal", "churned"):
        assert tile(html, name) == str(figures[name]), name
    assert figures["customers"] == 6 and figures["churned"] == 1
    assert Decimal(tile(html, "revenue")) - previous["revenue"] == 0  # billed alike every month
    rows = ranking(html)
    expected = selectors.child_ranking(user=user, unit=tree.hq, filters=filters)["children"]
    assert list(rows) == [row["unit"].pk for row in expected]  # by revenue, highest first
    for row in expected:
        assert rows[row["unit"].pk]["revenue"] == str(row["revenue"])
        assert rows[row["unit"].pk]["customers"] == str(row["customers"])
    assert set(rows) == {tree.p1.pk, tree.p2.pk}


def test_a_childs_row_equals_its_own_dashboard_at_every_step(in_alpha, rolled, people, tree):
    client = client_for(in_alpha, people.hq)
    for parent in (tree.hq, tree.p1, tree.p2):
        rows = ranking(page(client, {"unit": parent.pk}))
        for child_id, values in rows.items():
            child = page(client, {"unit": child_id})
            for name, value in values.items():
                assert tile(child, name) == value, (parent.code, child_id, name)


@pytest.mark.parametrize("who, units", [
    ("province", ["p1", "c11", "c12"]),
    # P2 owns the group, whose members are served by C11 (another province) and C21: each counts
    # where it is served, in the figures and in the list alike.
    ("hq", ["hq", "p1", "p2", "c11", "c21"]),
])
def test_the_customer_list_total_equals_the_customers_tile(in_alpha, rolled, people, tree, archive, who, units):
    client = client_for(in_alpha, getattr(people, who))
    for unit in [getattr(tree, name) for name in units]:
        html = page(client, {"unit": unit.pk})
        links = re.findall(r'data-testid="tile-customers".*?href="([^"]+)" data-testid="customer-list-link"', html, re.S)
        assert links, unit.code
        listing = client.get(links[0].replace("&amp;", "&")).content.decode()
        total = re.search(r'data-testid="customer-count">(\d+) customer', listing).group(1)
        assert total == tile(html, "customers"), unit.code
    if who != "province":
        return
    # Each status figure links to the list narrowed to that status.
    html = page(client, {"unit": tree.p1.pk})
    churned = re.search(r'data-testid="tile-churned" data-value="(\d+)">.*?href="([^"]+)"', html, re.S)
    assert churned.group(1) == "1"
    listing = client.get(churned.group(2).replace("&amp;", "&")).content.decode()
    assert re.search(r'data-testid="customer-count">1 customer', listing)


def test_no_customer_list_link_for_past_months(in_alpha, rolled, people):
    html = page(client_for(in_alpha, people.province), {"month_to": month_param(-1)})
    assert 'data-testid="customer-list-link"' not in html


def test_no_customer_list_link_without_customer_view_or_with_an_as_of_tree(in_alpha, rolled, people, tree):
    from permissions.models import Membership, Role

    role = Role.objects.create(code="report-reader", name="Report reader", permissions=["report.view"])
    reader = make_user("reader")
    Membership.objects.create(user=reader, unit=tree.p1, role=role)
    html = page(client_for(in_alpha, reader))
    assert tile(html, "customers") == "3" and 'data-testid="customer-list-link"' not in html
    html = page(client_for(in_alpha, people.province), {"as_of": "2020-01-01"})
    assert 'data-testid="customer-list-link"' not in html


def test_filters_and_the_previous_period(in_alpha, rolled, people, tree, product):
    client = client_for(in_alpha, people.hq)
    html = page(client, {"month_from": month_param(-2), "month_to": month_param()})
    whole = selectors.unit_figures(user=people.hq, unit=tree.hq,
                                   filters=selectors.Filters(this_month(-2), this_month()))["subtree"]
    assert tile(html, "revenue") == str(whole["revenue"])
    assert tile(page(client, {"grade": "B"}), "customers") == "0"
    with_product = page(client, {"product": product.code})
    assert tile(with_product, "holders") == "1"
    bad = client.get(DASHBOARD, {"product": product.code, "grade": "A"})
    assert bad.status_code == 400 and 'data-testid="dashboard-errors"' in bad.content.decode()
    assert client.get(DASHBOARD, {"month_to": "2025-13"}).status_code == 400


def test_the_trend_chart_data_covers_twelve_months(in_alpha, rolled, people):
    import json

    html = page(client_for(in_alpha, people.hq))
    data = json.loads(re.search(r'<script id="dashboard-chart-data" type="application/json">(.*?)</script>', html, re.S).group(1))
    assert len(data["labels"]) == 12 and data["labels"][-1] == month_param()
    assert data["revenue"][-3:] == [data["revenue"][-1]] * 3 and data["revenue"][0] == 0
    assert "/static/vendor/chart.js/chart.umd.min.js" in html  # served by us, no CDN
    assert "cdn" not in html.lower()


def test_breadcrumbs_run_from_the_viewers_top_unit(in_alpha, rolled, people, tree):
    html = page(client_for(in_alpha, people.province), {"unit": tree.c11.pk})
    crumbs = re.search(r'data-testid="breadcrumbs">(.*?)</ol>', html, re.S).group(1)
    assert re.findall(r'data-unit="(\d+)"', crumbs) == [str(tree.p1.pk), str(tree.c11.pk)]
    html = page(client_for(in_alpha, people.hq), {"unit": tree.c11.pk})
    crumbs = re.search(r'data-testid="breadcrumbs">(.*?)</ol>', html, re.S).group(1)
    assert re.findall(r'data-unit="(\d+)"', crumbs) == [str(tree.hq.pk), str(tree.p1.pk), str(tree.c11.pk)]


# --- Export --------------------------------------------------------------------------------------

def test_the_export_holds_the_tiles_trend_and_ranking_shown(in_alpha, rolled, people, tree):
    client = client_for(in_alpha, people.province)
    html = page(client, {"unit": tree.p1.pk})
    response = client.get(EXPORT, {"unit": tree.p1.pk})
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/vnd.openxmlformats")
    book = load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Figures", "Trend", "Ranking"]
    figures = {row[0]: row[1:] for row in book["Figures"].iter_rows(values_only=True) if row and row[0]}
    assert str(figures["Customers"][0]) == tile(html, "customers")
    assert Decimal(str(figures["Revenue"][0])) == Decimal(tile(html, "revenue"))
    trend = list(book["Trend"].iter_rows(values_only=True))
    assert len(trend) == 1 + 12 and trend[-1][0] == month_param()
    ranking_rows = list(book["Ranking"].iter_rows(values_only=True))
    codes = [row[0] for row in ranking_rows[1:]]
    assert codes[:2] == sorted(["C11", "C12"], key=lambda code: -Decimal(ranking(html)[OrgUnit.objects.get(code=code).pk]["revenue"]))
    assert "C21" not in codes and "P2" not in codes and "HQ" not in codes  # scope-trimmed
    total = ranking_rows[-1]
    assert str(total[2]) == tile(html, "customers")


# --- Cost ----------------------------------------------------------------------------------------

def dashboard_queries(client, params=None):
    """The SQL of one dashboard request (the log cleared first: a full log would capture nothing)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    connection.queries_log.clear()
    with CaptureQueriesContext(connection) as captured:
        html = page(client, params)
    return html, [query["sql"] for query in captured.captured_queries]


# The dashboard's own reads for a month: the products of the filter form; the viewer's top units;
# the trend (the month's figures and the month before are two of its rows); the children (with
# their levels) and their sums (one query for all). A unit below the top adds two reads (the unit and its
# breadcrumbs), a longer period two (its figures and those of the period before). The rest (session, user,
# tenant) is the middleware's, the same for every page.
OWN_READS = 5


def own_reads(queries):
    return [sql for sql in queries if re.search(r'reporting_|"org_hierarchy_orgunit"|"key_accounts_product"', sql)]


def test_the_dashboard_query_count_does_not_grow_with_child_units(in_alpha, rolled, people, tree):
    from permissions.scope import _pending

    _pending().clear()  # as after the fixtures' commit: scopes come from the cache
    client = client_for(in_alpha, people.hq)
    page(client)  # the scope is cached from here on
    html, before = dashboard_queries(client)
    assert len(ranking(html)) == 2
    assert len(own_reads(before)) == OWN_READS, own_reads(before)
    for index in range(5):
        OrgUnit.objects.add_child(tree.hq, {"code": f"PX{index}", "name": f"PX{index}", "level": tree.levels["province"],
                                            "parent": tree.hq})
    services.recompute()
    _pending().clear()
    page(client)
    html, after = dashboard_queries(client)
    assert len(ranking(html)) == 7
    assert len(after) == len(before), after
    assert len(own_reads(after)) == OWN_READS
    assert len(own_reads(dashboard_queries(client, {"unit": tree.p1.pk})[1])) == OWN_READS + 2
    period = {"month_from": month_param(-2), "month_to": month_param()}
    assert len(own_reads(dashboard_queries(client, period)[1])) == OWN_READS + 2


@pytest.mark.parametrize("language", ["zh-hans", "en"])
@pytest.mark.parametrize("grouping", [False, True])
def test_table_figures_are_formatted_as_the_template_would(language, grouping, settings):
    """The tables' cells are formatted in Python (reporting/views/pages.py): the same text as
    {{ value|default_if_none:"—" }} and the same data-value as |unlocalize."""
    from django.template import Context, Template
    from django.utils import translation

    from reporting.views.pages import raw, shown

    settings.USE_THOUSAND_SEPARATOR = grouping
    values = [0, 7, 1234567, -25, Decimal("-1234567.50"), Decimal("0.05"), Decimal("12.00"), None]
    template = Template("{% load l10n %}{% for v in values %}{{ v|default_if_none:'—' }}|"
                        "{{ v|default_if_none:''|unlocalize }};{% endfor %}")
    with translation.override(language):
        expected = template.render(Context({"values": values}))
        assert "".join(f"{text}|{raw(value)};" for text, value in zip(shown(values), values)) == expected
    if grouping and language == "en":
        assert "1,234,567" in expected  # the separators are in play


def test_without_a_period_the_latest_billed_month_is_shown(in_alpha, rolled, people, tree):
    """A month is billed after it ends: while the current month has no bill in the unit's
    subtree, the dashboard opens on the month before, and its drill-down links keep that month."""
    from key_accounts.models import BillingRecord

    client = client_for(in_alpha, people.hq)
    assert f'id="id_month_to" name="month_to" value="{month_param()}"' in page(client)  # billed: this month
    BillingRecord.objects.filter(month=this_month()).delete()
    services.recompute()
    html = page(client)
    assert f'id="id_month_to" name="month_to" value="{month_param(-1)}"' in html
    assert tile(html, "revenue") == tile(page(client, {"month_to": month_param(-1)}), "revenue") != "0.00"
    assert f"month_to={month_param(-1)}" in re.search(rf'href="[^"]*unit={tree.p1.pk}[^"]*"', html).group(0)
