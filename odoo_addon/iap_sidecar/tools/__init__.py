from . import sidecar_api
from . import connection
from . import iap_provider
