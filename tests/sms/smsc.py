#!/usr/bin/env python3
"""A real SMSC for the tests: the SMPP 3.4 server of `smpp.twisted3` (Twisted), with a
small JSON control interface on a second port.

    python3 tests/sms/smsc.py --port P --control-port C --system-id ID --password PW \
        [--auto-receipt DELIVRD|UNDELIV|REJECTD|EXPIRED] [--reject-prefix +999] [--verbose]

Port 0 picks a free port. Once both ports listen it prints one line
`READY smpp=P control=C` (the ports actually bound) on stdout.

SMPP: binds are checked against ID/PW (twisted.cred); every submit_sm is recorded and
answered with a fresh message_id; destinations starting with --reject-prefix are answered
ESME_RINVDSTADR. With --auto-receipt, each accepted submit_sm is followed by a delivery
receipt with that stat on a bound transceiver/receiver session.

--enquire-link-secs S (default 10): the SMSC sends enquire_link after S idle seconds and
drops a session that does not answer within --response-secs (default 60).

Control (HTTP, JSON):
- GET  /sessions: {"bound": sessions bound now, "binds": binds that succeeded,
  "enquire_links": enquire_link PDUs received, "enquire_links_answered": the SMSC's own
  enquire_link PDUs that were answered}.
- GET  /messages: every submit_sm taken, oldest first: {"message_id", "source",
  "destination" (with "+" when dest_addr_ton is international), "text" (GSM 03.38 default
  alphabet, unpacked septets, for data_coding 0; Latin-1 for 3; UCS-2 for 8),
  "data_coding", "esm_class", "registered_delivery", "source_addr_ton", "dest_addr_ton",
  "dest_addr_npi", "sequence", "received_at", and "udh": {"ref", "total", "seq"} for a
  part of a concatenated message}.
- POST /down: drops every session and closes the listening socket until POST /up.
- POST /up
- POST /receipts {"message_ids": [...], "stat": "DELIVRD", "err": "000"}: one deliver_sm
  receipt per id (esm_class 0x04, text "id:… sub:001 dlvrd:… submit date:… done date:…
  stat:… err:… text:…", TLVs receipted_message_id and message_state when the stat is a
  known one); answers {"sent": n} once n of them were acknowledged by deliver_sm_resp.
"""

import argparse
import datetime
import hmac
import json
import logging
import struct
import sys
import uuid

from smpp.pdu import pdu_types
from smpp.pdu.operations import DeliverSM, EnquireLink, SubmitSM
from smpp.pdu.pdu_encoding import DataCodingEncoder, EsmClassEncoder
from smpp.pdu.pdu_types import (
    AddrNpi,
    AddrTon,
    CommandStatus,
    DataCoding,
    EsmClass,
    EsmClassGsmFeatures,
    EsmClassMode,
    EsmClassType,
    MessageState,
    RegisteredDelivery,
    RegisteredDeliveryReceipt,
)
from smpp.twisted.config import SMPPServerConfig
from smpp.twisted.protocol import DataHandlerResponse, SMPPServerProtocol
from smpp.twisted.server import IAuthenticatedSMPP, SMPPServerFactory
from twisted.cred.checkers import ICredentialsChecker
from twisted.cred.credentials import IUsernamePassword
from twisted.cred.error import UnauthorizedLogin
from twisted.cred.portal import IRealm, Portal
from twisted.internet import defer, reactor
from twisted.web import resource, server
from zope.interface import implementer

# GSM 03.38 default alphabet, by septet value; 0x1B escapes to the extension table.
GSM7_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = {
    0x0A: "\f",
    0x14: "^",
    0x28: "{",
    0x29: "}",
    0x2F: "\\",
    0x3C: "[",
    0x3D: "~",
    0x3E: "]",
    0x40: "|",
    0x65: "€",
}

STATES = {
    "DELIVRD": MessageState.DELIVERED,
    "EXPIRED": MessageState.EXPIRED,
    "DELETED": MessageState.DELETED,
    "UNDELIV": MessageState.UNDELIVERABLE,
    "ACCEPTD": MessageState.ACCEPTED,
    "UNKNOWN": MessageState.UNKNOWN,
    "REJECTD": MessageState.REJECTED,
    "ENROUTE": MessageState.ENROUTE,
}


def gsm7_decode(data):
    out = []
    escape = False
    for septet in data:
        if escape:
            out.append(GSM7_EXTENSION.get(septet, "?"))
            escape = False
        elif septet == 0x1B:
            escape = True
        elif septet < len(GSM7_BASIC):
            out.append(GSM7_BASIC[septet])
        else:
            out.append("?")
    return "".join(out)


def decode_text(data_coding, payload):
    if data_coding == 8:
        return payload.decode("utf-16-be", "replace")
    if data_coding == 3:
        return payload.decode("latin-1")
    if data_coding == 1:
        return payload.decode("ascii", "replace")
    return gsm7_decode(payload)


def split_udh(short_message):
    """(udh dict or None, payload) of a short_message whose UDHI bit is set."""
    if not short_message:
        return None, short_message
    length = short_message[0]
    header, payload = short_message[1 : 1 + length], short_message[1 + length :]
    udh = None
    i = 0
    while i + 1 < len(header):
        iei, iel = header[i], header[i + 1]
        data = header[i + 2 : i + 2 + iel]
        if iei == 0x00 and iel == 3:
            udh = {"ref": data[0], "total": data[1], "seq": data[2]}
        elif iei == 0x08 and iel == 4:
            udh = {"ref": struct.unpack("!H", data[:2])[0], "total": data[2], "seq": data[3]}
        i += 2 + iel
    return udh, payload


def data_coding_int(data_coding):
    return struct.unpack("!B", DataCodingEncoder().encode(data_coding))[0]


def esm_class_int(esm_class):
    return struct.unpack("!B", EsmClassEncoder().encode(esm_class))[0]


def now():
    return datetime.datetime.now(datetime.timezone.utc)


@implementer(ICredentialsChecker)
class Checker:
    """The one system_id/password pair (the library hands them over as str)."""

    credentialInterfaces = (IUsernamePassword,)

    def __init__(self, system_id, password):
        self.system_id = system_id
        self.password = password

    def requestAvatarId(self, credentials):
        if hmac.compare_digest(str(credentials.username), self.system_id) and hmac.compare_digest(
            str(credentials.password), self.password
        ):
            return defer.succeed(credentials.username)
        return defer.fail(UnauthorizedLogin())


@implementer(IRealm)
class Realm:
    def requestAvatar(self, avatarId, mind, *interfaces):
        return (IAuthenticatedSMPP, avatarId, lambda: None)


class Smsc:
    def __init__(self, args):
        self.args = args
        self.messages = []
        self.sessions = set()
        self.listening = None
        portal = Portal(Realm(), [Checker(args.system_id, args.password)])
        config = SMPPServerConfig(
            msgHandler=self.on_request,
            systems={args.system_id: {"max_bindings": 8}},
            enquireLinkTimerSecs=args.enquire_link_secs,
            responseTimerSecs=args.response_secs,
        )
        # What GET /sessions reports: binds that succeeded, enquire_link PDUs the ESME
        # sent, and the SMSC's own enquire_link PDUs the ESME answered.
        self.counts = {"binds": 0, "enquire_links": 0, "enquire_links_answered": 0}
        smsc = self

        class Protocol(SMPPServerProtocol):
            def connectionMade(self):
                SMPPServerProtocol.connectionMade(self)
                smsc.sessions.add(self)

            def connectionLost(self, reason):
                smsc.sessions.discard(self)
                SMPPServerProtocol.connectionLost(self, reason)

            def onPDURequest_enquire_link(self, reqPDU):
                smsc.counts["enquire_links"] += 1
                SMPPServerProtocol.onPDURequest_enquire_link(self, reqPDU)

            def enquireLinkTimerExpired(self):
                # The library's own, counting the answers (an unanswered one ends the
                # session after --response-secs).
                txn = self.sendRequest(EnquireLink(), self.config().responseTimerSecs)
                txn.addCallback(lambda _: smsc.counts.__setitem__(
                    "enquire_links_answered", smsc.counts["enquire_links_answered"] + 1))
                txn.addErrback(self.enquireLinkErr)

        class Factory(SMPPServerFactory):
            def addBoundConnection(self, connection):
                smsc.counts["binds"] += 1
                SMPPServerFactory.addBoundConnection(self, connection)

        self.factory = Factory(config, auth_portal=portal)
        self.factory.protocol = Protocol
        self.port = args.port

    def listen(self):
        self.listening = reactor.listenTCP(self.port, self.factory, interface="127.0.0.1")
        self.port = self.listening.getHost().port

    # SMPP

    def on_request(self, system_id, smpp, pdu):
        if not isinstance(pdu, SubmitSM):
            # deliver_sm from an ESME, data_sm, …: not an SMSC's business here.
            return CommandStatus.ESME_RINVCMDID
        p = pdu.params
        ton = p["dest_addr_ton"]
        destination = p["destination_addr"].decode("latin-1")
        if ton == AddrTon.INTERNATIONAL:
            destination = "+" + destination
        if self.args.reject_prefix and destination.startswith(self.args.reject_prefix):
            return CommandStatus.ESME_RINVDSTADR
        short_message = p["short_message"] or b""
        esm_class = p["esm_class"]
        udh = None
        if EsmClassGsmFeatures.UDHI_INDICATOR_SET in esm_class.gsmFeatures:
            udh, short_message = split_udh(short_message)
        data_coding = data_coding_int(p["data_coding"])
        message_id = uuid.uuid4().hex[:16]
        record = {
            "message_id": message_id,
            "source": p["source_addr"].decode("latin-1"),
            "source_addr_ton": p["source_addr_ton"].name,
            "destination": destination,
            "dest_addr_ton": ton.name,
            "dest_addr_npi": p["dest_addr_npi"].name,
            "text": decode_text(data_coding, short_message),
            "data_coding": data_coding,
            "esm_class": esm_class_int(esm_class),
            "registered_delivery": p["registered_delivery"].receipt.name,
            "sequence": pdu.seqNum,
            "received_at": now().isoformat(),
        }
        if udh is not None:
            record["udh"] = udh
        self.messages.append(record)
        if self.args.auto_receipt:
            reactor.callLater(0, self.send_receipt, record, self.args.auto_receipt, "000")
        return DataHandlerResponse(status=CommandStatus.ESME_ROK, message_id=message_id)

    def send_receipt(self, record, stat, err):
        """Deferred firing True once the ESME acknowledged the receipt."""
        binds = self.factory.getBoundConnections(self.args.system_id)
        session = binds.getNextBindingForDelivery() if binds else None
        if session is None:
            return defer.succeed(False)
        stamp = now().strftime("%y%m%d%H%M")
        delivered = "001" if stat == "DELIVRD" else "000"
        text = (
            f"id:{record['message_id']} sub:001 dlvrd:{delivered} submit date:{stamp} "
            f"done date:{stamp} stat:{stat} err:{err} text:{record['text'][:20]}"
        )
        params = dict(
            service_type=None,
            source_addr_ton=AddrTon.INTERNATIONAL,
            source_addr_npi=AddrNpi.ISDN,
            source_addr=record["destination"].lstrip("+"),
            dest_addr_ton=AddrTon.UNKNOWN,
            dest_addr_npi=AddrNpi.UNKNOWN,
            destination_addr=record["source"],
            esm_class=EsmClass(EsmClassMode.DEFAULT, EsmClassType.SMSC_DELIVERY_RECEIPT),
            protocol_id=0,
            priority_flag=pdu_types.PriorityFlag.LEVEL_0,
            registered_delivery=RegisteredDelivery(
                RegisteredDeliveryReceipt.NO_SMSC_DELIVERY_RECEIPT_REQUESTED
            ),
            replace_if_present_flag=pdu_types.ReplaceIfPresentFlag.DO_NOT_REPLACE,
            data_coding=DataCoding(),
            short_message=text.encode("latin-1", "replace"),
            receipted_message_id=record["message_id"],
        )
        if stat in STATES:
            params["message_state"] = STATES[stat]
        d = session.sendDataRequest(DeliverSM(**params))
        d.addCallback(lambda result: result.response.status == CommandStatus.ESME_ROK)
        d.addErrback(lambda failure: logging.warning("receipt not acknowledged: %s", failure) and False)
        return d

    # Control

    def down(self):
        waits = []
        if self.listening is not None:
            waits.append(defer.maybeDeferred(self.listening.stopListening))
            self.listening = None
        for session in list(self.sessions):
            waits.append(session.getDisconnectedDeferred())
            session.transport.abortConnection()
        return defer.DeferredList(waits)

    def up(self):
        if self.listening is None:
            self.listen()

    @defer.inlineCallbacks
    def receipts(self, body):
        ids = body.get("message_ids")
        stat = body.get("stat", "DELIVRD")
        err = body.get("err", "000")
        if not isinstance(ids, list) or not isinstance(stat, str) or not isinstance(err, str):
            raise ValueError("message_ids must be a list, stat and err strings")
        by_id = {m["message_id"]: m for m in self.messages}
        sent = 0
        for message_id in ids:
            record = by_id.get(message_id) or {
                "message_id": str(message_id),
                "destination": "",
                "source": "",
                "text": "",
            }
            ok = yield self.send_receipt(record, stat, err)
            sent += 1 if ok else 0
        return {"sent": sent}


class Control(resource.Resource):
    isLeaf = True

    def __init__(self, smsc):
        super().__init__()
        self.smsc = smsc

    def answer(self, request, status, value):
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.write(json.dumps(value).encode())
        request.finish()

    def render_GET(self, request):
        if request.path == b"/messages":
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(self.smsc.messages).encode()
        if request.path == b"/sessions":
            binds = self.smsc.factory.getBoundConnections(self.smsc.args.system_id)
            value = dict(self.smsc.counts, bound=len(binds) if binds else 0)
            request.setHeader(b"content-type", b"application/json")
            return json.dumps(value).encode()
        request.setResponseCode(404)
        return b'{"error": "not found"}'

    def render_POST(self, request):
        path = request.path
        if path == b"/down":
            d = self.smsc.down()
            d.addCallback(lambda _: self.answer(request, 200, {"down": True}))
            return server.NOT_DONE_YET
        if path == b"/up":
            try:
                self.smsc.up()
            except Exception as e:  # the port may be taken meanwhile
                return self.fail(request, 500, str(e))
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"up": True, "smpp": self.smsc.port}).encode()
        if path == b"/receipts":
            try:
                body = json.loads(request.content.read() or b"{}")
                d = self.smsc.receipts(body)
            except ValueError as e:
                return self.fail(request, 400, str(e))
            d.addCallback(lambda value: self.answer(request, 200, value))
            d.addErrback(lambda f: self.answer(request, 400, {"error": str(f.value)}))
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b'{"error": "not found"}'

    def fail(self, request, status, message):
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": message}).encode()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--system-id", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--auto-receipt", choices=sorted(STATES))
    parser.add_argument("--reject-prefix")
    parser.add_argument("--verbose", action="store_true", help="log sessions on stderr")
    parser.add_argument("--enquire-link-secs", type=float, default=10,
                        help="idle time before the SMSC sends enquire_link")
    parser.add_argument("--response-secs", type=float, default=60,
                        help="how long the SMSC waits for a response before dropping the session")
    args = parser.parse_args()
    # The library logs every connection at WARNING; errors are what a test needs to see.
    logging.basicConfig(level=logging.WARNING if args.verbose else logging.ERROR, stream=sys.stderr)

    smsc = Smsc(args)
    smsc.listen()
    site = server.Site(Control(smsc))
    site.noisy = False
    control = reactor.listenTCP(args.control_port, site, interface="127.0.0.1")
    print(f"READY smpp={smsc.port} control={control.getHost().port}", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
