import io
import random
from datetime import datetime, timedelta

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError
from PIL import Image

from search.photos.services import photo_create
from workers.embedding.demo.places import DEMO_PLACES, exif_with_position
from workers.embedding.demo.scenes import caption, random_scene, scene_jpeg, scene_variant
from workers.embedding.demo.videos import render_video

CAMERAS = [("Canon", "EOS R6"), ("FUJIFILM", "X100V"), ("Apple", "iPhone 15")]
EXIF_IFD, MAKE, MODEL, DATE_TAKEN = 0x8769, 0x010F, 0x0110, 0x9003


class Command(BaseCommand):
    help = (
        "Generate demo scenes (coloured shapes on plain or textured backgrounds) and upload them "
        "through the normal pipeline, so searches like 'two red circles on a blue background' "
        "can be tried at once; about half are placed in Lisbon, Porto, Paris, Nice or New York. "
        "Safe to run twice: the same seed gives the same files, which "
        "are recognised as duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="admin", help="user name to upload as")
        parser.add_argument("--count", type=int, default=300)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--videos", type=int, default=4, help="also this many generated demo videos"
        )

    def handle(self, *args, owner: str, count: int, seed: int, videos: int = 4, **options):
        try:
            user = get_user_model().objects.get_by_natural_key(owner)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {owner!r}; pass --owner.") from None
        rng = random.Random(seed)
        created = 0
        scene = None
        for index in range(count):
            # Every fourth picture shows the same thing as the one before, so that "find
            # similar" has something to find.
            if scene is not None and index % 4 == 3:
                scene = scene_variant(scene, rng)
            else:
                scene = random_scene(rng, split="any")
            words = caption(scene, rng).replace(",", "")[:80].strip().replace(" ", "-")
            data = _with_exif(scene_jpeg(scene, rng), rng)
            upload = SimpleUploadedFile(f"demo-{index:03d}-{words}.jpg", data)
            created += photo_create(owner=user, file=upload).created
        made_videos = sum(
            photo_create(owner=user, file=upload).created for upload in _demo_videos(videos, rng)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Queued {created} demo photos for {owner} ({count - created} were already there)"
                f" and {made_videos} demo videos."
            )
        )


def _demo_videos(count: int, rng: random.Random):
    """Short videos of demo scenes, one after another at known times (named in the file name:
    "a red star" should land on the second where the red star appears)."""
    for index in range(count):
        scenes = [(float(rng.choice([3, 4, 5])), random_scene(rng, split="any")) for _ in range(4)]
        taken = datetime(2019, 1, 1) + timedelta(minutes=rng.randrange(6 * 365 * 24 * 60))
        data = io.BytesIO()
        render_video(
            data,
            scenes,
            size=(320, 240),
            metadata={"creation_time": taken.strftime("%Y-%m-%dT%H:%M:%S.000000Z")},
        )
        start, parts = 0.0, []
        for seconds, scene in scenes:
            parts.append(f"{scene.colour}-{scene.shape}-at-{int(start)}s")
            start += seconds
        yield SimpleUploadedFile(f"demo-video-{index}-{'-'.join(parts)}.mp4"[:200], data.getvalue())


def _with_exif(jpeg: bytes, rng: random.Random) -> bytes:
    """The picture with a camera and a date taken, so the filters and date order have data,
    and for about half of them a position in one of a few real cities (the place filters)."""
    image = Image.open(io.BytesIO(jpeg))
    exif = image.getexif()
    exif[MAKE], exif[MODEL] = rng.choice(CAMERAS)
    taken = datetime(2019, 1, 1) + timedelta(minutes=rng.randrange(6 * 365 * 24 * 60))
    exif.get_ifd(EXIF_IFD)[DATE_TAKEN] = taken.strftime("%Y:%m:%d %H:%M:%S")
    if rng.random() < 0.5:
        latitude, longitude, _, _ = rng.choice(list(DEMO_PLACES.values()))
        # A few hundred metres around the spot, as photos of a walk would be.
        exif = exif_with_position(
            exif, latitude + rng.uniform(-0.002, 0.002), longitude + rng.uniform(-0.002, 0.002)
        )
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=92, exif=exif.tobytes())
    return buffer.getvalue()
