"""Roll-up summary tables (R3, R20, R22): figures per org unit per month.

Each kind of figure has two tables: ``own`` rows hold a unit's own customers only (the stored
base, computed from the archive), ``subtree`` rows the unit and everything under it in the
current tree (own + the children's subtree rows). Group rows (national key accounts) are kept
per group and serving unit. Every measure is additive, so any filter is a sum of rows; ratios
(ARPU, ARPA, penetration) are computed when read. Definitions: docs/reporting.md.

Units, groups and products are plain ids, not foreign keys: the tables are derived data that
the engine rebuilds wholesale (reporting/engine.py swaps them), and a foreign key to OrgUnit would
make every unit "own" summary rows in the eyes of merges and closes (org_hierarchy.ownership).
"""
from django.db import models


class Measures(models.Model):
    """Customer, subscription and billing measures of one cell (see docs/reporting.md)."""

    # Stock at the month's end: customers created by then, in the status they had then.
    customers = models.IntegerField(default=0)
    prospects = models.IntegerField(default=0)
    active = models.IntegerField(default=0)
    abnormal = models.IntegerField(default=0)
    churned = models.IntegerField(default=0)
    enterprises = models.IntegerField(default=0)
    governments = models.IntegerField(default=0)
    institutions = models.IntegerField(default=0)
    individuals = models.IntegerField(default=0)
    national = models.IntegerField(default=0)
    subscriptions = models.IntegerField(default=0)  # subscription rows active in the month
    # Flows within the month.
    new_customers = models.IntegerField(default=0)
    lost_customers = models.IntegerField(default=0)
    billed_customers = models.IntegerField(default=0)
    revenue = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    arrears = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    discount = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class UnitMonth(Measures):
    """A unit's own customers, per month, grade and industry."""

    pk = models.CompositePrimaryKey("unit_id", "month", "grade", "industry")
    unit_id = models.BigIntegerField()
    month = models.DateField()
    grade = models.CharField(max_length=10)
    industry = models.CharField(max_length=1)

    class Meta:
        db_table = "reporting_unit_month"


class SubtreeMonth(Measures):
    """A unit and everything under it (current tree), per month, grade and industry."""

    pk = models.CompositePrimaryKey("unit_id", "month", "grade", "industry")
    unit_id = models.BigIntegerField()
    month = models.DateField()
    grade = models.CharField(max_length=10)
    industry = models.CharField(max_length=1)

    class Meta:
        db_table = "reporting_subtree_month"


class ProductFigures(models.Model):
    holders = models.IntegerField(default=0)  # customers with an active subscription of the product
    subscriptions = models.IntegerField(default=0)
    quantity = models.BigIntegerField(default=0)
    monthly_fee = models.DecimalField(max_digits=18, decimal_places=2, default=0)

    class Meta:
        abstract = True


class UnitProductMonth(ProductFigures):
    pk = models.CompositePrimaryKey("unit_id", "month", "product_id")
    unit_id = models.BigIntegerField()
    month = models.DateField()
    product_id = models.BigIntegerField()

    class Meta:
        db_table = "reporting_unit_product_month"


class SubtreeProductMonth(ProductFigures):
    pk = models.CompositePrimaryKey("unit_id", "month", "product_id")
    unit_id = models.BigIntegerField()
    month = models.DateField()
    product_id = models.BigIntegerField()

    class Meta:
        db_table = "reporting_subtree_product_month"


class GroupMonth(Measures):
    """A group customer's figures at one serving unit: the group row itself (at its own unit) and
    its members (each at the unit serving it)."""

    pk = models.CompositePrimaryKey("unit_id", "month", "group_id")
    unit_id = models.BigIntegerField()
    month = models.DateField()
    group_id = models.BigIntegerField()

    class Meta:
        db_table = "reporting_group_month"
        indexes = [models.Index(fields=["group_id", "month"], name="reporting_group_month_group")]
