import inspect
import json
import uuid
from unittest.mock import patch

from odoo import release
from odoo.addons.iap.tools import iap_tools
from odoo.exceptions import AccessError
from odoo.tests import TransactionCase, tagged

from ..tools import iap_provider
from .common import require
from .local_sidecar import LocalSidecar, find_binary

SHORTFALL = json.dumps(
    {
        "message": "not enough credits",
        "credit": 4.0,
        "service_name": "sms",
        "base_url": "http://127.0.0.1:8070/iap/1/credit",
        "trial": False,
    }
)


class Boom(Exception):
    pass


class FakeIap:
    """Records the JSON-RPC calls of the helper and answers like an IAP server."""

    def __init__(self, insufficient=False):
        self.calls = []
        self.insufficient = insufficient

    def __call__(self, url, method="call", params=None, timeout=15):
        route = url.rpartition("/iap/1/")[2]
        self.calls.append((route, params))
        if route == "authorize":
            if self.insufficient:
                error = iap_provider.InsufficientCreditError(SHORTFALL)
                error.data = {"name": "InsufficientCreditError", "message": SHORTFALL}
                raise error
            return "tx_1"
        return True


@tagged("post_install", "-at_install")
class TestProviderHelper(TransactionCase):
    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(
            "iap.endpoint", "http://127.0.0.1:8070"
        )

    def fake(self, **kwargs):
        fake = FakeIap(**kwargs)
        patcher = patch.object(iap_provider, "iap_jsonrpc", fake)
        patcher.start()
        self.addCleanup(patcher.stop)
        return fake

    def test_same_signatures_as_odoo(self):
        names = ("iap_authorize", "iap_capture", "iap_cancel", "iap_charge")
        if release.version_info[0] >= 19:
            # 19 removed the provider helpers: this module is what providers use there.
            for name in names:
                self.assertFalse(hasattr(iap_tools, name), name)
            names = ()
        for name in names:
            ours = inspect.signature(getattr(iap_provider, name))
            odoo = inspect.signature(getattr(iap_tools, name))
            self.assertEqual(ours, odoo, name)

    def test_insufficient_credit_is_odoo_class(self):
        self.assertIs(
            iap_provider.InsufficientCreditError, iap_tools.InsufficientCreditError
        )

    def test_charge_captures_the_credit_set_by_the_body(self):
        fake = self.fake()
        with iap_provider.iap_charge(
            self.env, "key", "tok", 4, dbuuid="db", description="d"
        ) as tx:
            self.assertEqual(tx.credit, 4)
            tx.credit = 3
        self.assertEqual(
            fake.calls,
            [
                (
                    "authorize",
                    {
                        "account_token": "tok",
                        "credit": 4,
                        "key": "key",
                        "description": "d",
                        "ttl": 4320,
                        "dbuuid": "db",
                    },
                ),
                ("capture", {"token": "tx_1", "key": "key", "credit_to_capture": 3}),
            ],
        )

    def test_charge_cancels_and_reraises_on_error(self):
        fake = self.fake()
        with self.assertRaises(Boom):
            with iap_provider.iap_charge(self.env, "key", "tok", 4):
                raise Boom()
        self.assertEqual(
            [route for route, _params in fake.calls], ["authorize", "cancel"]
        )
        self.assertEqual(fake.calls[1][1], {"token": "tx_1", "key": "key"})
        self.assertNotIn("dbuuid", fake.calls[0][1])

    def test_insufficient_credit_stops_before_the_body(self):
        fake = self.fake(insufficient=True)
        ran = []
        with self.assertRaises(iap_tools.InsufficientCreditError) as caught:
            with iap_provider.iap_charge(self.env, "key", "tok", 4):
                ran.append(True)
        self.assertEqual(ran, [])
        self.assertEqual([route for route, _params in fake.calls], ["authorize"])
        self.assertEqual(json.loads(caught.exception.args[0])["service_name"], "sms")

    def test_credit_template_is_rendered_into_the_error(self):
        self.fake(insufficient=True)
        self.env["ir.ui.view"].create(
            {
                "name": "test credit template",
                "type": "qweb",
                "key": "iap_sidecar.test_credit_template",
                "arch": '<t t-name="iap_sidecar.test_credit_template"><p>Buy more</p></t>',
            }
        )
        with self.assertRaises(iap_tools.InsufficientCreditError) as caught:
            iap_provider.iap_authorize(
                self.env,
                "key",
                "tok",
                4,
                credit_template="iap_sidecar.test_credit_template",
            )
        payload = json.loads(caught.exception.args[0])
        self.assertEqual(payload["body"], "<p>Buy more</p>")
        self.assertEqual(payload["base_url"], "http://127.0.0.1:8070/iap/1/credit")

    def test_posts_through_odoo_iap_jsonrpc_when_it_exists(self):
        # Odoo's own transport refuses to run inside the test runner: that refusal
        # proves the helper went through it.
        with self.assertRaisesRegex(AccessError, "Unavailable during tests"):
            iap_provider.iap_authorize(self.env, "key", "tok", 1)

    def test_own_transport_when_odoo_has_no_iap_jsonrpc(self):
        # As on a series whose iap_tools lost the helpers.
        fake = FakeIap()
        with patch.object(iap_provider, "_iap_tools", None), patch.object(
            iap_provider, "requests_jsonrpc", fake
        ):
            with iap_provider.charge(self.env, "key", "tok", 2):
                pass
        self.assertEqual(
            [route for route, _params in fake.calls], ["authorize", "capture"]
        )


@tagged("post_install", "-at_install")
class TestProviderHelperOnSidecar(TransactionCase):
    """The helper against a real sidecar on loopback (without its binary: skipped, and
    failed under CI=true)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        require(
            find_binary(),
            "no iap-sidecar binary: set IAP_SIDECAR_BIN or run cargo build",
        )
        cls.sidecar = LocalSidecar(find_binary())
        cls.addClassCleanup(cls.sidecar.close)
        cls.key = cls.sidecar.add_service("addontest", "Addon test")
        cls.token = uuid.uuid4().hex
        cls.sidecar.grant(cls.token, "addontest", 10, expires="2099-01-01")
        cls.sidecar.start()

    def setUp(self):
        super().setUp()
        self.env["ir.config_parameter"].sudo().set_param(
            "iap.endpoint", self.sidecar.url
        )
        # Odoo's iap_jsonrpc refuses to work in tests; the helper's own transport is
        # what runs on Odoo 19.
        patcher = patch.object(
            iap_provider, "iap_jsonrpc", iap_provider.requests_jsonrpc
        )
        patcher.start()
        self.addCleanup(patcher.stop)

    def available(self):
        return iap_provider.requests_jsonrpc(
            self.sidecar.url + "/iap/1/balance",
            params={"account_token": self.token, "service_name": "addontest"},
        )

    def test_charge_capture_cancel_and_shortfall(self):
        with iap_provider.iap_charge(
            self.env, self.key, self.token, 4, description="4 pages"
        ) as tx:
            tx.credit = 3
        self.assertEqual(self.available(), 7)

        with self.assertRaises(Boom):
            with iap_provider.iap_charge(self.env, self.key, self.token, 5):
                self.assertEqual(self.available(), 2)
                raise Boom()
        self.assertEqual(self.available(), 7)

        with self.assertRaises(iap_tools.InsufficientCreditError) as caught:
            with iap_provider.iap_charge(self.env, self.key, self.token, 100):
                self.fail("the body must not run without credits")
        payload = json.loads(caught.exception.args[0])
        self.assertEqual(payload["base_url"], self.sidecar.url + "/iap/1/credit")
        self.assertEqual(payload["service_name"], "addontest")
        self.assertEqual(payload["credit"], 100)
        self.assertEqual(self.available(), 7)

    def test_wrong_key_is_an_access_error_with_the_reason(self):
        with self.assertRaisesRegex(AccessError, "invalid service key"):
            iap_provider.iap_authorize(self.env, "not-the-key", self.token, 1)
