"""OCR on its own queue, through real Celery worker processes: the vector is stored without
waiting for it, then an OCR worker reads the text and the ordinary search box finds it."""

import pytest

from search.models import Embedding, Photo, PhotoText
from search.photos.services import photo_create
from search.retrieval.selectors import photo_search
from tests.conftest import upload_file, wait_for
from tests.search.text.test_services import sign_jpeg

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_text_is_read_on_the_ocr_queue_after_the_vector(celery_processes, settings, alice):
    settings.MEDIASEARCH_OCR_ENABLED = True
    photo = photo_create(owner=alice, file=upload_file("sign.jpg", sign_jpeg(("MIRAMAR",)))).photo

    # Only the embedding worker: the photo becomes ready and searchable by CLIP while its
    # reading waits on the OCR queue.
    embedder = celery_processes.worker(queues=["celery"], MEDIASEARCH_OCR_ENABLED="1")
    # The reading is asked for just after the vector's transaction commits.
    wait_for(
        lambda: PhotoText.objects.filter(photo=photo).exists(),
        timeout=90,
        message="the photo was not embedded:\n" + celery_processes.log(embedder),
    )
    assert Photo.objects.get(pk=photo.pk).status == Photo.Status.READY
    assert Embedding.objects.filter(photo=photo).count() == 1
    assert PhotoText.objects.get(photo=photo).status == PhotoText.Status.PENDING
    celery_processes.kill(embedder)

    ocr = celery_processes.worker(queues=["ocr"], MEDIASEARCH_OCR_ENABLED="1")
    wait_for(
        lambda: PhotoText.objects.get(photo=photo).status != PhotoText.Status.PENDING,
        timeout=120,
        message="the OCR worker did not read the photo:\n" + celery_processes.log(ocr),
    )
    row = PhotoText.objects.get(photo=photo)
    assert row.status == PhotoText.Status.DONE, row.failure_reason
    assert row.folded == "miramar" and row.engine == "rapidocr"

    outcome = photo_search(user=alice, text="miramar")
    assert [hit.photo.pk for hit in outcome.hits] == [photo.pk]
    assert outcome.hits[0].matched == ("miramar",)
