import shutil
from unittest.mock import patch

from odoo import release
from odoo.tests import HttpCase, tagged

from ..tools import connection as conn
from .common import SIDECAR_URL, FakeSidecar, account_values, require, response

try:
    import websocket  # Odoo's browser tests drive Chromium through it
except ImportError:
    websocket = None

#: Odoo 18 gave the web client readable URLs; 17 addresses actions in the fragment.
if release.version_info[0] >= 18:
    SETTINGS_URL = "/odoo/action-base_setup.action_general_configuration"
    ACCOUNTS_URL = "/odoo/iap-accounts?debug=1"
    ACCOUNT_URL = "/odoo/iap-accounts/{id}?debug=1"
else:
    SETTINGS_URL = "/web#action=base_setup.action_general_configuration"
    ACCOUNTS_URL = "/web?debug=1#action=iap.iap_account_action"
    ACCOUNT_URL = "/web?debug=1#model=iap.account&id={id}&view_type=form"

# Waits for every selector, in order, then reports success; a missing one fails the test.
EXPECT_JS = """
const expected = %s;
const waitFor = (selector) => new Promise((resolve, reject) => {
    let tries = 0;
    const timer = setInterval(() => {
        const found = document.querySelector(selector);
        if (found) { clearInterval(timer); resolve(found); }
        else if (++tries > 100) {
            clearInterval(timer);
            const context = document.querySelector(".alert, .o_iap_sidecar_setting");
            reject(new Error("missing " + selector + (context ? "; near: " + context.innerText : "")));
        }
    }, 100);
});
(async () => {
    for (const selector of expected) { await waitFor(selector); }
    console.log("test successful");
})().catch((error) => console.error(error.message));
"""


def expect(*selectors):
    return EXPECT_JS % repr(list(selectors))


@tagged("post_install", "-at_install")
class TestScreens(HttpCase):
    """The web client renders the addon's screens (settings box, developer fields)."""

    @classmethod
    def setUpClass(cls):
        # Odoo skips browser tests quietly without these; under CI=true that is a failure.
        require(websocket is not None, "the websocket-client Python package is missing")
        require(
            any(
                shutil.which(name)
                for name in ("chromium", "chromium-browser", "google-chrome")
            ),
            "no Chromium/Chrome executable on PATH",
        )
        super().setUpClass()

    def setUp(self):
        super().setUp()
        self.sidecar = FakeSidecar()
        patcher = patch(
            "odoo.addons.iap_sidecar.tools.sidecar_api.requests.request",
            new=self.sidecar,
        )
        patcher.start()
        self.addCleanup(patcher.stop)
        # The browser's requests are not "testing": keep the stock account views from
        # calling the (absent) IAP server.
        stock = patch("odoo.addons.iap.tools.iap_tools.iap_jsonrpc", return_value={})
        stock.start()
        self.addCleanup(stock.stop)
        # The account figures are memoized per cursor, which the browser's requests share.
        self.env.cr.cache.pop("iap_sidecar.accounts", None)
        self.params = self.env["ir.config_parameter"].sudo()
        self.dbuuid = self.params.get_param("database.uuid")
        self.account = self.env["iap.account"].create(account_values(self.env))

    def connect_directly(self):
        self.params.set_param(conn.PARAM_CONNECTED_URL, SIDECAR_URL)
        self.params.set_param(conn.PARAM_TOKEN, "iapdb_test")
        self.params.set_param(conn.PARAM_DBUUID, self.dbuuid)
        self.params.set_param(conn.PARAM_IAP_ENDPOINT, SIDECAR_URL)
        self.env.flush_all()

    def test_settings_box(self):
        self.browser_js(
            SETTINGS_URL,
            expect(
                ".o_iap_sidecar_setting div[name='iap_sidecar_url'] input",
                ".o_iap_sidecar_setting button[name='action_iap_sidecar_connect']",
            ),
            login="admin",
        )

    def test_settings_box_when_connected(self):
        self.connect_directly()
        self.browser_js(
            SETTINGS_URL,
            expect(
                ".o_iap_sidecar_setting button[name='action_iap_sidecar_disconnect']",
                ".o_iap_sidecar_setting button[name='action_iap_sidecar_buy_credits']",
            ),
            login="admin",
        )

    def test_account_form_in_developer_mode(self):
        self.connect_directly()
        self.sidecar.routes[("POST", f"/api/v1/databases/{self.dbuuid}/accounts")] = (
            response(
                200,
                {
                    self.account.account_token: {
                        "balance": "12.5",
                        "reserved": "2",
                        "available": "10.5",
                        "lots": [{"remaining": "12.5", "expires_at": None}],
                        "last_consumption_at": None,
                        "companies": [],
                        "portal_url": SIDECAR_URL + "/iap/1/credit?hashed=1",
                    }
                },
            )
        )
        self.browser_js(
            ACCOUNT_URL.format(id=self.account.id),
            expect(
                "div[name='sidecar_reserved']",
                "div[name='sidecar_portal_url'] a",
            ),
            login="admin",
        )

    def test_account_form_banner_when_the_sidecar_is_down(self):
        self.connect_directly()
        with self.assertLogs("odoo.addons.iap_sidecar.models.iap_account", "WARNING"):
            self.browser_js(
                ACCOUNT_URL.format(id=self.account.id),
                expect(".alert-warning div[name='sidecar_message']"),
                login="admin",
            )

    def test_account_list_in_developer_mode(self):
        self.browser_js(
            ACCOUNTS_URL,
            expect("th[data-name='sidecar_reserved']", "td[name='sidecar_message']"),
            login="admin",
        )

    def test_account_list_leaves_figures_blank_when_the_sidecar_is_down(self):
        # No figures is not zero: the cells stay empty, the message says why.
        self.connect_directly()
        with self.assertLogs("odoo.addons.iap_sidecar.models.iap_account", "WARNING"):
            self.browser_js(
                ACCOUNTS_URL,
                expect(
                    "td[name='sidecar_message']",
                    "td[name='sidecar_reserved']:empty",
                ),
                login="admin",
            )
