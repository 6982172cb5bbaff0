import json
import logging
from urllib.parse import urlencode

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

from ..tools import compat
from ..tools import connection as conn
from ..tools.iap_provider import DEFAULT_ENDPOINT
from ..tools.sidecar_api import SidecarClient, SidecarError, normalize_origin

_logger = logging.getLogger(__name__)

#: The status shown in Settings must not hold the page when the sidecar is down.
HEALTH_TIMEOUT = 3
#: Odoo checks API keys per scope: this one is valid for RPC (XML-RPC, JSON-RPC) only.
API_KEY_SCOPE = "rpc"
API_KEY_PREFIX = "IAP sidecar"


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    iap_sidecar_url = fields.Char(
        string="Sidecar URL",
        config_parameter=conn.PARAM_URL,
        groups="base.group_system",
        help="The sidecar's origin as this Odoo server reaches it, "
        "e.g. https://iap.example.org (no path).",
    )
    iap_sidecar_registration_secret = fields.Char(
        string="Registration Secret",
        config_parameter=conn.PARAM_SECRET,
        groups="base.group_system",
        help="Given by the sidecar's operator "
        "(iap-sidecar registration-secret create NAME).",
    )
    iap_sidecar_odoo_url = fields.Char(
        string="Odoo URL for the Sidecar",
        config_parameter=conn.PARAM_ODOO_URL,
        groups="base.group_system",
        help="Where the sidecar reaches this Odoo's JSON-RPC, "
        "when it differs from the Web Base URL (e.g. http://odoo:8069 in Docker).",
    )
    iap_sidecar_connected = fields.Boolean(
        string="Connected to a Sidecar",
        compute="_compute_iap_sidecar_status",
        groups="base.group_system",
    )
    iap_sidecar_status = fields.Char(
        string="Sidecar Status",
        compute="_compute_iap_sidecar_status",
        groups="base.group_system",
    )

    # The connection lives in system parameters, not in fields; the dependency makes the
    # form's first onchange compute the status (fields without one are sent as False).
    @api.depends("company_id")
    def _compute_iap_sidecar_status(self):
        connected, status = self._iap_sidecar_status()
        for settings in self:
            settings.iap_sidecar_connected = connected
            settings.iap_sidecar_status = status

    def _iap_sidecar_status(self):
        """(connected, one line saying how Odoo's IAP calls are routed)."""
        params = self.env["ir.config_parameter"].sudo()
        endpoint = params.get_param(conn.PARAM_IAP_ENDPOINT) or DEFAULT_ENDPOINT
        stored = conn.stored(self.env)
        if stored is None:
            return False, compat.gettext(self.env, 
                "Not connected: Odoo's IAP calls go to %(endpoint)s.", endpoint=endpoint
            )
        if stored.dbuuid != params.get_param("database.uuid"):
            return True, compat.gettext(self.env, 
                "This database is a copy of the one connected to %(url)s (its database "
                "UUID changed): disconnect, then connect this copy on its own.",
                url=stored.url,
            )
        if endpoint.rstrip("/") != stored.url:
            return True, compat.gettext(self.env, 
                "Connected to %(url)s, but iap.endpoint was changed to %(endpoint)s: "
                "Odoo's IAP calls do not reach the sidecar. Disconnect and connect again.",
                url=stored.url,
                endpoint=endpoint,
            )
        try:
            conn.client(stored, HEALTH_TIMEOUT).health()
        except SidecarError as exc:
            return True, compat.gettext(self.env, 
                "Connected to %(url)s, but the sidecar does not answer now: %(reason)s",
                url=stored.url,
                reason=str(exc),
            )
        summary = self._iap_sidecar_summary()
        return True, compat.gettext(self.env, 
            "Connected to %(url)s since %(since)s UTC; %(companies)s companies and "
            "%(accounts)s IAP accounts read by the sidecar at %(read_at)s UTC.",
            url=stored.url,
            since=params.get_param(conn.PARAM_CONNECTED_AT) or "?",
            companies=summary.get("companies", "?"),
            accounts=summary.get("accounts", "?"),
            read_at=summary.get("read_at", "?"),
        )

    def _iap_sidecar_summary(self):
        raw = self.env["ir.config_parameter"].sudo().get_param(conn.PARAM_SUMMARY)
        try:
            summary = json.loads(raw or "{}")
        except ValueError:
            return {}
        return summary if isinstance(summary, dict) else {}

    @api.model
    def _iap_sidecar_record_read(self, answer):
        """Records when the sidecar read this database and, when its answer says (a
        sidecar that counts), how many companies and IAP accounts it read."""
        summary = self._iap_sidecar_summary()
        if isinstance(answer, dict):
            for key in ("companies", "accounts"):
                if isinstance(answer.get(key), int):
                    summary[key] = answer[key]
        summary["read_at"] = fields.Datetime.to_string(fields.Datetime.now())
        self.env["ir.config_parameter"].sudo().set_param(
            conn.PARAM_SUMMARY, json.dumps(summary)
        )

    def _iap_sidecar_check_admin(self):
        if not self.env.is_system():
            raise AccessError(
                compat.gettext(self.env, "Only administrators can manage the IAP sidecar.")
            )

    def _iap_sidecar_notify(self, message, kind="success"):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": compat.gettext(self.env, "IAP sidecar"),
                "message": message,
                "type": kind,
                "sticky": kind != "success",
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }

    # API key of the sidecar's login ------------------------------------------------

    @api.model
    def _iap_sidecar_generate_api_key(self, env, name):
        """(id, key) of a new persistent RPC-only API key of ``env``'s user."""
        key = compat.generate_api_key(env, API_KEY_SCOPE, name)
        key_id = (
            env["res.users.apikeys"]
            .sudo()
            .search(
                [("user_id", "=", env.uid), ("name", "=", name)],
                order="id desc",
                limit=1,
            )
            .id
        )
        return key_id, key

    def _iap_sidecar_new_api_key(self, name):
        """Creates the key in a transaction of its own, committed at once: the sidecar
        logs in with it while this request is still running."""
        if compat.running_tests():
            return self._iap_sidecar_generate_api_key(self.env, name)
        with self.pool.cursor() as cr:
            return self._iap_sidecar_generate_api_key(self.env(cr=cr), name)

    def _iap_sidecar_remove_api_keys(self, key_ids, own_transaction=False):
        """Revokes keys; ``own_transaction`` when this request's rollback must not undo it."""
        key_ids = [key_id for key_id in key_ids if key_id]
        if not key_ids:
            return
        if own_transaction and not compat.running_tests():
            with self.pool.cursor() as cr:
                self.env(cr=cr)["res.users.apikeys"].browse(key_ids).exists()._remove()
        else:
            self.env["res.users.apikeys"].browse(key_ids).exists()._remove()

    # Buttons -----------------------------------------------------------------------

    def action_iap_sidecar_connect(self):
        """Registers this database with the sidecar and routes Odoo's IAP calls and SMS
        to it."""
        self.ensure_one()
        self._iap_sidecar_check_admin()
        params = self.env["ir.config_parameter"].sudo()
        try:
            url = normalize_origin(self.iap_sidecar_url)
        except ValueError as exc:
            raise UserError(str(exc)) from exc
        secret = (self.iap_sidecar_registration_secret or "").strip()
        if not secret:
            raise UserError(
                compat.gettext(self.env, 
                    "Enter the registration secret given by the sidecar's operator."
                )
            )
        odoo_url = (self.iap_sidecar_odoo_url or "").strip().rstrip("/")
        params.set_param(conn.PARAM_URL, url)
        params.set_param(conn.PARAM_SECRET, secret)
        params.set_param(conn.PARAM_ODOO_URL, odoo_url)
        dbuuid = params.get_param("database.uuid")
        key_name = f"{API_KEY_PREFIX} {url}"
        key_id, api_key = self._iap_sidecar_new_api_key(key_name)
        # Registering again with the same sidecar needs the current registration's token
        # (never sent to another sidecar).
        current = conn.current(self.env)
        try:
            answer = SidecarClient(url, timeout=conn.READ_BACK_TIMEOUT).register(
                secret,
                dbuuid=dbuuid,
                url=odoo_url or self.get_base_url(),
                db=self.env.cr.dbname,
                login=self.env.user.login,
                api_key=api_key,
                database_token=current.token
                if current is not None and current.url == url
                else None,
            )
        except SidecarError as exc:
            self._iap_sidecar_remove_api_keys([key_id], own_transaction=True)
            raise UserError(
                compat.gettext(self.env, 
                    "Could not connect to the IAP sidecar: %(reason)s", reason=str(exc)
                )
            ) from exc

        # Older keys of this connection (an earlier Connect, or a retried request).
        older = (
            self.env["res.users.apikeys"]
            .sudo()
            .search(
                [
                    ("user_id", "=", self.env.uid),
                    ("name", "=", key_name),
                    ("id", "!=", key_id),
                ]
            )
        )
        previous_key = params.get_param(conn.PARAM_API_KEY_ID)
        self._iap_sidecar_remove_api_keys(
            older.ids
            + ([int(previous_key)] if previous_key and previous_key.isdigit() else [])
        )

        previous = conn.stored(self.env)
        was_connected = previous is not None
        if not was_connected:
            # Disconnect puts this back; no parameter means Odoo's default endpoint.
            endpoint = params.get_param(conn.PARAM_IAP_ENDPOINT)
            kept = endpoint if endpoint and endpoint.rstrip("/") != url else False
            params.set_param(conn.PARAM_PREVIOUS_ENDPOINT, kept)
        params.set_param(conn.PARAM_IAP_ENDPOINT, url)
        self._iap_sidecar_route_sms(url, previous.url if was_connected else None)
        now = fields.Datetime.to_string(fields.Datetime.now())
        params.set_param(conn.PARAM_CONNECTED_URL, url)
        params.set_param(conn.PARAM_TOKEN, answer["database_token"])
        params.set_param(conn.PARAM_DBUUID, dbuuid)
        params.set_param(conn.PARAM_API_KEY_ID, str(key_id))
        params.set_param(conn.PARAM_CONNECTED_AT, now)
        companies = answer.get("companies")
        params.set_param(
            conn.PARAM_SUMMARY,
            json.dumps(
                {
                    "companies": len(companies) if isinstance(companies, list) else "?",
                    "accounts": answer.get("accounts", "?"),
                    "read_at": now,
                }
            ),
        )
        _logger.info("IAP sidecar: database %s connected to %s", dbuuid, url)
        return self._iap_sidecar_notify(
            compat.gettext(
                self.env, "Connected: Odoo's IAP calls and SMS now go to %(url)s.", url=url
            )
        )

    def _iap_sidecar_route_sms(self, url, connected_url=None):
        """Points Odoo's SMS (``sms.endpoint``) at the sidecar, remembering where they went.

        Set whether or not the ``sms`` module is installed: the parameter is inert
        without it, and a later install then sends through the sidecar at once. The
        previous value is taken only when the parameter points at neither this sidecar
        nor the one connected so far (``connected_url``), so Connect again keeps the
        first one (as for ``iap.endpoint``), and a database connected before the addon
        routed SMS gets it on its next Connect.
        """
        params = self.env["ir.config_parameter"].sudo()
        endpoint = params.get_param(conn.PARAM_SMS_ENDPOINT)
        if not endpoint or endpoint.rstrip("/") not in (url, connected_url):
            params.set_param(conn.PARAM_PREVIOUS_SMS_ENDPOINT, endpoint or False)
        # Odoo joins its SMS routes onto the value with plain concatenation: no slash.
        params.set_param(conn.PARAM_SMS_ENDPOINT, url)

    def _iap_sidecar_unroute_sms(self, url):
        """Puts ``sms.endpoint`` back (removes it when there was none: Odoo's own SMS
        server), unless an administrator pointed it elsewhere since Connect."""
        params = self.env["ir.config_parameter"].sudo()
        endpoint = params.get_param(conn.PARAM_SMS_ENDPOINT)
        if url and endpoint and endpoint.rstrip("/") == url:
            params.set_param(
                conn.PARAM_SMS_ENDPOINT,
                params.get_param(conn.PARAM_PREVIOUS_SMS_ENDPOINT) or False,
            )

    def action_iap_sidecar_disconnect(self):
        """Forgets the sidecar, revokes its API key and restores the previous iap.endpoint
        and sms.endpoint.

        Works when the sidecar is down: the revoked key stops it from reading Odoo.
        """
        self.ensure_one()
        self._iap_sidecar_check_admin()
        params = self.env["ir.config_parameter"].sudo()
        stored = conn.stored(self.env)
        problem = None
        if stored is not None and stored.dbuuid == params.get_param("database.uuid"):
            try:
                conn.client(stored, conn.READ_BACK_TIMEOUT).disconnect(
                    stored.dbuuid, stored.token
                )
            except SidecarError as exc:
                if exc.status not in (401, 404):
                    problem = str(exc)
                    _logger.warning("IAP sidecar: disconnect not acknowledged: %s", exc)
        url = stored.url if stored else params.get_param(conn.PARAM_CONNECTED_URL)
        endpoint = params.get_param(conn.PARAM_IAP_ENDPOINT)
        if url and endpoint and endpoint.rstrip("/") == url:
            params.set_param(
                conn.PARAM_IAP_ENDPOINT,
                params.get_param(conn.PARAM_PREVIOUS_ENDPOINT) or False,
            )
        self._iap_sidecar_unroute_sms(url)
        key_id = params.get_param(conn.PARAM_API_KEY_ID)
        if key_id and key_id.isdigit():
            self._iap_sidecar_remove_api_keys([int(key_id)])
        for key in conn.CONNECTION_PARAMS:
            params.set_param(key, False)
        restored = params.get_param(conn.PARAM_IAP_ENDPOINT) or DEFAULT_ENDPOINT
        if problem:
            return self._iap_sidecar_notify(
                compat.gettext(self.env, 
                    "Disconnected here (IAP calls go to %(endpoint)s, the API key is "
                    "revoked), but the sidecar was not told: %(reason)s",
                    endpoint=restored,
                    reason=problem,
                ),
                kind="warning",
            )
        return self._iap_sidecar_notify(
            compat.gettext(self.env, 
                "Disconnected: Odoo's IAP calls go to %(endpoint)s again.",
                endpoint=restored,
            )
        )

    def _iap_sidecar_require_connection(self):
        connection = conn.current(self.env)
        if connection is None:
            raise UserError(
                compat.gettext(self.env, "This database is not connected to an IAP sidecar.")
            )
        return connection

    def action_iap_sidecar_refresh(self):
        """Asks the sidecar to read this database's companies and IAP accounts again."""
        self.ensure_one()
        self._iap_sidecar_check_admin()
        connection = self._iap_sidecar_require_connection()
        try:
            answer = conn.client(connection, conn.READ_BACK_TIMEOUT).refresh(
                connection.dbuuid, connection.token
            )
        except SidecarError as exc:
            raise UserError(
                compat.gettext(self.env, 
                    "The sidecar could not read this database: %(reason)s",
                    reason=str(exc),
                )
            ) from exc
        self._iap_sidecar_record_read(answer)
        return self._iap_sidecar_notify(
            compat.gettext(self.env, "The sidecar read this database again.")
        )

    def action_iap_sidecar_buy_credits(self):
        """Opens the sidecar's portal on this database's IAP accounts."""
        self.ensure_one()
        connection = self._iap_sidecar_require_connection()
        accounts = self.env["iap.account"].search(
            [
                "|",
                ("company_ids", "in", self.env.companies.ids),
                ("company_ids", "=", False),
            ]
        )
        tokens = sorted(
            {account.account_token for account in accounts if account.account_token}
        )
        url = f"{connection.url}/iap/services"
        if tokens:
            url = f"{url}?{urlencode([('tokens', token) for token in tokens])}"
        return {"type": "ir.actions.act_url", "url": url, "target": "new"}
