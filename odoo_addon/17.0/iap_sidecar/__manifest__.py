{
    "name": "IAP Sidecar",
    "summary": "Buy and consume IAP credits, and send Odoo's SMS, on a self-hosted iap-sidecar",
    "version": "17.0.1.0.0",
    "category": "Hidden/Tools",
    "author": "iap-sidecar",
    "license": "LGPL-3",
    "depends": ["iap", "base_setup"],
    "data": [
        "views/res_config_settings_views.xml",
        "views/iap_account_views.xml",
    ],
    "uninstall_hook": "uninstall_hook",
}
