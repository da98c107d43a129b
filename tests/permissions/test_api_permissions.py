"""ScopedPermission on small views of its own: view-level and object-level checks, 404 for what
the caller may not see, 403 for what they see but may not do, modules switched off per level."""
import pytest
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView

from org_hierarchy.models import OrgUnit
from permissions import services
from permissions.api_permissions import ScopedPermission

from .conftest import make_user, member


class UnitView(APIView):
    permission_classes = [ScopedPermission]
    resource = "org_unit"
    queryset = OrgUnit.objects.all()

    def _answer(self, request, pk):
        unit = OrgUnit.objects.get(pk=pk)  # deliberately unfiltered: the object check must refuse
        self.check_object_permissions(request, unit)
        return Response({"code": unit.code})

    get = patch = delete = _answer

    def post(self, request, pk):
        return Response({"ok": True})


class CampaignView(APIView):
    permission_classes = [ScopedPermission]
    resource = "customer"
    module = "campaigns"
    scoped_actions = {"POST": "export"}

    def get(self, request):
        return Response([])

    post = get


def call(view, method, user, **kwargs):
    request = getattr(APIRequestFactory(), method)("/", format="json")
    if user is not None:
        force_authenticate(request, user=user)
    return view.as_view()(request, **kwargs)


@pytest.fixture
def people(tree):
    padmin, am = make_user("padmin"), make_user("am")
    member(padmin, tree.p1, "provincial_admin")
    member(am, tree.c11, "account_manager")
    return padmin, am


def test_object_checks_answer_404_outside_and_403_for_what_is_seen(tree, people):
    padmin, am = people
    assert call(UnitView, "get", padmin, pk=tree.c12.pk).status_code == 200
    assert call(UnitView, "patch", padmin, pk=tree.c12.pk).status_code == 200
    response = call(UnitView, "get", padmin, pk=tree.c21.pk)
    assert response.status_code == 404 and response.data["error"]["code"] == "not_found"
    assert call(UnitView, "patch", padmin, pk=tree.p2.pk).status_code == 404
    assert call(UnitView, "get", am, pk=tree.c11.pk).status_code == 200
    assert call(UnitView, "patch", am, pk=tree.c11.pk).status_code == 403  # holds no org_unit.change at all
    assert call(UnitView, "post", am, pk=tree.c11.pk).status_code == 403
    assert call(UnitView, "post", padmin, pk=tree.c11.pk).status_code == 200


def test_object_check_is_403_where_the_action_is_held_elsewhere(tree, people):
    padmin, _am = people
    member(padmin, tree.p2, "hq_analyst")  # may view P2's units, may change only P1's
    assert call(UnitView, "get", padmin, pk=tree.c21.pk).status_code == 200
    assert call(UnitView, "delete", padmin, pk=tree.c21.pk).status_code == 403


def test_a_direct_grant_alone_opens_its_object_only(tree):
    guest = make_user("guest")
    services.grant_add(actor="system", user=guest, obj=tree.p2, action="view")
    assert call(UnitView, "get", guest, pk=tree.p2.pk).status_code == 200
    assert call(UnitView, "get", guest, pk=tree.c21.pk).status_code == 404
    assert call(UnitView, "patch", guest, pk=tree.p2.pk).status_code == 403
    assert call(UnitView, "get", make_user("nobody"), pk=tree.p2.pk).status_code == 403


def test_anonymous_and_inactive_callers_are_refused(tree, people):
    assert call(UnitView, "get", None, pk=tree.hq.pk).status_code == 401
    padmin, _am = people
    padmin.is_active = False
    assert call(UnitView, "get", padmin, pk=tree.p1.pk).status_code in (401, 403)


def test_a_switched_off_module_answers_404(tree, people):
    padmin, am = people
    assert call(CampaignView, "get", am).status_code == 200
    services.module_set(actor="system", module="campaigns", level=tree.levels["city"], enabled=False)
    response = call(CampaignView, "get", am)
    assert response.status_code == 404
    assert call(CampaignView, "get", padmin).status_code == 200  # on at the province level
    assert call(CampaignView, "get", make_user("root", is_superuser=True)).status_code == 200


def test_scoped_actions_override_the_method(tree, people):
    padmin, am = people
    assert call(CampaignView, "post", padmin).status_code == 200  # holds customer.export
    assert call(CampaignView, "post", am).status_code == 403  # holds customer.add, not export
