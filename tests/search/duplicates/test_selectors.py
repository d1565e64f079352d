"""Near-duplicate groups: union-find over one owner's pairs under one model."""

import pytest

from search.duplicates.selectors import connected_groups, near_duplicate_groups
from search.models import NearDuplicatePair, Photo

pytestmark = pytest.mark.django_db


def bare_photos(owner, count: int, **fields) -> list[Photo]:
    """Ready photo rows without files: enough for grouping, which reads no pixels."""
    return [
        Photo.objects.create(
            owner=owner,
            file=f"originals/{owner.pk}/{index}.jpg",
            original_filename=f"{owner.get_username()}-{index}.jpg",
            size_bytes=1000 + index,
            sha256=f"{owner.pk}-{index}",
            status=Photo.Status.READY,
            **fields,
        )
        for index in range(count)
    ]


def pair(first: Photo, second: Photo, distance: float, model_id: str = "model-a"):
    low, high = sorted((first, second), key=lambda photo: photo.pk)
    NearDuplicatePair.objects.create(photo=low, other=high, model_id=model_id, distance=distance)


def group_ids(page) -> list[list[int]]:
    """Each group's photo ids, sorted (the order inside a group is tested on its own)."""
    return [sorted(item.photo.pk for item in group.photos) for group in page.groups]


def test_connected_groups_joins_chains_and_keeps_separate_components_apart():
    groups = connected_groups([(5, 1), (1, 9), (2, 3), (7, 7)])
    assert sorted(groups) == [[1, 5, 9], [2, 3], [7]]


def test_groups_respect_the_distance_largest_then_closest_first(alice):
    p = bare_photos(alice, 8)
    pair(p[0], p[1], 0.010)
    pair(p[1], p[2], 0.025)  # joins p[0]-p[1] only from 0.025 on
    pair(p[3], p[4], 0.002)
    pair(p[5], p[6], 0.020)
    pair(p[6], p[7], 0.045)

    narrow = near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.02)
    assert group_ids(narrow) == [[p[3].pk, p[4].pk], [p[0].pk, p[1].pk], [p[5].pk, p[6].pk]]
    assert [group.closest for group in narrow.groups] == [0.002, 0.010, 0.020]
    assert (narrow.group_count, narrow.photo_count) == (3, 6)

    wide = near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.05)
    assert group_ids(wide) == [
        [p[0].pk, p[1].pk, p[2].pk],
        [p[5].pk, p[6].pk, p[7].pk],
        [p[3].pk, p[4].pk],
    ]
    assert near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.001).groups == []


def test_groups_put_the_photo_with_most_pixels_first(alice):
    small, large = bare_photos(alice, 2)
    Photo.objects.filter(pk=small.pk).update(width=100, height=100)
    Photo.objects.filter(pk=large.pk).update(width=400, height=300)
    pair(small, large, 0.01)

    page = near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.03)
    assert [item.photo.pk for item in page.groups[0].photos] == [large.pk, small.pk]
    assert [item.nearest for item in page.groups[0].photos] == [0.01, 0.01]


def test_groups_never_cross_owners_or_models(alice, bob):
    a = bare_photos(alice, 3)
    b = bare_photos(bob, 2)
    pair(a[0], a[1], 0.01)
    pair(a[1], a[2], 0.01, model_id="model-b")
    pair(b[0], b[1], 0.01)
    # A row no service writes (two owners); grouping must still not show it to either.
    pair(a[2], b[0], 0.001)

    assert group_ids(near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.03)) == [
        [a[0].pk, a[1].pk]
    ]
    assert group_ids(near_duplicate_groups(user=alice, model_id="model-b", max_distance=0.03)) == [
        [a[1].pk, a[2].pk]
    ]
    assert group_ids(near_duplicate_groups(user=bob, model_id="model-a", max_distance=0.03)) == [
        [b[0].pk, b[1].pk]
    ]


def test_groups_are_paginated_and_an_out_of_range_page_gives_the_last(alice):
    photos = bare_photos(alice, 10)
    for index in range(0, 10, 2):
        pair(photos[index], photos[index + 1], 0.001 * (index + 1))

    first = near_duplicate_groups(user=alice, model_id="model-a", max_distance=0.03, per_page=2)
    last = near_duplicate_groups(
        user=alice, model_id="model-a", max_distance=0.03, page=99, per_page=2
    )
    assert (first.number, first.num_pages, first.has_previous, first.has_next) == (
        1,
        3,
        False,
        True,
    )
    assert group_ids(first) == [[photos[0].pk, photos[1].pk], [photos[2].pk, photos[3].pk]]
    assert (last.number, last.has_next, group_ids(last)) == (
        3,
        False,
        [[photos[8].pk, photos[9].pk]],
    )
