"""API: who the token belongs to."""

from __future__ import annotations

from ninja import Router, Schema
from pydantic import Field

from search.accounts.selectors import account_summary
from search.api.schemas import DENIED, ApiRequest

# Account ------------------------------------------------------------------------------------


router = Router()


class MeOut(Schema):
    username: str
    is_staff: bool
    photos: int
    photos_by_status: dict[str, int]
    albums: int = Field(description="albums you own")
    shared_albums: int = Field(description="albums others share with you")


@router.get(
    "/me",
    response={200: MeOut, **DENIED},
    summary="Who the token belongs to, with counts",
    operation_id="me",
    tags=["account"],
)
def me(request: ApiRequest):
    summary = account_summary(user=request.auth)
    return {
        "username": request.auth.get_username(),
        "is_staff": request.auth.is_staff,
        "photos": summary.photos,
        "photos_by_status": summary.photos_by_status,
        "albums": summary.albums,
        "shared_albums": summary.shared_albums,
    }
