"""Writes go through services that check the actor's scope and record history (R6, R9)."""
import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404

from key_accounts import selectors, services
from key_accounts.models import Customer, PhoneNumber

from .conftest import new_customer


def test_every_write_records_actor_unit_channel_and_before_after(tree, people, archive):
    customer = archive.c11
    services.customer_update(actor=people.city, customer=customer, data={"grade": "A", "status": "abnormal"}, via="api")
    services.contact_save(actor=people.city, customer=customer, data={"name": "李四", "phones": "139 0000 1111"})
    history = selectors.customer_history(customer)
    update = next(e for e in history if e["model"] == "customer" and e["label"] == "update")
    assert update["changes"] == {"grade": ["C", "A"], "status": ["active", "abnormal"]}
    assert (update["actor_id"], update["unit"], update["via"]) == (people.city.pk, "C11", "api")
    contact = next(e for e in history if e["model"] == "contact")
    assert contact["label"] == "insert" and contact["changes"]["name"] == [None, "李四"]
    created = history[-1]
    assert created["label"] == "insert" and created["actor"] == people.admin.get_username()


def test_an_update_that_changes_nothing_adds_no_history(tree, people, archive):
    before = len(selectors.customer_history(archive.c11))
    services.customer_update(actor=people.city, customer=archive.c11, data={"status": "active"})
    assert len(selectors.customer_history(archive.c11)) == before


def test_a_delete_is_kept_in_history(tree, people, archive):
    customer_id = archive.c12.pk
    services.customer_delete(actor=people.admin, customer=archive.c12)
    assert not Customer.objects.filter(pk=customer_id).exists()
    from key_accounts.history import event_model

    labels = list(event_model(Customer).objects.filter(pgh_obj_id=customer_id).order_by("pgh_id").values_list("pgh_label", flat=True))
    assert labels == ["insert", "delete"]


def test_scope_decides_who_may_add_change_and_reassign(tree, people, archive):
    with pytest.raises(PermissionDenied):  # an account manager at C11 may not add in C12
        new_customer(people.city, tree.c12, "别处客户")
    assert new_customer(people.city, tree.c11, "本地客户").org_unit == tree.c11
    with pytest.raises(Http404):  # cannot even see C21's customer
        services.customer_update(actor=people.city, customer=archive.c21, data={"name": "x"})
    with pytest.raises(PermissionDenied):  # HQ analysts view, never change
        services.customer_update(actor=people.hq, customer=archive.c11, data={"name": "x"})
    with pytest.raises(PermissionDenied):  # account managers hold no customer.assign
        services.customer_update(actor=people.city, customer=archive.c11, data={"org_unit": tree.c12})
    services.customer_update(actor=people.province, customer=archive.c11, data={"org_unit": tree.c12})
    with pytest.raises(PermissionDenied):  # the province may not hand a customer to P2's city
        services.customer_update(actor=people.province, customer=archive.c11, data={"org_unit": tree.c21})
    archive.c11.refresh_from_db()
    assert archive.c11.org_unit == tree.c12


def test_group_viewers_see_members_in_other_provinces_but_cannot_change_them(tree, people, archive):
    from tests.support.people import make_user, member

    p2_manager = make_user("p2")
    member(p2_manager, tree.p2, "provincial_manager")
    seen = set(selectors.customers(user=p2_manager))
    assert archive.member11 in seen and archive.member21 in seen and archive.c21 in seen
    assert archive.c11 not in seen and archive.c12 not in seen
    with pytest.raises(PermissionDenied):
        services.customer_update(actor=p2_manager, customer=archive.member11, data={"name": "x"})
    # The city serving one member sees that member, not the group's other members.
    city_seen = set(selectors.customers(user=people.city))
    assert archive.member11 in city_seen and archive.member21 not in city_seen and archive.group not in city_seen


@pytest.mark.parametrize("data, field", [
    ({"credit_code": "91110000100017644K"}, "credit_code"),
    ({"kind": "individual", "credit_code": "91110000100017643K"}, "credit_code"),
    ({"name": ""}, "name"),
    ({"status": "nonsense"}, "status"),
    ({"no_such_field": 1}, "no_such_field"),
])
def test_bad_input_names_the_field_and_writes_nothing(tree, people, data, field):
    count = Customer.objects.count()
    with pytest.raises(ValidationError) as error:
        services.customer_create(actor=people.admin, data={"name": "客户", "org_unit": tree.c11, **data})
    assert field in error.value.message_dict
    assert Customer.objects.count() == count


def test_groups_cannot_nest_and_members_need_a_group(tree, people, archive):
    with pytest.raises(ValidationError) as error:
        services.customer_update(actor=people.admin, customer=archive.member11, data={"group": archive.c21})
    assert "group" in error.value.message_dict
    with pytest.raises(ValidationError):
        services.customer_update(actor=people.admin, customer=archive.group, data={"is_group": False})


def test_phone_index_follows_the_customer_and_its_contacts(tree, people, archive):
    customer = archive.c11
    contact = services.contact_save(actor=people.city, customer=customer, data={"name": "王五", "phones": "+86 139-0000-2222；0086 10 8765 4321"})
    digits = set(PhoneNumber.objects.filter(customer=customer).values_list("digits", flat=True))
    assert digits == {"02088886666", "13900002222", "01087654321"}
    services.contact_delete(actor=people.city, contact=contact)
    assert set(PhoneNumber.objects.filter(customer=customer).values_list("digits", flat=True)) == {"02088886666"}
