"""Forms of the photos concern: upload and delete."""

from __future__ import annotations

from django import forms


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
        cleaned = super().clean() or {}
        if cleaned.get("keep") is not None and cleaned["keep"] in cleaned.get("photo", []):
            raise forms.ValidationError("The photo to keep cannot also be deleted.")
        return cleaned
