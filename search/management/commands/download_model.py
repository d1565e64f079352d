from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from workers.active_engine import active_vocabulary, configured_spec
from workers.embedding.model import ModelLoadError, load_engine
from workers.embedding.tags import VocabularyError, tagger_for


class Command(BaseCommand):
    help = (
        "Fetch the configured open_clip weights (MEDIASEARCH_CLIP_MODEL / "
        "MEDIASEARCH_CLIP_PRETRAINED) into the local cache, so later starts need no network, "
        "and encode the tag vocabulary into MEDIASEARCH_TAG_CACHE_DIR, so workers tag at once."
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
        self._cache_tag_vectors(engine)
        self.stdout.write("Restart the web server and workers to use it.")

    def _cache_tag_vectors(self, engine) -> None:
        if not settings.MEDIASEARCH_TAG_CACHE_DIR:
            return
        try:
            vocabulary = active_vocabulary(engine)
        except VocabularyError as exc:
            self.stderr.write(f"Tags: {exc}")
            return
        tagger_for(engine, vocabulary, cache_dir=settings.MEDIASEARCH_TAG_CACHE_DIR)
        self.stdout.write(
            f"Tag vectors of {len(vocabulary.tag_names())} tags cached in "
            f"{settings.MEDIASEARCH_TAG_CACHE_DIR}."
        )
