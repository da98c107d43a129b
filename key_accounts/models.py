"""The key-account archive (R3, R6–R10, R24): customers and what hangs off them.

Every customer is owned by one org unit (``org_unit``) and is visible through the permission
selectors to the scopes covering that unit. A group customer (``is_group``) is the parent of
member customers (``group``) served by units anywhere in the tree: whoever may view the group
may view its members (see permissions.registry ``group_field``).

History (R9) is kept by django-pghistory triggers: every insert, update and delete of the
tracked models writes a snapshot row with the context (actor, acting unit, channel) that the
service set. Monthly billing records keep updates and deletes only: an inserted billing row is
itself the record of that write (with its load batch), and duplicating 12 rows per account per
year would double the biggest table.
"""
import pghistory
from django.conf import settings
from django.contrib.postgres.indexes import GinIndex, OpClass
from django.db import connection, models
from django.db.models.functions import Upper
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from guardian.models import UserObjectPermissionBase

from org_hierarchy.models import OrgUnit

from .validators import validate_credit_code

def trackers():
    """Fresh tracker instances: pghistory binds each one to the model it tracks."""
    return pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()


class Industry(models.TextChoices):
    """Sections of GB/T 4754-2017, the national industry classification."""

    A = "A", _("Agriculture, forestry, animal husbandry and fishery")
    B = "B", _("Mining")
    C = "C", _("Manufacturing")
    D = "D", _("Electricity, heat, gas and water")
    E = "E", _("Construction")
    F = "F", _("Wholesale and retail")
    G = "G", _("Transport, storage and postal services")
    H = "H", _("Accommodation and catering")
    I = "I", _("Information transmission, software and IT services")  # noqa: E741
    J = "J", _("Finance")
    K = "K", _("Real estate")
    L = "L", _("Leasing and business services")
    M = "M", _("Scientific research and technical services")
    N = "N", _("Water conservancy, environment and public facilities")
    O = "O", _("Resident services and repairs")  # noqa: E741
    P = "P", _("Education")
    Q = "Q", _("Health and social work")
    R = "R", _("Culture, sports and entertainment")
    S = "S", _("Public administration and social organisations")
    T = "T", _("International organisations")


class Grade(models.TextChoices):
    STRATEGIC = "strategic", _("Strategic")
    A = "A", _("Grade A")
    B = "B", _("Grade B")
    C = "C", _("Grade C")


class GradingRule(models.Model):
    """Per tenant: a customer earns ``grade`` when both thresholds are met (the highest grade
    whose rule matches wins; no match is grade C). Edited by tenant admins."""

    grade = models.CharField(_("grade"), max_length=10, choices=Grade.choices, unique=True)
    min_monthly_revenue = models.DecimalField(_("minimum monthly revenue"), max_digits=14, decimal_places=2, default=0)
    min_products = models.PositiveIntegerField(_("minimum number of products"), default=0)

    class Meta:
        verbose_name = _("grading rule")
        verbose_name_plural = _("grading rules")

    def __str__(self):
        return self.get_grade_display()


@pghistory.track(*trackers())
class Customer(models.Model):
    class Kind(models.TextChoices):
        ENTERPRISE = "enterprise", _("Enterprise")
        GOVERNMENT = "government", _("Government")
        INSTITUTION = "institution", _("Public institution")
        INDIVIDUAL = "individual", _("Individual")

    class Size(models.TextChoices):
        MICRO = "micro", _("Micro")
        SMALL = "small", _("Small")
        MEDIUM = "medium", _("Medium")
        LARGE = "large", _("Large")

    class Status(models.TextChoices):
        PROSPECT = "prospect", _("Prospect")
        ACTIVE = "active", _("Active")
        ABNORMAL = "abnormal", _("Abnormal")
        CHURNED = "churned", _("Churned")

    class Credit(models.TextChoices):
        AAA = "AAA", "AAA"
        AA = "AA", "AA"
        A = "A", "A"
        B = "B", "B"
        C = "C", "C"

    external_id = models.CharField(_("external id"), max_length=64, unique=True, null=True, blank=True)
    kind = models.CharField(_("type"), max_length=12, choices=Kind.choices, default=Kind.ENTERPRISE)
    name = models.CharField(_("name"), max_length=200)
    credit_code = models.CharField(
        _("unified social credit code"), max_length=18, unique=True, null=True, blank=True, validators=[validate_credit_code]
    )
    industry = models.CharField(_("industry"), max_length=1, choices=Industry.choices, blank=True)
    size = models.CharField(_("size"), max_length=8, choices=Size.choices, blank=True)
    grade = models.CharField(_("grade"), max_length=10, choices=Grade.choices, default=Grade.C)
    status = models.CharField(_("status"), max_length=10, choices=Status.choices, default=Status.PROSPECT)
    # FK indexes that a composite index below starts with are left out (db_index=False): a
    # second index on the same leading column only slows every write and import.
    org_unit = models.ForeignKey(OrgUnit, on_delete=models.PROTECT, related_name="customers", verbose_name=_("owning unit"),
                                 db_index=False)
    account_manager = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("account manager"), db_index=False,
    )
    is_national_key_account = models.BooleanField(_("national key account"), default=False)
    is_potential_key_account = models.BooleanField(_("potential key account"), default=False)
    is_group = models.BooleanField(_("group customer"), default=False)
    group = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="members",
        limit_choices_to={"is_group": True}, verbose_name=_("group"),
    )
    phone = models.CharField(_("main phone"), max_length=40, blank=True)
    address = models.CharField(_("address"), max_length=300, blank=True)
    credit_rating = models.CharField(_("credit rating"), max_length=3, choices=Credit.choices, blank=True)
    credit_limit = models.DecimalField(_("credit limit"), max_digits=14, decimal_places=2, null=True, blank=True)
    satisfaction = models.DecimalField(_("satisfaction"), max_digits=3, decimal_places=2, null=True, blank=True,
                                       help_text=_("latest survey score, 1 to 5"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("customer")
        verbose_name_plural = _("customers")
        permissions = [("export_customer", "Can export customer"), ("assign_customer", "Can assign customer")]
        indexes = [
            # List pages: a unit's customers newest first, and the filters users combine with it.
            models.Index(fields=["org_unit", "-id"], name="ka_customer_unit_id"),
            models.Index(fields=["account_manager", "-id"], name="ka_customer_manager_id"),
            # The group customers among a scope's units (permissions.selectors._group_rows, inside
            # every scoped read): a few rows, where the plain unit index reads every customer of the scope.
            models.Index(fields=["org_unit"], condition=models.Q(is_group=True), name="ka_customer_group_unit"),
            # Chinese substring and fuzzy search (pg_trgm lives in public, see tenants migration 0002).
            GinIndex(OpClass(Upper("name"), name="gin_trgm_ops"), name="ka_customer_name_trgm"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(group__isnull=True) | models.Q(is_group=False), name="ka_customer_group_not_nested"
            ),
        ]

    def __str__(self):
        return self.name


class CustomerUserObjectPermission(UserObjectPermissionBase):
    """Direct-FK guardian grants on single customers."""

    content_object = models.ForeignKey(Customer, on_delete=models.CASCADE)


@pghistory.track(*trackers())
class Contact(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="contacts")
    name = models.CharField(_("name"), max_length=100)
    role = models.CharField(_("role"), max_length=100, blank=True, help_text=_("e.g. CIO, purchasing, finance"))
    phones = models.CharField(_("phones"), max_length=200, blank=True, help_text=_("several numbers separated by commas"))
    email = models.EmailField(_("email"), blank=True)
    is_primary = models.BooleanField(_("primary contact"), default=False)

    class Meta:
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        ordering = ["-is_primary", "name", "id"]

    def __str__(self):
        return self.name


class PhoneNumber(models.Model):
    """Search index of every phone of a customer (main phone and its contacts' phones), kept by
    the services: ``digits`` is the national number, ``reversed_digits`` makes "ends with"
    an index range scan (caller-ID, R24)."""

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="+")
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    digits = models.CharField(max_length=20)
    reversed_digits = models.CharField(max_length=20)

    class Meta:
        indexes = [
            models.Index(OpClass("reversed_digits", name="varchar_pattern_ops"), name="ka_phone_reversed"),
        ]


class Product(models.Model):
    class Category(models.TextChoices):
        MOBILE = "mobile", _("Mobile")
        BROADBAND = "broadband", _("Broadband")
        DEDICATED_LINE = "dedicated_line", _("Dedicated line")
        CLOUD = "cloud", _("Cloud")
        IOT = "iot", _("IoT")
        ICT = "ict", _("ICT services")
        VOICE = "voice", _("Fixed voice")

    code = models.SlugField(_("code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=100)
    category = models.CharField(_("category"), max_length=20, choices=Category.choices)

    class Meta:
        verbose_name = _("product")
        verbose_name_plural = _("products")
        ordering = ["code"]

    def __str__(self):
        return self.name


@pghistory.track(*trackers())
class Subscription(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="subscriptions", db_index=False)
    product = models.ForeignKey(Product, on_delete=models.PROTECT, related_name="subscriptions", verbose_name=_("product"))
    quantity = models.PositiveIntegerField(_("quantity"), default=1)
    monthly_fee = models.DecimalField(_("monthly fee"), max_digits=12, decimal_places=2, default=0)
    start_date = models.DateField(_("start"))
    end_date = models.DateField(_("end"), null=True, blank=True)

    class Meta:
        verbose_name = _("subscription")
        verbose_name_plural = _("subscriptions")
        ordering = ["-start_date", "id"]
        indexes = [models.Index(fields=["customer", "product"], name="ka_subscription_customer")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(end_date__isnull=True) | models.Q(end_date__gte=models.F("start_date")),
                name="ka_subscription_dates",
            ),
        ]


@pghistory.track(*trackers())
class BillingAccount(models.Model):
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="billing_accounts")
    number = models.CharField(_("account number"), max_length=32, unique=True)
    name = models.CharField(_("name"), max_length=200, blank=True)
    is_active = models.BooleanField(_("active"), default=True)

    class Meta:
        verbose_name = _("billing account")
        verbose_name_plural = _("billing accounts")

    def __str__(self):
        return self.number


@pghistory.track(pghistory.UpdateEvent(), pghistory.DeleteEvent())
class BillingRecord(models.Model):
    """One billing account's month: the raw data ARPU/ARPA and the roll-ups come from.
    ``customer`` repeats the account's customer so roll-ups read one table."""

    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="records", db_index=False)
    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="billing_records", db_index=False)
    month = models.DateField(_("month"), help_text=_("first day of the month"))
    revenue = models.DecimalField(_("revenue"), max_digits=14, decimal_places=2, default=0)
    usage = models.DecimalField(_("usage (GB)"), max_digits=14, decimal_places=2, default=0)
    arrears = models.DecimalField(_("arrears"), max_digits=14, decimal_places=2, default=0)
    discount = models.DecimalField(_("discount"), max_digits=14, decimal_places=2, default=0)

    class Meta:
        verbose_name = _("billing record")
        verbose_name_plural = _("billing records")
        ordering = ["month"]
        constraints = [
            models.UniqueConstraint(fields=["account", "month"], name="ka_billing_account_month"),
            models.CheckConstraint(condition=models.Q(month__day=1), name="ka_billing_first_of_month"),
        ]
        indexes = [models.Index(fields=["customer", "month"], name="ka_billing_customer_month")]


@pghistory.track(*trackers())
class Interaction(models.Model):
    class Channel(models.TextChoices):
        CALL_CENTRE = "call_centre", _("Call centre")
        BUSINESS_HALL = "business_hall", _("Business hall")
        WEB = "web", _("Web")
        MOBILE = "mobile", _("Mobile app")
        FIELD_VISIT = "field_visit", _("Field visit")

    customer = models.ForeignKey(Customer, on_delete=models.CASCADE, related_name="interactions", db_index=False)
    contact = models.ForeignKey(Contact, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                verbose_name=_("contact"))
    channel = models.CharField(_("channel"), max_length=14, choices=Channel.choices)
    occurred_at = models.DateTimeField(_("when"))
    subject = models.CharField(_("subject"), max_length=200)
    notes = models.TextField(_("notes"), blank=True)
    satisfaction = models.PositiveSmallIntegerField(_("satisfaction (1-5)"), null=True, blank=True)
    recorded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="+", verbose_name=_("recorded by"))

    class Meta:
        verbose_name = _("interaction")
        verbose_name_plural = _("interactions")
        ordering = ["-occurred_at", "-id"]
        indexes = [models.Index(fields=["customer", "-occurred_at"], name="ka_interaction_timeline")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(satisfaction__isnull=True) | models.Q(satisfaction__range=(1, 5)),
                name="ka_interaction_satisfaction",
            ),
        ]


def _tenant_path(kind, filename):
    # Files live under the tenant's schema name and are never served directly: downloads go
    # through views that check who asks.
    return f"{connection.schema_name}/{kind}/{timezone.now():%Y/%m}/{filename}"


def upload_import(instance, filename):
    return _tenant_path("imports", filename)


def upload_export(instance, filename):
    return _tenant_path("exports", filename)


class ColumnMapping(models.Model):
    """A saved import mapping: which file column feeds which customer field, and how values are
    translated (see docs/key-accounts-import.md). Shipped mappings have no creator; only tenant
    admins change them."""

    name = models.CharField(_("name"), max_length=100, unique=True)
    description = models.TextField(_("description"), blank=True)
    spec = models.JSONField(_("mapping"), default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = _("column mapping")
        verbose_name_plural = _("column mappings")
        ordering = ["name"]

    def __str__(self):
        return self.name


class ImportJob(models.Model):
    """One uploaded file on its way into the archive (key_accounts/importing/): checked by a dry
    run, then committed as a whole or not at all."""

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        CHECK_QUEUED = "check_queued", _("Waiting to be checked")
        CHECKING = "checking", _("Checking")
        CHECKED = "checked", _("Checked")
        INVALID = "invalid", _("Invalid")
        QUEUED = "queued", _("Waiting to import")
        IMPORTING = "importing", _("Importing")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    file = models.FileField(upload_to=upload_import)
    original_name = models.CharField(max_length=255)
    mapping = models.ForeignKey(ColumnMapping, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    spec = models.JSONField(default=dict, help_text="the mapping as used by this job")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.UPLOADED)
    total_rows = models.PositiveIntegerField(default=0)
    processed_rows = models.PositiveIntegerField(default=0)
    created_count = models.PositiveIntegerField(default=0)
    updated_count = models.PositiveIntegerField(default=0)
    unchanged_count = models.PositiveIntegerField(default=0)
    error_count = models.PositiveIntegerField(default=0)
    message = models.TextField(blank=True)
    encoding = models.CharField(max_length=16, blank=True, help_text="as read (detected or chosen)")
    language = models.CharField(max_length=16, blank=True, help_text="of the creator: the language of its errors")
    checked_at = models.DateTimeField(null=True, blank=True, help_text="when a dry run last found no error")
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]


class ImportRowError(models.Model):
    """One problem an import found: a row's cell (``line`` counts the header as line 1), or the
    whole file (``column`` blank or naming the missing columns)."""

    job = models.ForeignKey(ImportJob, on_delete=models.CASCADE, related_name="row_errors")
    line = models.PositiveIntegerField()
    column = models.CharField(max_length=200, blank=True)
    reason = models.TextField()
    value = models.CharField(max_length=200, blank=True)

    class Meta:
        ordering = ["line", "id"]
        indexes = [models.Index(fields=["job", "line", "id"], name="ka_import_error_job_line")]


class ExportJob(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        RUNNING = "running", _("Running")
        DONE = "done", _("Done")
        FAILED = "failed", _("Failed")

    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    format = models.CharField(max_length=4, choices=[("csv", "CSV"), ("xlsx", "XLSX")])
    filters = models.JSONField(default=dict)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    row_count = models.PositiveIntegerField(default=0)
    file = models.FileField(upload_to=upload_export, blank=True)
    message = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The creator's language (column titles, labels) and a fingerprint of their export scope when
    # the file was written: the file is only handed out while that scope is unchanged.
    language = models.CharField(max_length=16, blank=True)
    scope_key = models.CharField(max_length=64, blank=True)

    class Meta:
        ordering = ["-id"]
