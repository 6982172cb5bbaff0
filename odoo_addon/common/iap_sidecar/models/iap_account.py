import logging
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

from odoo import SUPERUSER_ID, api, fields, models

from ..tools import compat
from ..tools import connection as conn
from ..tools.sidecar_api import SidecarError

_logger = logging.getLogger(__name__)

#: The account views must open quickly when the sidecar is down.
FETCH_TIMEOUT = 5
#: The sidecar answers at most this many accounts per call.
MAX_BATCH = 1000
#: Per-transaction memo of the sidecar's answers (``cr.cache`` key).
CACHE_KEY = "iap_sidecar.accounts"

SIDECAR_FIELDS = (
    "sidecar_balance",
    "sidecar_reserved",
    "sidecar_available",
    "sidecar_lots",
    "sidecar_next_expiry",
    "sidecar_last_consumption",
    "sidecar_portal_url",
    "sidecar_companies",
    "sidecar_message",
)


def _amount(value):
    """A decimal string (or number) from the sidecar as a float; None when unreadable."""
    try:
        return float(Decimal(str(value)))
    except (InvalidOperation, TypeError, ValueError):
        return None


def _instant(value):
    """An RFC 3339 time from the sidecar as Odoo's naive UTC datetime; None for null."""
    if not value or not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc).replace(tzinfo=None)
    return moment


class IapAccount(models.Model):
    _inherit = "iap.account"

    # The sidecar's view of the account, shown in developer mode (not stored: read from
    # the sidecar with the account, in one call for every account being read).
    sidecar_balance = fields.Float(
        string="Balance on Sidecar",
        digits=(16, 4),
        compute="_compute_sidecar_figures",
        help="Credits on the account, including those reserved by providers.",
    )
    sidecar_reserved = fields.Float(
        string="Reserved",
        digits=(16, 4),
        compute="_compute_sidecar_figures",
        help="Credits held by providers' pending transactions.",
    )
    sidecar_available = fields.Float(
        string="Available",
        digits=(16, 4),
        compute="_compute_sidecar_figures",
    )
    sidecar_lots = fields.Text(
        string="Credit Lots",
        compute="_compute_sidecar_figures",
        help="Credits left per lot and when they expire (UTC), earliest first.",
    )
    sidecar_next_expiry = fields.Datetime(
        string="Next Expiry",
        compute="_compute_sidecar_figures",
        help="When the earliest expiring lot with credits left expires.",
    )
    sidecar_last_consumption = fields.Datetime(
        string="Last Consumption",
        compute="_compute_sidecar_figures",
    )
    sidecar_portal_url = fields.Char(
        string="Sidecar Portal",
        compute="_compute_sidecar_figures",
    )
    sidecar_companies = fields.Char(
        string="Companies on Sidecar",
        compute="_compute_sidecar_figures",
        help="The companies the sidecar believes the account is restricted to.",
    )
    sidecar_message = fields.Char(
        compute="_compute_sidecar_figures",
        help="Why the sidecar's figures are missing, if they are.",
    )

    def web_read(self, specification):
        # One batched call for every record of the read, before the fields are computed
        # one record at a time; the answers are kept for the rest of the transaction.
        if any(name in specification for name in SIDECAR_FIELDS):
            self._sidecar_fetch()
        return super().web_read(specification)

    def _sidecar_fetch(self):
        """Asks the sidecar, in one call, about the accounts of ``self`` not asked yet in
        this transaction. Never raises.

        :return: ``(answers, problem)``: the sidecar's answer per token (None for a
            token it does not know), and why it could not be asked, if it could not
        """
        cache = self.env.cr.cache.setdefault(
            CACHE_KEY, {"answers": {}, "problem": None}
        )
        connection = conn.current(self.env)
        if connection is None:
            return cache["answers"], None
        if cache["problem"]:
            return cache["answers"], cache["problem"]
        wanted = {}
        for account in self.sudo():
            token = account.account_token
            service = compat.service_name(account)
            if account.id and token and service and token not in cache["answers"]:
                wanted[token] = service
        items = [
            {"token": token, "service": service} for token, service in wanted.items()
        ]
        for start in range(0, len(items), MAX_BATCH):
            batch = items[start : start + MAX_BATCH]
            try:
                answers = conn.client(connection, FETCH_TIMEOUT).accounts(
                    connection.dbuuid, connection.token, batch
                )
            except SidecarError as exc:
                _logger.warning("IAP sidecar: account figures unavailable: %s", exc)
                cache["problem"] = str(exc)
                break
            for item in batch:
                answer = answers.get(item["token"])
                cache["answers"][item["token"]] = (
                    answer if isinstance(answer, dict) else None
                )
        return cache["answers"], cache["problem"]

    def _compute_sidecar_figures(self):
        answers, problem = self._sidecar_fetch()
        connected = conn.current(self.env) is not None
        for account in self:
            values = dict.fromkeys(SIDECAR_FIELDS, False)
            answer = answers.get(account.sudo().account_token) if account.id else None
            if not connected:
                values["sidecar_message"] = compat.gettext(self.env, 
                    "This database is not connected to an IAP sidecar "
                    "(Settings, General Settings, Odoo IAP)."
                )
            elif answer:
                values.update(account._sidecar_values(answer))
            elif problem:
                values["sidecar_message"] = compat.gettext(self.env, 
                    "The sidecar's figures are unavailable: %(reason)s", reason=problem
                )
            elif account.id:
                values["sidecar_message"] = compat.gettext(self.env, 
                    "The sidecar does not know this account yet: it registers on first use."
                )
            account.update(values)

    def _sidecar_values(self, answer):
        lots = []
        next_expiry = None
        for lot in answer.get("lots") or []:
            if not isinstance(lot, dict):
                continue
            remaining = lot.get("remaining")
            if not (_amount(remaining) or 0) > 0:
                continue  # used up: nothing left to expire
            expiry = _instant(lot.get("expires_at"))
            if expiry:
                next_expiry = min(next_expiry or expiry, expiry)
            lots.append((expiry or datetime.max, remaining, expiry))
        lots.sort(key=lambda lot: lot[0])
        lines = [
            (
                compat.gettext(self.env, 
                    "%(remaining)s until %(expiry)s UTC",
                    remaining=remaining,
                    expiry=fields.Datetime.to_string(expiry),
                )
                if expiry
                else compat.gettext(self.env, "%(remaining)s, no expiry", remaining=remaining)
            )
            for _key, remaining, expiry in lots
        ]
        companies = answer.get("companies")
        if isinstance(companies, list):
            names = [
                str(company.get("name") if isinstance(company, dict) else company)
                for company in companies
            ]
            companies = ", ".join(names) if names else compat.gettext(self.env, "All companies")
        else:
            companies = False
        return {
            "sidecar_balance": _amount(answer.get("balance")) or 0.0,
            "sidecar_reserved": _amount(answer.get("reserved")) or 0.0,
            "sidecar_available": _amount(answer.get("available")) or 0.0,
            "sidecar_lots": "\n".join(lines) or compat.gettext(self.env, "No credits"),
            "sidecar_next_expiry": next_expiry or False,
            "sidecar_last_consumption": _instant(answer.get("last_consumption_at"))
            or False,
            "sidecar_portal_url": answer.get("portal_url") or False,
            "sidecar_companies": companies,
        }

    # Tell the sidecar when accounts or their companies change, once committed (it reads
    # them back over JSON-RPC, so it must see the committed rows).

    def _sidecar_refresh_after_commit(self):
        connection = conn.current(self.env)
        if connection is None or compat.running_tests():
            return
        postcommit = self.env.cr.postcommit
        if postcommit.data.get(CACHE_KEY):
            return
        postcommit.data[CACHE_KEY] = True
        registry = self.env.registry
        context = dict(self.env.context)

        @postcommit.add
        def refresh():
            # After the commit: a cursor of its own to record what the sidecar read.
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, context)
                env["iap.account"]._sidecar_refresh_now(connection)

    @api.model
    def _sidecar_refresh_now(self, connection):
        """Asks the sidecar to read this database again and records the companies and
        accounts it read, so the status in Settings counts the account just changed.
        Never raises: the change is already committed."""
        try:
            answer = conn.client(connection, conn.READ_BACK_TIMEOUT).refresh(
                connection.dbuuid, connection.token
            )
        except SidecarError as exc:
            _logger.info("IAP sidecar: refresh after an account change failed: %s", exc)
            return
        self.env["res.config.settings"]._iap_sidecar_record_read(answer)

    @api.model_create_multi
    def create(self, vals_list):
        accounts = super().create(vals_list)
        accounts._sidecar_refresh_after_commit()
        return accounts

    def write(self, vals):
        result = super().write(vals)
        if {"company_ids", "account_token", *compat.SERVICE_FIELDS} & set(vals):
            self._sidecar_refresh_after_commit()
        return result

    def unlink(self):
        self._sidecar_refresh_after_commit()
        return super().unlink()
