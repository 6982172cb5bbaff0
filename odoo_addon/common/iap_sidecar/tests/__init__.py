from . import test_res_config_settings
from . import test_iap_account
from . import test_iap_provider
from . import test_ui
