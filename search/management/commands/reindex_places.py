from django.core.management.base import BaseCommand
from tqdm import tqdm

from search.models import Photo
from search.places.services import photos_places_reindex


class Command(BaseCommand):
    help = (
        "Give every photo and video with a GPS position its country, region and city from the "
        "offline reverse geocoder (GeoNames data, no network). By default only those without a "
        "place yet; --redo looks all of them up again (after a geocoder update). Batched and "
        "safe to run twice, or while the workers ingest."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--redo", action="store_true", help="look up photos that already have a place too"
        )
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args, redo: bool, batch_size: int, **options):
        rows = Photo.objects.filter(latitude__isnull=False, longitude__isnull=False)
        total = (rows if redo else rows.filter(country_code="")).count()
        with tqdm(
            total=total, unit="photo", desc="Places", disable=options["verbosity"] == 0
        ) as bar:
            result = photos_places_reindex(
                redo=redo, batch_size=max(1, batch_size), progress=bar.update
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"Looked up {result.seen} photos with a position; {result.changed} places changed."
            )
        )
