"""Album forms: name, share, add photos."""

from __future__ import annotations

from django import forms


class AlbumForm(forms.Form):
    name = forms.CharField(label="Album name", max_length=200)


class AlbumShareForm(forms.Form):
    usernames = forms.CharField(
        label="Share with", help_text="User names, separated by commas.", max_length=1000
    )

    def clean_usernames(self) -> list[str]:
        return [name.strip() for name in self.cleaned_data["usernames"].split(",") if name.strip()]


class AlbumUnshareForm(forms.Form):
    username = forms.CharField(max_length=150)


class AddToAlbumForm(forms.Form):
    album = forms.TypedChoiceField(label="Add to album", coerce=int)

    def __init__(self, *args, albums, **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["album"]
        assert isinstance(field, forms.ChoiceField)
        field.choices = [(album.pk, album.name) for album in albums]
