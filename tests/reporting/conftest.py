"""Roll-up fixtures in alpha's schema (rolled back): the key-account tree, people and archive
(HQ -> P1 (C11, C12), P2 (C21); a group owned by P2 with members in C11 and C21), billing and
subscriptions, and helpers to run what a commit would run."""
import datetime
from decimal import Decimal

import pytest
from django.db import connection

from kam import history
from key_accounts import services as ka
from key_accounts.models import BillingAccount, BillingRecord, Product
from reporting import dirty, engine, services
from reporting.models import GroupMonth, SubtreeMonth, SubtreeProductMonth, UnitMonth, UnitProductMonth
from tests.key_accounts.conftest import archive, new_customer, people, product, tree  # noqa: F401  (fixtures)

TABLES = (UnitMonth, SubtreeMonth, UnitProductMonth, SubtreeProductMonth, GroupMonth)


def this_month(offset=0):
    return engine.add_months(engine.window()[1], offset)


def bill(customer, month, revenue, arrears=0, discount=0, account=None):
    """A billing record written as a billing feed would (no service exists): through the ORM,
    inside a history context. One billing account per customer unless ``account`` is given."""
    if account is None:
        account = BillingAccount.objects.filter(customer=customer).first() or ka.billing_account_save(
            actor="pytest", customer=customer, data={"number": f"BA-{customer.pk}"}
        )
    with history.acting("pytest", via="billing"):
        return BillingRecord.objects.update_or_create(
            account=account, month=month,
            defaults={"customer": customer, "revenue": Decimal(revenue), "arrears": Decimal(arrears),
                      "discount": Decimal(discount)},
        )[0]


def subscribe(customer, product, start, end=None, quantity=1, fee="10.00"):
    return ka.subscription_save(actor="pytest", customer=customer, data={
        "product": product, "start_date": start, "end_date": end, "quantity": quantity, "monthly_fee": Decimal(fee),
    })


def snapshot():
    """Every summary row of the tenant, per table, in a comparable form."""
    return {model.__name__: sorted(model.objects.values_list()) for model in TABLES}


@pytest.fixture
def clean_dirty(in_alpha):
    """No dirty keys left over from other tests in alpha's set."""
    dirty.take(connection.schema_name)
    yield
    dirty.take(connection.schema_name)


@pytest.fixture
def committing(django_capture_on_commit_callbacks, clean_dirty):
    """``with committing(): ...`` runs the block's on-commit hooks (as its commit would), then
    drains the dirty keys synchronously, as the rollup_refresh task does."""
    from contextlib import contextmanager

    @contextmanager
    def run():
        with django_capture_on_commit_callbacks(execute=True):
            yield
        services.refresh_dirty()

    return run


@pytest.fixture
def billed(archive, product):
    """The archive with three months of billing, subscriptions and a churn."""
    months = [this_month(-2), this_month(-1), this_month()]
    for index, customer in enumerate(archive.all()):
        for month in months:
            bill(customer, month, 100 + 10 * index, arrears=index, discount=1)
    second = Product.objects.create(code="cloud-1", name="Cloud", category="cloud")
    subscribe(archive.c11, product, months[0], quantity=2)
    subscribe(archive.c11, second, months[1])
    subscribe(archive.member21, product, months[0], end=months[1] + datetime.timedelta(days=3))
    subscribe(archive.group, second, months[0], fee="99.50")
    ka.customer_update(actor="pytest", customer=archive.c12, data={"status": "churned"})
    return months


@pytest.fixture
def rolled(billed, people):
    """``billed`` with the summary tables recomputed (the people are made first)."""
    services.recompute()
    return billed
