from django import forms
from django.conf import settings

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


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. backup script on my laptop"}),
    )
