import random

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from search.evaluation.search import (
    image_recall,
    ingest_scenes,
    stored_tag_quality,
    text_recall,
    wait_until_processed,
)
from workers.active_engine import active_vocabulary, get_engine, get_tagger
from workers.embedding.demo.scenes import random_scene


class Command(BaseCommand):
    help = (
        "Measure search recall on held-out generated scenes: the model alone, then through "
        "the full stack (upload → Celery worker → pgvector → search views). Needs a running "
        "worker (./dev up). Uses a throw-away user that is deleted afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenes", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1234)
        parser.add_argument("--timeout", type=float, default=600)

    def handle(self, *args, scenes: int, seed: int, timeout: float, **options):
        engine = get_engine()
        self.stdout.write(f"Model: {engine.model_id}")
        rng = random.Random(seed)
        scene_list = [random_scene(rng, split="heldout") for _ in range(scenes)]

        if engine.is_demo:
            from workers.embedding.demo.training.evaluate import evaluate_model, evaluate_tags

            alone = evaluate_model(
                engine.model, engine.preprocess, engine.tokenizer, n=scenes, seed=seed
            )
            self.stdout.write(f"Model alone ({scenes} held-out scenes): {alone}")
            self._tags(
                evaluate_tags(
                    engine,
                    get_tagger(engine),
                    n=scenes,
                    seed=seed,
                    min_score=settings.MEDIASEARCH_TAG_MIN_SCORE,
                )
            )

        user = get_user_model().objects.create_user(f"evaluation-{seed}-{random.getrandbits(32)}")
        try:
            scene_set = ingest_scenes(owner=user, scenes=scene_list, seed=seed)
            wait_until_processed(scene_set.photos, timeout=timeout)
            text = text_recall(user=user, scene_set=scene_set, seed=seed)
            image = image_recall(user=user, scene_set=scene_set, seed=seed)
            tags = stored_tag_quality(
                scene_set=scene_set, model_id=engine.model_id, vocabulary=active_vocabulary(engine)
            )
        finally:
            for photo in user.photos.all():
                for stored in (photo.file, photo.thumbnail, photo.preview):
                    stored.delete(save=False)
            user.delete()
        self.stdout.write(f"Full stack ({text.queries} photos, {text.queries} queries each):")
        self.stdout.write(f"  text→image  recall@1 {text.at_1:.3f}  recall@5 {text.at_5:.3f}")
        self.stdout.write(f"  image→image recall@1 {image.at_1:.3f}  recall@5 {image.at_5:.3f}")
        self._tags(tags)

    def _tags(self, quality) -> None:
        # Only the demo vocabulary's groups have a known truth for generated scenes.
        for group in quality:
            self.stdout.write(f"  tags {group}")
