from datetime import datetime

import requests
from lxml import etree

from odoo.tests import tagged

from ..tools import connection as conn
from .common import SidecarCase, account_values, response

LOGGER = "odoo.addons.iap_sidecar.models.iap_account"

SPEC = {
    "name": {},
    "sidecar_balance": {},
    "sidecar_reserved": {},
    "sidecar_available": {},
    "sidecar_lots": {},
    "sidecar_next_expiry": {},
    "sidecar_last_consumption": {},
    "sidecar_portal_url": {},
    "sidecar_companies": {},
    "sidecar_message": {},
}


@tagged("post_install", "-at_install")
class TestAccountFigures(SidecarCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.accounts = (
            cls.env["iap.account"]
            .sudo()
            .create([account_values(cls.env, name=f"Reveal {n}") for n in range(3)])
        )
        cls.accounts = cls.accounts.with_env(cls.env)
        cls.tokens = cls.accounts.sudo().mapped("account_token")

    def setUp(self):
        super().setUp()
        self.connect_directly()
        self.path = f"/api/v1/databases/{self.dbuuid}/accounts"
        first, second, _unknown = self.tokens
        self.sidecar.routes[("POST", self.path)] = response(
            200,
            {
                first: {
                    "balance": "12.5",
                    "reserved": "2",
                    "available": "10.5",
                    "lots": [
                        {"remaining": "2.5", "expires_at": None},
                        {
                            "remaining": "10",
                            "expires_at": "2027-01-01T00:00:00.000000Z",
                        },
                        {"remaining": "0", "expires_at": "2026-12-01T00:00:00Z"},
                    ],
                    "last_consumption_at": "2026-11-28T10:30:00.000000Z",
                    "companies": ["YourCompany"],
                    "portal_url": "http://127.0.0.1:8070/iap/1/credit?hashed=1",
                },
                second: {
                    "balance": "0",
                    "reserved": "0",
                    "available": "0",
                    "lots": [],
                    "last_consumption_at": None,
                    "companies": [],
                    "portal_url": "http://127.0.0.1:8070/iap/1/credit?x=2",
                },
            },
        )

    def read_accounts(self, spec=None):
        return {row["id"]: row for row in self.accounts.web_read(spec or SPEC)}

    def test_one_batched_call_for_every_account_read(self):
        rows = self.read_accounts()

        [call] = self.sidecar.made("POST", self.path)
        self.assertEqual(call["headers"]["Authorization"], "Bearer iapdb_test")
        self.assertEqual(
            call["json"],
            {
                "accounts": [
                    {"token": token, "service": "reveal"} for token in self.tokens
                ]
            },
        )
        first, second, unknown = (rows[account.id] for account in self.accounts)
        self.assertEqual(first["sidecar_balance"], 12.5)
        self.assertEqual(first["sidecar_reserved"], 2.0)
        self.assertEqual(first["sidecar_available"], 10.5)
        self.assertEqual(
            first["sidecar_lots"].splitlines(),
            [
                "10 until 2027-01-01 00:00:00 UTC",
                "2.5, no expiry",
            ],
        )
        self.assertEqual(first["sidecar_next_expiry"], datetime(2027, 1, 1))
        self.assertEqual(
            first["sidecar_last_consumption"], datetime(2026, 11, 28, 10, 30)
        )
        self.assertEqual(first["sidecar_companies"], "YourCompany")
        self.assertTrue(
            first["sidecar_portal_url"].startswith("http://127.0.0.1:8070/iap/1/credit")
        )
        self.assertFalse(first["sidecar_message"])
        self.assertEqual(second["sidecar_lots"], "No credits")
        self.assertEqual(second["sidecar_companies"], "All companies")
        self.assertFalse(second["sidecar_last_consumption"])
        self.assertIn("does not know this account yet", unknown["sidecar_message"])
        self.assertFalse(unknown["sidecar_balance"])

    def test_answers_are_kept_for_the_transaction(self):
        self.read_accounts()
        self.read_accounts()
        self.accounts[0].web_read(SPEC)
        self.assertEqual(len(self.sidecar.made("POST", self.path)), 1)

    def test_no_call_without_sidecar_fields(self):
        with self.no_sidecar_calls():
            self.read_accounts({"name": {}, "balance": {}})

    def test_soft_failure_when_the_sidecar_is_down(self):
        self.sidecar.routes[("POST", self.path)] = requests.exceptions.ConnectionError(
            "refused"
        )

        with self.assertLogs(LOGGER, "WARNING"):
            rows = self.read_accounts()
            self.read_accounts()

        self.assertEqual(
            len(self.sidecar.made("POST", self.path)), 1, "asked once per transaction"
        )
        for row in rows.values():
            self.assertIn("figures are unavailable", row["sidecar_message"])
            self.assertIn("unreachable", row["sidecar_message"])
            self.assertFalse(row["sidecar_balance"])

    def test_soft_failure_on_a_refusal(self):
        self.sidecar.routes[("POST", self.path)] = response(
            401, {"title": "Unauthorized", "detail": "unknown database token"}
        )
        with self.assertLogs(LOGGER, "WARNING"):
            rows = self.read_accounts()
        for row in rows.values():
            self.assertIn("unknown database token", row["sidecar_message"])

    def test_soft_failure_on_garbage(self):
        self.sidecar.routes[("POST", self.path)] = response(
            200, ["not", "an", "object"]
        )
        with self.assertLogs(LOGGER, "WARNING"):
            rows = self.read_accounts()
        for row in rows.values():
            self.assertIn("not an object", row["sidecar_message"])

    def test_not_connected(self):
        for key in conn.CONNECTION_PARAMS:
            self.params.set_param(key, False)
        with self.no_sidecar_calls():
            rows = self.read_accounts()
        for row in rows.values():
            self.assertIn("not connected", row["sidecar_message"])

    def test_copied_database_does_not_use_the_original_token(self):
        self.params.set_param(conn.PARAM_DBUUID, "the-original-database")
        with self.no_sidecar_calls():
            rows = self.read_accounts()
        for row in rows.values():
            self.assertIn("not connected", row["sidecar_message"])

    def test_views_show_the_fields_in_developer_mode_only(self):
        def shown(arch, name):
            # 17 and 18 drop nodes of other groups; 19 keeps them, made invisible.
            nodes = etree.fromstring(arch).xpath(f"//field[@name='{name}']")
            return any(
                all(node.get("invisible") != "1" for node in field.iterancestors())
                and field.get("invisible") != "1"
                for field in nodes
            )

        form = self.env.ref("iap.iap_account_view_form")
        arch = self.env["iap.account"].get_view(form.id, "form")["arch"]
        self.assertFalse(shown(arch, "sidecar_reserved"))
        self.assertFalse(shown(arch, "sidecar_message"))
        with self.debug_mode():
            arch = self.env["iap.account"].get_view(form.id, "form")["arch"]
        self.assertTrue(shown(arch, "sidecar_reserved"))
        self.assertTrue(shown(arch, "sidecar_message"))
