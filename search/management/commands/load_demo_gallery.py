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
from workers.embedding.text_scenes import text_scene

# Words seen only inside the demo's text photos (their file names do not say them): type one in
# the search box and the photo showing it comes first, the word highlighted on its page.
DEMO_TEXTS = (
    ("HOTEL", "MIRAMAR"),
    ("TESCO", "receipt"),
    ("Pastelaria", "Lisboa"),
    ("Booking", "QX7734"),
    ("Café", "Central"),
    ("Bahnhof", "Ausgang"),
    ("Farmácia", "Estrela"),
    ("Harbour", "Museum"),
    ("Platform", "9"),
    ("Bakery", "Open"),
    ("Theatre", "Tickets"),
    ("Parking", "Exit"),
)

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
        parser.add_argument(
            "--text-photos",
            type=int,
            default=len(DEMO_TEXTS),
            help=f"also this many photos with words in them (at most {len(DEMO_TEXTS)})",
        )

    def handle(
        self,
        *args,
        owner: str,
        count: int,
        seed: int,
        videos: int = 4,
        text_photos: int = len(DEMO_TEXTS),
        **options,
    ):
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
        made_text = sum(
            photo_create(owner=user, file=upload).created
            for upload in _text_photos(text_photos, random.Random(seed + 1))
        )
        made_videos = sum(
            photo_create(owner=user, file=upload).created for upload in _demo_videos(videos, rng)
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Queued {created} demo photos for {owner} ({count - created} were already there)"
                f", {made_videos} demo videos and {made_text} photos with text in them."
            )
        )


def _text_photos(count: int, rng: random.Random):
    """Signs on photo-like backgrounds, upright or turned (the file name never gives the
    words away)."""
    for index, words in enumerate(DEMO_TEXTS[: max(0, count)]):
        scene = text_scene(
            rng,
            words=words,
            size=64,
            rotation=(0, 0, 0, 90, 180, 0)[index % 6],
            contrast="high",
            canvas=(960, 720),
            per_line=1,
        )
        out = io.BytesIO()
        scene.image.save(out, format="JPEG", quality=90)
        yield SimpleUploadedFile(f"demo-text-{index:02d}.jpg", out.getvalue())


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
