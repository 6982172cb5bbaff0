//! Odoo's own SMS, sent through the operator's gateway and paid in credits.
//!
//! - [`text`]: how many segments a text costs (GSM-7 or UCS-2, as gateways count).
//! - [`number`]: destination numbers and the country they are priced by.
//! - [`gateway`]: the `Gateway` interface and its adapters (Twilio, SMPP, JSON webhook).
//! - [`status`]: the words Odoo reads (send results, delivery reports).
//! - [`outbox`]: a message as priced, where a stored message stands, what a known uuid
//!   becomes when Odoo sends it again.

pub mod gateway;
pub mod number;
pub mod outbox;
pub mod status;
pub mod text;

use crate::ledger::entity_id;

entity_id! {
    /// An SMS message Odoo asked to send.
    pub SmsMessageId
}

entity_id! {
    /// A delivery report waiting to be told to Odoo.
    pub SmsReportId
}
