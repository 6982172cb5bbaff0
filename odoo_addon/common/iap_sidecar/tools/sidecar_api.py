"""The sidecar's database API (``/api/v1/databases``), as this addon calls it.

Plain ``requests`` with short timeouts. Every failure (unreachable, timed out, refused,
not JSON) becomes a :class:`SidecarError` whose message says why, using the ``detail``
of the sidecar's RFC 7807 problem answer when it sent one. Nothing here needs Odoo.
"""

from urllib.parse import quote, urlsplit

import requests

#: Seconds to wait for the sidecar by default (connect and read).
DEFAULT_TIMEOUT = 10


class SidecarError(Exception):
    """The sidecar could not be reached or refused the request.

    ``status`` is the HTTP status of a refusal, None when no answer came.
    """

    def __init__(self, message, status=None):
        super().__init__(message)
        self.status = status


def normalize_origin(url):
    """Returns ``url`` as a bare origin ``scheme://host[:port]`` without trailing slash.

    Odoo joins its IAP routes onto ``iap.endpoint`` (werkzeug's ``url_join`` drops any
    path), so the sidecar must be configured as an origin. Raises ValueError otherwise.
    """
    text = (url or "").strip().rstrip("/")
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(
            "the sidecar URL must start with http:// or https:// and name a host"
        )
    if parts.path or parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(
            "the sidecar URL must be a bare origin such as https://iap.example.org "
            "(no path, query or credentials)"
        )
    return text


def _problem(response):
    """A one-line reason from a refusal, preferring the problem JSON's ``detail``."""
    reason = None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict):
        reason = body.get("detail") or body.get("title")
    if not reason:
        reason = (response.text or response.reason or "").strip()[:200] or "no details"
    return f"the sidecar refused the request (HTTP {response.status_code}): {reason}"


class SidecarClient:
    """Calls one sidecar; ``base_url`` is its origin."""

    def __init__(self, base_url, timeout=DEFAULT_TIMEOUT):
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def _call(
        self, method, path, bearer=None, payload=None, expect=(200,), timeout=None
    ):
        timeout = timeout or self.timeout
        headers = {"Accept": "application/json"}
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            response = requests.request(
                method,
                self.base_url + path,
                json=payload,
                headers=headers,
                timeout=timeout,
            )
        except requests.exceptions.Timeout as exc:
            raise SidecarError(
                f"the sidecar at {self.base_url} did not answer within {timeout} s"
            ) from exc
        except requests.exceptions.ConnectionError as exc:
            raise SidecarError(
                f"the sidecar at {self.base_url} is unreachable (connection failed)"
            ) from exc
        except requests.exceptions.RequestException as exc:
            raise SidecarError(
                f"the sidecar at {self.base_url} is unreachable: {exc}"
            ) from exc
        if response.status_code not in expect:
            raise SidecarError(_problem(response), status=response.status_code)
        if response.status_code == 204:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise SidecarError(
                f"the sidecar at {self.base_url} answered HTTP {response.status_code} "
                "with a body that is not JSON",
                status=response.status_code,
            ) from exc

    @staticmethod
    def _db_path(dbuuid, tail=""):
        return f"/api/v1/databases/{quote(dbuuid, safe='')}{tail}"

    def register(self, secret, dbuuid, url, db, login, api_key, database_token=None):
        """Registers this database; answers ``{dbuuid, database_token, companies, accounts}``.

        A database registered already must send its current ``database_token``.

        The sidecar logs in to ``url`` with ``login`` / ``api_key`` before answering, so
        the key must already be committed in Odoo's database.
        """
        answer = self._call(
            "POST",
            "/api/v1/databases",
            bearer=secret,
            payload={
                "dbuuid": dbuuid,
                "url": url,
                "db": db,
                "login": login,
                "api_key": api_key,
                **({"database_token": database_token} if database_token else {}),
            },
            expect=(200, 201),
        )
        if not isinstance(answer, dict) or not answer.get("database_token"):
            raise SidecarError(
                "the sidecar's registration answer has no database_token"
            )
        return answer

    def refresh(self, dbuuid, token):
        """Asks the sidecar to read this database's companies and accounts again."""
        return self._call("POST", self._db_path(dbuuid, "/refresh"), bearer=token)

    def disconnect(self, dbuuid, token):
        """The sidecar forgets this database's credentials (a 404 means it already did)."""
        return self._call(
            "DELETE", self._db_path(dbuuid), bearer=token, expect=(200, 204)
        )

    def accounts(self, dbuuid, token, items):
        """The sidecar's figures for ``items`` (``[{token, service}]``), keyed by token.

        Tokens the sidecar does not know are absent from the answer.
        """
        answer = self._call(
            "POST",
            self._db_path(dbuuid, "/accounts"),
            bearer=token,
            payload={"accounts": items},
        )
        if not isinstance(answer, dict):
            raise SidecarError("the sidecar's account answer is not an object")
        return answer

    def health(self):
        """Raises SidecarError unless the sidecar and its database answer."""
        self._call("GET", "/health")
