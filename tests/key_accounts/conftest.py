"""A small tree with people at each level and customers, in alpha's schema (rolled back).

HQ -> P1 (C11, C12), P2 (C21). ``people``: an HQ analyst, P1's provincial manager, C11's account
manager. ``archive``: customers in every city plus a group owned by P2 with members in C11 and
C21, written through the services so history is recorded as in production.
"""
from dataclasses import dataclass

import pytest

from key_accounts import services
from key_accounts.models import Customer, Product
from tests.permissions.conftest import Tree
from tests.support.people import client_for, make_user, member


@pytest.fixture
def tree(in_alpha):
    return Tree()


@dataclass
class People:
    hq: object  # hq_analyst at HQ: views and exports everything
    province: object  # provincial_manager at P1
    city: object  # account_manager at C11
    admin: object  # the tenant admin


@pytest.fixture
def people(tree, admin):
    hq, province, city = make_user("hq"), make_user("prov"), make_user("city")
    member(hq, tree.hq, "hq_analyst")
    member(province, tree.p1, "provincial_manager")
    member(city, tree.c11, "account_manager")
    return People(hq, province, city, admin)


def new_customer(actor, unit, name, **data):
    return services.customer_create(actor=actor, data={"name": name, "org_unit": unit, **data})


@dataclass
class Archive:
    c11: object
    c12: object
    c21: object
    group: object  # owned by P2
    member11: object  # member of group, served by C11
    member21: object  # member of group, served by C21

    def all(self):
        return [self.c11, self.c12, self.c21, self.group, self.member11, self.member21]


@pytest.fixture
def archive(tree, admin):
    group = new_customer(admin, tree.p2, "中国联合集团", is_group=True, kind=Customer.Kind.ENTERPRISE,
                         credit_code="91110000100017643K", is_national_key_account=True)
    return Archive(
        c11=new_customer(admin, tree.c11, "广州市天河科技有限公司", phone="020-8888 6666", status="active"),
        c12=new_customer(admin, tree.c12, "深圳市南山物流有限公司", phone="13800138000"),
        c21=new_customer(admin, tree.c21, "长沙市岳麓教育局", kind=Customer.Kind.GOVERNMENT),
        group=group,
        member11=new_customer(admin, tree.c11, "中国联合集团广州分公司", group=group),
        member21=new_customer(admin, tree.c21, "中国联合集团长沙分公司", group=group),
    )


@pytest.fixture
def product(in_alpha):
    return Product.objects.get_or_create(code="dl-100m", defaults={"name": "专线 100M", "category": "dedicated_line"})[0]


__all__ = ["client_for", "new_customer"]
