from . import sidecar_api
from . import compat
from . import connection
from . import iap_provider
