from django import forms
from django.conf import settings
from django.core.validators import MaxValueValidator

from search.query import SearchFilters, Sort, Strictness
from search.selectors import SearchChoices
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


QUERY_HELP = (
    "Describe a photo. A leading minus leaves things out: beach -people, "
    'stars -"red star". With an image, the text steers it: "at night".'
)


class SearchForm(forms.Form):
    """The query, the strictness, the order and the filters; any combination is valid.

    Choices that depend on what the user can see (albums, cameras, tags, owners for staff) come
    from ``choices``, built by the view from selectors.
    """

    q = forms.CharField(
        label="Describe a photo",
        max_length=500,
        required=False,
        help_text=QUERY_HELP,
        widget=forms.TextInput(
            attrs={
                "type": "search",
                "placeholder": "e.g. two red circles on a blue background",
                "autofocus": True,
                "aria-describedby": "query-help",
            }
        ),
    )
    similar = forms.IntegerField(required=False, widget=forms.HiddenInput)
    strictness = forms.ChoiceField(
        label="Matches",
        choices=[
            (Strictness.LOOSE, "Loose"),
            (Strictness.NORMAL, "Good"),
            (Strictness.STRICT, "Strict"),
            (Strictness.ALL, "Show all, ranked"),
        ],
        initial=Strictness.NORMAL,
        required=False,
    )
    sort = forms.ChoiceField(
        label="Order",
        choices=[
            (Sort.RELEVANCE, "Best match first"),
            (Sort.TAKEN_NEWEST, "Newest taken first"),
            (Sort.TAKEN_OLDEST, "Oldest taken first"),
        ],
        required=False,
    )
    taken_after = forms.DateField(
        label="Taken from", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    taken_before = forms.DateField(
        label="Taken until", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    camera = forms.ChoiceField(label="Camera", required=False)
    has_location = forms.ChoiceField(
        label="Location",
        choices=[("", "Any"), ("yes", "With location"), ("no", "Without location")],
        required=False,
    )
    album = forms.TypedChoiceField(label="Album", coerce=int, empty_value=None, required=False)
    tag = forms.ChoiceField(label="Tag", required=False)
    owner = forms.TypedChoiceField(
        label="Uploaded by", coerce=int, empty_value=None, required=False
    )

    def __init__(self, data=None, *args, choices: SearchChoices, **kwargs):
        if data is not None and not data.get("strictness"):
            # A link or a bare ?q= means the default strictness, and the control must say so.
            data = data.copy()
            data["strictness"] = Strictness.NORMAL
        super().__init__(data, *args, **kwargs)
        self.fields["camera"].choices = [("", "Any")] + [(c, c) for c in choices.cameras]
        self.fields["album"].choices = [("", "Any")] + [(a.pk, a.name) for a in choices.albums]
        self.fields["tag"].choices = [("", "Any")] + [
            (name, f"{name} ({count})") for name, count in choices.tags
        ]
        if choices.owners:
            self.fields["owner"].choices = [("", "Anyone")] + [
                (user.pk, user.get_username()) for user in choices.owners
            ]
        else:
            del self.fields["owner"]

    def clean(self):
        data = super().clean()
        after, before = data.get("taken_after"), data.get("taken_before")
        if after and before and after > before:
            self.add_error("taken_before", "This date is before the start date.")
        return data

    @property
    def filters(self) -> SearchFilters:
        data = self.cleaned_data
        return SearchFilters(
            taken_after=data.get("taken_after"),
            taken_before=data.get("taken_before"),
            camera=data.get("camera") or "",
            has_location={"yes": True, "no": False}.get(data.get("has_location") or ""),
            owner_id=data.get("owner"),
            album_id=data.get("album"),
            tag=data.get("tag") or "",
        )

    @property
    def strictness_value(self) -> Strictness:
        return Strictness(self.cleaned_data.get("strictness") or Strictness.NORMAL)

    @property
    def sort_value(self) -> Sort:
        return Sort(self.cleaned_data.get("sort") or Sort.RELEVANCE)

    @property
    def filter_names(self) -> list[str]:
        return ["taken_after", "taken_before", "camera", "has_location", "album", "tag", "owner"]


class ImageSearchForm(SearchForm):
    image = forms.FileField(label="Find photos like this image")

    def clean_image(self):
        upload = self.cleaned_data["image"]
        try:
            return decode_image(upload, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS)
        except ImageDecodeError as exc:
            raise forms.ValidationError(f"{upload.name}: {exc}") from None


class AlbumForm(forms.Form):
    name = forms.CharField(label="Album name", max_length=200)


class AlbumShareForm(forms.Form):
    usernames = forms.CharField(
        label="Share with", help_text="User names, separated by commas.", max_length=1000
    )

    def clean_usernames(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["usernames"].split(",") if name.strip()]


class AddToAlbumForm(forms.Form):
    album = forms.TypedChoiceField(label="Add to album", coerce=int)

    def __init__(self, *args, albums, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["album"].choices = [(album.pk, album.name) for album in albums]


class ApiTokenForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=100,
        widget=forms.TextInput(attrs={"placeholder": "e.g. backup script on my laptop"}),
    )


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


class ModelSwitchForm(forms.Form):
    name = forms.CharField(
        label="open_clip model",
        max_length=100,
        widget=forms.TextInput(attrs={"list": "open-clip-models", "placeholder": "ViT-B-32"}),
    )
    pretrained = forms.CharField(
        label="Weights",
        max_length=500,
        required=False,
        help_text="An open_clip tag (e.g. laion2b_s34b_b79k), a checkpoint path, or empty.",
        widget=forms.TextInput(attrs={"placeholder": "laion2b_s34b_b79k"}),
    )
