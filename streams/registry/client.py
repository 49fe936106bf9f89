"""The one HTTP client of a Confluent-compatible schema registry (Confluent, Apicurio's
``/apis/ccompat/v7``, Redpanda, Karapace): the few calls nerstream needs, errors sorted by kind.

Standard library only (``urllib``): five JSON calls do not justify an HTTP stack. Every failure
is one of the errors below, by what should happen next: :class:`RegistryUnavailableError` (no
answer, a timeout, a 5xx: back off and retry), :class:`IncompatibleSchemaError` (409: the
registry refuses the schema under the subject's compatibility rule), :class:`RegistryAuthError`
(401/403), :class:`RegistryError` (any other refusal).
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any

from errors import PermanentError, TemporaryError, UsageError
from streams.settings import SchemaRegistrySettings

_CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"
#: Confluent error codes (the ``error_code`` of a 404 body).
SUBJECT_NOT_FOUND = 40401
VERSION_NOT_FOUND = 40402
SCHEMA_NOT_FOUND = 40403


class RegistryError(PermanentError):
    """The registry answered with a refusal that retrying cannot change."""

    def __init__(self, message: str, status: int = 0, error_code: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


class IncompatibleSchemaError(RegistryError):
    """The registry refused a schema: it breaks the subject's compatibility rule (HTTP 409)."""


class RegistryAuthError(RegistryError, UsageError):
    """The registry refused the credentials (HTTP 401/403): fix the username or password."""


class RegistryUnavailableError(TemporaryError):
    """The registry did not answer usefully (refused connection, timeout, HTTP 5xx)."""


@dataclass(frozen=True)
class RegisteredSchema:
    """A schema as the registry holds it."""

    schema_id: int
    schema: str
    schema_type: str = "AVRO"


class RegistryClient:
    """Calls of the Confluent Schema Registry REST API, against ``settings.url``."""

    def __init__(self, settings: SchemaRegistrySettings) -> None:
        self.base_url = settings.url.rstrip("/")
        self.timeout_s = settings.timeout_s
        self._headers = {"Accept": _CONTENT_TYPE, "Content-Type": _CONTENT_TYPE}
        if settings.username:
            token = f"{settings.username}:{settings.password.reveal()}".encode()
            self._headers["Authorization"] = "Basic " + base64.b64encode(token).decode("ascii")

    # --- the calls ----------------------------------------------------------------------------

    def subjects(self) -> list[str]:
        """Every subject (also a cheap way to see whether the registry answers)."""
        return [str(subject) for subject in self._call("GET", "/subjects")]

    def schema_by_id(self, schema_id: int) -> RegisteredSchema | None:
        """The schema registered under ``schema_id``, or None when there is none."""
        try:
            body = self._call("GET", f"/schemas/ids/{schema_id}")
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return RegisteredSchema(schema_id, str(body["schema"]), str(body.get("schemaType", "AVRO")))

    def register(self, subject: str, schema: str) -> int:
        """Register ``schema`` under ``subject`` (a no-op if it is there); its id.

        Raises IncompatibleSchemaError when the subject's compatibility rule refuses it.
        """
        body = self._call("POST", f"/subjects/{_quote(subject)}/versions", {"schema": schema})
        return int(body["id"])

    def lookup(self, subject: str, schema: str) -> int | None:
        """The id of ``schema`` if it is registered under ``subject``, else None."""
        try:
            body = self._call("POST", f"/subjects/{_quote(subject)}", {"schema": schema})
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        return int(body["id"])

    def check_compatibility(self, subject: str, schema: str) -> tuple[bool, str]:
        """Whether ``schema`` may be registered next under ``subject``, and the registry's reason.

        A subject without versions accepts anything (its reason says so).
        """
        path = f"/compatibility/subjects/{_quote(subject)}/versions/latest?verbose=true"
        try:
            body = self._call("POST", path, {"schema": schema})
        except RegistryError as exc:
            if exc.status == 404 and exc.error_code in (SUBJECT_NOT_FOUND, VERSION_NOT_FOUND):
                return True, "the subject has no versions yet"
            raise
        messages = body.get("messages") or body.get("reason") or ""
        reason = "; ".join(messages) if isinstance(messages, list) else str(messages)
        return bool(body.get("is_compatible")), reason

    def set_compatibility(self, subject: str, level: str) -> None:
        """Set ``subject``'s compatibility level (e.g. BACKWARD)."""
        try:
            self._call("PUT", f"/config/{_quote(subject)}", {"compatibility": level})
        except RegistryError as exc:
            # Apicurio stores NONE as "no rule", and answers 404 for a subject without versions.
            if not (level == "NONE" and exc.status == 404):
                raise

    def compatibility(self, subject: str) -> str | None:
        """``subject``'s own compatibility level, or None when it has none of its own."""
        try:
            body = self._call("GET", f"/config/{_quote(subject)}")
        except RegistryError as exc:
            if exc.status == 404:
                return None
            raise
        level = body.get("compatibilityLevel") or body.get("compatibility")
        return str(level) if level else None

    # --- HTTP ---------------------------------------------------------------------------------

    def _call(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        url = f"{self.base_url}{path}"
        data = json.dumps(payload).encode("utf-8") if payload is not None else None
        request = urllib.request.Request(url, data=data, method=method, headers=self._headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                return json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            raise _http_error(method, url, exc) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RegistryUnavailableError(
                f"schema registry at {self.base_url} did not answer {method} {path}: {reason}"
            ) from exc
        except json.JSONDecodeError as exc:
            raise RegistryUnavailableError(
                f"schema registry at {self.base_url} answered {method} {path} with non-JSON"
            ) from exc


def _quote(subject: str) -> str:
    return urllib.parse.quote(subject, safe="")


def _http_error(method: str, url: str, exc: urllib.error.HTTPError) -> Exception:
    try:
        body = json.loads(exc.read() or b"{}")
    except (ValueError, OSError):
        body = {}
    finally:
        exc.close()
    error_code = int(body.get("error_code") or 0) if isinstance(body, dict) else 0
    detail = str(body.get("message", "") if isinstance(body, dict) else "")[:500]
    message = f"schema registry answered {exc.code} to {method} {url}: {detail or exc.reason}"
    if exc.code >= 500 or exc.code == 429:
        return RegistryUnavailableError(message)
    if exc.code in (401, 403):
        return RegistryAuthError(message, exc.code, error_code)
    if exc.code == 409:
        return IncompatibleSchemaError(message, exc.code, error_code)
    return RegistryError(message, exc.code, error_code)
