"""What differs between the Odoo series this addon runs on (17.0, 18.0, 19.0), in one place.

The addon's code is one tree for every series (``odoo_addon/<series>/iap_sidecar`` only
adds a manifest); everything that a series renamed or removed goes through here.
"""

import inspect
import threading

from odoo.modules import module as odoo_module
from odoo.tools.translate import code_translations

MODULE = "iap_sidecar"


def gettext(env, source, **kwargs):
    """``source`` in ``env``'s language, formatted with ``kwargs``.

    Odoo 18 added ``Environment._``; Odoo 17 only has the frame-guessing ``_``, which
    cannot see the environment from here, so the addon's code translations are looked up
    the way 18 does it.
    """
    translate = getattr(env, "_", None)
    if translate is not None:
        return translate(source, **kwargs)
    lang = env.lang or "en_US"
    if lang != "en_US":
        translations = code_translations.get_python_translations(MODULE, lang)
        source = translations.get(source) or source
    return source % kwargs if kwargs else source


def running_tests():
    """True inside Odoo's test runner, where nothing may be committed or called out.

    Odoo 17 and 18 mark the test thread (``iap.account.is_running_test_suite``, 18 only);
    Odoo 19 dropped that method and sets ``odoo.modules.module.current_test``.
    """
    if getattr(odoo_module, "current_test", None):
        return True
    return bool(getattr(threading.current_thread(), "testing", False))


def service_name(account):
    """The technical name of an ``iap.account``'s service.

    Odoo 18 made the service a record (``service_id``); 17 keeps its name on the account.
    """
    if "service_id" in account._fields:
        return account.service_id.technical_name or False
    return account.service_name or False


#: The account fields whose change means a different service (see :func:`service_name`).
SERVICE_FIELDS = ("service_id", "service_name")


def generate_api_key(env, scope, name):
    """A new persistent API key of ``env``'s user (Odoo 18 added an expiration argument)."""
    keys = env["res.users.apikeys"]
    if "expiration_date" in inspect.signature(keys._generate).parameters:
        return keys._generate(scope, name, None)
    return keys._generate(scope, name)
