"""API: albums, their photos and their shares."""

from __future__ import annotations

from datetime import datetime

from django.http import Http404
from ninja import Query, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field, StrictInt

from search.albums.selectors import album_photos, albums_visible_to
from search.albums.services import (
    album_add_photos,
    album_create,
    album_delete,
    album_remove_photos,
    album_rename,
    album_share,
    album_unshare,
)
from search.api.schemas import (
    DENIED,
    HIDDEN,
    JSON_BODY,
    ApiRequest,
    ErrorOut,
    PageParams,
    PhotoPageOut,
    Text,
    UserName,
    photo_page,
)
from search.models import Album

# Albums -------------------------------------------------------------------------------------


router = Router()


class AlbumOut(Schema):
    id: int
    name: str
    owner: str
    is_owner: bool = Field(description="false: shared with you, read-only")
    photo_count: int
    shared_with: list[str] | None = Field(description="user names; null unless you own it")
    created_at: datetime
    updated_at: datetime


class AlbumIn(Schema):
    name: Text = Field(min_length=1, max_length=200)


class AlbumPatch(Schema):
    name: Text | None = Field(None, min_length=1, max_length=200)


class PhotoIdsIn(Schema):
    # Strict: JSON numbers only, not "1042" or true, which pydantic would otherwise read as ids.
    photo_ids: list[StrictInt] = Field(min_length=1, max_length=1000)


class UsernamesIn(Schema):
    usernames: list[UserName] = Field(min_length=1, max_length=100)


class PhotosAddedOut(Schema):
    added: int = Field(description="photos added; ids of photos that are not yours are ignored")
    album: AlbumOut


class PhotosRemovedOut(Schema):
    removed: int
    album: AlbumOut


def visible_album(user, album_id: int) -> Album:
    album = albums_visible_to(user).prefetch_related("shared_with").filter(pk=album_id).first()
    if album is None:
        raise Http404(f"No album {album_id}.")
    return album


def owned_album(user, album_id: int) -> Album:
    album = visible_album(user, album_id)
    if album.owner_id != user.pk:
        # They can see it, so saying that it exists reveals nothing.
        raise HttpError(403, "This album is shared with you read-only: only its owner changes it.")
    return album


def album_out(user, album: Album) -> dict:
    """An album from ``albums_visible_to`` (with its photo count and owner)."""
    is_owner = album.owner_id == user.pk
    return {
        "id": album.pk,
        "name": album.name,
        "owner": album.owner.get_username(),
        "is_owner": is_owner,
        # annotated by albums_visible_to
        "photo_count": album.photo_count,  # type: ignore[attr-defined]
        "shared_with": sorted(u.get_username() for u in album.shared_with.all())
        if is_owner
        else None,
        "created_at": album.created_at,
        "updated_at": album.updated_at,
    }


OWNED = {**HIDDEN, 400: ErrorOut, 403: ErrorOut}
OWNED_WITH_BODY = {**OWNED, **JSON_BODY}


@router.get(
    "/albums",
    response={200: list[AlbumOut], **DENIED},
    summary="Your albums and those shared with you",
    operation_id="albums_list",
    tags=["albums"],
)
def albums_list(request: ApiRequest):
    albums = albums_visible_to(request.auth).prefetch_related("shared_with")
    return [album_out(request.auth, album) for album in albums]


@router.post(
    "/albums",
    response={201: AlbumOut, 400: ErrorOut, **DENIED, **JSON_BODY},
    summary="Create an album",
    operation_id="albums_create",
    tags=["albums"],
)
def albums_create(request: ApiRequest, payload: AlbumIn):
    album = album_create(owner=request.auth, name=payload.name)
    return Status(201, album_out(request.auth, visible_album(request.auth, album.pk)))


@router.get(
    "/albums/{album_id}",
    response={200: AlbumOut, **HIDDEN},
    summary="One album",
    operation_id="albums_detail",
    tags=["albums"],
)
def albums_detail(request: ApiRequest, album_id: int):
    return album_out(request.auth, visible_album(request.auth, album_id))


@router.patch(
    "/albums/{album_id}",
    response={200: AlbumOut, **OWNED_WITH_BODY},
    summary="Rename an album (owner only)",
    operation_id="albums_update",
    tags=["albums"],
)
def albums_update(request: ApiRequest, album_id: int, payload: AlbumPatch):
    album = owned_album(request.auth, album_id)
    if payload.name is not None:
        album_rename(album=album, name=payload.name)
    return album_out(request.auth, visible_album(request.auth, album_id))


@router.delete(
    "/albums/{album_id}",
    response={204: None, **OWNED},
    summary="Delete an album (owner only); its photos are kept",
    operation_id="albums_delete",
    tags=["albums"],
)
def albums_delete(request: ApiRequest, album_id: int):
    album_delete(album=owned_album(request.auth, album_id))
    return Status(204, None)


@router.get(
    "/albums/{album_id}/photos",
    response={200: PhotoPageOut, **HIDDEN},
    summary="The photos of an album",
    description="Newest taken first, undated last, optionally only those in one state.",
    operation_id="albums_photos",
    tags=["albums"],
)
def albums_photos(
    request: ApiRequest,
    album_id: int,
    params: Query[PageParams],
):
    album = visible_album(request.auth, album_id)
    photos = album_photos(album).select_related("owner")
    return photo_page(request, photos, params)


@router.post(
    "/albums/{album_id}/photos",
    response={200: PhotosAddedOut, **OWNED_WITH_BODY},
    summary="Add your photos to your album",
    operation_id="albums_photos_add",
    tags=["albums"],
)
def albums_photos_add(request: ApiRequest, album_id: int, payload: PhotoIdsIn):
    album = owned_album(request.auth, album_id)
    added = album_add_photos(album=album, photo_ids=payload.photo_ids)
    return {"added": added, "album": album_out(request.auth, visible_album(request.auth, album_id))}


@router.delete(
    "/albums/{album_id}/photos",
    response={200: PhotosRemovedOut, **OWNED_WITH_BODY},
    summary="Take photos out of your album (they stay in your library)",
    operation_id="albums_photos_remove",
    tags=["albums"],
)
def albums_photos_remove(request: ApiRequest, album_id: int, payload: PhotoIdsIn):
    album = owned_album(request.auth, album_id)
    removed = album_remove_photos(album=album, photo_ids=payload.photo_ids)
    return {
        "removed": removed,
        "album": album_out(request.auth, visible_album(request.auth, album_id)),
    }


@router.post(
    "/albums/{album_id}/shares",
    response={200: AlbumOut, **OWNED_WITH_BODY},
    summary="Share your album with users (read-only for them)",
    description=(
        "400, sharing with nobody, when any name cannot be shared with: one answer for a name "
        "nobody has, an inactive account and your own name."
    ),
    operation_id="albums_share",
    tags=["albums"],
)
def albums_share(request: ApiRequest, album_id: int, payload: UsernamesIn):
    album_share(album=owned_album(request.auth, album_id), usernames=payload.usernames)
    return album_out(request.auth, visible_album(request.auth, album_id))


@router.delete(
    "/albums/{album_id}/shares",
    response={200: AlbumOut, **OWNED_WITH_BODY},
    summary="Stop sharing your album with users",
    operation_id="albums_unshare",
    tags=["albums"],
)
def albums_unshare(request: ApiRequest, album_id: int, payload: UsernamesIn):
    album_unshare(album=owned_album(request.auth, album_id), usernames=payload.usernames)
    return album_out(request.auth, visible_album(request.auth, album_id))
