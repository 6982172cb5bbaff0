"""Where this database's link to its sidecar is kept: system parameters, readable by
``base.group_system`` only (``ir.config_parameter``'s access rules).
"""

from collections import namedtuple

from .sidecar_api import SidecarClient

#: Settings the administrator types (the Settings form writes them).
PARAM_URL = "iap_sidecar.url"
PARAM_SECRET = "iap_sidecar.registration_secret"
PARAM_ODOO_URL = "iap_sidecar.odoo_url"

#: What Connect stores; all removed by Disconnect.
PARAM_CONNECTED_URL = "iap_sidecar.connected_url"
PARAM_TOKEN = "iap_sidecar.database_token"
PARAM_DBUUID = "iap_sidecar.dbuuid"
PARAM_PREVIOUS_ENDPOINT = "iap_sidecar.previous_endpoint"
PARAM_PREVIOUS_SMS_ENDPOINT = "iap_sidecar.previous_sms_endpoint"
PARAM_API_KEY_ID = "iap_sidecar.api_key_id"
PARAM_CONNECTED_AT = "iap_sidecar.connected_at"
PARAM_SUMMARY = "iap_sidecar.summary"

CONNECTION_PARAMS = (
    PARAM_CONNECTED_URL,
    PARAM_TOKEN,
    PARAM_DBUUID,
    PARAM_PREVIOUS_ENDPOINT,
    PARAM_PREVIOUS_SMS_ENDPOINT,
    PARAM_API_KEY_ID,
    PARAM_CONNECTED_AT,
    PARAM_SUMMARY,
)

#: Odoo's own parameter: the origin every stock IAP call goes to.
PARAM_IAP_ENDPOINT = "iap.endpoint"
#: The ``sms`` addon's own parameter: where Odoo's SMS go (``/api/sms/3/send`` and the
#: account routes are joined onto it), not ``iap.endpoint``.
PARAM_SMS_ENDPOINT = "sms.endpoint"

Connection = namedtuple("Connection", "url dbuuid token")


def stored(env):
    """The stored connection, or None; it may belong to another dbuuid (a copied database)."""
    params = env["ir.config_parameter"].sudo()
    url = params.get_param(PARAM_CONNECTED_URL)
    token = params.get_param(PARAM_TOKEN)
    dbuuid = params.get_param(PARAM_DBUUID)
    if not (url and token and dbuuid):
        return None
    return Connection(url, dbuuid, token)


def current(env):
    """The connection usable by this database, or None.

    A copy of a connected database (new ``database.uuid``) does not use the original's
    token: it must connect on its own.
    """
    connection = stored(env)
    if connection is None:
        return None
    dbuuid = env["ir.config_parameter"].sudo().get_param("database.uuid")
    return connection if connection.dbuuid == dbuuid else None


#: Seconds to wait for a registration or a refresh: the sidecar first reads this database
#: back over JSON-RPC (a login and three reads, each checking the API key), which a busy
#: server takes seconds to answer. A shorter wait gives up while the read is under way,
#: and a refresh given up on is dropped by the sidecar, accounts just created included.
READ_BACK_TIMEOUT = 30


def client(connection, timeout):
    """A client for ``connection``'s sidecar."""
    return SidecarClient(connection.url, timeout=timeout)
