import random

from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management.base import BaseCommand, CommandError

from search.services import photo_create
from workers.embedding.demo.scenes import caption, random_scene, scene_jpeg


class Command(BaseCommand):
    help = (
        "Generate demo scenes (coloured shapes on plain or textured backgrounds) and upload them "
        "through the normal pipeline, so searches like 'two red circles on a blue background' "
        "can be tried at once. Safe to run twice: the same seed gives the same files, which "
        "are recognised as duplicates."
    )

    def add_arguments(self, parser):
        parser.add_argument("--owner", default="admin", help="user name to upload as")
        parser.add_argument("--count", type=int, default=300)
        parser.add_argument("--seed", type=int, default=7)

    def handle(self, *args, owner: str, count: int, seed: int, **options):
        try:
            user = get_user_model().objects.get_by_natural_key(owner)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {owner!r}; pass --owner.") from None
        rng = random.Random(seed)
        created = 0
        for index in range(count):
            scene = random_scene(rng, split="any")
            words = caption(scene, rng).replace(",", "")[:80].strip().replace(" ", "-")
            upload = SimpleUploadedFile(f"demo-{index:03d}-{words}.jpg", scene_jpeg(scene, rng))
            created += photo_create(owner=user, file=upload).created
        self.stdout.write(
            self.style.SUCCESS(
                f"Queued {created} demo photos for {owner} ({count - created} were already there)."
            )
        )
