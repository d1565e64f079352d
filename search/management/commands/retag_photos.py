from django.core.management.base import BaseCommand, CommandError

from search import dispatch
from search.models import Embedding
from search.tags.services import photos_retag
from workers.active_engine import active_vocabulary, get_engine, vocabulary_path
from workers.embedding.tags import VocabularyError

# Photo ids per Celery message with --queue: small JSON, a few seconds of work each.
QUEUE_CHUNK = 1000


class Command(BaseCommand):
    help = (
        "Recompute the zero-shot tags of stored photos from their vectors under the active "
        "model and the current tag vocabulary (MEDIASEARCH_TAG_VOCABULARY, "
        "MEDIASEARCH_TAG_MIN_SCORE). No image is decoded. Run it after changing either; running "
        "it twice changes nothing the second time."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--photo", type=int, action="append", dest="photo_ids", help="only this photo id"
        )
        parser.add_argument(
            "--queue",
            action="store_true",
            help=f"send the work to the Celery workers ({QUEUE_CHUNK} photos a task) instead",
        )

    def handle(self, *args, photo_ids: list[int] | None, queue: bool, **options):
        engine = get_engine()
        path = vocabulary_path(engine)
        try:
            vocabulary = active_vocabulary(engine)
        except VocabularyError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            f"Model: {engine.model_id}; vocabulary: {path} "
            f"({len(vocabulary.tag_names())} tags in {len(vocabulary.groups)} groups)"
        )
        if queue:
            self._queue(engine.model_id, photo_ids)
            return
        result = photos_retag(model_id=engine.model_id, photo_ids=photo_ids)
        self.stdout.write(
            self.style.SUCCESS(
                f"Retagged {result.photos} photos; {result.changed} got different tags."
            )
        )

    def _queue(self, model_id: str, photo_ids: list[int] | None) -> None:
        vectors = Embedding.objects.filter(model_id=model_id).order_by("photo_id")
        if photo_ids is not None:
            vectors = vectors.filter(photo_id__in=photo_ids)
        ids = list(vectors.values_list("photo_id", flat=True))
        chunks = [ids[start : start + QUEUE_CHUNK] for start in range(0, len(ids), QUEUE_CHUNK)]
        for chunk in chunks:
            dispatch.retag_photos(chunk)
        self.stdout.write(
            self.style.SUCCESS(f"Queued {len(ids)} photos in {len(chunks)} tasks for the workers.")
        )
