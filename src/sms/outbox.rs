//! The SMS outbox's words: a message of Odoo's send call as priced, where a stored
//! message stands, and what a send call's message becomes when its uuid is already
//! known (answered, or sent again after a failure that gave its credits back). The
//! store writes them; the rules are here.

use crate::ledger::Credits;
use crate::sms::text::Encoding;

/// A message the use case priced and wants queued.
#[derive(Clone, Debug)]
pub struct NewSms {
    pub kind: SmsKind,
    pub uuid: String,
    pub number: String,
    pub content: String,
    pub encoding: Encoding,
    pub segments: u32,
    pub country: String,
    pub price: Credits,
    pub sender: Option<String>,
    pub dbuuid: Option<String>,
    pub webhook_url: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmsKind {
    /// A message of Odoo's send call, paid by the account.
    Odoo,
    /// A registration code, free.
    Verification,
}

impl SmsKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsKind::Odoo => "odoo",
            SmsKind::Verification => "verification",
        }
    }
}

/// Where a message stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmsStatus {
    Queued,
    Submitted,
    Delivered,
    Failed,
}

impl SmsStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SmsStatus::Queued => "queued",
            SmsStatus::Submitted => "submitted",
            SmsStatus::Delivered => "delivered",
            SmsStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<SmsStatus> {
        match text {
            "queued" => Some(SmsStatus::Queued),
            "submitted" => Some(SmsStatus::Submitted),
            "delivered" => Some(SmsStatus::Delivered),
            "failed" => Some(SmsStatus::Failed),
            _ => None,
        }
    }
}

/// What became of one message of a send call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Queued now, its price held.
    New,
    /// Already known under this uuid: answered from what it became.
    Known {
        status: SmsStatus,
        failure: Option<String>,
    },
    /// The account cannot pay for it; nothing written.
    Insufficient,
}

/// A message already stored under a send call's uuid, as the call finds it.
#[derive(Clone, Debug)]
pub struct Stored {
    pub status: SmsStatus,
    pub failure: Option<String>,
    /// Its credits were given back (a failure before the gateway took it).
    pub refunded: bool,
}

/// What one message of a send call becomes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Known: answered from what it became, nothing written.
    Answer(Queued),
    /// Failed and given back: goes again under its uuid (Odoo's "Resend"), paid again.
    SendAgain,
    /// Not seen yet: queued and paid.
    New,
}

/// The plan for one message of a send call, from what is stored under its uuid and
/// whether an earlier message of the same call had the same uuid (the first one
/// decides: the rest are answered as queued).
pub fn plan(stored: Option<Stored>, repeated_in_call: bool) -> Plan {
    match stored {
        _ if repeated_in_call => Plan::Answer(Queued::Known {
            status: SmsStatus::Queued,
            failure: None,
        }),
        Some(Stored {
            status: SmsStatus::Failed,
            refunded: true,
            ..
        }) => Plan::SendAgain,
        Some(Stored {
            status, failure, ..
        }) => Plan::Answer(Queued::Known { status, failure }),
        None => Plan::New,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(status: SmsStatus, refunded: bool) -> Option<Stored> {
        Some(Stored {
            status,
            failure: None,
            refunded,
        })
    }

    #[test]
    fn only_a_refunded_failure_goes_again() {
        assert_eq!(
            plan(stored(SmsStatus::Failed, true), false),
            Plan::SendAgain
        );
        for status in [
            SmsStatus::Queued,
            SmsStatus::Submitted,
            SmsStatus::Delivered,
        ] {
            assert_eq!(
                plan(stored(status, false), false),
                Plan::Answer(Queued::Known {
                    status,
                    failure: None
                })
            );
        }
        // Failed after the gateway took it: paid, answered as failed, never resent.
        assert_eq!(
            plan(stored(SmsStatus::Failed, false), false),
            Plan::Answer(Queued::Known {
                status: SmsStatus::Failed,
                failure: None
            })
        );
        assert_eq!(plan(None, false), Plan::New);
    }

    #[test]
    fn a_uuid_repeated_in_one_call_is_answered_as_queued() {
        let queued = Plan::Answer(Queued::Known {
            status: SmsStatus::Queued,
            failure: None,
        });
        assert_eq!(plan(None, true), queued);
        assert_eq!(plan(stored(SmsStatus::Failed, true), true), queued);
    }

    #[test]
    fn statuses_read_back_as_written() {
        for status in [
            SmsStatus::Queued,
            SmsStatus::Submitted,
            SmsStatus::Delivered,
            SmsStatus::Failed,
        ] {
            assert_eq!(SmsStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(SmsStatus::parse("sent"), None);
    }
}
