#!/usr/bin/env python3
"""Talks to a running sidecar the way Odoo's ``iap`` addon does, and checks what Odoo's
client code would make of each answer.

The transport below follows the behaviour of ``iap_jsonrpc`` (Odoo 16-19): POST the
JSON-RPC envelope with ``requests``, any HTTP or transport failure is a generic
``AccessError``, an ``error`` member is read through ``error.data.name`` (last dotted
part) and ``error.data.message``; ``InsufficientCreditError`` carries a JSON string that
``iap_authorize`` parses with ``json.loads``.

Usage: iap_client_check.py BASE_URL SERVICE PROVIDER_KEY ACCOUNT_TOKEN DBUUID BALANCE
(BALANCE: the credits the account holds before the script starts).
"""

import contextlib
import json
import sys
import uuid

import requests


class AccessError(Exception):
    """What Odoo raises for every failure it does not recognise."""


class InsufficientCreditError(Exception):
    """Odoo's insufficient-credit exception: args[0] is the server's JSON string."""


def iap_jsonrpc(url, method="call", params=None, timeout=15):
    payload = {"jsonrpc": "2.0", "method": method, "params": params, "id": uuid.uuid4().hex}
    try:
        answer = requests.post(url, json=payload, timeout=timeout)
        answer.raise_for_status()
        response = answer.json()
    except (ValueError, requests.exceptions.RequestException) as exc:
        raise AccessError(f"transport failure on {url}: {exc}") from exc
    if "error" in response:
        # Odoo indexes these without guards: a missing key would crash the client.
        data = response["error"]["data"]
        name = data.get("name").rpartition(".")[-1]
        message = data.get("message")
        if name == "InsufficientCreditError":
            error = InsufficientCreditError(message)
            error.data = data
            raise error
        raise AccessError(f"{name}: {message}")
    return response.get("result")


def authorize(base, key, token, credit, dbuuid=None, description=None, ttl=4320):
    params = {"account_token": token, "credit": credit, "key": key,
              "description": description, "ttl": ttl}
    if dbuuid:
        params["dbuuid"] = dbuuid
    try:
        return iap_jsonrpc(base + "/iap/1/authorize", params=params)
    except InsufficientCreditError as error:
        # What iap_authorize does with a credit_template: add a rendered body.
        arguments = json.loads(error.args[0])
        arguments["body"] = "<p>Buy more credits</p>"
        error.args = (json.dumps(arguments),)
        raise


def capture(base, key, transaction, credit):
    params = {"token": transaction, "key": key, "credit_to_capture": credit}
    return iap_jsonrpc(base + "/iap/1/capture", params=params)


def cancel(base, key, transaction):
    return iap_jsonrpc(base + "/iap/1/cancel", params={"token": transaction, "key": key})


@contextlib.contextmanager
def charge(base, key, token, credit, dbuuid=None, description=None):
    """Authorize, yield the transaction, capture on success, cancel on error."""

    class Transaction:
        pass

    transaction = Transaction()
    transaction.credit = credit
    transaction.token = authorize(base, key, token, credit, dbuuid, description)
    try:
        yield transaction
    except Exception:
        cancel(base, key, transaction.token)
        raise
    capture(base, key, transaction.token, transaction.credit)


def main(argv):
    base, service, key, token, dbuuid, start = argv[1:7]
    start = float(start)
    checks = 0

    def check(condition, what):
        nonlocal checks
        if not condition:
            raise SystemExit(f"FAILED: {what}")
        checks += 1

    def balance():
        return iap_jsonrpc(base + "/iap/1/balance", params={
            "dbuuid": dbuuid, "account_token": token, "service_name": service})

    value = balance()
    check(isinstance(value, (int, float)) and value == start, f"balance {value!r} == {start}")

    try:
        authorize(base, key, token, start + 1000, dbuuid, "too much")
        check(False, "an authorize beyond the balance must fail")
    except InsufficientCreditError as error:
        data = error.data
        check(data["name"].endswith("InsufficientCreditError"), "data.name suffix")
        payload = json.loads(error.args[0])
        for field, kind in (("message", str), ("credit", (int, float)), ("service_name", str),
                            ("trial", bool), ("title", str), ("base_url", str), ("body", str)):
            check(isinstance(payload.get(field), kind), f"payload field {field}: {payload}")
        check(payload["base_url"] == base + "/iap/1/credit", f"base_url {payload['base_url']}")
        check(payload["service_name"] == service, "service_name")
        check(payload["credit"] == start + 1000, f"credit {payload['credit']}")

    transaction = authorize(base, key, token, 3, dbuuid, "three credits")
    check(isinstance(transaction, str) and len(transaction) >= 32, "transaction token")
    capture(base, key, transaction, 2)
    capture(base, key, transaction, 2)  # a retry changes nothing
    check(balance() == start - 2, "balance after capturing 2 of 3")

    with charge(base, key, token, 1.5, dbuuid, "charged") as tx:
        tx.credit = 1.25
    check(balance() == start - 3.25, "charge captures the amount the body set")

    try:
        with charge(base, key, token, 1, dbuuid, "failing job"):
            raise RuntimeError("the service failed")
    except RuntimeError:
        pass
    check(balance() == start - 3.25, "a failing charge is cancelled")

    for bad in (lambda: cancel(base, "wrong-key", transaction),
                lambda: capture(base, key, "no-such-transaction", 1)):
        try:
            bad()
            check(False, "a refused call must raise")
        except AccessError:
            check(True, "refused call raises AccessError")

    info = iap_jsonrpc(base + "/iap/1/get-accounts-information", params={
        "iap_accounts": [{"token": token, "service": service}], "dbuuid": dbuuid})
    entry = info[token]
    check(entry["balance"] == start - 3.25, "get-accounts-information balance")
    check(entry["registered"] in ("registered", "unregistered", "banned"), "registered")
    iap_jsonrpc(base + "/iap/1/update-warning-email-alerts", params={
        "account_token": token, "warning_threshold": 2.5,
        "warning_emails": [{"email": "ops@example.com", "lang_code": "fr_FR"}]})
    info = iap_jsonrpc(base + "/iap/1/get-accounts-information", params={
        "iap_accounts": [{"token": token, "service": service}], "dbuuid": dbuuid})
    check(info[token]["warning_threshold"] == 2.5, "threshold stored")

    print(f"python client: {checks} checks passed")


if __name__ == "__main__":
    main(sys.argv)
