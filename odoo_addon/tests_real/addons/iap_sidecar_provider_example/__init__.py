# Imported when Odoo loads the module: a dependent module reaches the helper this way on
# every series, 19 included (where Odoo's own iap_charge is gone).
from odoo.addons.iap_sidecar.tools import iap_provider  # noqa: F401
