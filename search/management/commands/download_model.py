from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers.embedding.active import configured_spec
from workers.embedding.model import ModelLoadError, load_engine


class Command(BaseCommand):
    help = (
        "Fetch the configured open_clip weights (MEDIASEARCH_CLIP_MODEL / "
        "MEDIASEARCH_CLIP_PRETRAINED) into the local cache, so later starts need no network."
    )

    def handle(self, *args, **options):
        spec = configured_spec()
        self.stdout.write(f"Loading {spec}…")
        try:
            engine = load_engine(spec, cache_dir=settings.MEDIASEARCH_CLIP_CACHE_DIR)
        except ModelLoadError as exc:
            raise CommandError(
                f"{exc}. Connect to the network and run this again, or set "
                "MEDIASEARCH_CLIP_PRETRAINED to the path of a checkpoint file."
            ) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Ready: {engine.model_id} ({engine.dim} dimensions).")
        )
        self.stdout.write("Restart the web server and workers to use it.")
