#!/usr/bin/env python3
"""The iap_sidecar addon against a real, normally running Odoo 17, 18 or 19, driven over
JSON-RPC.

Odoo blocks IAP calls inside its own test runner, so the stock flows (account views,
balance, alert settings, buy links) are exercised here on a running server, with the
addon connected to a real sidecar.

Environment:
  ODOO_URL, ODOO_DB, ODOO_USER, ODOO_PASSWORD
      an Odoo administrator; the addon's directory for the server's series
      (odoo_addon/17.0, 18.0 or 19.0) must be on its addons path (the suite installs the
      module when it is not installed yet).
  SIDECAR_URL, REGISTRATION_SECRET, SIDECAR_ADMIN_TOKEN
      a running sidecar (all three), or none: the suite then runs the binary
      IAP_SIDECAR_BIN, else target/release/iap-sidecar, else target/debug/iap-sidecar of
      this repository, on loopback with a throwaway SQLite database (none of them: the
      suite fails).
  SIDECAR_ODOO_URL
      where the sidecar reaches Odoo (default: ODOO_URL).

Prints each step; the last line is "N passed, N failed, N skipped"; exits 1 when a step
failed (or could not run), 2 when the environment is incomplete. Leaves Odoo as it found
it (but for the addon, which stays installed): disconnects, restores iap.endpoint and
sms.endpoint, removes the accounts and the service it made.
"""

import hashlib
import importlib.util
import json
import os
import sys
import time
import traceback
import uuid
from urllib.parse import parse_qs, urlsplit

import requests

HERE = os.path.dirname(os.path.abspath(__file__))
#: The addon's one code tree (odoo_addon/<series>/iap_sidecar link to it).
ADDON = os.path.join(HERE, "..", "common", "iap_sidecar")
SERVICE = "sidecar_suite"
#: What the administrator types in Settings; put back as found.
SETTINGS_PARAMS = (
    "iap_sidecar.url",
    "iap_sidecar.registration_secret",
    "iap_sidecar.odoo_url",
)
KEY_PREFIX = "IAP sidecar"


def load(name, relative):
    """Imports one of the addon's Odoo-free modules by path (the addon needs Odoo)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ADDON, relative))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


iap_provider = load("iap_provider", "tools/iap_provider.py")
local_sidecar = load("local_sidecar", "tests/local_sidecar.py")


class Failed(AssertionError):
    pass


def check(condition, message):
    if not condition:
        raise Failed(message)


class OdooError(Exception):
    pass


class Odoo:
    """An administrator's session on Odoo's ``/jsonrpc``."""

    def __init__(self, url, db, login, password):
        self.url = url.rstrip("/")
        self.db = db
        self.login = login
        self.password = password
        self.uid = None

    def rpc(self, service, method, *args, timeout=120):
        body = {
            "jsonrpc": "2.0",
            "method": "call",
            "id": uuid.uuid4().hex,
            "params": {"service": service, "method": method, "args": list(args)},
        }
        answer = requests.post(self.url + "/jsonrpc", json=body, timeout=timeout).json()
        if "error" in answer:
            data = answer["error"].get("data") or {}
            raise OdooError(
                f"{data.get('name')}: {data.get('message') or answer['error']}"
            )
        # Odoo leaves "result" out when a method returns None.
        return answer.get("result")

    def authenticate(self):
        self.uid = self.rpc(
            "common", "authenticate", self.db, self.login, self.password, {}
        )
        check(self.uid, f"Odoo refused the login {self.login!r} on {self.db!r}")
        return self.uid

    def call(self, model, method, *args, timeout=120, **kwargs):
        return self.rpc(
            "object",
            "execute_kw",
            self.db,
            self.uid,
            self.password,
            model,
            method,
            list(args),
            kwargs,
            timeout=timeout,
        )

    def param(self, key):
        return self.call("ir.config_parameter", "get_param", key)

    def set_param(self, key, value):
        return self.call("ir.config_parameter", "set_param", key, value)


class RpcEnv:
    """Just enough of an Odoo ``env`` for the provider helper, read over JSON-RPC."""

    class _Params:
        def __init__(self, odoo):
            self.odoo = odoo

        def sudo(self):
            return self

        def get_param(self, key, default=False):
            return self.odoo.param(key) or default

    def __init__(self, odoo):
        self.odoo = odoo

    def __getitem__(self, model):
        if model != "ir.config_parameter":
            raise KeyError(model)
        return self._Params(self.odoo)


class Sidecar:
    """The sidecar's admin API (and its process, when the suite started it)."""

    def __init__(self):
        self.local = None
        self.url = os.environ.get("SIDECAR_URL", "").rstrip("/")
        self.secret = os.environ.get("REGISTRATION_SECRET", "")
        self.admin = os.environ.get("SIDECAR_ADMIN_TOKEN", "")

    def start(self):
        if self.url:
            return f"using {self.url}"
        binary = local_sidecar.find_binary()
        check(
            binary,
            "no SIDECAR_URL and no sidecar binary (IAP_SIDECAR_BIN or cargo build)",
        )
        self.local = local_sidecar.LocalSidecar(binary)
        self.admin = self.local.admin_token("suite")
        self.secret = self.local.registration_secret("suite")
        self.local.start()
        self.url = self.local.url
        return f"started {binary} on {self.url}"

    def close(self):
        if self.local is not None:
            self.local.close()

    def api(self, method, path, body=None, bearer=None, expect=(200,)):
        answer = requests.request(
            method,
            self.url + path,
            json=body,
            timeout=60,
            headers={"Authorization": f"Bearer {bearer or self.admin}"},
        )
        check(
            answer.status_code in expect,
            f"{method} {path}: HTTP {answer.status_code} {answer.text[:300]}",
        )
        return answer.json() if answer.content else None

    def provider_key(self, name):
        """A provider key of service ``name``, registering it or rotating its key."""
        services = self.api("GET", "/api/v1/services")
        rows = services if isinstance(services, list) else services.get("services", [])
        if any(row.get("technical_name") == name for row in rows):
            return self.api("POST", f"/api/v1/services/{name}/rotate-key")["key"]
        created = self.api(
            "POST",
            "/api/v1/services",
            {"technical_name": name, "label": "Sidecar suite"},
            expect=(200, 201),
        )
        return created["key"]

    def account(self, service, dbuuid):
        listed = self.api("GET", f"/api/v1/accounts?service={service}&dbuuid={dbuuid}")
        rows = listed if isinstance(listed, list) else listed.get("accounts", [])
        return rows


class Suite:
    def __init__(self):
        self.results = []
        env = {
            k: os.environ.get(k, "")
            for k in ("ODOO_URL", "ODOO_DB", "ODOO_USER", "ODOO_PASSWORD")
        }
        missing = [k for k, v in env.items() if not v]
        if missing:
            print(f"run_suite: set {', '.join(missing)}", file=sys.stderr)
            sys.exit(2)
        self.odoo = Odoo(
            env["ODOO_URL"], env["ODOO_DB"], env["ODOO_USER"], env["ODOO_PASSWORD"]
        )
        self.odoo_url_for_sidecar = (
            os.environ.get("SIDECAR_ODOO_URL") or env["ODOO_URL"]
        )
        self.sidecar = Sidecar()
        self.initial_endpoint = None
        self.initial_sms_endpoint = None
        self.initial_settings = {}
        self.dbuuid = None
        self.key = None
        self.account_id = None
        self.token = None
        self.settings_id = None
        self.major = None

    # Running steps ------------------------------------------------------------------

    def step(self, name, func, needs=()):
        blocked = [n for n, outcome in self.results if n in needs and outcome != "PASS"]
        if blocked:
            print(f"SKIP {name}: needs {', '.join(blocked)}", flush=True)
            self.results.append((name, "SKIP"))
            return
        print(f"== {name}", flush=True)
        try:
            detail = func()
        except Failed as exc:
            print(f"FAIL {name}: {exc}", flush=True)
            self.results.append((name, "FAIL"))
            return
        except Exception as exc:  # a crash is a failure of the step, with its trace
            traceback.print_exc()
            print(f"FAIL {name}: {exc.__class__.__name__}: {exc}", flush=True)
            self.results.append((name, "FAIL"))
            return
        print(f"PASS {name}" + (f": {detail}" if detail else ""), flush=True)
        self.results.append((name, "PASS"))

    # Helpers ------------------------------------------------------------------------

    def new_settings(self):
        return self.odoo.call("res.config.settings", "create", {})

    def settings_form(self, names):
        """The values the Settings form shows (its first onchange, as the web client
        sends it: the form holds company_id too)."""
        spec = {name: {} for name in ["company_id", *names]}
        answer = self.odoo.call("res.config.settings", "onchange", [], {}, [], spec)
        return answer["value"]

    def settings_action(self, method):
        return self.odoo.call("res.config.settings", method, [self.new_settings()])

    def read_account(self, spec):
        [row] = self.odoo.call("iap.account", "web_read", [self.account_id], spec)
        return row

    def credits(self):
        return self.odoo.call("iap.account", "get_credits", SERVICE)

    # Steps --------------------------------------------------------------------------

    def odoo_login(self):
        version = self.odoo.rpc("common", "version")
        self.major = (version.get("server_version_info") or [0])[0]
        check(
            self.major in (17, 18, 19),
            f"expected Odoo 17, 18 or 19, found {version.get('server_version')}",
        )
        self.odoo.authenticate()
        self.dbuuid = self.odoo.param("database.uuid")
        self.initial_endpoint = self.odoo.param("iap.endpoint")
        self.initial_sms_endpoint = self.odoo.param("sms.endpoint")
        self.initial_settings = {key: self.odoo.param(key) for key in SETTINGS_PARAMS}
        return f"Odoo {version['server_version']}, uid {self.odoo.uid}, iap.endpoint {self.initial_endpoint or '(default)'}"

    def addon_installed(self):
        def module():
            rows = self.odoo.call(
                "ir.module.module",
                "search_read",
                [("name", "=", "iap_sidecar")],
                fields=["state"],
            )
            return rows[0] if rows else None

        found = module()
        if found is None:
            self.odoo.call("ir.module.module", "update_list")
            found = module()
        check(found, "iap_sidecar is not on the Odoo server's addons path")
        before = found["state"]
        if before != "installed":
            self.odoo.call(
                "ir.module.module",
                "button_immediate_install",
                [found["id"]],
                timeout=900,
            )
            found = module()
        check(found["state"] == "installed", f"iap_sidecar is {found['state']}")
        fields = self.odoo.call(
            "iap.account", "fields_get", ["sidecar_reserved", "sidecar_lots"]
        )
        check(
            set(fields) == {"sidecar_reserved", "sidecar_lots"},
            f"addon fields missing: {fields}",
        )
        return "installed now" if before != "installed" else "already installed"

    def sidecar_ready(self):
        started = self.sidecar.start()
        self.key = self.sidecar.provider_key(SERVICE)
        return f"{started}; service {SERVICE} has a provider key"

    def connect(self):
        settings = self.odoo.call(
            "res.config.settings",
            "create",
            {
                "iap_sidecar_url": self.sidecar.url,
                "iap_sidecar_registration_secret": self.sidecar.secret,
                "iap_sidecar_odoo_url": self.odoo_url_for_sidecar,
            },
        )
        self.odoo.call("res.config.settings", "execute", [settings])  # the Save button
        action = self.settings_action("action_iap_sidecar_connect")
        check(
            action and action["params"]["type"] == "success",
            f"connect answered {action}",
        )
        check(
            self.odoo.param("iap.endpoint") == self.sidecar.url,
            f"iap.endpoint is {self.odoo.param('iap.endpoint')}",
        )
        check(
            self.odoo.param("iap_sidecar.previous_endpoint")
            == (self.initial_endpoint or False),
            "the previous iap.endpoint was not remembered",
        )
        # Odoo's SMS go to the sidecar too (set even without the sms module).
        check(
            self.odoo.param("sms.endpoint") == self.sidecar.url,
            f"sms.endpoint is {self.odoo.param('sms.endpoint')}",
        )
        check(
            self.odoo.param("iap_sidecar.previous_sms_endpoint")
            == (self.initial_sms_endpoint or False),
            "the previous sms.endpoint was not remembered",
        )
        keys = self.odoo.call(
            "res.users.apikeys",
            "search_count",
            [("name", "=", f"{KEY_PREFIX} {self.sidecar.url}")],
        )
        check(keys == 1, f"{keys} API keys for the sidecar")
        status = self.settings_form(["iap_sidecar_connected", "iap_sidecar_status"])
        check(status["iap_sidecar_connected"], "settings do not say connected")
        check(
            status["iap_sidecar_status"].startswith("Connected to"),
            status["iap_sidecar_status"],
        )
        databases = self.sidecar.api("GET", "/api/v1/databases")
        check(
            any(d.get("dbuuid") == self.dbuuid for d in databases),
            "the sidecar does not list this database",
        )
        # Odoo 19 has JSON-2 (the addon's API key is a bearer token there); older series
        # only /jsonrpc.
        detail = self.sidecar.api("GET", f"/api/v1/databases/{self.dbuuid}")
        protocol = detail["database"].get("protocol")
        expected = "json2" if self.major >= 19 else "jsonrpc"
        check(protocol == expected, f"the sidecar reads Odoo over {protocol}, not {expected}")
        return f"{status['iap_sidecar_status']} (read over {protocol})"

    def account_creation(self):
        if self.major < 18:
            return self._account_creation_17()
        services = self.odoo.call(
            "iap.service", "search", [("technical_name", "=", SERVICE)]
        )
        if not services:
            services = [
                self.odoo.call(
                    "iap.service",
                    "create",
                    {
                        "name": "Sidecar suite",
                        "technical_name": SERVICE,
                        "description": "iap_sidecar real-Odoo suite",
                        "unit_name": "Credits",
                        "integer_balance": False,
                    },
                )
            ]
        old = self.odoo.call("iap.account", "search", [("service_id", "in", services)])
        if old:
            self.odoo.call("iap.account", "unlink", old)
        self.account_id = self.odoo.call("iap.account", "get_account_id", SERVICE)
        [row] = self.odoo.call(
            "iap.account", "read", [self.account_id], ["account_token"]
        )
        self.token = row["account_token"]
        row = self.read_account(
            {"state": {}, "balance": {}}
        )  # first contact: registers
        check(row["state"] == "registered", f"account state {row['state']}")
        accounts = self.sidecar.account(SERVICE, self.dbuuid)
        check(
            len(accounts) == 1,
            f"the sidecar has {len(accounts)} accounts of {SERVICE} here",
        )
        return f"iap.account {self.account_id} registered on the sidecar (id {accounts[0]['id']})"

    def _account_creation_17(self):
        """Odoo 17 names the service on the account and registers it on first contact
        (the balance call); it has no iap.service, get_account_id or state."""
        old = self.odoo.call("iap.account", "search", [("service_name", "=", SERVICE)])
        if old:
            self.odoo.call("iap.account", "unlink", old)
        self.account_id = self.odoo.call("iap.account", "create", {"service_name": SERVICE})
        [row] = self.odoo.call(
            "iap.account", "read", [self.account_id], ["account_token"]
        )
        self.token = row["account_token"]
        check(self.credits() == 0, f"first contact: get_credits {self.credits()}")
        accounts = self.sidecar.account(SERVICE, self.dbuuid)
        if len(accounts) != 1:
            # The account reaches the sidecar through the refresh the addon asks for once
            # the account is committed: say what that refresh left.
            database = self.sidecar.api("GET", f"/api/v1/databases/{self.dbuuid}")
            status = self.settings_form(["iap_sidecar_status"])["iap_sidecar_status"]
            raise Failed(
                f"the sidecar has {len(accounts)} accounts of {SERVICE} here; its copy "
                f"of the database: {database.get('database')}; Odoo's status: {status}"
            )
        return f"iap.account {self.account_id} registered on the sidecar (id {accounts[0]['id']})"

    def open_account_list(self):
        """Odoo 17 reads the figures of every account when the account list opens."""
        if self.major < 18:
            self.odoo.call("iap.account", "get_view", view_type="tree")

    def balance_in_form(self):
        self.sidecar.api(
            "POST",
            "/api/v1/grants",
            {
                "service": SERVICE,
                "account_token": self.token,
                "amount": "10",
                "expires_at": "2099-01-01",
            },
            expect=(200, 201),
        )
        self.sidecar.api(
            "POST",
            "/api/v1/grants",
            {
                "service": SERVICE,
                "account_token": self.token,
                "amount": "2.5",
            },
            expect=(200, 201),
        )
        self.open_account_list()
        row = self.read_account({"balance": {}})
        check(row["balance"] == "12.5 Credits", f"form balance {row['balance']!r}")
        check(self.credits() == 12.5, f"get_credits {self.credits()}")
        return "form shows 12.5 Credits, get_credits 12.5"

    def threshold_write(self):
        [admin] = self.odoo.call("res.users", "read", [self.odoo.uid], ["email"])
        values = {"warning_threshold": 5.0}
        if self.major < 18:
            # 17: one recipient address; the value lives on the figures read from the
            # sidecar, so reading them again reads the sidecar's value back.
            self.open_account_list()
            if admin["email"]:
                values.update(warn_me=True, warning_email=admin["email"])
            self.odoo.call("iap.account", "write", [self.account_id], values)
            self.open_account_list()
        else:
            if admin["email"]:
                values["warning_user_ids"] = [(6, 0, [self.odoo.uid])]
            self.odoo.call("iap.account", "write", [self.account_id], values)
            # Zero it locally only; the next read takes the sidecar's value back.
            self.odoo.call(
                "iap.account",
                "write",
                [self.account_id],
                {"warning_threshold": 0},
                context={"disable_iap_update": True},
            )
        row = self.read_account({"warning_threshold": {}})
        check(
            row["warning_threshold"] == 5.0,
            f"the sidecar's threshold read back is {row['warning_threshold']}",
        )
        return "threshold 5 stored by the sidecar and read back" + (
            f", alerts to {admin['email']}" if admin["email"] else ""
        )

    def provider_charge(self):
        env = RpcEnv(self.odoo)
        with iap_provider.iap_charge(
            env,
            self.key,
            self.token,
            4,
            dbuuid=self.dbuuid,
            description="suite: 4 reserved, 3 used",
        ) as transaction:
            check(
                self.credits() == 8.5,
                f"during the charge get_credits is {self.credits()}",
            )
            transaction.credit = 3
        check(self.credits() == 9.5, f"after capturing 3: {self.credits()}")

        class Boom(Exception):
            pass

        try:
            with iap_provider.iap_charge(env, self.key, self.token, 5):
                raise Boom()
        except Boom:
            pass
        else:
            raise Failed("the body's exception was swallowed")
        check(self.credits() == 9.5, f"after a failed body: {self.credits()}")
        return "authorize 4 / capture 3 -> 9.5; failed body cancelled -> 9.5"

    def insufficient_credit(self):
        env = RpcEnv(self.odoo)
        try:
            with iap_provider.iap_charge(env, self.key, self.token, 100):
                raise Failed("the body ran without credits")
        except iap_provider.InsufficientCreditError as error:
            payload = json.loads(error.args[0])
        expected = self.sidecar.url + "/iap/1/credit"
        check(
            payload.get("base_url") == expected, f"base_url {payload.get('base_url')}"
        )
        check(
            payload.get("service_name") == SERVICE and payload.get("credit") == 100,
            f"payload {payload}",
        )
        if self.major >= 19:
            # 19 builds the link from iap.endpoint alone, with the token hashed.
            link = self.odoo.call("iap.account", "get_credits_url", SERVICE)
            token = hashlib.sha1(self.token.split("+")[0].encode()).hexdigest()
        else:
            link = self.odoo.call(
                "iap.account",
                "get_credits_url",
                SERVICE,
                base_url=payload["base_url"],
                credit=payload["credit"],
            )
            token = self.token
        check(link.startswith(expected + "?"), f"Odoo's buy link {link}")
        query = parse_qs(urlsplit(link).query)
        check(query.get("account_token") == [token], f"buy link token {query}")
        stock = self.odoo.call("iap.account", "get_credits_url", SERVICE)
        check(stock.startswith(expected + "?"), f"stock Buy Credit link {stock}")
        page = requests.get(link, timeout=30, allow_redirects=False)
        return (
            f"base_url {payload['base_url']}; buy page answers HTTP {page.status_code}"
        )

    def developer_fields(self):
        env = RpcEnv(self.odoo)
        hold = iap_provider.iap_authorize(
            env, self.key, self.token, 2, description="suite hold"
        )
        try:
            row = self.read_account(
                {
                    name: {}
                    for name in (
                        "sidecar_balance",
                        "sidecar_reserved",
                        "sidecar_available",
                        "sidecar_lots",
                        "sidecar_next_expiry",
                        "sidecar_last_consumption",
                        "sidecar_portal_url",
                        "sidecar_message",
                    )
                }
            )
        finally:
            iap_provider.iap_cancel(env, hold, self.key)
        check(not row["sidecar_message"], f"message {row['sidecar_message']!r}")
        check(
            (row["sidecar_balance"], row["sidecar_reserved"], row["sidecar_available"])
            == (9.5, 2.0, 7.5),
            f"figures {row}",
        )
        check(
            "2099-01-01" in row["sidecar_lots"] and "no expiry" in row["sidecar_lots"],
            f"lots {row['sidecar_lots']!r}",
        )
        check(str(row["sidecar_next_expiry"]).startswith("2099-01-01"), f"expiry {row}")
        check(row["sidecar_last_consumption"], "no last consumption after a capture")
        check(row["sidecar_portal_url"].startswith(self.sidecar.url), f"portal {row}")
        return (
            f"balance 9.5, reserved 2, available 7.5, lots {row['sidecar_lots']!r}, "
            f"last consumption {row['sidecar_last_consumption']}"
        )

    def sidecar_down(self):
        spec = {"balance": {}, "sidecar_reserved": {}, "sidecar_message": {}}
        if self.sidecar.local is not None:
            self.sidecar.local.stop()
            how = "sidecar stopped"
        else:
            # An origin where nothing listens stands in for a stopped sidecar.
            for key in ("iap.endpoint", "iap_sidecar.connected_url"):
                self.odoo.set_param(key, "http://127.0.0.1:9")
            how = "sidecar URL pointed at a closed port"
        try:
            started = time.monotonic()
            row = self.read_account(spec)
            elapsed = time.monotonic() - started
            check("unavailable" in (row["sidecar_message"] or ""), f"message {row}")
            check(self.credits() == -1, "get_credits should degrade to -1")
            status = self.settings_form(["iap_sidecar_status"])
            check(
                "does not answer" in status["iap_sidecar_status"],
                status["iap_sidecar_status"],
            )
        finally:
            if self.sidecar.local is not None:
                self.sidecar.local.start()
            else:
                for key in ("iap.endpoint", "iap_sidecar.connected_url"):
                    self.odoo.set_param(key, self.sidecar.url)
        row = self.read_account(spec)
        check(not row["sidecar_message"], f"after recovery: {row['sidecar_message']}")
        return f"{how}: form read in {elapsed:.2f} s with the banner, get_credits -1; recovered"

    def company_restriction(self):
        [company] = self.odoo.call("res.users", "read", [self.odoo.uid], ["company_id"])
        company_id, company_name = company["company_id"]
        account_id = self.sidecar.account(SERVICE, self.dbuuid)[0]["id"]

        def companies_on_sidecar():
            detail = self.sidecar.api("GET", f"/api/v1/accounts/{account_id}")
            return detail["account"]["companies"]

        self.odoo.call(
            "iap.account",
            "write",
            [self.account_id],
            {"company_ids": [(6, 0, [company_id])]},
        )
        how = "after the write (the addon's refresh)"
        deadline = time.monotonic() + 10
        while (
            company_name not in companies_on_sidecar() and time.monotonic() < deadline
        ):
            time.sleep(0.5)
        if company_name not in companies_on_sidecar():
            self.settings_action("action_iap_sidecar_refresh")
            how = "after the Refresh button"
        check(
            companies_on_sidecar() == [company_name],
            f"sidecar companies {companies_on_sidecar()}",
        )
        row = self.read_account({"sidecar_companies": {}})
        check(row["sidecar_companies"] == company_name, f"developer field {row}")
        # Consumption per company counts captures on restricted accounts.
        with iap_provider.iap_charge(RpcEnv(self.odoo), self.key, self.token, 1):
            pass
        detail = self.sidecar.api("GET", f"/api/v1/databases/{self.dbuuid}")
        consumption = json.dumps(detail.get("company_consumption"))
        check(
            company_name in consumption or str(company_id) in consumption,
            f"company consumption {consumption}",
        )
        self.odoo.call(
            "iap.account", "write", [self.account_id], {"company_ids": [(5,)]}
        )
        return f"restricted to {company_name!r} {how}; consumption {consumption}"

    def buy_credits_link(self):
        action = self.settings_action("action_iap_sidecar_buy_credits")
        url = urlsplit(action["url"])
        check(
            action["url"].startswith(self.sidecar.url + "/iap/services?"), action["url"]
        )
        check(
            self.token in parse_qs(url.query).get("tokens", []),
            "our token is not in the link",
        )
        page = requests.get(action["url"], timeout=30, allow_redirects=False)
        return f"{action['url'][:80]}... answers HTTP {page.status_code}"

    def disconnect(self):
        token = self.odoo.param("iap_sidecar.database_token")
        action = self.settings_action("action_iap_sidecar_disconnect")
        check(action["params"]["type"] == "success", f"disconnect answered {action}")
        check(
            self.odoo.param("iap.endpoint") == self.initial_endpoint,
            f"iap.endpoint {self.odoo.param('iap.endpoint')} != {self.initial_endpoint}",
        )
        check(
            self.odoo.param("sms.endpoint") == self.initial_sms_endpoint,
            f"sms.endpoint {self.odoo.param('sms.endpoint')} != {self.initial_sms_endpoint}",
        )
        keys = self.odoo.call(
            "res.users.apikeys", "search_count", [("name", "=like", f"{KEY_PREFIX} %")]
        )
        check(keys == 0, f"{keys} sidecar API keys left")
        check(
            not self.odoo.param("iap_sidecar.database_token"),
            "database token left in Odoo",
        )
        refused = requests.post(
            f"{self.sidecar.url}/api/v1/databases/{self.dbuuid}/refresh",
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        check(
            refused.status_code in (401, 404),
            f"old token still works: {refused.status_code}",
        )
        databases = self.sidecar.api("GET", "/api/v1/databases")
        check(
            not any(d.get("dbuuid") == self.dbuuid for d in databases),
            "the sidecar still lists this database",
        )
        return (
            f"iap.endpoint back to {self.initial_endpoint or '(default)'}, sms.endpoint "
            f"back to {self.initial_sms_endpoint or '(default)'}, key revoked"
        )

    # Leaving Odoo as found ----------------------------------------------------------

    def cleanup(self):
        try:
            if self.odoo.uid is None:
                return
            if self.odoo.param("iap_sidecar.database_token"):
                self.settings_action("action_iap_sidecar_disconnect")
            if self.odoo.param("iap.endpoint") != self.initial_endpoint:
                self.odoo.set_param("iap.endpoint", self.initial_endpoint or False)
            if self.odoo.param("sms.endpoint") != self.initial_sms_endpoint:
                self.odoo.set_param("sms.endpoint", self.initial_sms_endpoint or False)
            for key, value in self.initial_settings.items():
                self.odoo.set_param(key, value or False)
            if self.major is not None and self.major < 18:
                accounts = self.odoo.call(
                    "iap.account", "search", [("service_name", "=", SERVICE)]
                )
                if accounts:
                    self.odoo.call("iap.account", "unlink", accounts)
                return
            services = self.odoo.call(
                "iap.service", "search", [("technical_name", "=", SERVICE)]
            )
            if services:
                accounts = self.odoo.call(
                    "iap.account", "search", [("service_id", "in", services)]
                )
                if accounts:
                    self.odoo.call("iap.account", "unlink", accounts)
                self.odoo.call("iap.service", "unlink", services)
        except Exception as exc:  # cleanup must not hide the results
            print(f"cleanup: {exc.__class__.__name__}: {exc}", flush=True)
        finally:
            self.sidecar.close()

    def run(self):
        try:
            self.step("odoo login", self.odoo_login)
            self.step("addon installed", self.addon_installed, needs=["odoo login"])
            self.step("sidecar ready", self.sidecar_ready)
            self.step(
                "connect", self.connect, needs=["addon installed", "sidecar ready"]
            )
            self.step("account creation", self.account_creation, needs=["connect"])
            self.step(
                "balance in the form", self.balance_in_form, needs=["account creation"]
            )
            self.step(
                "threshold write reaches the sidecar",
                self.threshold_write,
                needs=["account creation"],
            )
            self.step(
                "provider charge (iap_charge semantics)",
                self.provider_charge,
                needs=["balance in the form"],
            )
            self.step(
                "insufficient credit carries our buy link",
                self.insufficient_credit,
                needs=["account creation"],
            )
            self.step(
                "developer-mode fields",
                self.developer_fields,
                needs=["provider charge (iap_charge semantics)"],
            )
            self.step(
                "sidecar down: soft failure",
                self.sidecar_down,
                needs=["account creation"],
            )
            self.step(
                "company restriction visible in the sidecar",
                self.company_restriction,
                needs=["account creation"],
            )
            self.step(
                "buy credits link", self.buy_credits_link, needs=["account creation"]
            )
            self.step("disconnect", self.disconnect, needs=["connect"])
        finally:
            self.cleanup()
        counts = {
            outcome: sum(1 for _n, o in self.results if o == outcome)
            for outcome in ("PASS", "FAIL", "SKIP")
        }
        print(
            f"addon-suite: {counts['PASS']} passed, {counts['FAIL']} failed, "
            f"{counts['SKIP']} skipped"
        )
        return 0 if counts["FAIL"] == 0 and counts["SKIP"] == 0 else 1


if __name__ == "__main__":
    sys.exit(Suite().run())
