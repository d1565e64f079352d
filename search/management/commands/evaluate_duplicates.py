from django.conf import settings
from django.core.management.base import BaseCommand

from search.evaluation.duplicates import (
    distance_percentiles,
    embed_library,
    generate_library,
    library_pairs,
    measure_grouping,
)
from workers.active_engine import get_engine

PERCENTILES = (0, 1, 5, 10, 50, 90, 95, 99, 100)


class Command(BaseCommand):
    help = (
        "Measure near-duplicate grouping on generated held-out scenes with the active model: "
        "how many edited copies are grouped with their picture, and how many groups wrongly "
        "hold another picture (of the same labels, or different ones), at each distance. Needs "
        "no database rows and no worker."
    )

    def add_arguments(self, parser):
        parser.add_argument("--scenes", type=int, default=400)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument(
            "--thresholds",
            default="0.005,0.01,0.015,0.02,0.03,0.04,0.05,0.07,0.1",
            help="comma-separated cosine distances",
        )
        parser.add_argument(
            "--min-pixel-correlation",
            type=float,
            default=settings.MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION,
        )

    def handle(self, *args, scenes, seed, thresholds, min_pixel_correlation, **options):
        engine = get_engine()
        thresholds = [float(value) for value in thresholds.split(",")]
        widest = max(thresholds)
        library = embed_library(engine, generate_library(scenes=scenes, seed=seed))
        self.stdout.write(
            f"Model: {engine.model_id}; {scenes} held-out scenes, {len(library.photos)} photos "
            f"(each scene's picture and an edited copy; every other scene a sibling); "
            f"seed {seed}\n"
        )
        self.stdout.write("Cosine distance percentiles")
        self.stdout.write("| pairs | " + " | ".join(f"p{p}" for p in PERCENTILES) + " |")
        self.stdout.write("|---" * (len(PERCENTILES) + 1) + "|")
        for name, values in distance_percentiles(library, PERCENTILES).items():
            self.stdout.write(f"| {name} | " + " | ".join(f"{v:.4f}" for v in values) + " |")

        for label, minimum in (
            ("embedding distance alone", None),
            (f"confirmed by pixel correlation >= {min_pixel_correlation}", min_pixel_correlation),
        ):
            pairs = library_pairs(library, max_distance=widest, min_pixel_correlation=minimum)
            self.stdout.write(f"\nGrouping, {label}")
            self.stdout.write(
                "| distance | copies grouped (recall) | siblings grouped | groups "
                "| false groups: same labels | different labels | false-group rate |"
            )
            self.stdout.write("|---|---|---|---|---|---|---|")
            for threshold in thresholds:
                q = measure_grouping(library, pairs, threshold=threshold)
                self.stdout.write(
                    f"| {threshold} | {q.recall:.3f} ({q.copies_grouped}/{q.copies}) "
                    f"| {q.siblings_grouped}/{q.siblings} | {q.groups} | {q.merging_siblings} "
                    f"| {q.merging_scenes} | {q.false_group_rate:.3f} |"
                )
