import pytest
from django.core.management import CommandError, call_command

import search.management.commands.import_photos as import_photos
from search.models import Photo
from tests.conftest import encode, make_image

pytestmark = pytest.mark.django_db


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "photos"
    (root / "2023" / "summer").mkdir(parents=True)
    (root / "2024").mkdir()
    (root / "2023" / "a.jpg").write_bytes(encode(make_image(color="red")))
    (root / "2023" / "summer" / "b.png").write_bytes(encode(make_image(color="blue"), "PNG"))
    (root / "2024" / "c.heic").write_bytes(encode(make_image(color="green"), "HEIF"))
    (root / "2024" / "a copy.jpg").write_bytes((root / "2023" / "a.jpg").read_bytes())
    # ": " in a name must not garble the reason in the summary.
    (root / "2024" / "broken: scan.jpg").write_bytes(b"not really a jpeg")
    (root / "2024" / "notes.txt").write_text("ignored: not an image extension")
    return root


def run(folder, capsys, **options):
    call_command("import_photos", str(folder), owner="alice", verbosity=0, **options)
    return capsys.readouterr().out


def test_imports_a_tree_and_reports_exact_counts(folder, alice, capsys):
    out = run(folder, capsys)

    assert out.splitlines()[:2] == [
        "Done: 3 imported, 1 already there, 1 failed.",
        f"  {folder / '2024' / 'broken: scan.jpg'}: not a supported image or video "
        "(images: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, AVIF, JPEG 2000, "
        "Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
        "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2; "
        "videos: MP4/MOV, MKV, WebM, AVI)",
    ]
    names = Photo.objects.filter(owner=alice).values_list("original_filename", flat=True)
    assert sorted(names) == ["a.jpg", "b.png", "c.heic"]
    assert set(Photo.objects.values_list("status", flat=True)) == {"pending"}


def test_running_again_imports_nothing_twice(folder, alice, capsys):
    run(folder, capsys)
    out = run(folder, capsys)
    assert out.splitlines()[0] == "Done: 0 imported, 4 already there, 1 failed."
    assert Photo.objects.count() == 3


def test_interrupted_import_resumes_where_it_stopped(folder, alice, capsys, monkeypatch):
    real_create = import_photos.photo_create
    calls = []

    def create_then_ctrl_c(**kwargs):
        # The person presses Ctrl-C while the second file is being stored.
        calls.append(kwargs["file"].name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_create(**kwargs)

    monkeypatch.setattr(import_photos, "photo_create", create_then_ctrl_c)
    with pytest.raises(CommandError, match=r"^Interrupted\. Run the same command again"):
        run(folder, capsys)
    assert capsys.readouterr().out.splitlines()[0] == (
        "Stopped early: 1 imported, 0 already there, 0 failed."
    )
    assert Photo.objects.count() == 1

    monkeypatch.setattr(import_photos, "photo_create", real_create)
    out = run(folder, capsys)

    assert out.splitlines()[0] == "Done: 2 imported, 2 already there, 1 failed."
    assert Photo.objects.count() == 3


def test_unknown_owner_or_missing_folder_is_a_clear_error(folder, tmp_path):
    with pytest.raises(CommandError, match="No user called 'nobody'"):
        call_command("import_photos", str(folder), owner="nobody")
    with pytest.raises(CommandError, match="is not a folder"):
        call_command("import_photos", str(tmp_path / "missing"), owner="nobody")
