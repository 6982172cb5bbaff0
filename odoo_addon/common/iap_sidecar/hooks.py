from .tools import connection as conn


def uninstall_hook(env):
    """Disconnects before the addon goes, so Odoo's IAP calls go back to the previous
    endpoint and the sidecar's API key is revoked; then forgets the settings."""
    if conn.stored(env) is not None:
        env["res.config.settings"].sudo().create({}).action_iap_sidecar_disconnect()
    params = env["ir.config_parameter"].sudo()
    for key in (
        conn.PARAM_URL,
        conn.PARAM_SECRET,
        conn.PARAM_ODOO_URL,
        *conn.CONNECTION_PARAMS,
    ):
        params.set_param(key, False)
