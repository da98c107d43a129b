"""Customers belong to their owning unit; a group customer's viewers see its members."""
from permissions import registry

from .models import Customer, CustomerUserObjectPermission

registry.register(
    Customer, resource="customer", unit_field="org_unit", grant_model=CustomerUserObjectPermission,
    group_field="group", group_flag="is_group",
)
