"""Input and output shapes of the key-account API. No business rules: the services check them.

Output serializers read only what the selectors loaded (select_related), so a page costs the
same number of queries whatever its size. Input serializers check types and choices; the
services check everything else and name the field when they refuse.
"""
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from key_accounts.models import (
    BillingAccount, Contact, Customer, Grade, GradingRule, Industry, Interaction, Product, Subscription,
)
from permissions.api.serializers import UnitRefSerializer


# --- References -------------------------------------------------------------------------------

class PersonRefSerializer(serializers.Serializer):
    """An account manager or recorder: id, login and display name."""

    id = serializers.IntegerField()
    username = serializers.CharField()
    name = serializers.SerializerMethodField()

    def get_name(self, user) -> str:
        return user.get_full_name() or user.get_username()


class NamedRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField(allow_null=True)


# --- Customers --------------------------------------------------------------------------------

class CustomerListSerializer(serializers.ModelSerializer):
    """A list row: the customer with its unit and account manager (joined, never fetched per row)."""

    org_unit = UnitRefSerializer()
    account_manager = PersonRefSerializer(allow_null=True)
    group = serializers.IntegerField(source="group_id", allow_null=True)

    class Meta:
        model = Customer
        fields = [
            "id", "name", "kind", "grade", "status", "industry", "credit_code", "external_id", "org_unit",
            "account_manager", "is_group", "group", "is_national_key_account", "is_potential_key_account", "phone",
            "updated_at",
        ]


# The list's rows without DRF's per-field machinery (50 rows of nested serializers cost 15-30 ms
# of CPU): the same JSON as CustomerListSerializer, which stays the schema and is checked
# against these rows by a test.
LIST_VALUES = (
    "id", "name", "kind", "grade", "status", "industry", "credit_code", "external_id", "org_unit_id", "org_unit__code",
    "org_unit__name", "account_manager_id", "account_manager__username", "account_manager__first_name",
    "account_manager__last_name", "is_group", "group_id", "is_national_key_account", "is_potential_key_account",
    "phone", "updated_at",
)
_timestamp = serializers.DateTimeField()


def customer_list_rows(rows):
    """CustomerListSerializer(many=True).data for ``rows``, dicts of LIST_VALUES."""
    out = []
    for r in rows:
        manager = None
        if r["account_manager_id"] is not None:
            username = r["account_manager__username"]
            full = f"{r['account_manager__first_name']} {r['account_manager__last_name']}".strip()
            manager = {"id": r["account_manager_id"], "username": username, "name": full or username}
        out.append({
            "id": r["id"], "name": r["name"], "kind": r["kind"], "grade": r["grade"], "status": r["status"],
            "industry": r["industry"], "credit_code": r["credit_code"], "external_id": r["external_id"],
            "org_unit": {"id": r["org_unit_id"], "code": r["org_unit__code"], "name": r["org_unit__name"]},
            "account_manager": manager, "is_group": r["is_group"], "group": r["group_id"],
            "is_national_key_account": r["is_national_key_account"],
            "is_potential_key_account": r["is_potential_key_account"], "phone": r["phone"],
            "updated_at": _timestamp.to_representation(r["updated_at"]),
        })
    return out


class CustomerSerializer(serializers.ModelSerializer):
    """One customer. ``group`` names the group only for callers who may view it."""

    org_unit = UnitRefSerializer()
    account_manager = PersonRefSerializer(allow_null=True)
    group = serializers.SerializerMethodField()

    class Meta:
        model = Customer
        fields = [
            "id", "external_id", "kind", "name", "credit_code", "industry", "size", "grade", "status", "org_unit",
            "account_manager", "is_national_key_account", "is_potential_key_account", "is_group", "group", "phone",
            "address", "credit_rating", "credit_limit", "satisfaction", "created_at", "updated_at",
        ]

    def get_group(self, customer) -> NamedRefSerializer(allow_null=True):
        if customer.group_id is None:
            return None
        group_visible = self.context.get("group_visible", False)
        return {"id": customer.group_id, "name": customer.group.name if group_visible else None}


def _blank_choice(choices):
    return serializers.ChoiceField(choices=choices, required=False, allow_blank=True)


class CustomerInputSerializer(serializers.Serializer):
    """Create (``name`` and ``org_unit`` required) or PATCH (any subset). Units, account
    managers and groups are ids."""

    external_id = serializers.CharField(max_length=64, required=False, allow_null=True, allow_blank=True)
    kind = serializers.ChoiceField(choices=Customer.Kind.choices, required=False)
    name = serializers.CharField(max_length=200)
    credit_code = serializers.CharField(max_length=18, required=False, allow_null=True, allow_blank=True)
    industry = _blank_choice(Industry.choices)
    size = _blank_choice(Customer.Size.choices)
    grade = serializers.ChoiceField(choices=Grade.choices, required=False)
    status = serializers.ChoiceField(choices=Customer.Status.choices, required=False)
    org_unit = serializers.IntegerField()
    account_manager = serializers.IntegerField(required=False, allow_null=True)
    is_national_key_account = serializers.BooleanField(required=False)
    is_potential_key_account = serializers.BooleanField(required=False)
    is_group = serializers.BooleanField(required=False)
    group = serializers.IntegerField(required=False, allow_null=True)
    phone = serializers.CharField(max_length=40, required=False, allow_blank=True)
    address = serializers.CharField(max_length=300, required=False, allow_blank=True)
    credit_rating = _blank_choice(Customer.Credit.choices)
    credit_limit = serializers.DecimalField(max_digits=14, decimal_places=2, required=False, allow_null=True)
    satisfaction = serializers.DecimalField(
        max_digits=3, decimal_places=2, min_value=1, max_value=5, required=False, allow_null=True
    )


# --- Around one customer ----------------------------------------------------------------------

class ContactSerializer(serializers.ModelSerializer):
    class Meta:
        model = Contact
        fields = ["id", "name", "role", "phones", "email", "is_primary"]


class ProductSerializer(serializers.ModelSerializer):
    class Meta:
        model = Product
        fields = ["id", "code", "name", "category"]


class SubscriptionSerializer(serializers.ModelSerializer):
    product = ProductSerializer()

    class Meta:
        model = Subscription
        fields = ["id", "product", "quantity", "monthly_fee", "start_date", "end_date"]


class SubscriptionInputSerializer(serializers.Serializer):
    product = serializers.IntegerField()
    quantity = serializers.IntegerField(min_value=1, required=False)
    monthly_fee = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=0, required=False)
    start_date = serializers.DateField()
    end_date = serializers.DateField(required=False, allow_null=True)

    def validate(self, data):
        if data.get("end_date") and data["end_date"] < data["start_date"]:
            raise serializers.ValidationError({"end_date": [_("The end cannot be before the start.")]})
        return data


class BillingAccountSerializer(serializers.ModelSerializer):
    class Meta:
        model = BillingAccount
        fields = ["id", "number", "name", "is_active"]


class BillingMonthSerializer(serializers.Serializer):
    month = serializers.DateField()
    revenue = serializers.DecimalField(max_digits=16, decimal_places=2)
    usage = serializers.DecimalField(max_digits=16, decimal_places=2)
    arrears = serializers.DecimalField(max_digits=16, decimal_places=2)
    discount = serializers.DecimalField(max_digits=16, decimal_places=2)


class InteractionSerializer(serializers.ModelSerializer):
    contact = NamedRefSerializer(allow_null=True)
    recorded_by = PersonRefSerializer(allow_null=True)

    class Meta:
        model = Interaction
        fields = ["id", "channel", "occurred_at", "subject", "notes", "satisfaction", "contact", "recorded_by"]


class InteractionInputSerializer(serializers.Serializer):
    channel = serializers.ChoiceField(choices=Interaction.Channel.choices)
    occurred_at = serializers.DateTimeField(required=False, help_text="default: now")
    subject = serializers.CharField(max_length=200)
    notes = serializers.CharField(required=False, allow_blank=True)
    satisfaction = serializers.IntegerField(min_value=1, max_value=5, required=False, allow_null=True)
    contact = serializers.IntegerField(required=False, allow_null=True, help_text="a contact of this customer")


class HistoryEntrySerializer(serializers.Serializer):
    """One change: ``changes`` maps each field to ``[before, after]`` (before is null on insert)."""

    id = serializers.CharField()
    at = serializers.DateTimeField()
    model = serializers.CharField()
    object_id = serializers.IntegerField()
    label = serializers.ChoiceField(choices=["insert", "update", "delete"])
    actor = serializers.CharField()
    actor_id = serializers.IntegerField(allow_null=True)
    unit = serializers.CharField()
    via = serializers.CharField()
    changes = serializers.DictField(child=serializers.ListField())


# --- Caller-ID, configuration -----------------------------------------------------------------

class CallerCardSerializer(serializers.ModelSerializer):
    """A screen-pop card: who is calling and who serves them."""

    org_unit = UnitRefSerializer()
    account_manager = PersonRefSerializer(allow_null=True)
    contacts = serializers.ListField(
        child=serializers.CharField(), source="matched_contacts", help_text="contacts of the customer with this number"
    )

    class Meta:
        model = Customer
        fields = ["id", "name", "kind", "grade", "status", "is_national_key_account", "org_unit", "account_manager",
                  "contacts"]


class ProductInputSerializer(serializers.Serializer):
    code = serializers.SlugField(max_length=40)
    name = serializers.CharField(max_length=100)
    category = serializers.ChoiceField(choices=Product.Category.choices)


class GradingRuleSerializer(serializers.ModelSerializer):
    class Meta:
        model = GradingRule
        fields = ["id", "grade", "min_monthly_revenue", "min_products"]


class GradingRuleInputSerializer(serializers.Serializer):
    grade = serializers.ChoiceField(choices=Grade.choices)
    min_monthly_revenue = serializers.DecimalField(max_digits=14, decimal_places=2, min_value=0, required=False)
    min_products = serializers.IntegerField(min_value=0, required=False)


class BillingAccountInputSerializer(serializers.Serializer):
    number = serializers.CharField(max_length=32)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    is_active = serializers.BooleanField(required=False)
