from . import res_config_settings
from . import iap_account
