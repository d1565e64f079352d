"""Near-duplicate groups of a user's photos, from the recorded pairs."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search.models import NearDuplicatePair, Photo

if TYPE_CHECKING:
    pass


@dataclass(frozen=True)
class DuplicatePhoto:
    photo: Photo
    nearest: float  # cosine distance to the closest other photo of its group


@dataclass(frozen=True)
class DuplicateGroup:
    photos: list[DuplicatePhoto]  # most pixels first (the copy most worth keeping), then oldest
    closest: float  # the smallest distance between two of its photos


@dataclass(frozen=True)
class DuplicateGroupPage:
    groups: list[DuplicateGroup]
    number: int  # this page, from 1
    num_pages: int
    group_count: int  # on all pages
    photo_count: int  # on all pages

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages


def near_duplicate_groups(
    *, user, model_id: str, max_distance: float, page: int = 1, per_page: int = 20
) -> DuplicateGroupPage:
    """The user's photos grouped by near-duplicate pairs within ``max_distance`` under
    ``model_id``: largest groups first, then the closest. Only the user's own photos, staff too.

    Photos are grouped transitively (a near b, b near c: one group of three), so a group may hold
    two photos farther apart than ``max_distance``. A page number out of range gives the last.
    """
    pairs = list(
        NearDuplicatePair.objects.filter(
            model_id=model_id, distance__lte=max_distance, photo__owner=user, other__owner=user
        ).values_list("photo_id", "other_id", "distance")
    )
    nearest: dict[int, float] = {}
    for first, second, distance in pairs:
        for photo_id in (first, second):
            nearest[photo_id] = min(distance, nearest.get(photo_id, math.inf))
    groups = sorted(
        connected_groups((first, second) for first, second, _ in pairs),
        key=lambda group: (-len(group), min(nearest[pk] for pk in group), min(group)),
    )
    num_pages = max(1, math.ceil(len(groups) / per_page))
    number = min(max(1, page), num_pages)
    shown = groups[(number - 1) * per_page : number * per_page]
    photos = Photo.objects.in_bulk([pk for group in shown for pk in group])
    return DuplicateGroupPage(
        groups=[
            DuplicateGroup(
                photos=sorted(
                    (DuplicatePhoto(photo=photos[pk], nearest=nearest[pk]) for pk in group),
                    key=lambda item: (
                        -((item.photo.width or 0) * (item.photo.height or 0)),
                        -item.photo.size_bytes,
                        item.photo.created_at,
                        item.photo.pk,
                    ),
                ),
                closest=min(nearest[pk] for pk in group),
            )
            for group in shown
        ],
        number=number,
        num_pages=num_pages,
        group_count=len(groups),
        photo_count=sum(len(group) for group in groups),
    )


def connected_groups(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The connected components of ``pairs`` (union-find), each sorted, of two or more ids."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for first, second in pairs:
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for node in parent:
        members.setdefault(root(node), []).append(node)
    return [sorted(group) for group in members.values()]
