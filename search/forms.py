from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from workers.embedding.images import ImageDecodeError, decode_image


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """Many files in one field. Each file is judged on its own later, so one bad file cannot
    refuse the others; this field only insists that something was sent."""

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "widget", MultipleFileInput(attrs={"accept": "image/*", "multiple": True})
        )
        super().__init__(**kwargs)

    def clean(self, data, initial=None):
        files = [item for item in (data if isinstance(data, list | tuple) else [data]) if item]
        if not files and self.required:
            raise forms.ValidationError("Choose at least one photo.", code="required")
        return files


class UploadForm(forms.Form):
    photos = MultipleFileField(label="Photos")


class TextSearchForm(forms.Form):
    q = forms.CharField(
        label="Describe a photo",
        max_length=500,
        required=False,
        widget=forms.TextInput(
            attrs={"placeholder": "e.g. two red circles on a blue background", "autofocus": True}
        ),
    )


class ImageSearchForm(forms.Form):
    image = forms.FileField(label="Find photos like this one")

    def clean_image(self):
        upload = self.cleaned_data["image"]
        try:
            return decode_image(upload, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS)
        except ImageDecodeError as exc:
            raise forms.ValidationError(f"{upload.name}: {exc}") from None


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
        field.initial = settings.MEDIASEARCH_DUPLICATE_DISTANCE
        field.max_value = widest
        field.validators.append(MaxValueValidator(widest))
        field.widget.attrs["max"] = str(widest)

    def chosen_distance(self) -> float:
        """The chosen distance, or the configured default when none (or no valid one) was given."""
        if self.is_valid() and self.cleaned_data["distance"] is not None:
            return self.cleaned_data["distance"]
        return settings.MEDIASEARCH_DUPLICATE_DISTANCE

    def chosen_page(self) -> int:
        return (self.is_valid() and self.cleaned_data["page"]) or 1


class MultipleIntegerField(forms.Field):
    """Several integers under one name (``?photo=3&photo=7``)."""

    widget = forms.MultipleHiddenInput
    default_error_messages = {"invalid": "Not a list of photo numbers."}

    def __init__(self, *, max_count: int, **kwargs):
        self.max_count = max_count
        super().__init__(**kwargs)

    def to_python(self, value):
        values = value if isinstance(value, list | tuple) else ([value] if value else [])
        try:
            numbers = list(dict.fromkeys(int(item) for item in values))
        except (TypeError, ValueError):
            raise forms.ValidationError(self.error_messages["invalid"], code="invalid") from None
        if len(numbers) > self.max_count:
            raise forms.ValidationError(f"At most {self.max_count} at a time.", code="max_count")
        return numbers

    def validate(self, value):
        if not value and self.required:
            raise forms.ValidationError(self.error_messages["required"], code="required")


class PhotoDeleteForm(forms.Form):
    photo = MultipleIntegerField(max_count=500, error_messages={"required": "Choose photos."})
    keep = forms.IntegerField(required=False, widget=forms.HiddenInput)
    next = forms.CharField(required=False, max_length=2000, widget=forms.HiddenInput)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("keep") is not None and cleaned["keep"] in cleaned.get("photo", []):
            raise forms.ValidationError("The photo to keep cannot also be deleted.")
        return cleaned
