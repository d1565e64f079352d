from django.contrib import admin
from django.urls import include, path, re_path

from search.api.app import api, unknown_endpoint

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/", api.urls),
    re_path(r"^api/(?P<path>.*)$", unknown_endpoint),
    path("", include("search.urls")),
]

# Django's default 400 page renders without the request: no user, no settings in context.
handler400 = "search.web.views.bad_request"
