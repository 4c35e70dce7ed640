"""Every operator action respects Django's permissions (the rule is in botapp/admin/dashboard.py's
docstring): a staff user with every permission but the money ones sees no revenue, cannot grant or take
tokens, refund a generation, send or stop a broadcast, or export payments and the ledger, even by a
forged POST, and nothing changes; a superuser can. Then every action of every registered ModelAdmin:
each declares its permission, and one the user lacks is neither offered nor run."""

from __future__ import annotations

import itertools
import uuid
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.core.exceptions import PermissionDenied
from django.test import RequestFactory
from django.urls import NoReverseMatch, reverse

from botapp.models import Broadcast, GenRequest, Payment, TgUser, Transaction, UserBalance
from botapp.services import broadcasts as broadcast_service
from botapp.services.generation import GenerationService
from botapp.services.payments import PaymentService

pytestmark = pytest.mark.django_db

# The money permissions a support operator does not have. Everything else of the app, they have.
MONEY = ("view_payment", "view_transaction", "view_userbalance", "change_userbalance", "change_genrequest",
         "change_payment", "send_broadcast")  # fmt: skip
# Actions any viewer of a list may run: they read what the list already shows.
VIEW_LEVEL_ACTIONS = {"export_csv"}
_seq = itertools.count()


def url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def messages_of(response) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def action_choices(response) -> set[str]:
    form = response.context.get("action_form")
    return {name for name, _ in form.fields["action"].choices} if form else set()


def post_action(client, model, action: str, ids, **extra):
    data = {"action": action, "_selected_action": [str(i) for i in ids], "index": "0", **extra}
    return client.post(url(model, "changelist"), data)


@pytest.fixture(autouse=True)
def no_dispatch(monkeypatch):
    dispatched: list[int] = []
    monkeypatch.setattr(broadcast_service, "_dispatch", lambda broadcast_id, countdown=None: dispatched.append(1))
    return dispatched


@pytest.fixture
def staff_with(django_user_model):
    def make(*codenames: str, superuser: bool = False):
        factory = django_user_model.objects.create_superuser if superuser else django_user_model.objects.create_user
        user = factory(f"operator{next(_seq)}", password="x", is_staff=True)
        if codenames:
            user.user_permissions.set(
                Permission.objects.filter(content_type__app_label="botapp", codename__in=codenames)
            )
        return django_user_model.objects.get(pk=user.pk)  # no cached permissions

    return make


@pytest.fixture
def support(staff_with):
    """A support operator: every permission of the app except the money ones."""
    codenames = Permission.objects.filter(content_type__app_label="botapp").exclude(codename__in=MONEY)
    return staff_with(*codenames.values_list("codename", flat=True))


@pytest.fixture
def as_support(client, support):
    client.force_login(support)
    return client


@pytest.fixture
def as_superuser(client, staff_with):
    client.force_login(staff_with(superuser=True))
    return client


@pytest.fixture
def customer(make_user):
    """A user with a balance, a paid payment (ledger rows) and a generation in flight (charged)."""
    user = make_user(balance=20, username="carol")
    payment = PaymentService.create_invoice(user_id=user.pk, package_id=_package_id())
    PaymentService.complete(
        invoice_payload=payment.invoice_payload,
        provider_charge_id="charge-perm-1",
        total_amount=int(payment.amount),
        currency=payment.currency,
    )
    return user


def _package_id() -> int:
    from botapp.models import TopUpPackage

    return TopUpPackage.objects.filter(is_active=True).values_list("pk", flat=True).first()


# --- the dashboard ---------------------------------------------------------------------------------
def test_support_sees_no_revenue_on_the_dashboard(as_support, customer):
    response = as_support.get(reverse("admin:index"))
    assert response.status_code == 200
    assert response.context["dashboard"]["money"] is False
    html = response.content.decode()
    assert 'id="users"' in html and 'id="generations"' in html and 'id="referrals"' in html
    assert 'id="money"' not in html
    for word in ("Revenue", "ARPU", "ARPPU", "Margin", "Token price", "Tokens sold", 'data-kpi="revenue"'):
        assert word not in html, word
    # The sidebar offers no money page either.
    for model in (Payment, Transaction, UserBalance):
        assert url(model, "changelist") not in html, model


def test_superuser_sees_revenue(as_superuser, customer):
    html = as_superuser.get(reverse("admin:index")).content.decode()
    assert 'id="money"' in html and 'data-kpi="revenue"' in html
    for model in (Payment, Transaction, UserBalance):
        assert url(model, "changelist") in html, model


# --- grant or take tokens --------------------------------------------------------------------------
def adjust(client, user: TgUser, amount: str = "10"):
    fields = {"apply": "1", "operation_id": str(uuid.uuid4()), "bucket": "main", "reason": "ticket 7", "amount": amount}
    return post_action(client, TgUser, "adjust_balance", [user.pk], **fields)


def admin_rows(user: TgUser) -> int:
    """Admin adjustments of the user (make_user funds its balance with one)."""
    return Transaction.objects.filter(user=user, kind=Transaction.Kind.ADMIN_ADJUSTMENT).count()


def test_support_cannot_grant_or_take_tokens(as_support, customer):
    page = as_support.get(url(TgUser, "changelist"))
    assert page.status_code == 200
    assert "adjust_balance" not in action_choices(page)
    assert {"ban", "unban"} <= action_choices(page)  # moderation is theirs
    before, rows = UserBalance.objects.get(user=customer).balance, admin_rows(customer)
    for amount in ("10", "-5"):
        response = adjust(as_support, customer, amount)
        assert response.status_code in (302, 403)
    assert admin_rows(customer) == rows  # no ledger row
    assert UserBalance.objects.get(user=customer).balance == before


def test_superuser_grants_tokens(as_superuser, customer):
    assert "adjust_balance" in action_choices(as_superuser.get(url(TgUser, "changelist")))
    before, rows = UserBalance.objects.get(user=customer).balance, admin_rows(customer)
    adjust(as_superuser, customer, "10")
    assert admin_rows(customer) == rows + 1
    assert UserBalance.objects.get(user=customer).balance == before + Decimal("10")


# --- refunds ---------------------------------------------------------------------------------------
@pytest.fixture
def in_flight(customer, nano) -> GenRequest:
    return GenerationService.create_request(user_id=customer.pk, ai_model_id=nano.pk, prompt="a lighthouse")


def refunds(gen: GenRequest) -> int:
    return Transaction.objects.filter(gen_request=gen, kind=Transaction.Kind.REFUND).count()


def test_support_cannot_refund_a_generation(as_support, in_flight):
    page = as_support.get(url(GenRequest, "changelist"))
    assert page.status_code == 200
    assert "refund" not in action_choices(page)
    response = post_action(as_support, GenRequest, "refund", [in_flight.pk])
    assert response.status_code in (302, 403)
    in_flight.refresh_from_db()
    assert in_flight.refunded_at is None and in_flight.status != GenRequest.Status.FAILED
    assert refunds(in_flight) == 0


def test_superuser_refunds_a_generation(as_superuser, in_flight):
    assert "refund" in action_choices(as_superuser.get(url(GenRequest, "changelist")))
    post_action(as_superuser, GenRequest, "refund", [in_flight.pk])
    assert refunds(in_flight) == 1


# --- broadcasts ------------------------------------------------------------------------------------
@pytest.mark.parametrize("view", ["start", "preview", "pause", "resume", "cancel"])
def test_support_cannot_send_or_stop_a_broadcast(as_support, customer, no_dispatch, view):
    draft = Broadcast.objects.create(text="Hello")
    sending = Broadcast.objects.create(text="Running", status=Broadcast.Status.SENDING)
    page = as_support.get(url(Broadcast, "change", draft.pk))
    assert page.status_code == 200  # composing is theirs
    assert url(Broadcast, view, draft.pk) not in page.content.decode()  # no button
    for broadcast in (draft, sending):
        assert as_support.get(url(Broadcast, view, broadcast.pk)).status_code == 403
        assert as_support.post(url(Broadcast, view, broadcast.pk)).status_code == 403
    bulk = as_support.get(url(Broadcast, "changelist"))
    assert not {"pause_selected", "resume_selected", "cancel_selected"} & action_choices(bulk)
    for action in ("pause_selected", "cancel_selected"):
        post_action(as_support, Broadcast, action, [sending.pk])
    assert Broadcast.objects.get(pk=draft.pk).status == Broadcast.Status.DRAFT
    assert Broadcast.objects.get(pk=sending.pk).status == Broadcast.Status.SENDING
    assert no_dispatch == []


def test_superuser_starts_and_cancels_a_broadcast(as_superuser, customer, no_dispatch):
    broadcast = Broadcast.objects.create(text="Hello")
    as_superuser.post(url(Broadcast, "start", broadcast.pk))
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.SENDING and no_dispatch
    post_action(as_superuser, Broadcast, "cancel_selected", [broadcast.pk])
    assert Broadcast.objects.get(pk=broadcast.pk).status == Broadcast.Status.CANCELLED


# --- exports ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", [Payment, Transaction])
def test_support_cannot_export_money(as_support, customer, model):
    ids = list(model.objects.values_list("pk", flat=True))
    assert ids
    assert as_support.get(url(model, "changelist")).status_code == 403
    response = post_action(as_support, model, "export_csv", ids)
    assert response.status_code == 403
    assert not response.get("Content-Type", "").startswith("text/csv")


@pytest.mark.parametrize("model", [Payment, Transaction])
def test_superuser_exports_money(as_superuser, customer, model):
    ids = list(model.objects.values_list("pk", flat=True))
    response = post_action(as_superuser, model, "export_csv", ids)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")


def test_the_change_permission_alone_does_not_open_a_read_only_money_list(client, staff_with, customer):
    client.force_login(staff_with("change_payment", "change_transaction"))
    assert client.get(url(Payment, "changelist")).status_code == 403
    assert client.get(url(Transaction, "changelist")).status_code == 403
    # Nor the refund form of a payment, which shows it (refunding needs view_payment too).
    payment = Payment.objects.get(provider_charge_id="charge-perm-1")
    for method in (client.get, client.post):
        assert method(url(Payment, "refund_stars_detail", payment.pk)).status_code == 403
    assert post_action(client, Payment, "refund_stars", [payment.pk]).status_code == 403
    assert Payment.objects.get(pk=payment.pk).status == Payment.Status.SUCCEEDED


# --- every action of every ModelAdmin ----------------------------------------------------------------
def every_action() -> list[tuple[str, str, str]]:
    """(model label, kind, action name) for every action of every registered ModelAdmin: the bulk
    actions of the list (Django's delete_selected included) and unfold's list, row, detail and
    submit-line buttons."""
    found = []
    for model, model_admin in admin.site._registry.items():
        label = model._meta.label_lower
        for _func, name, _description in model_admin._get_base_actions():
            found.append((label, "bulk", name))
        for kind in ("list", "row", "detail", "submit_line"):
            names = getattr(model_admin, "_extract_action_names", lambda actions: [])(
                getattr(model_admin, f"actions_{kind}", ()) or ()
            )
            found.extend((label, kind, name) for name in names)
    return sorted(found)


ACTIONS = every_action()


def request_as(user):
    request = RequestFactory().post("/")
    request.user = user
    return request


def model_admin_of(label: str):
    return next(ma for model, ma in admin.site._registry.items() if model._meta.label_lower == label)


def action_function(model_admin, kind: str, name: str):
    if kind == "bulk":
        return model_admin.get_action(name)[0]
    return getattr(model_admin, name)


def test_the_actions_are_found():
    names = {(label, name) for label, _, name in ACTIONS}
    for expected in [("botapp.tguser", "adjust_balance"), ("botapp.genrequest", "refund"),
                     ("botapp.broadcast", "start"), ("botapp.broadcast", "cancel_selected"),
                     ("botapp.payment", "export_csv"), ("botapp.transaction", "export_csv")]:  # fmt: skip
        assert expected in names


@pytest.mark.parametrize(("label", "kind", "name"), ACTIONS, ids=[f"{a}.{c}" for a, _, c in ACTIONS])
def test_every_action_declares_a_permission(label, kind, name):
    func = action_function(model_admin_of(label), kind, name)
    permissions = tuple(getattr(func, "allowed_permissions", ()) or ())
    assert permissions, f"{label} action {name!r} has no permission check (@action(permissions=[...]))"
    if set(permissions) <= {"view"}:
        assert name in VIEW_LEVEL_ACTIONS, f"{label} action {name!r} needs only the view permission"


@pytest.mark.parametrize(("label", "kind", "name"), ACTIONS, ids=[f"{a}.{c}" for a, _, c in ACTIONS])
def test_an_action_is_refused_to_a_viewer(label, kind, name, staff_with, django_user_model):
    """A staff user who may only view the model: the action is not offered, and calling it (a forged
    POST reaches the same function) raises PermissionDenied. A superuser is offered it."""
    model_admin = model_admin_of(label)
    app_label, model_name = label.split(".")
    viewer = django_user_model.objects.create_user(f"viewer{next(_seq)}", password="x", is_staff=True)
    viewer.user_permissions.set(
        Permission.objects.filter(content_type__app_label=app_label, codename=f"view_{model_name}")
    )
    viewer = django_user_model.objects.get(pk=viewer.pk)
    superuser = staff_with(superuser=True)
    func = action_function(model_admin, kind, name)
    view_level = name in VIEW_LEVEL_ACTIONS

    if kind == "bulk":
        # A superuser is offered it unless the page allows it nobody (delete on a read-only list).
        allowed = all(
            getattr(model_admin, f"has_{permission}_permission")(request_as(superuser))
            for permission in func.allowed_permissions
            if "." not in permission
        )
        assert (name in model_admin.get_actions(request_as(superuser))) is (allowed and model_admin.actions is not None)
        offered = name in model_admin.get_actions(request_as(viewer))
        assert offered is view_level
        if not view_level and name != "delete_selected":  # Django's own checks its permission itself
            with pytest.raises(PermissionDenied):
                func(model_admin, request_as(viewer), model_admin.model.objects.none())
        return

    listed = {
        "list": lambda request: model_admin.get_actions_list(request),
        "row": lambda request: model_admin.get_actions_row(request),
        "detail": lambda request: model_admin.get_actions_detail(request, 1),
        "submit_line": lambda request: model_admin.get_actions_submit_line(request, 1),
    }[kind]
    assert name in {action.method.__name__ for action in listed(request_as(superuser))}
    assert (name in {action.method.__name__ for action in listed(request_as(viewer))}) is view_level
    if view_level:
        return
    with pytest.raises(PermissionDenied):
        func(request_as(viewer), object_id=1) if kind in ("detail", "row", "submit_line") else func(request_as(viewer))
    try:  # the URL of the button answers 403 too
        path = reverse(f"admin:{app_label}_{model_name}_{name}", args=(1,) if kind != "list" else ())
    except NoReverseMatch:
        return  # submit-line actions have no URL of their own
    from django.test import Client

    client = Client()
    client.force_login(viewer)
    assert client.post(path).status_code == 403


def test_staff_without_the_balance_permission_sees_no_balances_on_the_users_pages(client, django_user_model, make_user):
    """The users list, the user page and the users' CSV show balances only with view_userbalance."""
    from django.contrib.auth.models import Permission

    user = make_user(balance=123, username="rich")
    staff = django_user_model.objects.create_user("helpdesk", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_tguser"))
    client.force_login(staff)
    listing = client.get(reverse("admin:botapp_tguser_changelist")).content.decode()
    assert "rich" in listing and "123" not in listing
    page = client.get(reverse("admin:botapp_tguser_change", args=(user.pk,))).content.decode()
    assert "123.00" not in page
    export = client.post(
        reverse("admin:botapp_tguser_changelist"), {"action": "export_csv", "_selected_action": [str(user.pk)]}
    )
    assert export.status_code == 200 and b"rich" in export.content and b"123" not in export.content

    staff.user_permissions.add(Permission.objects.get(codename="view_userbalance"))
    staff = django_user_model.objects.get(pk=staff.pk)  # a fresh permission cache
    client.force_login(staff)
    assert "123" in client.get(reverse("admin:botapp_tguser_changelist")).content.decode()
