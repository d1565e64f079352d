from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from search.duplicates.services import near_duplicate_pairs_find
from search.models import Embedding, NearDuplicatePair, Photo
from workers.active_engine import get_engine


class Command(BaseCommand):
    help = (
        "Record near-duplicate pairs for photos embedded under the active model: for a library "
        "that predates the duplicates page, after a model switch, or after changing the "
        "MEDIASEARCH_DUPLICATE_* settings. New photos get theirs as they are embedded. Safe to "
        "run again: existing pairs are updated, not repeated."
    )

    def add_arguments(self, parser):
        parser.add_argument("--user", help="only this user's photos (user name)")
        parser.add_argument("--batch-size", type=int, default=200)
        parser.add_argument(
            "--fresh",
            action="store_true",
            help="first forget the active model's pairs (of --user), e.g. after tightening the "
            "settings; the duplicates page shows fewer groups until this finishes",
        )

    def handle(self, *args, user: str | None, batch_size: int, fresh: bool, **options):
        model_id = get_engine().model_id
        photos = Embedding.objects.filter(model_id=model_id, photo__status=Photo.Status.READY)
        pairs = NearDuplicatePair.objects.filter(model_id=model_id)
        if user is not None:
            try:
                owner = get_user_model().objects.get_by_natural_key(user)
            except get_user_model().DoesNotExist:
                raise CommandError(f"No user called {user!r}.") from None
            photos = photos.filter(photo__owner=owner)
            pairs = pairs.filter(photo__owner=owner)
        photo_ids = list(photos.order_by("photo_id").values_list("photo_id", flat=True))
        if fresh:
            forgotten, _ = pairs.delete()
            self.stdout.write(f"Forgot {forgotten} pairs.")

        with tqdm(
            total=len(photo_ids), unit="photo", desc="Comparing", disable=options["verbosity"] == 0
        ) as progress:
            for start in range(0, len(photo_ids), batch_size):
                batch = photo_ids[start : start + batch_size]
                near_duplicate_pairs_find(photo_ids=batch, model_id=model_id)
                progress.update(len(batch))
        self.stdout.write(
            f"Compared {len(photo_ids)} photos under {model_id}; "
            f"{pairs.count()} near-duplicate pairs recorded."
        )
