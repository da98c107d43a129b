"""The customer API (R6, R8, R9, R24): customers and what hangs off them, caller-ID, products
and grading rules, under /api/v1/.

Thin views: parse, call one selector or service from key_accounts/, serialise. Every read comes
from key_accounts.selectors, narrowed to the caller's scope: an id outside it answers 404 like a
missing one. Every write goes through key_accounts.services with ``via="api"``; they check the
permission at the customer's unit (403 when the caller sees the customer but may not do it)
and record history with the caller as actor.
"""
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404
from django.urls import path
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.translation import gettext as _
from drf_spectacular.utils import OpenApiParameter, extend_schema, inline_serializer
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response
from rest_framework.routers import SimpleRouter
from rest_framework.views import APIView

from kam.api.pagination import PagePagination
from key_accounts import phones, selectors, services
from key_accounts.filters import CustomerFilter
from key_accounts.models import Customer, GradingRule, Product
from org_hierarchy.api.views import parsed, unit_ref
from permissions.api_permissions import ScopedPermission
from permissions.selectors import can

from . import serializers as s


class CustomerPaginator(Paginator):
    """Counts and pages through selectors.CustomerPages: large totals cached a moment, a search
    with more than RANK_LIMIT matches newest first instead of ranking every match, a search's
    matches found once for its total and its page."""

    @cached_property
    def pages(self):
        return selectors.CustomerPages(self.object_list, fields=s.LIST_VALUES)

    @cached_property
    def count(self):
        return self.pages.count

    def page(self, number):
        number = self.validate_number(number)
        # A full page even when a cached total lags behind the rows (Paginator would cut the
        # last page at the total).
        bottom = (number - 1) * self.per_page
        return self._get_page(self.pages.rows(bottom, bottom + self.per_page), number, self)


class CustomerPagination(PagePagination):
    django_paginator_class = CustomerPaginator


def _ref(queryset, pk, field, message):
    """An id in a request body that must name one of ``queryset``: unknown ids (and ids outside
    the caller's scope) give the same field error."""
    if pk is None:
        return None
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise ValidationError({field: [message]})
    return obj


CHANGE_ACTIONS = (
    "update", "partial_update", "contact_create", "contact_update", "contact_delete", "subscription_create",
    "billing_account_create", "interaction_create",
)
SUB_LIST = {"filterset_class": None, "filter_backends": []}


class CustomerViewSet(viewsets.GenericViewSet):
    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "customers"
    # Editing what hangs off a customer is changing the customer.
    scoped_actions = {name: "change" for name in CHANGE_ACTIONS}
    queryset = Customer.objects.none()
    serializer_class = s.CustomerSerializer
    filterset_class = CustomerFilter  # documents the list's parameters; applied by the selector
    pagination_class = CustomerPagination
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _customer(self, pk, action="view"):
        return selectors.customer_get(user=self.request.user, pk=pk, action=action)

    def _detail(self, customer):
        group_visible = customer.group_id is not None and can(self.request.user, "customer.view", customer.group)
        return s.CustomerSerializer(customer, context={"group_visible": group_visible}).data

    def _input(self, request, partial):
        data = parsed(s.CustomerInputSerializer, request.data, partial=partial)
        if "org_unit" in data:
            data["org_unit"] = unit_ref(request.user, data["org_unit"], "org_unit")
        if data.get("account_manager") is not None:
            data["account_manager"] = _ref(selectors.account_managers(user=request.user), data["account_manager"],
                                           "account_manager", _("Unknown user."))
        return data

    def _paginated(self, items, serializer_class):
        page = self.paginate_queryset(items)
        return self.get_paginated_response(serializer_class(page, many=True).data)

    # --- The customer itself ----------------------------------------------------------------

    @extend_schema(responses=s.CustomerListSerializer(many=True))
    def list(self, request):
        """Customers the caller may view, filtered and searched (``q``: name, code or phone),
        50 a page with the total; best matches first when searching, else newest first."""
        customers = selectors.customer_list(user=request.user, params=request.query_params)
        page = self.paginate_queryset(customers)  # dicts of LIST_VALUES (CustomerPaginator)
        return self.get_paginated_response(s.customer_list_rows(page))

    @extend_schema(responses=s.CustomerSerializer)
    def retrieve(self, request, pk=None):
        return Response(self._detail(self._customer(pk)))

    @extend_schema(request=s.CustomerInputSerializer, responses={201: s.CustomerSerializer})
    def create(self, request):
        customer = services.customer_create(actor=request.user, data=self._input(request, partial=False), via="api")
        return Response(self._detail(customer), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.CustomerInputSerializer, responses=s.CustomerSerializer)
    def partial_update(self, request, pk=None):
        customer = self._customer(pk, "change")
        customer = services.customer_update(
            actor=request.user, customer=customer, data=self._input(request, partial=True), via="api"
        )
        return Response(self._detail(customer))

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.customer_delete(actor=request.user, customer=self._customer(pk, "delete"), via="api")
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(responses=s.HistoryEntrySerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=PagePagination, **SUB_LIST)
    def history(self, request, pk=None):
        """Every change to the customer and what hangs off it, newest first: who, when, acting
        unit, channel, and each field before and after."""
        return self._paginated(selectors.customer_history(self._customer(pk)), s.HistoryEntrySerializer)

    # --- Contacts ---------------------------------------------------------------------------

    @extend_schema(responses=s.ContactSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=PagePagination, **SUB_LIST)
    def contacts(self, request, pk=None):
        return self._paginated(selectors.contacts_of(self._customer(pk)), s.ContactSerializer)

    @extend_schema(request=s.ContactSerializer, responses={201: s.ContactSerializer})
    @contacts.mapping.post
    def contact_create(self, request, pk=None):
        customer = self._customer(pk, "change")
        contact = services.contact_save(
            actor=request.user, customer=customer, data=parsed(s.ContactSerializer, request.data), via="api"
        )
        return Response(s.ContactSerializer(contact).data, status=status.HTTP_201_CREATED)

    def _contact(self, pk, contact_id, action="view"):
        customer = self._customer(pk, action)
        contact = selectors.contacts_of(customer).filter(pk=contact_id).first()
        if contact is None:
            raise Http404
        contact.customer = customer
        return contact

    @extend_schema(responses=s.ContactSerializer)
    @action(detail=True, methods=["get"], url_path=r"contacts/(?P<contact_id>\d+)", url_name="contact",
            pagination_class=None, **SUB_LIST)
    def contact(self, request, pk=None, contact_id=None):
        return Response(s.ContactSerializer(self._contact(pk, contact_id)).data)

    @extend_schema(request=s.ContactSerializer, responses=s.ContactSerializer)
    @contact.mapping.patch
    def contact_update(self, request, pk=None, contact_id=None):
        contact = self._contact(pk, contact_id, "change")
        data = parsed(s.ContactSerializer, request.data, partial=True)
        contact = services.contact_save(actor=request.user, customer=contact.customer, contact=contact, data=data, via="api")
        return Response(s.ContactSerializer(contact).data)

    @extend_schema(responses={204: None})
    @contact.mapping.delete
    def contact_delete(self, request, pk=None, contact_id=None):
        services.contact_delete(actor=request.user, contact=self._contact(pk, contact_id, "change"), via="api")
        return Response(status=status.HTTP_204_NO_CONTENT)

    # --- Subscriptions, billing ---------------------------------------------------------------

    @extend_schema(responses=s.SubscriptionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=PagePagination, **SUB_LIST)
    def subscriptions(self, request, pk=None):
        return self._paginated(selectors.subscriptions_of(self._customer(pk)), s.SubscriptionSerializer)

    @extend_schema(request=s.SubscriptionInputSerializer, responses={201: s.SubscriptionSerializer})
    @subscriptions.mapping.post
    def subscription_create(self, request, pk=None):
        customer = self._customer(pk, "change")
        data = parsed(s.SubscriptionInputSerializer, request.data)
        data["product"] = _ref(selectors.product_list(), data["product"], "product", _("Unknown product."))
        subscription = services.subscription_save(actor=request.user, customer=customer, data=data, via="api")
        return Response(s.SubscriptionSerializer(subscription).data, status=status.HTTP_201_CREATED)

    @extend_schema(responses=s.BillingAccountSerializer(many=True))
    @action(detail=True, methods=["get"], url_path="billing-accounts", url_name="billing-accounts",
            pagination_class=PagePagination, **SUB_LIST)
    def billing_accounts(self, request, pk=None):
        return self._paginated(selectors.billing_accounts_of(self._customer(pk)).order_by("number"),
                               s.BillingAccountSerializer)

    @extend_schema(request=s.BillingAccountInputSerializer, responses={201: s.BillingAccountSerializer})
    @billing_accounts.mapping.post
    def billing_account_create(self, request, pk=None):
        customer = self._customer(pk, "change")
        data = parsed(s.BillingAccountInputSerializer, request.data)
        account = services.billing_account_save(actor=request.user, customer=customer, data=data, via="api")
        return Response(s.BillingAccountSerializer(account).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        parameters=[OpenApiParameter("months", int, description="how many months back (1-36, default 12)")],
        responses=s.BillingMonthSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None, **SUB_LIST)
    def billing(self, request, pk=None):
        """Monthly revenue, usage, arrears and discounts summed over the customer's billing
        accounts, oldest month first (the revenue chart)."""
        months = request.query_params.get("months", "12")
        if not months.isdigit() or not 1 <= int(months) <= 36:
            raise ValidationError({"months": [_("Enter a number of months from 1 to 36.")]})
        rows = selectors.billing_by_month(self._customer(pk), months=int(months))
        return Response(s.BillingMonthSerializer(rows, many=True).data)

    # --- Interactions ------------------------------------------------------------------------

    @extend_schema(responses=s.InteractionSerializer(many=True))
    @action(detail=True, methods=["get"], pagination_class=PagePagination, **SUB_LIST)
    def interactions(self, request, pk=None):
        """The timeline: contacts through every channel, newest first."""
        return self._paginated(selectors.interactions_of(self._customer(pk)), s.InteractionSerializer)

    @extend_schema(request=s.InteractionInputSerializer, responses={201: s.InteractionSerializer})
    @interactions.mapping.post
    def interaction_create(self, request, pk=None):
        customer = self._customer(pk, "change")
        data = parsed(s.InteractionInputSerializer, request.data)
        data.setdefault("occurred_at", timezone.now())
        if "contact" in data:
            data["contact"] = _ref(selectors.contacts_of(customer), data["contact"], "contact",
                                   _("Choose a contact of this customer."))
        interaction = services.interaction_save(actor=request.user, customer=customer, data=data, via="api")
        return Response(s.InteractionSerializer(interaction).data, status=status.HTTP_201_CREATED)


class CallerIdView(APIView):
    """Caller-ID (R24): the customers the caller may view with a phone ending in ``number``."""

    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "customers"
    queryset = Customer.objects.none()

    @extend_schema(
        parameters=[OpenApiParameter("number", str, required=True, description="the calling number, any format")],
        responses=inline_serializer("CallerId", {
            "number": serializers.CharField(help_text="the national digits looked up"),
            "results": s.CallerCardSerializer(many=True),
        }),
    )
    def get(self, request):
        number = request.query_params.get("number", "")
        if not phones.search_key(number):
            raise ValidationError({"number": [_("Enter a phone number of at least %(n)d digits.") % {"n": phones.MIN_DIGITS}]})
        cards = list(selectors.caller_id(user=request.user, number=number))
        contacts = selectors.caller_id_contacts(cards, number)
        for card in cards:
            card.matched_contacts = contacts.get(card.pk, [])
        return Response({"number": phones.normalize(number), "results": s.CallerCardSerializer(cards, many=True).data})


class ProductViewSet(viewsets.GenericViewSet):
    """The product catalogue: every user of the tenant reads it; the services let only those
    who change customers across the whole tenant (tenant admins) edit it."""

    queryset = Product.objects.none()
    serializer_class = s.ProductSerializer
    filterset_class = None
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "head", "options"]

    def _get(self, pk):
        return get_or_404(selectors.product_list(), pk)

    def list(self, request):
        page = self.paginate_queryset(selectors.product_list())
        return self.get_paginated_response(s.ProductSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.ProductSerializer(self._get(pk)).data)

    @extend_schema(request=s.ProductInputSerializer, responses={201: s.ProductSerializer})
    def create(self, request):
        product = services.product_save(actor=request.user, data=parsed(s.ProductInputSerializer, request.data))
        return Response(s.ProductSerializer(product).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.ProductInputSerializer, responses=s.ProductSerializer)
    def partial_update(self, request, pk=None):
        data = parsed(s.ProductInputSerializer, request.data, partial=True)
        product = services.product_save(actor=request.user, product=self._get(pk), data=data)
        return Response(s.ProductSerializer(product).data)


class GradingRuleViewSet(viewsets.GenericViewSet):
    """Grading rules: read by whoever views customers; edited (services) by those who change
    customers across the whole tenant. Grades follow on the next ``services.regrade``."""

    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "customers"
    scoped_actions = {"create": "change", "partial_update": "change", "destroy": "change"}
    queryset = GradingRule.objects.none()
    serializer_class = s.GradingRuleSerializer
    filterset_class = None
    lookup_value_regex = r"\d+"
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def _get(self, pk):
        return get_or_404(selectors.grading_rule_list(), pk)

    def list(self, request):
        page = self.paginate_queryset(selectors.grading_rule_list())
        return self.get_paginated_response(s.GradingRuleSerializer(page, many=True).data)

    def retrieve(self, request, pk=None):
        return Response(s.GradingRuleSerializer(self._get(pk)).data)

    @extend_schema(request=s.GradingRuleInputSerializer, responses={201: s.GradingRuleSerializer})
    def create(self, request):
        rule = services.grading_rule_save(actor=request.user, data=parsed(s.GradingRuleInputSerializer, request.data))
        return Response(s.GradingRuleSerializer(rule).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=s.GradingRuleInputSerializer, responses=s.GradingRuleSerializer)
    def partial_update(self, request, pk=None):
        data = parsed(s.GradingRuleInputSerializer, request.data, partial=True)
        rule = services.grading_rule_save(actor=request.user, rule=self._get(pk), data=data)
        return Response(s.GradingRuleSerializer(rule).data)

    @extend_schema(responses={204: None})
    def destroy(self, request, pk=None):
        services.grading_rule_delete(actor=request.user, rule=self._get(pk))
        return Response(status=status.HTTP_204_NO_CONTENT)


def get_or_404(queryset, pk):
    obj = queryset.filter(pk=pk).first()
    if obj is None:
        raise Http404
    return obj


router = SimpleRouter()
router.register("customers", CustomerViewSet, basename="customer")
router.register("products", ProductViewSet, basename="product")
router.register("grading-rules", GradingRuleViewSet, basename="grading-rule")

urlpatterns = [
    path("caller-id/", CallerIdView.as_view(), name="caller-id"),
    *router.urls,
]
