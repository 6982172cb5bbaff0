//! The words Odoo reads: per-message states in the send result
//! (`sms-protocol.md` §3.3) and delivery statuses in reports to `/sms/status` (§4).

/// A per-message state in the answer to `/api/sms/3/send`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendState {
    /// Accepted into the outbox; paid (the hold is taken).
    Success,
    InsufficientCredit,
    WrongNumberFormat,
    CountryNotSupported,
    /// The account is not registered (18/19 registration flow not completed while the
    /// operator requires it), disabled, or the service is closed to its database.
    Unregistered,
    /// No number at all (a partner without a phone).
    NumberMissing,
    ServerError,
}

impl SendState {
    pub fn as_str(self) -> &'static str {
        match self {
            SendState::Success => "success",
            SendState::InsufficientCredit => "insufficient_credit",
            SendState::WrongNumberFormat => "wrong_number_format",
            SendState::CountryNotSupported => "country_not_supported",
            SendState::Unregistered => "unregistered",
            SendState::NumberMissing => "sms_number_missing",
            SendState::ServerError => "server_error",
        }
    }

    pub fn parse(text: &str) -> Option<SendState> {
        [
            SendState::Success,
            SendState::InsufficientCredit,
            SendState::WrongNumberFormat,
            SendState::CountryNotSupported,
            SendState::Unregistered,
            SendState::NumberMissing,
            SendState::ServerError,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Why a message that was accepted did not reach its number, in Odoo's words
/// (`/sms/status` statuses that Odoo maps to a failure type).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    /// Not delivered before the carrier's validity period ended (`sms_expired`).
    Expired,
    /// The carrier could not deliver it (`sms_not_delivered`).
    NotDelivered,
    /// The number does not exist or cannot receive SMS (`sms_invalid_destination`).
    InvalidDestination,
    /// The destination or content is barred (`sms_not_allowed`).
    NotAllowed,
    /// The gateway or carrier refused the message (`sms_rejected`).
    Rejected,
}

impl Failure {
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Expired => "expired",
            Failure::NotDelivered => "not_delivered",
            Failure::InvalidDestination => "invalid_destination",
            Failure::NotAllowed => "not_allowed",
            Failure::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Failure> {
        [
            Failure::Expired,
            Failure::NotDelivered,
            Failure::InvalidDestination,
            Failure::NotAllowed,
            Failure::Rejected,
        ]
        .into_iter()
        .find(|f| f.as_str() == text)
    }
}

/// What a gateway says of a message it accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Handed to the carrier, not yet on the handset (Odoo: `sent` → "Sent").
    Sent,
    /// On the handset (Odoo: `delivered` → "Delivered").
    Delivered,
    Failed(Failure),
}

impl Delivery {
    /// The `sms_status` word reported to Odoo.
    pub fn odoo_status(self) -> &'static str {
        match self {
            Delivery::Sent => "sent",
            Delivery::Delivered => "delivered",
            Delivery::Failed(f) => f.as_str(),
        }
    }
}
