"""The duplicates page's distance and page."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator


class DuplicateFilterForm(forms.Form):
    distance = forms.FloatField(
        label="Distance",
        required=False,
        min_value=0,
        widget=forms.NumberInput(attrs={"step": "0.001", "min": "0"}),
    )
    page = forms.IntegerField(min_value=1, required=False, widget=forms.HiddenInput)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # From settings at request time, so that the bound always matches the configuration.
        widest = settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE
        field = self.fields["distance"]
        assert isinstance(field, forms.FloatField)
        field.initial = settings.MEDIASEARCH_DUPLICATE_DISTANCE
        # The stubs type a FloatField's bound as an int.
        field.max_value = widest  # type: ignore[assignment]
        field.validators.append(MaxValueValidator(widest))
        field.widget.attrs["max"] = str(widest)

    def chosen_distance(self) -> float:
        """The chosen distance, or the configured default when none (or no valid one) was given."""
        if self.is_valid() and self.cleaned_data["distance"] is not None:
            return self.cleaned_data["distance"]
        return settings.MEDIASEARCH_DUPLICATE_DISTANCE

    def chosen_page(self) -> int:
        return (self.is_valid() and self.cleaned_data["page"]) or 1
