"""Provider-side IAP helpers that do not depend on the Odoo series.

Odoo 17 and 18 ship ``iap_authorize``, ``iap_capture``, ``iap_cancel`` and the
``iap_charge`` context manager in ``odoo.addons.iap.tools.iap_tools``; Odoo 19 removed
them. This module has the same signatures and behaviour, so a provider module can::

    from odoo.addons.iap_sidecar.tools import iap_provider

    with iap_provider.iap_charge(env, key, account_token, 4, description="4 reports") as tx:
        done = produce_reports()
        tx.credit = done  # capture only what was used

It posts through Odoo's ``iap_jsonrpc`` when the installed ``iap`` addon has it (so
logging, timeouts and the test-mode block stay Odoo's), and through its own equivalent
otherwise. ``InsufficientCreditError`` is Odoo's class when Odoo has one, so existing
``except InsufficientCreditError`` clauses and the web client's "Buy credits" handling
keep working. The module only needs ``requests``: it can be used outside Odoo with any
``env`` whose ``env["ir.config_parameter"].sudo().get_param(key, default)`` works.
"""

import contextlib
import json
import logging
import uuid

import requests

try:
    from odoo.addons.iap.tools import iap_tools as _iap_tools
except ImportError:  # outside Odoo, or a series without the module
    _iap_tools = None

try:
    from odoo.exceptions import AccessError
except ImportError:  # outside Odoo

    class AccessError(Exception):
        """Stands in for ``odoo.exceptions.AccessError`` outside Odoo."""


_logger = logging.getLogger(__name__)

#: Odoo's default IAP origin when ``iap.endpoint`` is not set.
DEFAULT_ENDPOINT = "https://iap.odoo.com"

if _iap_tools is not None and hasattr(_iap_tools, "InsufficientCreditError"):
    InsufficientCreditError = _iap_tools.InsufficientCreditError
else:

    class InsufficientCreditError(Exception):
        """Not enough credits: ``args[0]`` is the server's JSON string (``message``,
        ``credit``, ``service_name``, ``base_url``, ``trial``), ``data`` its error data.
        """


class IapTransaction:
    """What ``iap_charge`` yields: set ``credit`` to the amount to capture."""

    def __init__(self):
        self.credit = None


def iap_get_endpoint(env):
    """``iap.endpoint``, or Odoo's default origin."""
    return env["ir.config_parameter"].sudo().get_param("iap.endpoint", DEFAULT_ENDPOINT)


def requests_jsonrpc(url, method="call", params=None, timeout=15):
    """Posts a JSON-RPC call the way Odoo's ``iap_jsonrpc`` does and unwraps the answer.

    Insufficient credit raises :class:`InsufficientCreditError` (with ``data``); any
    other failure raises ``AccessError`` carrying the server's message.
    """
    # This transport has no env, hence no language: its messages stay in English (Odoo's
    # frame-guessing translation would log a warning outside HTTP requests).
    payload = {
        "jsonrpc": "2.0",
        "method": method,
        "params": params,
        "id": uuid.uuid4().hex,
    }
    try:
        answer = requests.post(url, json=payload, timeout=timeout)
        answer.raise_for_status()
        response = answer.json()
    except requests.exceptions.Timeout as exc:
        message = f"The request to {url} timed out."
        raise AccessError(message) from exc
    except (ValueError, requests.exceptions.RequestException) as exc:
        message = f"An error occurred while reaching {url}: {exc}"
        raise AccessError(message) from exc
    if "error" in response:
        data = (response.get("error") or {}).get("data") or {}
        name = str(data.get("name") or "").rpartition(".")[-1]
        reason = data.get("message")
        if name == "InsufficientCreditError":
            error = InsufficientCreditError(reason)
            error.data = data
            raise error
        message = f"The IAP server at {url} refused the request: {reason or name}"
        raise AccessError(message)
    return response.get("result")


def iap_jsonrpc(url, method="call", params=None, timeout=15):
    """Odoo's ``iap_jsonrpc`` when the installed series has it, else :func:`requests_jsonrpc`."""
    odoo_jsonrpc = getattr(_iap_tools, "iap_jsonrpc", None)
    if odoo_jsonrpc is not None:
        return odoo_jsonrpc(url, method=method, params=params, timeout=timeout)
    return requests_jsonrpc(url, method=method, params=params, timeout=timeout)


def iap_authorize(
    env,
    key,
    account_token,
    credit,
    dbuuid=False,
    description=None,
    credit_template=None,
    ttl=4320,
):
    """Reserves ``credit`` on the account of ``account_token``; returns the transaction token.

    On insufficient credit, a ``credit_template`` (QWeb template xml id) is rendered
    into the error's JSON as ``body`` before the error is raised again.
    """
    endpoint = iap_get_endpoint(env)
    params = {
        "account_token": account_token,
        "credit": credit,
        "key": key,
        "description": description,
        "ttl": ttl,
    }
    if dbuuid:
        params["dbuuid"] = dbuuid
    try:
        return iap_jsonrpc(endpoint + "/iap/1/authorize", params=params)
    except InsufficientCreditError as error:
        if credit_template:
            arguments = json.loads(error.args[0])
            arguments["body"] = str(env["ir.qweb"]._render(credit_template))
            error.args = (json.dumps(arguments),)
        raise


def iap_cancel(env, transaction_token, key):
    """Releases a hold; cancelling twice changes nothing."""
    endpoint = iap_get_endpoint(env)
    params = {"token": transaction_token, "key": key}
    return iap_jsonrpc(endpoint + "/iap/1/cancel", params=params)


def iap_capture(env, transaction_token, key, credit):
    """Consumes ``credit`` of a hold (the rest goes back); capturing twice changes nothing."""
    endpoint = iap_get_endpoint(env)
    params = {"token": transaction_token, "key": key, "credit_to_capture": credit}
    return iap_jsonrpc(endpoint + "/iap/1/capture", params=params)


@contextlib.contextmanager
def iap_charge(
    env,
    key,
    account_token,
    credit,
    dbuuid=False,
    description=None,
    credit_template=None,
    ttl=4320,
):
    """Charges the body of the ``with`` block.

    Authorizes ``credit`` first (raising :class:`InsufficientCreditError` before the body
    runs), yields an :class:`IapTransaction` whose ``credit`` the body may change, then
    captures ``transaction.credit`` when the body succeeds, or cancels the hold when it
    raises and raises that exception again.

    :param str key: the provider's service key
    :param str account_token: the client's ``iap.account`` token
    :param credit: the credits to reserve
    :param dbuuid: the client's ``database.uuid`` (lets a first use get trial credits)
    :param str description: shown to the client in the history of its account
    :param str credit_template: QWeb template rendered into an insufficient-credit error
    :param int ttl: hours before an uncaptured hold is cancelled
    """
    transaction_token = iap_authorize(
        env, key, account_token, credit, dbuuid, description, credit_template, ttl
    )
    transaction = IapTransaction()
    transaction.credit = credit
    try:
        yield transaction
    except Exception:
        try:
            iap_cancel(env, transaction_token, key)
        except Exception:  # the body's error matters more; the hold expires after ttl
            _logger.exception("could not cancel IAP transaction %s", transaction_token)
        raise
    iap_capture(env, transaction_token, key, transaction.credit)


# The short names ``odoo.addons.iap`` exported in 17 and 18.
jsonrpc = iap_jsonrpc
authorize = iap_authorize
cancel = iap_cancel
capture = iap_capture
charge = iap_charge
