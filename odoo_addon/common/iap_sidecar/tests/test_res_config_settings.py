from urllib.parse import parse_qs, urlsplit

import requests

from odoo.exceptions import UserError
from odoo.tests import tagged

from ..hooks import uninstall_hook
from ..tools import connection as conn
from .common import SIDECAR_URL, SidecarCase, account_values, response

PREVIOUS_ENDPOINT = "https://iap.example.com"
PREVIOUS_SMS_ENDPOINT = "https://sms.example.com"


@tagged("post_install", "-at_install")
class TestSettingsConnection(SidecarCase):
    def setUp(self):
        super().setUp()
        self.params.set_param(conn.PARAM_IAP_ENDPOINT, PREVIOUS_ENDPOINT)
        self.params.set_param(conn.PARAM_SMS_ENDPOINT, PREVIOUS_SMS_ENDPOINT)
        self.registered = {}
        self.sidecar.routes[("POST", "/api/v1/databases")] = self._register
        self.sidecar.routes[("DELETE", f"/api/v1/databases/{self.dbuuid}")] = response(
            204
        )

    def _register(self, call):
        self.registered = call
        return response(
            201,
            {
                "dbuuid": call["json"]["dbuuid"],
                "database_token": "iapdb_0123",
                "companies": [{"id": 1, "name": "YourCompany"}],
                "accounts": 2,
            },
        )

    def settings(self, **values):
        values.setdefault("iap_sidecar_url", SIDECAR_URL + "/")
        values.setdefault("iap_sidecar_registration_secret", "iapreg_secret")
        return self.env["res.config.settings"].create(values)

    def api_key_user(self, key):
        return self.env["res.users.apikeys"]._check_credentials(scope="rpc", key=key)

    def test_connect_registers_and_routes_iap_to_the_sidecar(self):
        action = self.settings().action_iap_sidecar_connect()

        self.assertEqual(action["params"]["type"], "success")
        call = self.registered
        self.assertEqual(call["headers"]["Authorization"], "Bearer iapreg_secret")
        body = call["json"]
        self.assertEqual(body["dbuuid"], self.dbuuid)
        self.assertEqual(body["db"], self.env.cr.dbname)
        self.assertEqual(body["login"], self.env.user.login)
        self.assertEqual(body["url"], self.params.get_param("web.base.url"))
        # A working RPC key of the administrator who clicked.
        self.assertEqual(self.api_key_user(body["api_key"]), self.env.uid)
        self.assertEqual(self.params.get_param(conn.PARAM_IAP_ENDPOINT), SIDECAR_URL)
        self.assertEqual(
            self.params.get_param(conn.PARAM_PREVIOUS_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertEqual(self.params.get_param(conn.PARAM_TOKEN), "iapdb_0123")
        self.assertEqual(self.params.get_param(conn.PARAM_URL), SIDECAR_URL)

        settings = self.settings()
        self.assertTrue(settings.iap_sidecar_connected)
        self.assertIn("Connected to " + SIDECAR_URL, settings.iap_sidecar_status)
        self.assertIn("1 companies and 2 IAP accounts", settings.iap_sidecar_status)

    def test_odoo_url_for_the_sidecar(self):
        self.settings(
            iap_sidecar_odoo_url="http://odoo:8069/"
        ).action_iap_sidecar_connect()
        self.assertEqual(self.registered["json"]["url"], "http://odoo:8069")

    def test_disconnect_restores_the_endpoint_and_revokes_the_key(self):
        self.settings().action_iap_sidecar_connect()
        api_key = self.registered["json"]["api_key"]

        action = self.settings().action_iap_sidecar_disconnect()

        self.assertEqual(action["params"]["type"], "success")
        [delete] = self.sidecar.made("DELETE", f"/api/v1/databases/{self.dbuuid}")
        self.assertEqual(delete["headers"]["Authorization"], "Bearer iapdb_0123")
        self.assertEqual(
            self.params.get_param(conn.PARAM_IAP_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertFalse(self.api_key_user(api_key))
        for key in conn.CONNECTION_PARAMS:
            self.assertFalse(self.params.get_param(key), key)
        self.assertFalse(self.settings().iap_sidecar_connected)
        # What the administrator typed stays for the next Connect.
        self.assertEqual(self.params.get_param(conn.PARAM_URL), SIDECAR_URL)

    def test_disconnect_without_previous_endpoint_removes_the_parameter(self):
        self.params.set_param(conn.PARAM_IAP_ENDPOINT, False)
        self.settings().action_iap_sidecar_connect()
        self.assertFalse(self.params.get_param(conn.PARAM_PREVIOUS_ENDPOINT))
        self.settings().action_iap_sidecar_disconnect()
        self.assertFalse(self.params.get_param(conn.PARAM_IAP_ENDPOINT))

    def test_connect_routes_sms_to_the_sidecar_and_disconnect_restores_it(self):
        self.settings().action_iap_sidecar_connect()

        # Odoo's sms addon joins its routes (/api/sms/3/send...) onto sms.endpoint.
        self.assertEqual(self.params.get_param(conn.PARAM_SMS_ENDPOINT), SIDECAR_URL)
        self.assertEqual(
            self.params.get_param(conn.PARAM_PREVIOUS_SMS_ENDPOINT),
            PREVIOUS_SMS_ENDPOINT,
        )

        self.settings().action_iap_sidecar_disconnect()

        self.assertEqual(
            self.params.get_param(conn.PARAM_SMS_ENDPOINT), PREVIOUS_SMS_ENDPOINT
        )
        self.assertFalse(self.params.get_param(conn.PARAM_PREVIOUS_SMS_ENDPOINT))

    def test_disconnect_without_previous_sms_endpoint_removes_the_parameter(self):
        # No parameter: Odoo's own SMS server, which Disconnect must give back.
        self.params.set_param(conn.PARAM_SMS_ENDPOINT, False)
        self.settings().action_iap_sidecar_connect()
        self.assertEqual(self.params.get_param(conn.PARAM_SMS_ENDPOINT), SIDECAR_URL)
        self.settings().action_iap_sidecar_disconnect()
        self.assertFalse(
            self.params.search([("key", "=", conn.PARAM_SMS_ENDPOINT)]),
            "sms.endpoint left behind",
        )

    def test_disconnect_keeps_an_sms_endpoint_changed_since(self):
        # The administrator pointed SMS elsewhere after Connect: not ours to undo.
        self.settings().action_iap_sidecar_connect()
        self.params.set_param(conn.PARAM_SMS_ENDPOINT, "https://sms.other.example")
        self.settings().action_iap_sidecar_disconnect()
        self.assertEqual(
            self.params.get_param(conn.PARAM_SMS_ENDPOINT), "https://sms.other.example"
        )

    def test_reconnect_keeps_the_first_previous_sms_endpoint(self):
        self.settings().action_iap_sidecar_connect()
        self.settings().action_iap_sidecar_connect()
        self.assertEqual(
            self.params.get_param(conn.PARAM_PREVIOUS_SMS_ENDPOINT),
            PREVIOUS_SMS_ENDPOINT,
        )
        self.settings().action_iap_sidecar_disconnect()
        self.assertEqual(
            self.params.get_param(conn.PARAM_SMS_ENDPOINT), PREVIOUS_SMS_ENDPOINT
        )

    def test_disconnect_works_when_the_sidecar_is_down(self):
        self.settings().action_iap_sidecar_connect()
        api_key = self.registered["json"]["api_key"]
        self.sidecar.routes[("DELETE", f"/api/v1/databases/{self.dbuuid}")] = (
            requests.exceptions.ConnectionError("refused")
        )

        with self.assertLogs(
            "odoo.addons.iap_sidecar.models.res_config_settings", "WARNING"
        ):
            action = self.settings().action_iap_sidecar_disconnect()

        self.assertEqual(action["params"]["type"], "warning")
        self.assertIn("unreachable", action["params"]["message"])
        self.assertEqual(
            self.params.get_param(conn.PARAM_IAP_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertFalse(self.api_key_user(api_key))

    def test_reconnect_keeps_the_first_previous_endpoint_and_one_key(self):
        self.settings().action_iap_sidecar_connect()
        first_key = self.registered["json"]["api_key"]
        self.settings().action_iap_sidecar_connect()
        second_key = self.registered["json"]["api_key"]

        self.assertEqual(
            self.params.get_param(conn.PARAM_PREVIOUS_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertFalse(self.api_key_user(first_key))
        self.assertEqual(self.api_key_user(second_key), self.env.uid)

    def test_refused_registration_changes_nothing(self):
        self.sidecar.routes[("POST", "/api/v1/databases")] = response(
            422, {"title": "Unprocessable", "detail": "database.uuid mismatch"}
        )
        keys_before = self.env["res.users.apikeys"].sudo().search_count([])

        with self.assertRaisesRegex(UserError, "database.uuid mismatch"):
            self.settings().action_iap_sidecar_connect()

        self.assertEqual(
            self.params.get_param(conn.PARAM_IAP_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertFalse(self.params.get_param(conn.PARAM_TOKEN))
        self.assertEqual(
            self.params.get_param(conn.PARAM_SMS_ENDPOINT), PREVIOUS_SMS_ENDPOINT
        )
        self.assertEqual(
            self.env["res.users.apikeys"].sudo().search_count([]), keys_before
        )

    def test_unreachable_sidecar_on_connect(self):
        self.sidecar.routes[("POST", "/api/v1/databases")] = (
            requests.exceptions.ConnectTimeout()
        )
        with self.assertRaisesRegex(UserError, "did not answer"):
            self.settings().action_iap_sidecar_connect()
        self.assertEqual(
            self.params.get_param(conn.PARAM_IAP_ENDPOINT), PREVIOUS_ENDPOINT
        )

    def test_url_must_be_an_origin(self):
        for url in ("http://127.0.0.1:8070/iap", "ftp://sidecar", "sidecar:8070", ""):
            with self.assertRaises(UserError):
                self.settings(iap_sidecar_url=url).action_iap_sidecar_connect()
        self.assertEqual(self.sidecar.calls, [])

    def test_secret_is_required(self):
        with self.assertRaisesRegex(UserError, "registration secret"):
            self.settings(
                iap_sidecar_registration_secret=" "
            ).action_iap_sidecar_connect()

    def test_status_when_the_sidecar_is_down(self):
        self.connect_directly()
        self.sidecar.routes[("GET", "/health")] = requests.exceptions.ConnectionError()
        settings = self.settings()
        self.assertTrue(settings.iap_sidecar_connected)
        self.assertIn("does not answer", settings.iap_sidecar_status)

    def test_status_of_a_copied_database(self):
        self.connect_directly()
        self.params.set_param(conn.PARAM_DBUUID, "another-database")
        with self.no_sidecar_calls():
            status = self.settings().iap_sidecar_status
        self.assertIn("copy", status)

    def test_status_when_the_endpoint_was_changed(self):
        self.connect_directly()
        self.params.set_param(conn.PARAM_IAP_ENDPOINT, PREVIOUS_ENDPOINT)
        self.assertIn("iap.endpoint was changed", self.settings().iap_sidecar_status)

    def test_buy_credits_opens_the_portal_on_this_database_accounts(self):
        self.connect_directly()
        accounts = (
            self.env["iap.account"]
            .sudo()
            .create([account_values(self.env), account_values(self.env)])
        )

        action = self.settings().action_iap_sidecar_buy_credits()

        self.assertEqual(action["type"], "ir.actions.act_url")
        url = urlsplit(action["url"])
        self.assertEqual(
            f"{url.scheme}://{url.netloc}{url.path}", SIDECAR_URL + "/iap/services"
        )
        self.assertLessEqual(
            set(accounts.mapped("account_token")), set(parse_qs(url.query)["tokens"])
        )

    def test_refresh(self):
        self.connect_directly()
        path = f"/api/v1/databases/{self.dbuuid}/refresh"
        self.sidecar.routes[("POST", path)] = response(
            200, {"dbuuid": self.dbuuid, "refreshed": True}
        )
        self.settings().action_iap_sidecar_refresh()
        [call] = self.sidecar.made("POST", path)
        self.assertEqual(call["headers"]["Authorization"], "Bearer iapdb_test")

    def test_refresh_updates_the_counts_in_the_status(self):
        self.settings().action_iap_sidecar_connect()
        path = f"/api/v1/databases/{self.dbuuid}/refresh"
        self.sidecar.routes[("POST", path)] = response(
            200,
            {"dbuuid": self.dbuuid, "refreshed": True, "companies": 2, "accounts": 3},
        )
        self.settings().action_iap_sidecar_refresh()
        self.assertIn("2 companies and 3 IAP accounts", self.settings().iap_sidecar_status)

    def test_account_creation_updates_the_counts_in_the_status(self):
        # Connect counted 2 accounts; creating one makes the sidecar read the database
        # again once committed, and the status must show what it read then.
        self.settings().action_iap_sidecar_connect()
        path = f"/api/v1/databases/{self.dbuuid}/refresh"
        self.sidecar.routes[("POST", path)] = response(
            200,
            {"dbuuid": self.dbuuid, "refreshed": True, "companies": 1, "accounts": 3},
        )
        self.env["iap.account"].sudo().create(account_values(self.env))
        self.env["iap.account"]._sidecar_refresh_now(conn.current(self.env))
        self.assertEqual(len(self.sidecar.made("POST", path)), 1)
        self.assertIn("1 companies and 3 IAP accounts", self.settings().iap_sidecar_status)

    def test_buttons_need_a_connection(self):
        for action in ("action_iap_sidecar_refresh", "action_iap_sidecar_buy_credits"):
            with self.assertRaisesRegex(UserError, "not connected"):
                getattr(self.settings(), action)()

    def test_settings_box_sits_in_the_stock_iap_block(self):
        arch = self.env["res.config.settings"].get_view(
            self.env.ref("base.res_config_settings_view_form").id, "form"
        )["arch"]
        block = arch[arch.index('name="iap_purchases_setting_container"') :]
        self.assertLess(
            block.index('id="iap_credits_setting"'),
            block.index('id="iap_sidecar_setting"'),
        )
        for name in (
            "iap_sidecar_url",
            "iap_sidecar_registration_secret",
            "action_iap_sidecar_connect",
            "action_iap_sidecar_disconnect",
            "action_iap_sidecar_buy_credits",
            "iap_sidecar_status",
        ):
            self.assertIn(f'name="{name}"', block)

    def test_uninstall_disconnects_and_forgets_the_settings(self):
        self.settings().action_iap_sidecar_connect()
        api_key = self.registered["json"]["api_key"]

        uninstall_hook(self.env)

        self.assertEqual(
            len(self.sidecar.made("DELETE", f"/api/v1/databases/{self.dbuuid}")), 1
        )
        self.assertEqual(
            self.params.get_param(conn.PARAM_IAP_ENDPOINT), PREVIOUS_ENDPOINT
        )
        self.assertEqual(
            self.params.get_param(conn.PARAM_SMS_ENDPOINT), PREVIOUS_SMS_ENDPOINT
        )
        self.assertFalse(self.api_key_user(api_key))
        self.assertFalse(self.params.search([("key", "=like", "iap_sidecar.%")]))
