//! SMPP 3.4, the protocol SMS carriers and aggregators speak.
//!
//! One tokio task per gateway keeps a `bind_transceiver` session with the SMSC: it
//! reconnects with backoff when the session is lost, sends `enquire_link` every
//! `enquire_link_secs` (and drops a session whose SMSC stops answering), answers the
//! SMSC's `enquire_link`, `unbind` and `deliver_sm`, and `generic_nack`s what it does not
//! know. [`SmppGateway::submit`] hands `submit_sm` PDUs to that task and waits for their
//! `submit_sm_resp` by sequence number within `timeout_secs`.
//!
//! Delivery receipts arrive as `deliver_sm` with the receipt bit in `esm_class`; they are
//! read (`receipted_message_id` TLV, else the `id:` of the text; `stat:`) and pushed, in
//! order, into the context's [`ReceiptSink`]. HTTP callbacks are not part of SMPP.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use super::{
    Callback, CallbackError, Context, Gateway, Outgoing, Receipt, ReceiptSink, SubmitError,
    Submitted,
};
use crate::secret::Secret;
use crate::sms::status::{Delivery, Failure};
use crate::sms::text::Encoding;

/// `[sms.gateways.NAME]` with `kind = "smpp"`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SmppSettings {
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// At most 15 characters (SMPP 3.4).
    pub system_id: String,
    /// At most 8 characters (SMPP 3.4).
    pub password: Secret,
    #[serde(default)]
    pub system_type: String,
    /// The sender when the account has no registered sender name: `+` and digits, a
    /// short code, or up to 11 letters and digits. Empty: the SMSC's default.
    #[serde(default)]
    pub source_addr: Option<String>,
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_enquire_link")]
    pub enquire_link_secs: u64,
}

fn default_port() -> u16 {
    2775
}

fn default_timeout() -> u64 {
    10
}

fn default_enquire_link() -> u64 {
    30
}

// ---------------------------------------------------------------------------------------
// PDU codec (SMPP 3.4 §3, §4).

pub const GENERIC_NACK: u32 = 0x8000_0000;
pub const SUBMIT_SM: u32 = 0x0000_0004;
pub const SUBMIT_SM_RESP: u32 = 0x8000_0004;
pub const DELIVER_SM: u32 = 0x0000_0005;
pub const DELIVER_SM_RESP: u32 = 0x8000_0005;
pub const UNBIND: u32 = 0x0000_0006;
pub const UNBIND_RESP: u32 = 0x8000_0006;
pub const BIND_TRANSCEIVER: u32 = 0x0000_0009;
pub const BIND_TRANSCEIVER_RESP: u32 = 0x8000_0009;
pub const ENQUIRE_LINK: u32 = 0x0000_0015;
pub const ENQUIRE_LINK_RESP: u32 = 0x8000_0015;

/// Command statuses this client acts on.
pub const ESME_ROK: u32 = 0x00;
pub const ESME_RINVCMDID: u32 = 0x03;
pub const ESME_RINVBNDSTS: u32 = 0x04;
pub const ESME_RSYSERR: u32 = 0x08;
pub const ESME_RINVDSTADR: u32 = 0x0B;
pub const ESME_RMSGQFUL: u32 = 0x14;
pub const ESME_RTHROTTLED: u32 = 0x58;
pub const ESME_RX_T_APPN: u32 = 0x64;
pub const ESME_RX_P_APPN: u32 = 0x65;

const TAG_RECEIPTED_MESSAGE_ID: u16 = 0x001E;
const TAG_MESSAGE_STATE: u16 = 0x0427;

/// The largest PDU accepted from an SMSC: a `deliver_sm` with a full `message_payload`
/// TLV (64 KiB) and its header fits; anything longer is a broken stream.
const MAX_PDU: u32 = 70 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CodecError {
    #[error("PDU length {0} out of bounds")]
    Length(u32),
    #[error("PDU body ends early")]
    Truncated,
    #[error("{0} is longer than {1} octets")]
    TooLong(&'static str, usize),
    #[error("C-octet string without its terminating NUL")]
    Unterminated,
}

/// One PDU: header fields and the body as octets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    pub command_id: u32,
    pub status: u32,
    pub sequence: u32,
    pub body: Vec<u8>,
}

impl Pdu {
    pub fn new(command_id: u32, sequence: u32, body: Vec<u8>) -> Pdu {
        Pdu {
            command_id,
            status: ESME_ROK,
            sequence,
            body,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let length = 16 + self.body.len();
        let mut out = Vec::with_capacity(length);
        // Bodies are built here from bounded fields: far below u32::MAX.
        out.extend_from_slice(&u32::try_from(length).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.command_id.to_be_bytes());
        out.extend_from_slice(&self.status.to_be_bytes());
        out.extend_from_slice(&self.sequence.to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// Reads one whole PDU (length prefix included).
    pub fn decode(frame: &[u8]) -> Result<Pdu, CodecError> {
        let mut r = Reader(frame);
        let length = r.u32()?;
        if !(16..=MAX_PDU).contains(&length) || length as usize != frame.len() {
            return Err(CodecError::Length(length));
        }
        Ok(Pdu {
            command_id: r.u32()?,
            status: r.u32()?,
            sequence: r.u32()?,
            body: r.0.to_vec(),
        })
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], CodecError> {
        if self.0.len() < n {
            return Err(CodecError::Truncated);
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8, CodecError> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, CodecError> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, CodecError> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A C-octet string of at most `max` octets, NUL included.
    fn cstr(&mut self, max: usize) -> Result<String, CodecError> {
        let end = self
            .0
            .iter()
            .take(max)
            .position(|&b| b == 0)
            .ok_or(CodecError::Unterminated)?;
        let text = String::from_utf8_lossy(&self.0[..end]).into_owned();
        self.0 = &self.0[end + 1..];
        Ok(text)
    }
}

fn put_cstr(
    out: &mut Vec<u8>,
    field: &'static str,
    text: &str,
    max: usize,
) -> Result<(), CodecError> {
    if text.len() + 1 > max || text.as_bytes().contains(&0) {
        return Err(CodecError::TooLong(field, max - 1));
    }
    out.extend_from_slice(text.as_bytes());
    out.push(0);
    Ok(())
}

/// `bind_transceiver` body (§4.1.5).
pub fn bind_body(
    system_id: &str,
    password: &str,
    system_type: &str,
) -> Result<Vec<u8>, CodecError> {
    let mut out = Vec::new();
    put_cstr(&mut out, "system_id", system_id, 16)?;
    put_cstr(&mut out, "password", password, 9)?;
    put_cstr(&mut out, "system_type", system_type, 13)?;
    out.push(0x34); // interface_version
    out.push(0); // addr_ton
    out.push(0); // addr_npi
    put_cstr(&mut out, "address_range", "", 41)?;
    Ok(out)
}

/// The body shared by `submit_sm` (§4.4.1) and `deliver_sm` (§4.6.1).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShortMessage {
    pub service_type: String,
    pub source_addr_ton: u8,
    pub source_addr_npi: u8,
    pub source_addr: String,
    pub dest_addr_ton: u8,
    pub dest_addr_npi: u8,
    pub destination_addr: String,
    pub esm_class: u8,
    pub protocol_id: u8,
    pub priority_flag: u8,
    pub schedule_delivery_time: String,
    pub validity_period: String,
    pub registered_delivery: u8,
    pub replace_if_present_flag: u8,
    pub data_coding: u8,
    pub sm_default_msg_id: u8,
    pub short_message: Vec<u8>,
    /// Optional parameters (tag, value), in order.
    pub tlvs: Vec<(u16, Vec<u8>)>,
}

impl ShortMessage {
    pub fn encode(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = Vec::with_capacity(64 + self.short_message.len());
        put_cstr(&mut out, "service_type", &self.service_type, 6)?;
        out.push(self.source_addr_ton);
        out.push(self.source_addr_npi);
        put_cstr(&mut out, "source_addr", &self.source_addr, 21)?;
        out.push(self.dest_addr_ton);
        out.push(self.dest_addr_npi);
        put_cstr(&mut out, "destination_addr", &self.destination_addr, 21)?;
        out.push(self.esm_class);
        out.push(self.protocol_id);
        out.push(self.priority_flag);
        put_cstr(
            &mut out,
            "schedule_delivery_time",
            &self.schedule_delivery_time,
            17,
        )?;
        put_cstr(&mut out, "validity_period", &self.validity_period, 17)?;
        out.push(self.registered_delivery);
        out.push(self.replace_if_present_flag);
        out.push(self.data_coding);
        out.push(self.sm_default_msg_id);
        let length = u8::try_from(self.short_message.len())
            .map_err(|_| CodecError::TooLong("short_message", 254))?;
        if length > 254 {
            return Err(CodecError::TooLong("short_message", 254));
        }
        out.push(length);
        out.extend_from_slice(&self.short_message);
        for (tag, value) in &self.tlvs {
            let length =
                u16::try_from(value.len()).map_err(|_| CodecError::TooLong("TLV", 65535))?;
            out.extend_from_slice(&tag.to_be_bytes());
            out.extend_from_slice(&length.to_be_bytes());
            out.extend_from_slice(value);
        }
        Ok(out)
    }

    pub fn decode(body: &[u8]) -> Result<ShortMessage, CodecError> {
        let mut r = Reader(body);
        let mut m = ShortMessage {
            service_type: r.cstr(6)?,
            source_addr_ton: r.u8()?,
            source_addr_npi: r.u8()?,
            source_addr: r.cstr(21)?,
            dest_addr_ton: r.u8()?,
            dest_addr_npi: r.u8()?,
            destination_addr: r.cstr(21)?,
            esm_class: r.u8()?,
            protocol_id: r.u8()?,
            priority_flag: r.u8()?,
            schedule_delivery_time: r.cstr(17)?,
            validity_period: r.cstr(17)?,
            registered_delivery: r.u8()?,
            replace_if_present_flag: r.u8()?,
            data_coding: r.u8()?,
            sm_default_msg_id: r.u8()?,
            short_message: Vec::new(),
            tlvs: Vec::new(),
        };
        let length = r.u8()? as usize;
        m.short_message = r.take(length)?.to_vec();
        while !r.0.is_empty() {
            let tag = r.u16()?;
            let length = r.u16()? as usize;
            m.tlvs.push((tag, r.take(length)?.to_vec()));
        }
        Ok(m)
    }

    fn tlv(&self, tag: u16) -> Option<&[u8]> {
        self.tlvs
            .iter()
            .find(|(t, _)| *t == tag)
            .map(|(_, v)| v.as_slice())
    }
}

/// `message_id` of a `submit_sm_resp` body (empty on an error status).
pub fn message_id(body: &[u8]) -> Result<String, CodecError> {
    Reader(body).cstr(65)
}

// ---------------------------------------------------------------------------------------
// Text: GSM 03.38 default alphabet (unpacked, one septet per octet) or UCS-2.

/// The GSM 03.38 default alphabet by septet value (0x1B, the escape, is a placeholder).
#[rustfmt::skip]
const GSM7_TABLE: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å',
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É',
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/',
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?',
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O',
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§',
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à',
];

/// The extension table, reached with the escape septet.
const GSM7_EXTENSION: [(char, u8); 10] = [
    ('\u{c}', 0x0A),
    ('^', 0x14),
    ('{', 0x28),
    ('}', 0x29),
    ('\\', 0x2F),
    ('[', 0x3C),
    ('~', 0x3D),
    (']', 0x3E),
    ('|', 0x40),
    ('€', 0x65),
];

/// The septets of one character: one, two (escape + extension) or, for a character the
/// alphabet lacks, `?` (text.rs sends such texts as UCS-2, so this is a safeguard).
fn gsm7_septets(c: char) -> ([u8; 2], usize) {
    if c != '\u{1b}'
        && let Some(i) = GSM7_TABLE.iter().position(|&g| g == c)
    {
        return ([i as u8, 0], 1);
    }
    if let Some(&(_, code)) = GSM7_EXTENSION.iter().find(|(e, _)| *e == c) {
        return ([0x1B, code], 2);
    }
    ([0x3F, 0], 1)
}

/// The short messages of a text: one payload when it fits (160 septets / 70 UCS-2
/// units), else parts of 153 septets / 67 units that each carry a concatenation UDH.
/// A part never ends inside an escape pair or a surrogate pair.
pub fn split_text(text: &str, encoding: Encoding) -> Vec<Vec<u8>> {
    let (single, part) = match encoding {
        Encoding::Gsm7 => (160, 153),
        Encoding::Ucs2 => (70, 67),
    };
    // Each character as its octets and its size in septets / UTF-16 units.
    let units: Vec<(Vec<u8>, usize)> = text
        .chars()
        .map(|c| match encoding {
            Encoding::Gsm7 => {
                let (s, n) = gsm7_septets(c);
                (s[..n].to_vec(), n)
            }
            Encoding::Ucs2 => {
                let mut buf = [0u16; 2];
                let encoded = c.encode_utf16(&mut buf);
                let octets = encoded.iter().flat_map(|u| u.to_be_bytes()).collect();
                (octets, encoded.len())
            }
        })
        .collect();
    let total: usize = units.iter().map(|(_, n)| n).sum();
    if total <= single {
        return vec![units.into_iter().flat_map(|(o, _)| o).collect()];
    }
    let mut parts = Vec::new();
    let mut current = Vec::new();
    let mut size = 0;
    for (octets, n) in units {
        if size + n > part {
            parts.push(std::mem::take(&mut current));
            size = 0;
        }
        current.extend_from_slice(&octets);
        size += n;
    }
    if !current.is_empty() {
        parts.push(current);
    }
    parts
}

// ---------------------------------------------------------------------------------------
// Addresses.

/// TON/NPI and digits of a sender: `+` and digits is international (1/1), digits alone
/// a national number or short code (0/1), anything else alphanumeric (5/0).
fn source_address(sender: &str) -> Result<(u8, u8, String), String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = sender.strip_prefix('+')
        && digits(rest)
        && rest.len() <= 15
    {
        return Ok((1, 1, rest.to_owned()));
    }
    if digits(sender) && sender.len() <= 20 {
        return Ok((0, 1, sender.to_owned()));
    }
    if !sender.is_empty() && sender.len() <= 11 && sender.is_ascii() {
        return Ok((5, 0, sender.to_owned()));
    }
    Err(format!(
        "sender {sender:?} is not a number nor 1 to 11 ASCII characters"
    ))
}

// ---------------------------------------------------------------------------------------
// Receipts.

/// What a receipt's `stat:` (or `message_state` TLV) says, `None` for a state we do not
/// act on (logged and ignored).
fn receipt_delivery(stat: &str) -> Option<Delivery> {
    Some(match stat {
        "DELIVRD" => Delivery::Delivered,
        "ACCEPTD" | "ENROUTE" => Delivery::Sent,
        "EXPIRED" => Delivery::Failed(Failure::Expired),
        "UNDELIV" => Delivery::Failed(Failure::NotDelivered),
        "REJECTD" => Delivery::Failed(Failure::Rejected),
        _ => return None,
    })
}

fn message_state_word(state: u8) -> &'static str {
    match state {
        1 => "ENROUTE",
        2 => "DELIVRD",
        3 => "EXPIRED",
        4 => "DELETED",
        5 => "UNDELIV",
        6 => "ACCEPTD",
        8 => "REJECTD",
        _ => "UNKNOWN",
    }
}

/// The value after `key` in a receipt text (`id:… sub:… stat:DELIVRD err:000 text:…`).
fn receipt_field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    let mut rest = text;
    loop {
        let at = rest.find(key)?;
        let before = rest[..at].chars().last();
        let value = &rest[at + key.len()..];
        // A whole word only: `id:` must not match inside another field's value.
        if before.is_none_or(char::is_whitespace) {
            return Some(value.split_whitespace().next().unwrap_or(""));
        }
        rest = value;
    }
}

/// Why a delivery receipt was not read.
#[derive(Debug, PartialEq, Eq)]
pub enum ReceiptError {
    NoMessageId,
    UnknownState(String),
}

/// Reads a `deliver_sm` that carries a delivery receipt (`esm_class` type 0x04).
pub fn read_receipt(m: &ShortMessage) -> Result<Receipt, ReceiptError> {
    let text = String::from_utf8_lossy(&m.short_message);
    let id = m
        .tlv(TAG_RECEIPTED_MESSAGE_ID)
        .map(|v| String::from_utf8_lossy(v.split(|&b| b == 0).next().unwrap_or(&[])).into_owned())
        .filter(|id| !id.is_empty())
        .or_else(|| receipt_field(&text, "id:").map(str::to_owned))
        .filter(|id| !id.is_empty() && id.len() <= 64)
        .ok_or(ReceiptError::NoMessageId)?;
    let stat = match receipt_field(&text, "stat:").filter(|s| !s.is_empty()) {
        Some(stat) => stat.to_owned(),
        None => m
            .tlv(TAG_MESSAGE_STATE)
            .and_then(|v| v.first().copied())
            .map(|s| message_state_word(s).to_owned())
            .unwrap_or_default(),
    };
    let delivery =
        receipt_delivery(&stat).ok_or_else(|| ReceiptError::UnknownState(stat.clone()))?;
    let err = receipt_field(&text, "err:").unwrap_or("");
    Ok(Receipt {
        gateway_ref: id,
        delivery,
        detail: Some(format!("stat:{stat} err:{err}").chars().take(200).collect()),
    })
}

/// `esm_class` bits 2–5 = 0001: an SMSC delivery receipt.
fn is_receipt(esm_class: u8) -> bool {
    esm_class & 0x3C == 0x04
}

// ---------------------------------------------------------------------------------------
// The session task.

/// The answer to one `submit_sm`: its `submit_sm_resp` (status, message_id), or why
/// there is none (transient).
type Reply = oneshot::Sender<Result<(u32, String), String>>;

/// `submit_sm` sent and not answered yet, by sequence number, with when they were sent.
type Pending = HashMap<u32, (Instant, Reply)>;

/// What the submit side asks of the session.
struct Submit {
    body: Vec<u8>,
    reply: Reply,
}

struct Session {
    host: String,
    port: u16,
    bind: Vec<u8>,
    timeout: Duration,
    enquire_link: Duration,
    bound: Arc<AtomicBool>,
    receipts: mpsc::UnboundedSender<Receipt>,
    name: String,
    sequence: u32,
}

/// How a session ended.
enum End {
    /// The gateway was dropped: stop.
    Closed,
    /// Lost (or never bound); `bound` says whether a bind had succeeded.
    Lost { reason: String, bound: bool },
}

const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

impl Session {
    fn next_sequence(&mut self) -> u32 {
        // 1..=0x7FFFFFFF (§3.2: the top values are reserved).
        self.sequence = if self.sequence >= 0x7FFF_FFFF {
            1
        } else {
            self.sequence + 1
        };
        self.sequence
    }

    async fn run(mut self, mut commands: mpsc::Receiver<Submit>) {
        let mut backoff = MIN_BACKOFF;
        loop {
            match self.session(&mut commands).await {
                End::Closed => return,
                End::Lost { reason, bound } => {
                    self.bound.store(false, Ordering::SeqCst);
                    tracing::warn!(gateway = %self.name, %reason, "SMPP session lost");
                    if bound {
                        backoff = MIN_BACKOFF;
                    }
                }
            }
            // While unbound, submits are answered at once: the worker retries them.
            let pause = tokio::time::sleep(backoff);
            tokio::pin!(pause);
            loop {
                tokio::select! {
                    _ = &mut pause => break,
                    command = commands.recv() => match command {
                        None => return,
                        Some(c) => {
                            let _ = c.reply.send(Err("no SMPP bind".into()));
                        }
                    },
                }
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    async fn session(&mut self, commands: &mut mpsc::Receiver<Submit>) -> End {
        let lost = |reason: String| End::Lost {
            reason,
            bound: false,
        };
        let stream = match tokio::time::timeout(
            self.timeout,
            TcpStream::connect((self.host.as_str(), self.port)),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return lost(format!("connect: {e}")),
            Err(_) => return lost("connect timed out".into()),
        };
        let _ = stream.set_nodelay(true);
        let (read, mut write) = stream.into_split();
        let (frames_tx, mut frames) = mpsc::channel(64);
        let reader = AbortOnDrop(tokio::spawn(read_frames(read, frames_tx)));

        let bind_sequence = self.next_sequence();
        let bind = Pdu::new(BIND_TRANSCEIVER, bind_sequence, self.bind.clone());
        if let Err(e) = write_pdu(&mut write, &bind, self.timeout).await {
            return lost(e);
        }
        let deadline = tokio::time::Instant::now() + self.timeout;
        loop {
            match tokio::time::timeout_at(deadline, frames.recv()).await {
                Err(_) => return lost("no bind_transceiver_resp".into()),
                Ok(None) => return lost("connection closed during bind".into()),
                Ok(Some(Err(e))) => return lost(e),
                Ok(Some(Ok(pdu))) => {
                    if pdu.command_id == BIND_TRANSCEIVER_RESP && pdu.sequence == bind_sequence {
                        if pdu.status != ESME_ROK {
                            return lost(format!("bind refused (status {:#x})", pdu.status));
                        }
                        break;
                    }
                    if pdu.command_id == GENERIC_NACK {
                        return lost(format!("bind answered generic_nack {:#x}", pdu.status));
                    }
                    // Nothing else is expected before the bind answer; requests get a
                    // generic_nack so the SMSC is not left waiting.
                    if pdu.command_id & GENERIC_NACK == 0 {
                        let nack = Pdu {
                            command_id: GENERIC_NACK,
                            status: ESME_RINVBNDSTS,
                            sequence: pdu.sequence,
                            body: Vec::new(),
                        };
                        if let Err(e) = write_pdu(&mut write, &nack, self.timeout).await {
                            return lost(e);
                        }
                    }
                }
            }
        }
        self.bound.store(true, Ordering::SeqCst);
        tracing::info!(gateway = %self.name, "SMPP bound (transceiver)");
        let end = self.bound_loop(commands, &mut frames, &mut write).await;
        drop(reader);
        end
    }

    async fn bound_loop(
        &mut self,
        commands: &mut mpsc::Receiver<Submit>,
        frames: &mut mpsc::Receiver<Result<Pdu, String>>,
        write: &mut OwnedWriteHalf,
    ) -> End {
        let lost = |reason: String| End::Lost {
            reason,
            bound: true,
        };
        let mut pending = Pending::new();
        let mut link = tokio::time::interval(self.enquire_link);
        link.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        link.tick().await;
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut awaiting_link: Option<Instant> = None;
        loop {
            let mut out: Option<Pdu> = None;
            tokio::select! {
                command = commands.recv() => match command {
                    None => {
                        let unbind = Pdu::new(UNBIND, self.next_sequence(), Vec::new());
                        let _ = write_pdu(write, &unbind, self.timeout).await;
                        return End::Closed;
                    }
                    // A caller that gave up (its deadline passed while the session was
                    // binding) was told "transient" and will submit again: sending this
                    // one now would send the message twice.
                    Some(Submit { reply, .. }) if reply.is_closed() => {}
                    Some(Submit { body, reply }) => {
                        let sequence = self.next_sequence();
                        out = Some(Pdu::new(SUBMIT_SM, sequence, body));
                        pending.insert(sequence, (Instant::now(), reply));
                    }
                },
                frame = frames.recv() => match frame {
                    None => return lost("connection closed".into()),
                    Some(Err(e)) => return lost(e),
                    Some(Ok(pdu)) => match self.handle(pdu, &mut pending, &mut awaiting_link) {
                        Handled::Answer(pdu) => out = Some(pdu),
                        Handled::Nothing => {}
                        Handled::Unbound(answer) => {
                            let _ = write_pdu(write, &answer, self.timeout).await;
                            return lost("the SMSC unbound".into());
                        }
                    },
                },
                _ = link.tick() => {
                    if awaiting_link.is_some_and(|since| since.elapsed() > self.timeout) {
                        return lost("enquire_link unanswered".into());
                    }
                    if awaiting_link.is_none() {
                        awaiting_link = Some(Instant::now());
                        out = Some(Pdu::new(ENQUIRE_LINK, self.next_sequence(), Vec::new()));
                    }
                },
                _ = sweep.tick() => {
                    // Callers give up after the timeout; their entries go too.
                    let timeout = self.timeout;
                    pending.retain(|_, (since, reply)| {
                        since.elapsed() <= timeout && !reply.is_closed()
                    });
                    if awaiting_link.is_some_and(|since| since.elapsed() > self.timeout) {
                        return lost("enquire_link unanswered".into());
                    }
                },
            }
            if let Some(pdu) = out
                && let Err(e) = write_pdu(write, &pdu, self.timeout).await
            {
                return lost(e);
            }
        }
    }

    fn handle(
        &mut self,
        pdu: Pdu,
        pending: &mut Pending,
        awaiting_link: &mut Option<Instant>,
    ) -> Handled {
        let answer = |command_id: u32, status: u32, body: Vec<u8>| {
            Handled::Answer(Pdu {
                command_id,
                status,
                sequence: pdu.sequence,
                body,
            })
        };
        match pdu.command_id {
            SUBMIT_SM_RESP => {
                if let Some((_, reply)) = pending.remove(&pdu.sequence) {
                    let id = if pdu.status == ESME_ROK {
                        message_id(&pdu.body).unwrap_or_default()
                    } else {
                        String::new()
                    };
                    let _ = reply.send(Ok((pdu.status, id)));
                }
                Handled::Nothing
            }
            GENERIC_NACK => {
                if let Some((_, reply)) = pending.remove(&pdu.sequence) {
                    let _ = reply.send(Err(format!("generic_nack {:#x}", pdu.status)));
                }
                Handled::Nothing
            }
            ENQUIRE_LINK_RESP => {
                *awaiting_link = None;
                Handled::Nothing
            }
            ENQUIRE_LINK => answer(ENQUIRE_LINK_RESP, ESME_ROK, Vec::new()),
            UNBIND => Handled::Unbound(Pdu::new(UNBIND_RESP, pdu.sequence, Vec::new())),
            DELIVER_SM => {
                let status = self.deliver(&pdu.body);
                // deliver_sm_resp's message_id is unused: an empty C-octet string.
                answer(DELIVER_SM_RESP, status, vec![0])
            }
            id if id & GENERIC_NACK != 0 => Handled::Nothing, // a response we did not ask for
            _ => answer(GENERIC_NACK, ESME_RINVCMDID, Vec::new()),
        }
    }

    /// Reads a `deliver_sm`; the status to answer it with.
    fn deliver(&self, body: &[u8]) -> u32 {
        let message = match ShortMessage::decode(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(gateway = %self.name, error = %e, "unreadable deliver_sm");
                // Permanent: the SMSC must not send it again.
                return ESME_RX_P_APPN;
            }
        };
        if !is_receipt(message.esm_class) {
            // A message from a handset (MO): not a service this sidecar offers.
            tracing::info!(gateway = %self.name, "deliver_sm that is not a receipt ignored");
            return ESME_ROK;
        }
        match read_receipt(&message) {
            Ok(receipt) => {
                let _ = self.receipts.send(receipt);
            }
            Err(e) => {
                tracing::warn!(gateway = %self.name, error = ?e, "delivery receipt ignored")
            }
        }
        ESME_ROK
    }
}

enum Handled {
    Answer(Pdu),
    Nothing,
    /// The SMSC unbound: send this `unbind_resp`, then reconnect.
    Unbound(Pdu),
}

/// Writes one PDU within `timeout`: an SMSC that stops reading must not stall the
/// session (its enquire_link check runs on the same task).
async fn write_pdu(write: &mut OwnedWriteHalf, pdu: &Pdu, timeout: Duration) -> Result<(), String> {
    match tokio::time::timeout(timeout, write.write_all(&pdu.encode())).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err("write timed out".into()),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Reads whole PDUs off the socket (a task of its own, so no read is ever cut in half
/// by the session's `select!`).
async fn read_frames(mut read: OwnedReadHalf, frames: mpsc::Sender<Result<Pdu, String>>) {
    loop {
        let mut length = [0u8; 4];
        if let Err(e) = read.read_exact(&mut length).await {
            let _ = frames.send(Err(format!("read: {e}"))).await;
            return;
        }
        let n = u32::from_be_bytes(length);
        if !(16..=MAX_PDU).contains(&n) {
            let _ = frames.send(Err(CodecError::Length(n).to_string())).await;
            return;
        }
        let mut frame = vec![0u8; n as usize];
        frame[..4].copy_from_slice(&length);
        if let Err(e) = read.read_exact(&mut frame[4..]).await {
            let _ = frames.send(Err(format!("read: {e}"))).await;
            return;
        }
        let pdu = Pdu::decode(&frame).map_err(|e| e.to_string());
        if frames.send(pdu).await.is_err() {
            return;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The gateway.

pub struct SmppGateway {
    commands: mpsc::Sender<Submit>,
    bound: Arc<AtomicBool>,
    source_addr: Option<String>,
    timeout: Duration,
}

impl SmppGateway {
    /// Starts the session task on the current tokio runtime.
    pub fn new(settings: &SmppSettings, cx: Context) -> Result<SmppGateway, String> {
        let key = |field: &str| format!("sms.gateways.{}.{field}", cx.name);
        let bind = bind_body(
            &settings.system_id,
            settings.password.expose(),
            &settings.system_type,
        )
        .map_err(|e| format!("sms.gateways.{}: {e}", cx.name))?;
        if settings.host.trim().is_empty() {
            return Err(format!("{} is required", key("host")));
        }
        let source_addr = settings.source_addr.clone().filter(|s| !s.is_empty());
        if let Some(source) = &source_addr {
            source_address(source).map_err(|e| format!("{}: {e}", key("source_addr")))?;
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| "the SMPP gateway needs a tokio runtime".to_owned())?;
        let timeout = Duration::from_secs(settings.timeout_secs.max(1));
        let bound = Arc::new(AtomicBool::new(false));
        let (commands, commands_rx) = mpsc::channel(1024);
        let (receipts, receipts_rx) = mpsc::unbounded_channel();
        let session = Session {
            host: settings.host.clone(),
            port: settings.port,
            bind,
            timeout,
            enquire_link: Duration::from_secs(settings.enquire_link_secs.max(1)),
            bound: bound.clone(),
            receipts,
            name: cx.name.clone(),
            sequence: 0,
        };
        runtime.spawn(session.run(commands_rx));
        runtime.spawn(forward_receipts(receipts_rx, cx.receipts));
        Ok(SmppGateway {
            commands,
            bound,
            source_addr,
            timeout,
        })
    }

    /// The `submit_sm` bodies of a message, one per part.
    fn bodies(&self, message: &Outgoing) -> Result<Vec<Vec<u8>>, SubmitError> {
        let rejected = |reason: String| SubmitError::Refused {
            failure: Failure::Rejected,
            reason,
        };
        let (source_addr_ton, source_addr_npi, source_addr) =
            match message.sender.as_ref().or(self.source_addr.as_ref()) {
                Some(sender) => source_address(sender).map_err(rejected)?,
                None => (0, 0, String::new()),
            };
        let destination = message
            .to
            .strip_prefix('+')
            .filter(|d| !d.is_empty() && d.len() <= 20 && d.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| SubmitError::Refused {
                failure: Failure::InvalidDestination,
                reason: format!("{:?} is not + and digits", message.to),
            })?;
        let parts = split_text(&message.text, message.encoding);
        let total = parts.len();
        if total > 255 {
            return Err(rejected(format!(
                "{total} parts: more than a UDH can number"
            )));
        }
        // The concatenation reference: stable across retries of the same message.
        let reference = (message.id.stored() & 0xFF) as u8;
        parts
            .into_iter()
            .enumerate()
            .map(|(i, payload)| {
                let (esm_class, short_message) = if total == 1 {
                    (0x00, payload)
                } else {
                    // UDH: IEI 0x00 (concatenated, 8-bit reference), length 3.
                    let mut sm = vec![0x05, 0x00, 0x03, reference, total as u8, i as u8 + 1];
                    sm.extend_from_slice(&payload);
                    (0x40, sm)
                };
                ShortMessage {
                    source_addr_ton,
                    source_addr_npi,
                    source_addr: source_addr.clone(),
                    dest_addr_ton: 1,
                    dest_addr_npi: 1,
                    destination_addr: destination.to_owned(),
                    esm_class,
                    registered_delivery: 1,
                    data_coding: match message.encoding {
                        Encoding::Gsm7 => 0x00,
                        Encoding::Ucs2 => 0x08,
                    },
                    short_message,
                    ..ShortMessage::default()
                }
                .encode()
                .map_err(|e| rejected(e.to_string()))
            })
            .collect()
    }

    async fn send(&self, message: &Outgoing) -> Result<Submitted, SubmitError> {
        let bodies = self.bodies(message)?;
        let parts = bodies.len();
        let all = async {
            // A message in several parts is known by its first part's message_id: the
            // SMSC gives one per part, and receipts for the first one report the message.
            // Should a later part fail, the whole message is retried (its parts carry
            // the same UDH reference, so a handset joins a repeated part once).
            let mut first: Option<String> = None;
            for body in bodies {
                if !self.bound.load(Ordering::SeqCst) {
                    return Err(SubmitError::Transient("no SMPP bind".into()));
                }
                let (reply, answer) = oneshot::channel();
                self.commands
                    .send(Submit { body, reply })
                    .await
                    .map_err(|_| SubmitError::Transient("the SMPP session stopped".into()))?;
                let (status, id) = answer
                    .await
                    .map_err(|_| SubmitError::Transient("the SMPP session was lost".into()))?
                    .map_err(SubmitError::Transient)?;
                submit_status(status)?;
                if id.is_empty() {
                    return Err(SubmitError::Transient(
                        "submit_sm_resp without a message_id".into(),
                    ));
                }
                first.get_or_insert(id);
            }
            first.ok_or_else(|| SubmitError::Transient("nothing to submit".into()))
        };
        let gateway_ref = tokio::time::timeout(self.timeout, all)
            .await
            .map_err(|_| {
                SubmitError::Transient(format!(
                    "no submit_sm_resp within {}s ({parts} part(s))",
                    self.timeout.as_secs()
                ))
            })??;
        Ok(Submitted { gateway_ref })
    }
}

/// What a `submit_sm_resp` status means for the message.
fn submit_status(status: u32) -> Result<(), SubmitError> {
    match status {
        ESME_ROK => Ok(()),
        // Come back later: throttled, queue full, the SMSC's own trouble, not bound.
        ESME_RTHROTTLED | ESME_RMSGQFUL | ESME_RSYSERR | ESME_RX_T_APPN | ESME_RINVBNDSTS => Err(
            SubmitError::Transient(format!("submit_sm_resp status {status:#x}")),
        ),
        ESME_RINVDSTADR => Err(SubmitError::Refused {
            failure: Failure::InvalidDestination,
            reason: "ESME_RINVDSTADR: invalid destination address".into(),
        }),
        _ => Err(SubmitError::Refused {
            failure: Failure::Rejected,
            reason: format!("submit_sm_resp status {status:#x}"),
        }),
    }
}

/// Hands receipts to the sink one at a time, in the order the SMSC sent them (an
/// `ENROUTE` must not overtake the `DELIVRD` that followed it).
async fn forward_receipts(mut receipts: mpsc::UnboundedReceiver<Receipt>, sink: ReceiptSink) {
    while let Some(receipt) = receipts.recv().await {
        sink(receipt).await;
    }
}

impl Gateway for SmppGateway {
    fn submit<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> BoxFuture<'a, Result<Submitted, SubmitError>> {
        Box::pin(self.send(message))
    }

    fn read_callback(&self, _callback: &Callback<'_>) -> Result<Vec<Receipt>, CallbackError> {
        Err(CallbackError::NotSupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdu_round_trip() {
        let pdu = Pdu {
            command_id: SUBMIT_SM_RESP,
            status: ESME_RINVDSTADR,
            sequence: 0x0102_0304,
            body: b"abc\0".to_vec(),
        };
        let bytes = pdu.encode();
        assert_eq!(&bytes[..4], &20u32.to_be_bytes());
        assert_eq!(Pdu::decode(&bytes), Ok(pdu));
        assert_eq!(Pdu::decode(&bytes[..19]), Err(CodecError::Length(20)));
        assert_eq!(
            Pdu::decode(&[0, 0, 0, 8, 0, 0, 0, 0]),
            Err(CodecError::Length(8))
        );
    }

    #[test]
    fn short_message_round_trip() {
        let m = ShortMessage {
            service_type: String::new(),
            source_addr_ton: 5,
            source_addr_npi: 0,
            source_addr: "ACME".into(),
            dest_addr_ton: 1,
            dest_addr_npi: 1,
            destination_addr: "32470123456".into(),
            esm_class: 0x40,
            registered_delivery: 1,
            data_coding: 8,
            short_message: vec![5, 0, 3, 7, 2, 1, 0, 0x41],
            tlvs: vec![(TAG_RECEIPTED_MESSAGE_ID, b"abc\0".to_vec())],
            ..ShortMessage::default()
        };
        let body = m.encode().unwrap();
        assert_eq!(ShortMessage::decode(&body), Ok(m.clone()));
        // Every truncation is an error, never a panic, except the one that drops the
        // TLV (8 octets) whole: that is a valid message without it.
        let without_tlv = body.len() - 8;
        for n in 0..body.len() {
            let decoded = ShortMessage::decode(&body[..n]);
            assert_eq!(decoded.is_ok(), n == without_tlv, "{n}");
        }
        let long = ShortMessage {
            source_addr: "x".repeat(21),
            ..m
        };
        assert_eq!(long.encode(), Err(CodecError::TooLong("source_addr", 20)));
    }

    #[test]
    fn bind_body_layout() {
        let body = bind_body("iapsidecar", "secret12", "").unwrap();
        assert_eq!(body, b"iapsidecar\0secret12\0\0\x34\0\0\0".to_vec());
        assert!(bind_body("iapsidecar", "ninechars", "").is_err());
    }

    #[test]
    fn gsm7_septets_and_parts() {
        let parts = split_text("@£ aé€", Encoding::Gsm7);
        assert_eq!(parts, vec![vec![0x00, 0x01, 0x20, 0x61, 0x05, 0x1B, 0x65]]);
        assert_eq!(split_text(&"a".repeat(160), Encoding::Gsm7).len(), 1);
        let parts = split_text(&"a".repeat(400), Encoding::Gsm7);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![153, 153, 94]
        );
        // An escape pair is never cut.
        let text = format!("{}€", "a".repeat(160));
        let parts = split_text(&text, Encoding::Gsm7);
        assert_eq!(
            parts[1],
            vec![0x61; 7]
                .into_iter()
                .chain([0x1B, 0x65])
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn ucs2_parts_keep_surrogates_whole() {
        let parts = split_text("é😀", Encoding::Ucs2);
        assert_eq!(parts, vec![vec![0x00, 0xE9, 0xD8, 0x3D, 0xDE, 0x00]]);
        let text = format!("{}😀", "é".repeat(70));
        let parts = split_text(&text, Encoding::Ucs2);
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[0].len(), 67 * 2);
        assert_eq!(parts[1].len(), (3 + 2) * 2);
    }

    #[test]
    fn receipts_are_read_from_text_and_tlvs() {
        let m = ShortMessage {
            esm_class: 0x04,
            short_message: b"id:abc123 sub:001 dlvrd:001 submit date:2611301000 done date:2611301001 stat:DELIVRD err:000 text:Hello".to_vec(),
            ..ShortMessage::default()
        };
        assert!(is_receipt(m.esm_class));
        let r = read_receipt(&m).unwrap();
        assert_eq!(
            (r.gateway_ref.as_str(), r.delivery),
            ("abc123", Delivery::Delivered)
        );
        let m = ShortMessage {
            short_message: b"id:zzz stat:UNDELIV err:001".to_vec(),
            tlvs: vec![(TAG_RECEIPTED_MESSAGE_ID, b"abc123\0".to_vec())],
            ..m
        };
        let r = read_receipt(&m).unwrap();
        assert_eq!(
            (r.gateway_ref.as_str(), r.delivery),
            ("abc123", Delivery::Failed(Failure::NotDelivered))
        );
        let m = ShortMessage {
            short_message: b"id:abc stat:WHATEVER".to_vec(),
            tlvs: vec![],
            ..m
        };
        assert_eq!(
            read_receipt(&m),
            Err(ReceiptError::UnknownState("WHATEVER".into()))
        );
        let m = ShortMessage {
            short_message: Vec::new(),
            tlvs: vec![
                (TAG_RECEIPTED_MESSAGE_ID, b"q1\0".to_vec()),
                (TAG_MESSAGE_STATE, vec![3]),
            ],
            ..m
        };
        assert_eq!(
            read_receipt(&m).unwrap().delivery,
            Delivery::Failed(Failure::Expired)
        );
    }

    fn session() -> (Session, mpsc::UnboundedReceiver<Receipt>) {
        let (receipts, rx) = mpsc::unbounded_channel();
        let session = Session {
            host: "127.0.0.1".into(),
            port: 1,
            bind: Vec::new(),
            timeout: Duration::from_secs(1),
            enquire_link: Duration::from_secs(30),
            bound: Arc::new(AtomicBool::new(true)),
            receipts,
            name: "test".into(),
            sequence: 0,
        };
        (session, rx)
    }

    fn answered(h: Handled) -> Pdu {
        match h {
            Handled::Answer(pdu) => pdu,
            Handled::Nothing => panic!("no answer"),
            Handled::Unbound(pdu) => panic!("unbound: {pdu:?}"),
        }
    }

    #[test]
    fn session_answers_what_the_smsc_sends() {
        let (mut s, mut rx) = session();
        let mut pending = Pending::new();
        let mut link = None;
        let mut handle = |s: &mut Session, pdu: Pdu| s.handle(pdu, &mut pending, &mut link);

        // Unknown requests get a generic_nack with their sequence number.
        let nack = answered(handle(&mut s, Pdu::new(0x0000_0103, 7, vec![1, 2])));
        assert_eq!(
            (nack.command_id, nack.status, nack.sequence),
            (GENERIC_NACK, ESME_RINVCMDID, 7)
        );
        let resp = answered(handle(&mut s, Pdu::new(ENQUIRE_LINK, 8, Vec::new())));
        assert_eq!((resp.command_id, resp.sequence), (ENQUIRE_LINK_RESP, 8));

        // A receipt is answered and goes to the sink; one with a state we do not know
        // and a message from a handset are answered and dropped; an unreadable
        // deliver_sm is refused for good.
        let receipt = |text: &str| ShortMessage {
            esm_class: 0x04,
            short_message: text.as_bytes().to_vec(),
            ..ShortMessage::default()
        };
        let body = receipt("id:m1 stat:DELIVRD err:000").encode().unwrap();
        let resp = answered(handle(&mut s, Pdu::new(DELIVER_SM, 9, body)));
        assert_eq!(
            (resp.command_id, resp.status, resp.sequence, resp.body),
            (DELIVER_SM_RESP, ESME_ROK, 9, vec![0])
        );
        let r = rx.try_recv().unwrap();
        assert_eq!(
            (r.gateway_ref.as_str(), r.delivery),
            ("m1", Delivery::Delivered)
        );
        let body = receipt("id:m1 stat:LOST err:000").encode().unwrap();
        assert_eq!(
            answered(handle(&mut s, Pdu::new(DELIVER_SM, 10, body))).status,
            ESME_ROK
        );
        let mo = ShortMessage {
            esm_class: 0,
            ..receipt("hello")
        };
        let body = mo.encode().unwrap();
        assert_eq!(
            answered(handle(&mut s, Pdu::new(DELIVER_SM, 11, body))).status,
            ESME_ROK
        );
        assert!(rx.try_recv().is_err());
        let resp = answered(handle(&mut s, Pdu::new(DELIVER_SM, 12, vec![0xFF; 3])));
        assert_eq!(
            (resp.command_id, resp.status),
            (DELIVER_SM_RESP, ESME_RX_P_APPN)
        );

        // submit_sm_resp reaches the waiting submit by sequence number.
        let (reply, mut answer) = oneshot::channel();
        pending.insert(42, (Instant::now(), reply));
        let mut handle = |s: &mut Session, pdu: Pdu| s.handle(pdu, &mut pending, &mut link);
        let mut resp = Pdu::new(SUBMIT_SM_RESP, 42, b"abc\0".to_vec());
        resp.status = ESME_ROK;
        assert!(matches!(handle(&mut s, resp), Handled::Nothing));
        assert_eq!(answer.try_recv().unwrap(), Ok((ESME_ROK, "abc".to_owned())));

        // The SMSC unbinds: answered, and the session ends.
        match handle(&mut s, Pdu::new(UNBIND, 13, Vec::new())) {
            Handled::Unbound(pdu) => assert_eq!((pdu.command_id, pdu.sequence), (UNBIND_RESP, 13)),
            _ => panic!("want unbound"),
        }
    }

    #[test]
    fn senders_and_statuses() {
        assert_eq!(
            source_address("+15005550006"),
            Ok((1, 1, "15005550006".into()))
        );
        assert_eq!(source_address("12345"), Ok((0, 1, "12345".into())));
        assert_eq!(source_address("ACME"), Ok((5, 0, "ACME".into())));
        assert!(source_address("far too long sender").is_err());
        assert!(submit_status(ESME_ROK).is_ok());
        assert!(matches!(
            submit_status(ESME_RTHROTTLED),
            Err(SubmitError::Transient(_))
        ));
        assert!(matches!(
            submit_status(ESME_RSYSERR),
            Err(SubmitError::Transient(_))
        ));
        assert!(matches!(
            submit_status(ESME_RINVDSTADR),
            Err(SubmitError::Refused {
                failure: Failure::InvalidDestination,
                ..
            })
        ));
        assert!(matches!(
            submit_status(0x45),
            Err(SubmitError::Refused {
                failure: Failure::Rejected,
                ..
            })
        ));
    }
}
