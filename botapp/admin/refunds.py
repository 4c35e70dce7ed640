"""The payments page's "Refund Stars payment…" and "Refund card payment…" (each a bulk action on one
selected payment, and a button on the payment's page): a confirmation form, then
botapp.services.refunds.refund_stars_payment or botapp.services.card_refunds.refund_card_payment.

The form shows the payment, what the refund takes back from the payer (tokens and bonus, from the buckets
they went to) and from the referrer (the reward it produced), what each has now and the shortfall (the
part already spent, recorded as a loss), with a "refund anyway" checkbox that a shortfall requires. One
key per rendered form (a hidden UUID): the same form submitted twice refunds once. The service's refusals
(Telegram's, a shortfall without the checkbox, an unknown outcome) come back on the form. Needs the
`refund` permission: `botapp.change_payment`.
"""

from __future__ import annotations

import uuid

from django import forms
from django.contrib import messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.admin.utils import unquote
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from unfold.decorators import action

from botapp.models import Payment, TgUser
from botapp.services import card_refunds
from botapp.services.refunds import RefundError, RefundResult, plan_refund, refund_stars_payment, why_not_refundable

ICON = "currency_exchange"


class StarsRefundForm(forms.Form):
    refund_anyway = forms.BooleanField(
        required=False,
        label=_("Refund anyway (record the shortfall as a loss)"),
        help_text=_("Needed when tokens this payment gave were already spent: what is left is taken back."),
    )
    # One id per rendered form: the same form submitted twice (a double click, a browser retry) refunds once.
    operation_id = forms.UUIDField(widget=forms.HiddenInput)


class StarsRefundMixin:
    """For the Payment admin (a ModelAdmin)."""

    def has_refund_permission(self, request: HttpRequest, obj=None) -> bool:
        return request.user.has_perm("botapp.change_payment")

    @action(description=_("Refund Stars payment…"), permissions=["refund"], icon=ICON)
    def refund_stars(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        payments = list(queryset.select_related("user")[:2])
        if len(payments) != 1:
            self.message_user(request, gettext("Select exactly one payment to refund."), messages.ERROR)
            return None
        return self._refund_form(request, payments[0], back_url=reverse("admin:botapp_payment_changelist"), bulk=True)

    @action(description=_("Refund Stars payment…"), url_path="refund-stars", permissions=["refund"], icon=ICON)
    def refund_stars_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            raise Http404("no such payment")
        change_url = reverse("admin:botapp_payment_change", args=(payment.pk,))
        return self._refund_form(request, payment, back_url=change_url, bulk=False) or HttpResponseRedirect(change_url)

    @action(description=_("Refund card payment…"), permissions=["refund"], icon=ICON)
    def refund_card(self, request: HttpRequest, queryset: QuerySet) -> TemplateResponse | None:
        payments = list(queryset.select_related("user")[:2])
        if len(payments) != 1:
            self.message_user(request, gettext("Select exactly one payment to refund."), messages.ERROR)
            return None
        back_url = reverse("admin:botapp_payment_changelist")
        return self._refund_form(request, payments[0], back_url=back_url, bulk=True, card=True)

    @action(description=_("Refund card payment…"), url_path="refund-card", permissions=["refund"], icon=ICON)
    def refund_card_detail(self, request: HttpRequest, object_id: str) -> HttpResponse:
        payment = self.get_object(request, unquote(object_id))
        if payment is None:
            raise Http404("no such payment")
        change_url = reverse("admin:botapp_payment_change", args=(payment.pk,))
        form = self._refund_form(request, payment, back_url=change_url, bulk=False, card=True)
        return form or HttpResponseRedirect(change_url)

    def _refund_form(
        self, request: HttpRequest, payment: Payment, *, back_url: str, bulk: bool, card: bool = False
    ) -> TemplateResponse | None:
        if request.method == "POST" and "apply" in request.POST:
            form = StarsRefundForm(request.POST)
            if form.is_valid():
                try:
                    result = (card_refunds.refund_card_payment if card else refund_stars_payment)(
                        payment_id=payment.pk,
                        operator=request.user.get_username(),
                        refund_anyway=form.cleaned_data["refund_anyway"],
                        key=str(form.cleaned_data["operation_id"]),
                    )
                except RefundError as exc:
                    form.add_error(None, exc.message)
                else:
                    self._report(request, result)
                    return None
        else:
            form = StarsRefundForm(initial={"operation_id": uuid.uuid4()})
        payment = Payment.objects.select_related("user").get(pk=payment.pk)
        if card:
            blocker = card_refunds.why_not_refundable(payment)
            plan, money_back = card_refunds.plan_card_refund(payment_id=payment.pk)
            title = gettext("Refund card payment #%(id)s") % {"id": payment.pk}
        else:
            blocker = why_not_refundable(payment)
            plan, money_back = plan_refund(payment_id=payment.pk), payment.amount
            title = gettext("Refund Stars payment #%(id)s") % {"id": payment.pk}
        request.current_app = self.admin_site.name
        return TemplateResponse(
            request,
            "admin/botapp/payment/refund_stars.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "card": card,
                "money_back": money_back,
                "subtitle": None,
                "opts": self.opts,
                "media": self.media + form.media,
                "form": form,
                "payment": payment,
                "plan": plan,
                "referrer": TgUser.objects.filter(pk=plan.referrer.user_id).first() if plan.referrer else None,
                "blocker": blocker.message if blocker else "",
                "bulk": bulk,
                "back_url": back_url,
                "action_name": "refund_card" if card else "refund_stars",
                "action_checkbox_name": ACTION_CHECKBOX_NAME,
            },
        )

    def _report(self, request: HttpRequest, result: RefundResult) -> None:
        payment = result.payment
        if result.replayed:
            self.message_user(
                request,
                gettext("This form was already applied: payment #%(id)s was refunded once.") % {"id": payment.pk},
                messages.WARNING,
            )
            return
        if not result.applied:
            self.message_user(
                request,
                gettext("Payment #%(id)s was recorded as refunded meanwhile; nothing more was taken back.")
                % {"id": payment.pk},
                messages.WARNING,
            )
            return
        refund = payment.raw.get("refund") or {}
        params = {
            "id": payment.pk,
            "stars": int(payment.amount),
            "taken": refund.get("taken", "0"),
            "reward": refund.get("referral_taken", "0"),
            "shortfall": refund.get("shortfall", "0"),
        }
        if payment.provider == Payment.Provider.YOOKASSA:
            params["money"] = f"{payment.amount} {payment.currency}"
            text = gettext(
                "Payment #%(id)s refunded: %(money)s back to the card. Taken back: %(taken)s tokens from the user, "
                "%(reward)s from the referrer; shortfall recorded as a loss: %(shortfall)s."
            )
        elif result.refunded_elsewhere:
            text = gettext(
                "Telegram says payment #%(id)s had already been refunded (by its support, or by an earlier attempt "
                "whose answer was lost): recorded now. Taken back: %(taken)s tokens from the user, %(reward)s from "
                "the referrer; shortfall recorded as a loss: %(shortfall)s."
            )
        else:
            text = gettext(
                "Payment #%(id)s refunded: %(stars)s ⭐ back to the user. Taken back: %(taken)s tokens from the user, "
                "%(reward)s from the referrer; shortfall recorded as a loss: %(shortfall)s."
            )
        self.message_user(request, text % params, messages.WARNING if result.refunded_elsewhere else messages.SUCCESS)
        self.log_change(request, payment, text % params)
