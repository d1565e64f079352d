"""The search forms: text, filters, strictness and order; an image query."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django import forms
from django.conf import settings

from search.retrieval.choices import SearchChoices
from search.retrieval.query import Media, SearchFilters, Sort, Strictness
from workers.embedding.images import ImageDecodeError, decode_image

QUERY_HELP = (
    "Describe a photo, or type words written in it (receipts, signs, screenshots). A leading "
    'minus leaves things out: beach -people, stars -"red star". "Quoted words" must appear '
    "exactly so in a photo's text; text: tesco searches only the text in photos. With an "
    'image, the text steers it: "at night".'
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
    # Set by the place chip's remove link (and kept by paging links, not by a new search):
    # the words are searched as typed, no place filter from them.
    as_typed = forms.BooleanField(required=False, widget=forms.HiddenInput)
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
    country = forms.ChoiceField(label="Country", required=False)
    city = forms.ChoiceField(label="City", required=False)
    album = forms.TypedChoiceField(label="Album", coerce=int, empty_value=None, required=False)
    tag = forms.ChoiceField(label="Tag", required=False)
    show = forms.ChoiceField(
        label="Show",
        choices=[
            (Media.BOTH, "Photos and videos"),
            (Media.PHOTOS, "Photos"),
            (Media.VIDEOS, "Videos"),
        ],
        required=False,
    )
    owner = forms.TypedChoiceField(
        label="Uploaded by", coerce=int, empty_value=None, required=False
    )

    def __init__(self, data=None, *args, choices: SearchChoices, **kwargs):
        if data is not None and not data.get("strictness"):
            # A link or a bare ?q= means the default strictness, and the control must say so.
            data = data.copy()
            data["strictness"] = Strictness.NORMAL
        super().__init__(data, *args, **kwargs)
        self._choose("camera", [("", "Any")] + [(c, c) for c in choices.cameras])
        self._choose("album", [("", "Any")] + [(a.pk, a.name) for a in choices.albums])
        countries = [(p.country_code, f"{p.country} ({p.count})") for p in choices.countries]
        self._choose("country", [("", "Any"), *countries])
        self._choose("city", [("", "Any"), *_city_choices(choices)])
        self._choose(
            "tag", [("", "Any")] + [(name, f"{name} ({count})") for name, count in choices.tags]
        )
        if choices.owners:
            owners = [(user.pk, user.get_username()) for user in choices.owners]
            self._choose("owner", [("", "Anyone"), *owners])
        else:
            del self.fields["owner"]

    def _choose(self, name: str, choices: Sequence[tuple[Any, str]]) -> None:
        field = self.fields[name]
        assert isinstance(field, forms.ChoiceField)
        field.choices = choices

    def clean(self):
        data = super().clean() or {}
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
            media=Media(data.get("show") or Media.BOTH),
            country=data.get("country") or "",
            city=data.get("city") or "",
        )

    @property
    def place_words(self) -> bool:
        """Whether a place named in the query becomes a filter (not after "search literally")."""
        return not self.cleaned_data.get("as_typed")

    @property
    def strictness_value(self) -> Strictness:
        return Strictness(self.cleaned_data.get("strictness") or Strictness.NORMAL)

    @property
    def sort_value(self) -> Sort:
        return Sort(self.cleaned_data.get("sort") or Sort.RELEVANCE)

    @property
    def filter_names(self) -> list[str]:
        return [
            "show", "taken_after", "taken_before", "camera", "has_location", "country", "city",
            "album", "tag", "owner",
        ]  # fmt: skip


def _city_choices(choices: SearchChoices) -> list[tuple[str, str]]:
    """One choice per city name (the filter is by name), labelled with its countries."""
    by_name: dict[str, list] = {}
    for place in choices.cities:
        by_name.setdefault(place.city, []).append(place)
    return [
        (
            name,
            f"{name}, {', '.join(p.country for p in places)} ({sum(p.count for p in places)})",
        )
        for name, places in sorted(by_name.items(), key=lambda item: item[0].casefold())
    ]


class ImageSearchForm(SearchForm):
    image = forms.FileField(label="Find photos like this image")

    def clean_image(self):
        upload = self.cleaned_data["image"]
        try:
            return decode_image(upload, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS)
        except ImageDecodeError as exc:
            raise forms.ValidationError(f"{upload.name}: {exc}") from None
