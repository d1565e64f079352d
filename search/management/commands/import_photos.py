import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from search.models import Photo
from search.photos.services import PhotoRejected, photo_create

# Only these are looked at; the content still decides whether a file is an image.
IMAGE_SUFFIXES = {
    ".jpg", ".jpeg", ".jpe", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp",
    ".heic", ".heif", ".avif",
}  # fmt: skip


@dataclass
class ImportSummary:
    imported: int = 0
    duplicates: int = 0
    failed: list[tuple[Path, str]] = field(default_factory=list)


class Command(BaseCommand):
    help = (
        "Import every photo under a folder (recursively) for one user. Files already in their "
        "library (same bytes) are skipped, so an interrupted import can simply be run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path)
        parser.add_argument("--owner", default="admin", help="user name to import for")
        parser.add_argument(
            "--all-files", action="store_true", help="try every file, not only image extensions"
        )

    def handle(self, *args, path: Path, owner: str, all_files: bool, **options):
        if not path.is_dir():
            raise CommandError(f"{path} is not a folder.")
        try:
            user = get_user_model().objects.get_by_natural_key(owner)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user called {owner!r}; pass --owner.") from None

        files = sorted(
            candidate
            for candidate in path.rglob("*")
            if candidate.is_file() and (all_files or candidate.suffix.lower() in IMAGE_SUFFIXES)
        )
        known = set(Photo.objects.filter(owner=user).values_list("sha256", flat=True))
        summary = ImportSummary()
        interrupted = False
        progress = tqdm(files, unit="photo", desc="Importing", disable=options["verbosity"] == 0)
        try:
            for file_path in progress:
                self._import_one(file_path, user, known, summary)
        except KeyboardInterrupt:
            interrupted = True
        finally:
            progress.close()
        self._report(summary, interrupted)
        if interrupted:
            raise CommandError("Interrupted. Run the same command again to finish the import.")

    def _import_one(self, file_path: Path, user, known: set[str], summary: ImportSummary) -> None:
        try:
            digest = _sha256(file_path)
            if digest in known:
                summary.duplicates += 1
                return
            with file_path.open("rb") as handle:
                result = photo_create(owner=user, file=File(handle, name=file_path.name))
        except PhotoRejected as exc:
            summary.failed.append((file_path, exc.reason))
            return
        except OSError as exc:
            summary.failed.append((file_path, f"could not read the file ({exc.strerror or exc})"))
            return
        known.add(digest)
        if result.created:
            summary.imported += 1
        else:
            summary.duplicates += 1

    def _report(self, summary: ImportSummary, interrupted: bool) -> None:
        heading = "Stopped early" if interrupted else "Done"
        self.stdout.write(
            f"{heading}: {summary.imported} imported, {summary.duplicates} already there, "
            f"{len(summary.failed)} failed."
        )
        for file_path, reason in summary.failed:
            self.stdout.write(f"  {file_path}: {reason}")
        if summary.imported:
            self.stdout.write("Imported photos are embedded in the background by the workers.")


def _sha256(file_path: Path) -> str:
    digest = hashlib.sha256()
    with file_path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
