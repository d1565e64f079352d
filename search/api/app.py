"""The JSON API at /api/: the same services and selectors as the web pages, behind a bearer
token (see ``search.accounts.services.api_token_authenticate``). Schema: /api/openapi.json.

Anything the caller may not see answers 404, exactly as an id that does not exist would.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from ninja import NinjaAPI, Swagger
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer

from search.accounts.services import api_token_authenticate
from search.albums.services import AlbumError
from search.api.accounts import router as accounts_router
from search.api.albums import router as albums_router
from search.api.photos import router as photos_router
from search.api.retrieval import router as retrieval_router
from search.retrieval.selectors import SearchError


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(key=token)
        if user is not None:
            # The token decides who is calling, whatever session cookie came along.
            request.user = user
        return user


class BodyNotAnObject(ValueError):
    pass


class BodyNotJson(ValueError):
    pass


class JsonObjectParser(Parser):
    """Every body this API takes is a JSON object, sent as such. Ninja reads any other JSON value
    (a number, a list) as an empty object, and a rename (PATCH, all fields optional) then
    answered 200 to a body of 16461; and it parses a body as JSON whatever its Content-Type says.
    See ``_http_error`` for the answers instead."""

    def parse_body(self, request: HttpRequest) -> dict:
        kind = request.content_type or ""
        if not (
            kind == "application/json"
            or (kind.startswith("application/") and kind.endswith("+json"))
        ):
            raise BodyNotJson
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise BodyNotAnObject
        return data


api = NinjaAPI(
    title="MediaSearch API",
    version="1",
    description=(
        "Upload photos, follow their processing, search them by text, by image or by "
        "similarity, and manage albums. Every call needs `Authorization: Bearer <token>`; "
        "create a token on the web page /account/tokens/ or with "
        "`manage.py create_api_token <username>`."
    ),
    auth=BearerToken(),
    parser=JsonObjectParser(),
    urls_namespace="api",
    # Swagger UI from the static files django-ninja ships (ninja is in INSTALLED_APPS), so the
    # docs work offline; no validator badge, which would call an outside service.
    docs=Swagger(settings={"validatorUrl": None}),
)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request,
        {
            "detail": "A valid API token is required: send 'Authorization: Bearer <token>'. "
            "Tokens are made on /account/tokens/."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="MediaSearch"'
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"loc": _field(error.get("loc", ())), "msg": error["msg"]} for error in exc.errors]
    detail = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in errors
    )
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


def _field(loc) -> list[str | int]:
    """The name a client knows from the schema: ninja's ``loc`` starts with where the value came
    from (query, path, form, file, body) and, for a JSON body, the view's parameter name."""
    where, *rest = loc or ("",)
    if where == "body":
        return rest[1:] or ["body"]
    return rest


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja turns whatever the parser raises into 400 "Cannot parse request body": right for
    # JSON that does not parse, but a body that parses to something else is invalid, like a
    # missing field.
    if isinstance(exc.__cause__, BodyNotAnObject):
        return _invalid(request, ValidationError([{"loc": ("body",), "msg": "must be an object"}]))
    if isinstance(exc.__cause__, BodyNotJson):
        return api.create_response(
            request,
            {"detail": "Send the body as JSON, with 'Content-Type: application/json'."},
            status=415,
        )
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(SearchError)
@api.exception_handler(AlbumError)
def _refused(request: HttpRequest, exc: ValueError) -> HttpResponse:
    # The services word these for the user already.
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(TooManyFilesSent)
def _too_many_files(request: HttpRequest, exc: TooManyFilesSent) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return api.create_response(
        request, {"detail": f"Too many files: send at most {limit} per request."}, status=400
    )


@api.exception_handler(MultiPartParserError)
def _unreadable_form(request: HttpRequest, exc: MultiPartParserError) -> HttpResponse:
    # No boundary, a part's headers over Django's limit, a body cut short: what Django answers
    # with its 400 page for the web pages, in JSON.
    return api.create_response(
        request, {"detail": f"The multipart body cannot be read: {exc}"}, status=400
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


def unknown_endpoint(request: HttpRequest, path: str) -> JsonResponse:
    """Any other address under /api/ (mounted after the API's own URLs)."""
    return JsonResponse({"detail": "No such API endpoint; see /api/docs."}, status=404)


# One router a concern; each operation names its own URL and tag.
api.add_router("", photos_router)
api.add_router("", accounts_router)
api.add_router("", retrieval_router)
api.add_router("", albums_router)
