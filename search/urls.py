from django.urls import path

from search.accounts import views as accounts
from search.albums import views as albums
from search.dashboard import views as dashboard
from search.duplicates import views as duplicates
from search.photos import views as photos
from search.retrieval import views as retrieval
from search.web import views as web

app_name = "search"
urlpatterns = [
    path("", retrieval.home, name="home"),
    path("search/image/", retrieval.search_by_image, name="search_by_image"),
    path("upload/", photos.upload, name="upload"),
    path("photos/", photos.photo_list, name="photo_list"),
    path("photos/status/", photos.photo_status, name="photo_status"),
    path("photos/<int:pk>/", photos.photo_detail, name="photo_detail"),
    path("photos/<int:pk>/similar/", retrieval.photo_similar, name="photo_similar"),
    path("albums/", albums.album_list, name="album_list"),
    path("albums/add/", albums.album_add, name="album_add"),
    path("albums/<int:pk>/", albums.album_detail, name="album_detail"),
    path("albums/<int:pk>/<str:action>/", albums.album_edit, name="album_edit"),
    path("photos/delete/", photos.photos_delete_confirm, name="photos_delete"),
    path("duplicates/", duplicates.duplicates, name="duplicates"),
    path(
        "photos/<int:pk>/thumbnail/",
        photos.photo_file,
        {"kind": "thumbnail"},
        name="photo_thumbnail",
    ),
    path("photos/<int:pk>/preview/", photos.photo_file, {"kind": "preview"}, name="photo_preview"),
    path(
        "photos/<int:pk>/playable/", photos.photo_file, {"kind": "playable"}, name="photo_playable"
    ),
    path("photos/<int:pk>/motion/", photos.photo_file, {"kind": "motion"}, name="photo_motion"),
    path(
        "photos/<int:pk>/original/", photos.photo_file, {"kind": "original"}, name="photo_original"
    ),
    path("account/tokens/", accounts.api_tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke/", accounts.api_token_delete, name="api_token_revoke"),
    path("dashboard/", dashboard.dashboard, name="dashboard"),
    path("dashboard/<str:action>/", dashboard.dashboard_action, name="dashboard_action"),
    path("healthz", web.healthz, name="healthz"),
]
