"""Prompt styles: the presets the bot's options screen offers (🎨 Style), with their example images.

A template must hold {prompt} exactly once and no other brace (botapp.services.styles.validate_template);
the bot replaces {prompt} by the user's description. The example image is stored in the default
storage (private on S3, not served under MEDIA_URL in production), so the admin streams it itself to
staff who may view styles: /admin/botapp/promptstyle/<id>/example/.
"""

from __future__ import annotations

import mimetypes

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from unfold.admin import ModelAdmin
from unfold.decorators import display

from botapp.admin.base import ActivationActionsMixin, count_of
from botapp.models import GenRequest, PromptStyle
from botapp.services.styles import validate_template

MAX_EXAMPLE_BYTES = 5 * 1024 * 1024  # Telegram takes photos up to 10 MB; an example needs far less
EXAMPLE_TYPES = {"JPEG", "PNG", "WEBP"}  # what Telegram shows as a photo


class PromptStyleForm(forms.ModelForm):
    class Meta:
        model = PromptStyle
        fields = (
            "emoji",
            "name",
            "name_en",
            "applies_to",
            "prompt_template",
            "example_image",
            "is_active",
            "sort_order",
        )

    def clean_prompt_template(self) -> str:
        template = (self.cleaned_data.get("prompt_template") or "").strip()
        validate_template(template)
        return template

    def clean_example_image(self):
        image = self.cleaned_data.get("example_image")
        if not image or not hasattr(image, "image"):  # unchanged (a stored file) or cleared
            return image
        if image.size > MAX_EXAMPLE_BYTES:
            raise ValidationError(_("The example image must be at most 5 MB."))
        if (getattr(image.image, "format", None) or "").upper() not in EXAMPLE_TYPES:
            raise ValidationError(_("The example image must be a JPEG, PNG or WebP picture."))
        return image


@admin.register(PromptStyle)
class PromptStyleAdmin(ActivationActionsMixin, ModelAdmin):
    form = PromptStyleForm
    list_display = (
        "display_name",
        "example_thumb",
        "applies_to",
        "template_excerpt",
        "is_active",
        "sort_order",
        "requests_count",
    )
    list_display_links = ("display_name",)
    list_editable = ("is_active", "sort_order")
    list_filter = ("is_active", "applies_to")
    search_fields = ("name", "name_en", "prompt_template")
    ordering = ("sort_order", "id")
    actions = ("activate", "deactivate")
    readonly_fields = ("example_preview", "created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("emoji", "name", "name_en", "applies_to", "is_active", "sort_order")}),
        (
            _("Template"),
            {
                "fields": ("prompt_template",),
                "description": _(
                    "The final prompt the model gets: {prompt} is replaced by the user's description, e.g. "
                    '"{prompt}, watercolour painting, soft edges". Only {prompt} may be in braces.'
                ),
            },
        ),
        (_("Example"), {"fields": ("example_image", "example_preview")}),
        (_("Timestamps"), {"fields": ("created_at", "updated_at")}),
    )

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(req_count=count_of(GenRequest, "style"))

    def get_urls(self) -> list[URLPattern]:
        view = self.admin_site.admin_view(self.example_view)
        return [path("<path:object_id>/example/", view, name="botapp_promptstyle_example"), *super().get_urls()]

    def example_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The example image, streamed from storage (staff who may view styles)."""
        style = self.get_object(request, object_id)
        if style is None or not style.example_image:
            raise Http404("no such example")
        if not self.has_view_permission(request, style):
            raise PermissionDenied
        content_type = mimetypes.guess_type(style.example_image.name)[0] or "application/octet-stream"
        if not content_type.startswith("image/") or content_type == "image/svg+xml":
            content_type = "application/octet-stream"  # never render anything else on the admin's origin
        response = FileResponse(style.example_image.open("rb"), content_type=content_type)
        response["X-Content-Type-Options"] = "nosniff"
        return response

    def _example_url(self, obj: PromptStyle) -> str:
        return reverse("admin:botapp_promptstyle_example", args=(obj.pk,))

    @display(description=_("Style"), ordering="name")
    def display_name(self, obj: PromptStyle) -> str:
        return str(obj)

    @display(description=_("Example"))
    def example_thumb(self, obj: PromptStyle) -> str:
        if not obj.example_image:
            return "—"
        return format_html(
            '<img src="{}" alt="" style="max-height:48px;max-width:72px;border-radius:4px">', self._example_url(obj)
        )

    @display(description=_("Example"))
    def example_preview(self, obj: PromptStyle) -> str:
        if not obj.pk or not obj.example_image:
            return "—"
        return format_html('<img src="{}" alt="" style="max-height:240px;max-width:360px">', self._example_url(obj))

    @display(description=_("Template"))
    def template_excerpt(self, obj: PromptStyle) -> str:
        text = " ".join(obj.prompt_template.split())
        return text if len(text) <= 80 else text[:79] + "…"

    @display(description=_("Generation requests"), ordering="req_count")
    def requests_count(self, obj: PromptStyle) -> int:
        return obj.req_count
