from django.urls import path

from search import views

app_name = "search"
urlpatterns = [
    path("", views.home, name="home"),
    path("search/image/", views.search_by_image, name="search_by_image"),
    path("upload/", views.upload, name="upload"),
    path("photos/", views.photo_list, name="photo_list"),
    path("photos/status/", views.photo_status, name="photo_status"),
    path("photos/<int:pk>/", views.photo_detail, name="photo_detail"),
    path("photos/<int:pk>/similar/", views.photo_similar, name="photo_similar"),
    path("albums/", views.album_list, name="album_list"),
    path("albums/add/", views.album_add, name="album_add"),
    path("albums/<int:pk>/", views.album_detail, name="album_detail"),
    path("albums/<int:pk>/<str:action>/", views.album_edit, name="album_edit"),
    path("photos/delete/", views.photos_delete_confirm, name="photos_delete"),
    path("duplicates/", views.duplicates, name="duplicates"),
    path(
        "photos/<int:pk>/thumbnail/",
        views.photo_file,
        {"kind": "thumbnail"},
        name="photo_thumbnail",
    ),
    path("photos/<int:pk>/preview/", views.photo_file, {"kind": "preview"}, name="photo_preview"),
    path(
        "photos/<int:pk>/original/", views.photo_file, {"kind": "original"}, name="photo_original"
    ),
    path("account/tokens/", views.api_tokens, name="api_tokens"),
    path("account/tokens/<int:pk>/revoke/", views.api_token_delete, name="api_token_revoke"),
    path("dashboard/", views.dashboard, name="dashboard"),
    path("dashboard/<str:action>/", views.dashboard_action, name="dashboard_action"),
    path("healthz", views.healthz, name="healthz"),
]
