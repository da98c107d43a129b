"""Platform staff manage tenants in the Django admin of the public host only."""
from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from . import services
from .models import Domain, Tenant, TenantEvent


class PublicOnlyAdmin(admin.ModelAdmin):
    """Tenant tables live in the public schema, which is also on a tenant's search path:
    never show them on a tenant's host."""

    def _on_public_host(self, request):
        return getattr(request, "tenant", None) is not None and request.tenant.schema_name == "public"

    def has_module_permission(self, request):
        return self._on_public_host(request) and super().has_module_permission(request)

    def has_view_permission(self, request, obj=None):
        return self._on_public_host(request) and super().has_view_permission(request, obj)

    def has_add_permission(self, request):
        return self._on_public_host(request) and super().has_add_permission(request)

    def has_change_permission(self, request, obj=None):
        return self._on_public_host(request) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return self._on_public_host(request) and super().has_delete_permission(request, obj)


class TenantCreateForm(forms.ModelForm):
    admin_email = forms.EmailField(label=_("tenant admin email"), required=False)

    class Meta:
        model = Tenant
        fields = ["slug", "name"]

    def clean(self):
        data = super().clean()
        slug = data.get("slug") or ""
        try:
            services.validate_new_tenant(
                slug=slug, name=data.get("name"), domain=services.default_domain(slug), admin_email=data.get("admin_email")
            )
        except ValidationError as exc:
            for field, errors in exc.message_dict.items():
                self.add_error(field if field in self.fields else None, errors)
        return data


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    readonly_fields = ["domain", "is_primary"]
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(Tenant)
class TenantAdmin(PublicOnlyAdmin):
    list_display = ["slug", "name", "status", "schema_name", "created_at"]
    list_filter = ["status"]
    search_fields = ["slug", "name"]
    inlines = [DomainInline]
    actions = ["suspend", "reactivate"]

    def get_queryset(self, request):
        return super().get_queryset(request).exclude(schema_name="public")

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = TenantCreateForm
        return super().get_form(request, obj, **kwargs)

    def get_inline_instances(self, request, obj=None):
        # Domains are made by the provisioning service; show them only on existing tenants.
        return [] if obj is None else super().get_inline_instances(request, obj)

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["slug", "schema_name", "status", "created_at", "suspended_at"]

    def get_fields(self, request, obj=None):
        if obj is None:
            return ["slug", "name", "admin_email"]
        return ["slug", "name", "schema_name", "status", "created_at", "suspended_at"]

    def save_model(self, request, obj, form, change):
        if change:
            obj.save(update_fields=["name"])
            return
        tenant, password = services.tenant_create(
            actor=request.user, slug=obj.slug, name=obj.name, admin_email=form.cleaned_data.get("admin_email") or None
        )
        obj.pk, obj.schema_name = tenant.pk, tenant.schema_name
        if password:
            self.message_user(request, _("Tenant admin password: %(password)s") % {"password": password}, messages.WARNING)

    def save_related(self, request, form, formsets, change):
        if change:
            super().save_related(request, form, formsets, change)

    def delete_model(self, request, obj):
        # The admin's confirmation page is the explicit confirmation.
        services.tenant_delete(actor=request.user, tenant=obj, confirm=obj.slug)

    def delete_queryset(self, request, queryset):
        for tenant in queryset:
            self.delete_model(request, tenant)

    @admin.action(description=_("Suspend selected tenants"))
    def suspend(self, request, queryset):
        for tenant in queryset:
            services.tenant_suspend(actor=request.user, tenant=tenant)

    @admin.action(description=_("Reactivate selected tenants"))
    def reactivate(self, request, queryset):
        for tenant in queryset:
            services.tenant_reactivate(actor=request.user, tenant=tenant)


@admin.register(TenantEvent)
class TenantEventAdmin(PublicOnlyAdmin):
    list_display = ["at", "tenant_slug", "action", "actor_label"]
    list_filter = ["action"]
    readonly_fields = ["at", "tenant_slug", "action", "actor_label", "detail"]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
