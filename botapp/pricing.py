"""What a request costs: a model's base price and its pricing rule (`AIModel.pricing`, JSON).

    {
      "per_second": "2.5" | {"720p": "2.5", "1080p": "3", "4k": "6"},   # video: base = rate × seconds
      "resolution_prices": {"4K": "6"},      # a table: the base price at a resolution
      "resolution": {"2K": "1.5", "4K": "2"},  # multipliers by resolution
      "audio_off": "0.75"                    # multiplier when the user switches audio off
    }

unit price = base (the table's entry for the resolution, else per_second × seconds for a video, else
the model's price) × the resolution's multiplier × the audio multiplier, rounded to kopecks (half
up, at least 0.01); the total is the unit price × the number of variants. So a total always splits
into equal variant shares: a partial refund of k variants returns exactly `unit × k`.

Pure and Django-free: the confirm card, the charge and the admin's validation call the same code.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

CENT = Decimal("0.01")
KNOWN_KEYS = frozenset({"per_second", "resolution_prices", "resolution", "audio_off"})
MAX_PRICE = Decimal("99999999.99")


class PricingError(ValueError):
    """The pricing rule is malformed (the admin shows the message)."""


@dataclass(frozen=True, slots=True)
class Quote:
    unit: Decimal  # one variant
    variants: int
    seconds: int | None = None

    @property
    def total(self) -> Decimal:
        return self.unit * self.variants

    def share(self, variants: int) -> Decimal:
        """The price of `variants` of the request's variants (a partial refund)."""
        return self.unit * max(0, min(variants, self.variants))


def _decimal(value: Any, what: str, *, positive: bool = True) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise PricingError(f"{what} must be a number")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise PricingError(f"{what} must be a number, not {value!r}") from None
    if not number.is_finite() or (number <= 0 if positive else number < 0) or number > MAX_PRICE:
        raise PricingError(f"{what} must be a positive number")
    return number


def _table(value: Any, what: str) -> dict[str, Decimal]:
    if not isinstance(value, dict):
        raise PricingError(f"{what} must be an object {{resolution: number}}")
    return {str(k): _decimal(v, f"{what}[{k}]") for k, v in value.items()}


def validate_rule(rule: Any, *, kind: str, resolutions: tuple[str, ...] = ()) -> dict[str, Any]:
    """Check a pricing rule (the admin's form); return it unchanged. Raises PricingError."""
    if rule in (None, ""):
        return {}
    if not isinstance(rule, dict):
        raise PricingError('The pricing rule must be a JSON object, e.g. {"resolution": {"4K": 2}}.')
    unknown = sorted(set(rule) - KNOWN_KEYS)
    if unknown:
        raise PricingError(f"Unknown pricing keys: {', '.join(unknown)}.")
    per_second = rule.get("per_second")
    if per_second is not None:
        if kind != "video":
            raise PricingError("per_second applies to video models only.")
        if isinstance(per_second, dict):
            table = _table(per_second, "per_second")
            if resolutions and set(resolutions) - set(table):
                missing = ", ".join(sorted(set(resolutions) - set(table)))
                raise PricingError(f"per_second has no rate for: {missing}.")
        else:
            _decimal(per_second, "per_second")
    for key in ("resolution_prices", "resolution"):
        if key in rule:
            table = _table(rule[key], key)
            stray = sorted(set(table) - set(resolutions))
            if stray:
                raise PricingError(f"{key} names resolutions the model does not offer: {', '.join(stray)}.")
    if "audio_off" in rule:
        _decimal(rule["audio_off"], "audio_off")
    return rule


def quote(
    *, price: Decimal, rule: dict[str, Any] | None, kind: str, params: dict[str, Any], variants: int = 1
) -> Quote:
    """The price of a request with these (validated) options."""
    rule = rule or {}
    resolution = params.get("resolution")
    seconds = int(params["duration_seconds"]) if kind == "video" and params.get("duration_seconds") else None
    base = Decimal(price)
    table = rule.get("resolution_prices") or {}
    per_second = rule.get("per_second")
    if resolution in table:
        base = Decimal(str(table[resolution]))
    elif per_second is not None and seconds:
        rate = per_second.get(resolution) if isinstance(per_second, dict) else per_second
        if rate is not None:
            base = Decimal(str(rate)) * seconds
    multiplier = Decimal(str((rule.get("resolution") or {}).get(resolution, 1)))
    if params.get("generate_audio") is False and "audio_off" in rule:
        multiplier *= Decimal(str(rule["audio_off"]))
    unit = max(CENT, (base * multiplier).quantize(CENT, rounding=ROUND_HALF_UP))
    return Quote(unit=unit, variants=max(1, int(variants)), seconds=seconds)
