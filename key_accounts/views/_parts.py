"""Forms for what hangs off a customer, opened from its 360 page: add, edit and delete its
contacts, subscriptions and interactions. All need "customer.change" on the customer (the
services check it again); a record of a customer outside the user's scope answers 404."""
from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.shortcuts import redirect, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from permissions.views import run_service

from .. import selectors, services
from ..forms import ContactForm, InteractionForm, SubscriptionForm
from ..models import Contact, Customer, Interaction, Subscription
from ._common import CustomerPage

# model name -> (form, save service, delete service, section of the 360 page)
PARTS = {
    "contact": (ContactForm, services.contact_save, services.contact_delete, "contacts"),
    "subscription": (SubscriptionForm, services.subscription_save, services.subscription_delete, "subscriptions"),
    "interaction": (InteractionForm, services.interaction_save, services.interaction_delete, "timeline"),
}


def _form_kwargs(kind, customer):
    return {"contacts": selectors.contacts_of(customer)} if kind == "interaction" else {}


def _title(instance):
    if isinstance(instance, Subscription):
        return f"{instance.product.name} ({instance.start_date:%Y-%m-%d})"
    return instance.subject if isinstance(instance, Interaction) else instance.name


def _back(customer, kind):
    return reverse("key_accounts:detail", args=[customer.pk]) + "#" + PARTS[kind][3]


class _PartPage(CustomerPage):
    kind = None  # "contact", "subscription" or "interaction"

    def render_form(self, request, customer, form, instance=None, status=200):
        context = {"customer": customer, "form": form, "instance": instance, "kind": self.kind,
                   "what": PARTS[self.kind][0]._meta.model._meta.verbose_name, "back": _back(customer, self.kind)}
        return render(request, "key_accounts/part_form.html", context, status=status)

    def save(self, request, customer, instance=None):
        form_class, save, _delete, _section = PARTS[self.kind]
        form = form_class(request.POST, instance=instance, **_form_kwargs(self.kind, customer))
        call = lambda d: save(actor=request.user, customer=customer, data=form.service_data(), **{self.kind: instance})  # noqa: E731
        if not run_service(request, form, call, announce=False):
            if form.status == 403:
                raise PermissionDenied(form.refusal)
            return self.render_form(request, customer, form, instance, status=form.status)
        messages.success(request, _("Saved."))
        return redirect(_back(customer, self.kind))


class PartCreate(_PartPage):
    """Add a record to the customer ``pk``."""

    model = Customer

    def get(self, request, pk):
        customer = selectors.customer_get(user=request.user, pk=pk, action="change")
        now = timezone.localtime()
        initial = {"occurred_at": now.replace(second=0, microsecond=0), "start_date": now.date()}
        form = PARTS[self.kind][0](initial=initial, **_form_kwargs(self.kind, customer))
        return self.render_form(request, customer, form)

    def post(self, request, pk):
        customer = selectors.customer_get(user=request.user, pk=pk, action="change")
        return self.save(request, customer)


class PartEdit(_PartPage):
    """Edit the record ``pk`` (of ``model``)."""

    def get(self, request, pk):
        instance = selectors.customer_part_get(user=request.user, model=self.model, pk=pk, action="change")
        form = PARTS[self.kind][0](instance=instance, **_form_kwargs(self.kind, instance.customer))
        return self.render_form(request, instance.customer, form, instance)

    def post(self, request, pk):
        instance = selectors.customer_part_get(user=request.user, model=self.model, pk=pk, action="change")
        return self.save(request, instance.customer, instance)


class PartDelete(_PartPage):
    """Confirm (GET) and delete (POST) the record ``pk`` (of ``model``)."""

    def get(self, request, pk):
        instance = selectors.customer_part_get(user=request.user, model=self.model, pk=pk, action="change")
        context = {"customer": instance.customer, "title": _title(instance), "what": self.model._meta.verbose_name,
                   "back": _back(instance.customer, self.kind)}
        return render(request, "key_accounts/part_delete.html", context)

    def post(self, request, pk):
        instance = selectors.customer_part_get(user=request.user, model=self.model, pk=pk, action="change")
        PARTS[self.kind][2](actor=request.user, **{self.kind: instance})
        messages.success(request, _("Deleted."))
        return redirect(_back(instance.customer, self.kind))


# One class per record kind and page, so each route names its model (the isolation test reads it).
class ContactCreate(PartCreate):
    kind = "contact"


class ContactEdit(PartEdit):
    kind, model = "contact", Contact


class ContactDelete(PartDelete):
    kind, model = "contact", Contact


class SubscriptionCreate(PartCreate):
    kind = "subscription"


class SubscriptionEdit(PartEdit):
    kind, model = "subscription", Subscription


class SubscriptionDelete(PartDelete):
    kind, model = "subscription", Subscription


class InteractionCreate(PartCreate):
    kind = "interaction"


class InteractionEdit(PartEdit):
    kind, model = "interaction", Interaction


class InteractionDelete(PartDelete):
    kind, model = "interaction", Interaction


urlpatterns = [
    path("<int:pk>/contacts/new/", ContactCreate.as_view(), name="contact-create"),
    path("contacts/<int:pk>/edit/", ContactEdit.as_view(), name="contact-edit"),
    path("contacts/<int:pk>/delete/", ContactDelete.as_view(), name="contact-delete"),
    path("<int:pk>/subscriptions/new/", SubscriptionCreate.as_view(), name="subscription-create"),
    path("subscriptions/<int:pk>/edit/", SubscriptionEdit.as_view(), name="subscription-edit"),
    path("subscriptions/<int:pk>/delete/", SubscriptionDelete.as_view(), name="subscription-delete"),
    path("<int:pk>/interactions/new/", InteractionCreate.as_view(), name="interaction-create"),
    path("interactions/<int:pk>/edit/", InteractionEdit.as_view(), name="interaction-edit"),
    path("interactions/<int:pk>/delete/", InteractionDelete.as_view(), name="interaction-delete"),
]
