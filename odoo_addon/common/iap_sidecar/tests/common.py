import json
import os
import unittest
from contextlib import contextmanager
from unittest.mock import patch

import requests

from odoo.tests import TransactionCase

from ..tools import connection as conn

SIDECAR_URL = "http://127.0.0.1:8070"


def require(condition, reason):
    """Skips the test when ``condition`` is false, but fails it under ``CI=true``: CI
    must run every test, and a missing tool there is a broken set-up, not a reason."""
    if condition:
        return
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise AssertionError(f"{reason} (CI=true: required)")
    raise unittest.SkipTest(reason)


def account_values(env, **values):
    """Values creating an ``iap.account`` of the Reveal service on any series (Odoo 17
    names the service on the account, 18 and later link an ``iap.service``)."""
    if "service_id" in env["iap.account"]._fields:
        values["service_id"] = env.ref("iap.iap_service_reveal").id
    else:
        values["service_name"] = "reveal"
    return values


def response(status, body=None):
    """A ``requests`` response with a JSON body (none for 204)."""
    answer = requests.Response()
    answer.status_code = status
    answer.reason = "test"
    if body is not None:
        answer._content = json.dumps(body).encode()
        answer.headers["Content-Type"] = "application/json"
    else:
        answer._content = b""
    return answer


class FakeSidecar:
    """Stands in for ``requests.request`` in the sidecar client: answers from
    ``routes[(method, path)]`` (a response, an exception to raise, or a callable taking
    the call) and records every call."""

    def __init__(self):
        self.calls = []
        self.routes = {("GET", "/health"): response(200, {"status": "ok"})}

    def __call__(
        self, method, url, json=None, headers=None, timeout=None
    ):  # pylint: disable=redefined-outer-name
        assert url.startswith(SIDECAR_URL), url
        call = {
            "method": method,
            "path": url[len(SIDECAR_URL) :],
            "json": json,
            "headers": headers or {},
            "timeout": timeout,
        }
        self.calls.append(call)
        answer = self.routes.get((method, call["path"]))
        if answer is None:
            return response(
                404, {"title": "Not Found", "detail": f"no route {call['path']}"}
            )
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(call)
        return answer

    def made(self, method, path):
        return [
            call
            for call in self.calls
            if call["method"] == method and call["path"] == path
        ]


class SidecarCase(TransactionCase):
    """Runs as the administrator, with the sidecar client's HTTP calls faked."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(user=cls.env.ref("base.user_admin"))
        cls.params = cls.env["ir.config_parameter"].sudo()
        cls.dbuuid = cls.params.get_param("database.uuid")

    def setUp(self):
        super().setUp()
        # The account figures are memoized per transaction, which tests share.
        self.env.cr.cache.pop("iap_sidecar.accounts", None)
        self.sidecar = FakeSidecar()
        patcher = patch(
            "odoo.addons.iap_sidecar.tools.sidecar_api.requests.request",
            new=self.sidecar,
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def connect_directly(self, token="iapdb_test"):
        """Stores a connection as Connect would, without calling the sidecar."""
        self.params.set_param(conn.PARAM_CONNECTED_URL, SIDECAR_URL)
        self.params.set_param(conn.PARAM_TOKEN, token)
        self.params.set_param(conn.PARAM_DBUUID, self.dbuuid)
        self.params.set_param(conn.PARAM_IAP_ENDPOINT, SIDECAR_URL)

    @contextmanager
    def no_sidecar_calls(self):
        before = len(self.sidecar.calls)
        yield
        self.assertEqual(
            self.sidecar.calls[before:], [], "no call to the sidecar expected"
        )
