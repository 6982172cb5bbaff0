#!/usr/bin/env python3
"""Twilio's Messages API as Twilio documents it, for the tests (standard library only).

    python3 tests/sms/twilio_api.py --port P --account-sid AC… --auth-token T \
        [--auto-status delivered|undelivered|failed] [--verbose]

Port 0 picks a free port; once listening it prints `READY port=P` on stdout.

- POST /2010-04-01/Accounts/{AccountSid}/Messages.json, HTTP Basic (AccountSid:AuthToken,
  else 401 with error 20003), form-encoded To, From or MessagingServiceSid, Body (at most
  1600 characters), optional StatusCallback. Errors are Twilio's: status 400 and
  {"code", "message", "more_info", "status"}: 21604 To missing, 21211 To not a valid
  number, 21602 Body missing, 21617 Body over 1600 characters, 21603 neither From nor
  MessagingServiceSid, 21212 From not a number nor an alphanumeric sender ID, 21701
  MessagingServiceSid unknown, 21609 StatusCallback not a URL. The magic To numbers of
  Twilio's test credentials answer as there: +15005550001 → 21211, +15005550002 → 21612,
  +15005550003 → 21408, +15005550004 → 21610, +15005550009 → 21614.
  Success: 201 with a Message resource (sid "SM" + 32 hex, status "queued", or "accepted"
  when sent through a Messaging Service, num_segments, …).
- GET /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json: the resource.
- With --auto-status, every accepted message gets the callbacks "sent" then that status
  (undelivered with ErrorCode 30003, failed with 30008), in order.

Control:
- GET  /_control/messages: every message taken (the resource plus "status_callback").
- POST /_control/down: 503 to every API request until POST /_control/up.
- POST /_control/up
- POST /_control/status {"sid", "status", "error_code"?}: posts the status callback to the
  message's StatusCallback, form-encoded (MessageSid, SmsSid, AccountSid, From, To,
  MessageStatus, SmsStatus, ApiVersion, ErrorCode when given, MessagingServiceSid when
  set) and signed as Twilio signs it: X-Twilio-Signature = base64(HMAC-SHA1(AuthToken,
  URL + every parameter's name and value, sorted by name)). Answers with the callback's
  HTTP status (502 when it could not be reached) and, unless that status is 204,
  {"callback_status": N}.
"""

import argparse
import base64
import email.utils
import hashlib
import hmac
import json
import re
import secrets
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API = "2010-04-01"
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")
ALPHANUMERIC_SENDER = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SERVICE_SID = re.compile(r"^MG[0-9a-f]{32}$")
MAGIC_TO = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550002": (21612, "The 'To' phone number is not currently reachable via SMS."),
    "+15005550003": (21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number."),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
}
GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("\f^{}\\[~]|€")
FINAL_ERROR = {"undelivered": "30003", "failed": "30008"}


def segments(body):
    if all(c in GSM7 or c in GSM7_EXTENSION for c in body):
        length = sum(2 if c in GSM7_EXTENSION else 1 for c in body)
        single, part = 160, 153
    else:
        length = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if length <= single else -(-length // part)


def signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    digest = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self):
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class State:
    def __init__(self, args):
        self.account_sid = args.account_sid
        self.auth_token = args.auth_token
        self.auto_status = args.auto_status
        self.verbose = args.verbose
        self.lock = threading.Lock()
        self.messages = {}  # sid -> resource (+ "status_callback"), insertion ordered
        self.down = False

    def create(self, form):
        to = form.get("To", "")
        body = form.get("Body")
        sender = form.get("From")
        service = form.get("MessagingServiceSid")
        callback = form.get("StatusCallback")
        if not to:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not E164.match(to):
            raise ApiError(400, 21211, f"The 'To' number {to} is not a valid phone number.")
        if to in MAGIC_TO:
            code, message = MAGIC_TO[to]
            raise ApiError(400, code, message)
        if body is None or body == "":
            raise ApiError(400, 21602, "Message body is required.")
        if len(body) > 1600:
            raise ApiError(400, 21617, "The concatenated message body exceeds the 1600 character limit.")
        if not sender and not service:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if sender and not (E164.match(sender) or ALPHANUMERIC_SENDER.match(sender)):
            raise ApiError(400, 21212, f"The 'From' number {sender} is not a valid phone number, shortcode, or alphanumeric sender ID.")
        if service and not SERVICE_SID.match(service):
            raise ApiError(400, 21701, f"The Messaging Service Sid {service} is invalid.")
        if callback is not None:
            parsed = urllib.parse.urlparse(callback)
            if parsed.scheme not in ("http", "https") or not parsed.netloc:
                raise ApiError(400, 21609, f"The StatusCallback URL {callback} is not a valid URL.")
        sid = "SM" + secrets.token_hex(16)
        now = email.utils.formatdate(usegmt=True)
        uri = f"/{API}/Accounts/{self.account_sid}/Messages/{sid}.json"
        resource = {
            "account_sid": self.account_sid,
            "api_version": API,
            "body": body,
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": sender,
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": str(segments(body)),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "queued" if sender else "accepted",
            "subresource_uris": {"media": uri.replace(".json", "/Media.json")},
            "to": to,
            "uri": uri,
        }
        with self.lock:
            self.messages[sid] = dict(resource, status_callback=callback)
        if self.auto_status and callback:
            final = self.auto_status
            threading.Thread(
                target=lambda: [
                    self.callback(sid, "sent", None),
                    self.callback(sid, final, FINAL_ERROR.get(final)),
                ],
                daemon=True,
            ).start()
        return resource

    def callback(self, sid, status, error_code):
        """Posts the status callback; returns its HTTP status (502 when unreachable)."""
        with self.lock:
            message = self.messages.get(sid)
            if message is None:
                return None
            message["status"] = status
            if error_code is not None:
                message["error_code"] = int(error_code)
            url = message["status_callback"]
            params = {
                "MessageSid": sid,
                "SmsSid": sid,
                "AccountSid": self.account_sid,
                "To": message["to"],
                "MessageStatus": status,
                "SmsStatus": status,
                "ApiVersion": API,
            }
            if message["from"]:
                params["From"] = message["from"]
            if message["messaging_service_sid"]:
                params["MessagingServiceSid"] = message["messaging_service_sid"]
            if error_code is not None:
                params["ErrorCode"] = str(error_code)
        if not url:
            return 502
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(params).encode(),
            method="POST",
            headers={
                "Content-Type": "application/x-www-form-urlencoded",
                "X-Twilio-Signature": signature(self.auth_token, url, params),
                "User-Agent": "TwilioProxy/1.1",
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return 502


class Handler(BaseHTTPRequestHandler):
    state: State
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        # Access lines only on request: the tests' output stays readable.
        if self.state.verbose:
            sys.stderr.write("twilio_api: " + (format % args) + "\n")

    def send_json(self, status, value):
        # 204 and 304 carry no body (a mirrored callback status may be one of them).
        data = b"" if status in (204, 304) else json.dumps(value).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def authenticated(self):
        given = self.headers.get("Authorization", "")
        expected = "Basic " + base64.b64encode(
            f"{self.state.account_sid}:{self.state.auth_token}".encode()
        ).decode()
        return hmac.compare_digest(given.encode(), expected.encode())

    def api_prefix(self):
        return f"/{API}/Accounts/{self.state.account_sid}/Messages"

    def do_GET(self):
        path = urllib.parse.urlparse(self.path).path
        if path == "/_control/messages":
            with self.state.lock:
                return self.send_json(200, list(self.state.messages.values()))
        if self.state.down:
            return self.send_json(503, ApiError(503, 20503, "Service Unavailable").body())
        if not self.authenticated():
            return self.send_json(401, ApiError(401, 20003, "Authenticate").body())
        prefix = self.api_prefix() + "/"
        if path.startswith(prefix) and path.endswith(".json"):
            sid = path[len(prefix) : -len(".json")]
            with self.state.lock:
                message = self.state.messages.get(sid)
            if message is not None:
                resource = {k: v for k, v in message.items() if k != "status_callback"}
                return self.send_json(200, resource)
        return self.send_json(404, ApiError(404, 20404, "The requested resource was not found").body())

    def do_POST(self):
        path = urllib.parse.urlparse(self.path).path
        raw = self.read_body()
        if path == "/_control/down":
            self.state.down = True
            return self.send_json(200, {"down": True})
        if path == "/_control/up":
            self.state.down = False
            return self.send_json(200, {"up": True})
        if path == "/_control/status":
            try:
                body = json.loads(raw or b"{}")
                sid, status = body["sid"], body["status"]
                error_code = body.get("error_code")
            except (ValueError, KeyError, TypeError) as e:
                return self.send_json(400, {"error": f"want sid, status: {e}"})
            code = self.state.callback(sid, status, error_code)
            if code is None:
                return self.send_json(404, {"error": f"no message {sid}"})
            return self.send_json(code, {"callback_status": code})
        if self.state.down:
            return self.send_json(503, ApiError(503, 20503, "Service Unavailable").body())
        if not self.authenticated():
            return self.send_json(401, ApiError(401, 20003, "Authenticate").body())
        if path != self.api_prefix() + ".json":
            return self.send_json(404, ApiError(404, 20404, "The requested resource was not found").body())
        # Twilio reads parameters from a form body only; anything else carries none.
        form = {}
        content_type = self.headers.get("Content-Type", "").split(";")[0].strip()
        if content_type == "application/x-www-form-urlencoded":
            try:
                pairs = urllib.parse.parse_qs(raw.decode(), keep_blank_values=True)
            except UnicodeDecodeError:
                pairs = {}
            form = {k: v[0] for k, v in pairs.items()}
        try:
            resource = self.state.create(form)
        except ApiError as e:
            return self.send_json(e.status, e.body())
        return self.send_json(201, resource)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--account-sid", required=True)
    parser.add_argument("--auth-token", required=True)
    parser.add_argument("--auto-status", choices=["delivered", "undelivered", "failed"])
    parser.add_argument("--verbose", action="store_true", help="log every request on stderr")
    args = parser.parse_args()
    Handler.state = State(args)
    httpd = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    httpd.daemon_threads = True
    print(f"READY port={httpd.server_address[1]}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
