//! SMS: Odoo's send call, its account registration (18/19) and the gateways' receipts.
//! Each face calls one function here per request.
//!
//! The rules (README, "SMS"):
//! - The account token is the identity; `dbuuid` is a claim and never binds an account.
//!   An unknown token is answered (`insufficient_credit`: buying credits opens the
//!   account) and nothing is written.
//! - Each message is answered on its own, inside a successful result: a JSON-RPC error
//!   would turn Odoo's whole batch into "Server Error". Every uuid Odoo sent is answered.
//! - A message costs its segments (GSM-7 160/153, UCS-2 70/67) times the price of its
//!   destination's country. Its price is held when it is accepted, consumed when the
//!   gateway takes it, and given back when the gateway refuses it or it is not taken
//!   within `sms.give_up_hours`. A carrier's later delivery failure is not given back:
//!   the provider bills the operator for it.
//! - A uuid is accepted once per account: Odoo repeating a send call gets the first
//!   answer and nothing is charged or sent again. A message that failed and was given
//!   back may be sent again under the same uuid (Odoo's "Resend").

use std::collections::BTreeMap;
use std::time::Instant;

use sha2::{Digest, Sha256};

use crate::config::SmsSettings;
use crate::ledger::time::MICROS_PER_HOUR as HOUR_MICROS;
use crate::ledger::token::{AccountToken, constant_time_eq};
use crate::ledger::{Account, AccountId, Credits, LedgerError, Service};
use crate::sms::gateway::Receipt;
use crate::sms::number::{Number, NumberError};
use crate::sms::outbox::{NewSms, Queued, SmsKind, SmsStatus};
use crate::sms::status::{Delivery, SendState};
use crate::sms::text::segments;
use crate::store::Store;
use crate::store::sms::{SmsChange, SmsRegistration};

/// The SMS rules the settings fix, read once at start.
#[derive(Clone, Debug)]
pub struct SmsRules {
    pub service: String,
    /// Price per segment by country calling code; `"*"` for the rest.
    pub prices: BTreeMap<String, Credits>,
    pub require_registration: bool,
    pub max_batch: usize,
    pub give_up_hours: i64,
    /// A gateway is configured: without one nothing can be sent or charged.
    pub sending: bool,
    pub verification_text: String,
}

impl SmsRules {
    /// Reads the settings; `Err` names the setting that is wrong.
    pub fn from_settings(s: &SmsSettings, max_hold_ttl_hours: i64) -> Result<SmsRules, String> {
        let mut prices = BTreeMap::new();
        for (code, price) in &s.prices {
            let calling_code = (1..=4).contains(&code.len())
                && !code.starts_with('0')
                && code.bytes().all(|b| b.is_ascii_digit());
            if code != "*" && !calling_code {
                return Err(format!(
                    "sms.prices: {code:?} is not a country calling code (1 to 4 digits) or \"*\""
                ));
            }
            let credits = Credits::parse_exact(price)
                .map_err(|e| format!("sms.prices.{code}: {price:?}: {e}"))?;
            prices.insert(code.clone(), credits);
        }
        // Checked only when SMS can be sent: a sidecar without a gateway starts whatever
        // its hold limit is.
        if s.gateway.is_some()
            && !(1..=max_hold_ttl_hours.saturating_sub(1)).contains(&s.give_up_hours)
        {
            return Err(format!(
                "sms.give_up_hours must be between 1 and ledger.max_hold_ttl_hours - 1 ({})",
                max_hold_ttl_hours.saturating_sub(1)
            ));
        }
        if s.max_batch == 0 || s.max_batch > 10_000 {
            return Err("sms.max_batch must be between 1 and 10000".into());
        }
        if !s.verification_text.contains("{code}") {
            return Err("sms.verification_text must contain {code}".into());
        }
        if let Some(name) = &s.gateway
            && !s.gateways.contains_key(name)
        {
            return Err(format!(
                "sms.gateway names {name:?}, which is not under sms.gateways"
            ));
        }
        Ok(SmsRules {
            service: s.service.clone(),
            prices,
            require_registration: s.require_registration,
            max_batch: s.max_batch,
            give_up_hours: s.give_up_hours,
            sending: s.gateway.is_some(),
            verification_text: s.verification_text.clone(),
        })
    }

    /// The price of one segment to `number`, and the code that priced it.
    pub fn price_of(&self, number: &Number) -> Option<(&str, Credits)> {
        let digits = number.digits();
        (1..=4)
            .rev()
            .filter_map(|len| digits.get(..len))
            .find_map(|code| self.prices.get_key_value(code))
            .or_else(|| self.prices.get_key_value("*"))
            .map(|(code, price)| (code.as_str(), *price))
    }
}

/// One message of a send call: a text and the numbers it goes to, each with Odoo's uuid.
#[derive(Clone, Debug)]
pub struct SendGroup {
    pub content: String,
    /// (uuid, number as Odoo sent it; `None` when Odoo sent none).
    pub numbers: Vec<(String, Option<String>)>,
}

/// Odoo's send call.
#[derive(Clone, Debug)]
pub struct SendCall<'a> {
    pub token: &'a AccountToken,
    pub dbuuid: Option<&'a str>,
    pub webhook_url: Option<&'a str>,
    pub groups: Vec<SendGroup>,
}

/// The answer for one uuid.
#[derive(Clone, Debug, PartialEq)]
pub struct SendResult {
    pub uuid: String,
    pub state: SendState,
    /// Credits this message costs (0 when refused).
    pub credit: Credits,
}

/// Why a send call was refused as a whole. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum SmsError {
    #[error("a send call may carry at most {max} numbers, this one has {given}")]
    TooLarge { max: usize, given: usize },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The SMS service as the catalog has it; `None` when the operator has not created it.
fn sms_service(store: &Store, rules: &SmsRules) -> Result<Option<Service>, LedgerError> {
    match store.service_by_name(&rules.service) {
        Ok(service) => Ok(Some(service)),
        Err(LedgerError::UnknownService(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Whether the account may send now: registered when the operator requires it, and the
/// service open to its database (or, unbound, to the one the call names).
fn account_may_send(
    store: &Store,
    rules: &SmsRules,
    service: &Service,
    account: &Account,
    registration: Option<&SmsRegistration>,
    dbuuid: Option<&str>,
) -> Result<bool, LedgerError> {
    if account.disabled {
        return Ok(false);
    }
    if rules.require_registration && registration.is_none_or(|r| r.verified_at.is_none()) {
        return Ok(false);
    }
    super::contact::allowed(store, service, Some(account), dbuuid)
}

/// Odoo's `/api/sms/3/send`: every uuid answered, the accepted ones queued and paid.
pub fn send(
    store: &Store,
    rules: &SmsRules,
    call: &SendCall<'_>,
    deadline: Instant,
) -> Result<Vec<SendResult>, SmsError> {
    let given: usize = call.groups.iter().map(|g| g.numbers.len()).sum();
    if given > rules.max_batch {
        return Err(SmsError::TooLarge {
            max: rules.max_batch,
            given,
        });
    }
    let refuse_all = |state: SendState| -> Vec<SendResult> {
        call.groups
            .iter()
            .flat_map(|g| g.numbers.iter())
            .map(|(uuid, _)| SendResult {
                uuid: uuid.clone(),
                state,
                credit: Credits::ZERO,
            })
            .collect()
    };
    if !rules.sending {
        tracing::warn!("an SMS send call came, but no sms.gateway is configured");
        return Ok(refuse_all(SendState::ServerError));
    }
    let Some(service) = sms_service(store, rules)? else {
        tracing::warn!(service = %rules.service, "an SMS send call came, but the SMS service does not exist");
        return Ok(refuse_all(SendState::ServerError));
    };
    let account = store.find_account(service.id, call.token)?;
    let registration = match &account {
        Some(account) => store.sms_registration(account.id)?,
        None => None,
    };
    let may_send = match &account {
        Some(account) => account_may_send(
            store,
            rules,
            &service,
            account,
            registration.as_ref(),
            call.dbuuid,
        )?,
        None => false,
    };
    let sender = registration.and_then(|r| r.sender_name);

    // Each uuid's answer, in Odoo's order; the messages to queue carry their slot.
    let mut results: Vec<SendResult> = Vec::with_capacity(given);
    let mut to_queue: Vec<(usize, NewSms)> = Vec::new();
    for group in &call.groups {
        let counted = segments(&group.content);
        for (uuid, raw) in &group.numbers {
            let slot = results.len();
            let mut answer = |state| {
                results.push(SendResult {
                    uuid: uuid.clone(),
                    state,
                    credit: Credits::ZERO,
                })
            };
            let number = match raw.as_deref().map(Number::parse) {
                None | Some(Err(NumberError::Missing)) => {
                    answer(SendState::NumberMissing);
                    continue;
                }
                Some(Err(NumberError::Format)) => {
                    answer(SendState::WrongNumberFormat);
                    continue;
                }
                Some(Ok(number)) => number,
            };
            let Some((country, per_segment)) = rules.price_of(&number) else {
                answer(SendState::CountryNotSupported);
                continue;
            };
            if account.is_none() {
                answer(SendState::InsufficientCredit);
                continue;
            }
            if !may_send {
                answer(SendState::Unregistered);
                continue;
            }
            let price =
                (0..counted.count).try_fold(Credits::ZERO, |sum, _| sum.checked_add(per_segment));
            let Ok(price) = price else {
                answer(SendState::InsufficientCredit);
                continue;
            };
            answer(SendState::Success);
            results[slot].credit = price;
            to_queue.push((
                slot,
                NewSms {
                    kind: SmsKind::Odoo,
                    uuid: uuid.clone(),
                    number: number.as_str().to_owned(),
                    content: group.content.clone(),
                    encoding: counted.encoding,
                    segments: counted.count,
                    country: country.to_owned(),
                    price,
                    sender: sender.clone(),
                    dbuuid: call.dbuuid.map(str::to_owned),
                    webhook_url: call.webhook_url.map(str::to_owned),
                },
            ));
        }
    }
    let Some(account) = account else {
        return Ok(results);
    };
    if to_queue.is_empty() {
        return Ok(results);
    }
    let now = store.now();
    let give_up_at = now.plus_hours(rules.give_up_hours);
    // The hold outlives the give-up time by an hour: the worker gives it back itself.
    let hold_until = give_up_at.plus_hours(1);
    let messages: Vec<NewSms> = to_queue.iter().map(|(_, m)| m.clone()).collect();
    let outcomes = store.sms_queue(account.id, &messages, give_up_at, hold_until, deadline)?;
    for ((slot, _), outcome) in to_queue.iter().zip(outcomes) {
        let result = &mut results[*slot];
        match outcome {
            Queued::New => {}
            Queued::Known { status, .. } => {
                // Already accepted under this uuid (Odoo repeated its call): the same
                // answer, and nothing charged again.
                result.state = match status {
                    SmsStatus::Failed => SendState::ServerError,
                    _ => SendState::Success,
                };
            }
            Queued::Insufficient => {
                result.state = SendState::InsufficientCredit;
                result.credit = Credits::ZERO;
            }
        }
    }
    Ok(results)
}

/// What a gateway's receipt did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptOutcome {
    /// The message moved on; Odoo is told.
    Applied,
    /// The message already said this, or more (a replayed or late receipt).
    AlreadyKnown,
    /// No message of ours has this reference.
    Unknown,
}

/// The status a message takes on a receipt, if it moves. A message's last word is its
/// delivery or its failure; an intermediate "sent" changes nothing (Odoo was told `sent`
/// when the gateway took it).
fn after_receipt(status: SmsStatus, delivery: Delivery) -> Option<SmsStatus> {
    match (status, delivery) {
        (_, Delivery::Sent) => None,
        (SmsStatus::Submitted, Delivery::Delivered) => Some(SmsStatus::Delivered),
        (SmsStatus::Submitted, Delivery::Failed(_)) => Some(SmsStatus::Failed),
        _ => None,
    }
}

/// Records a gateway's receipt and queues Odoo's delivery report.
pub fn record_receipt(
    store: &Store,
    gateway: &str,
    receipt: &Receipt,
) -> Result<ReceiptOutcome, LedgerError> {
    let Some(message) = store.sms_by_ref(gateway, &receipt.gateway_ref)? else {
        return Ok(ReceiptOutcome::Unknown);
    };
    let Some(to) = after_receipt(message.status, receipt.delivery) else {
        return Ok(ReceiptOutcome::AlreadyKnown);
    };
    let failure = match receipt.delivery {
        Delivery::Failed(f) => Some(f),
        _ => None,
    };
    let applied = store.sms_change(&SmsChange {
        id: message.id,
        from: message.status,
        to,
        failure,
        detail: receipt.detail.as_deref(),
        report: Some(receipt.delivery.odoo_status()),
    })?;
    Ok(if applied {
        ReceiptOutcome::Applied
    } else {
        ReceiptOutcome::AlreadyKnown
    })
}

/// The registration routes' answers (`sms-protocol.md` §5): `success` or a code from
/// Odoo's `ERROR_MESSAGES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegistrationAnswer {
    Success,
    InvalidPhoneNumber,
    VerificationSmsDelivery,
    ClosedFeature,
    InvalidCode,
    NoSmsAccount,
    TooManyAttempts,
    FormatError,
    UnregisteredAccount,
    ExistingSender,
}

impl RegistrationAnswer {
    pub fn as_str(self) -> &'static str {
        match self {
            RegistrationAnswer::Success => "success",
            RegistrationAnswer::InvalidPhoneNumber => "invalid_phone_number",
            RegistrationAnswer::VerificationSmsDelivery => "verification_sms_delivery",
            RegistrationAnswer::ClosedFeature => "closed_feature",
            RegistrationAnswer::InvalidCode => "invalid_code",
            RegistrationAnswer::NoSmsAccount => "no_sms_account",
            RegistrationAnswer::TooManyAttempts => "too_many_attempts",
            RegistrationAnswer::FormatError => "format_error",
            RegistrationAnswer::UnregisteredAccount => "unregistered_account",
            RegistrationAnswer::ExistingSender => "existing_sender",
        }
    }
}

/// Codes a registration may ask for per hour.
const CODES_PER_HOUR: i32 = 3;
/// Wrong codes before the code is void.
const ATTEMPTS_PER_CODE: i32 = 5;
/// How long a code is good for.
const CODE_LIFETIME_MICROS: i64 = 10 * 60 * 1_000_000;

fn code_hash(account_id: AccountId, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{account_id}:{code}").as_bytes()))
}

/// The account a registration call names, when someone authenticated stands behind it
/// (it has a database or credits): a registration sends an SMS, which strangers never
/// cause.
fn registering_account(
    store: &Store,
    rules: &SmsRules,
    token: &AccountToken,
) -> Result<Option<Account>, LedgerError> {
    let Some(service) = sms_service(store, rules)? else {
        return Ok(None);
    };
    let Some(account) = store.find_account(service.id, token)? else {
        return Ok(None);
    };
    let vouched = account.dbuuid.is_some() || account.balance > Credits::ZERO;
    Ok(vouched.then_some(account))
}

/// `/api/sms/1/account/create`: sends a verification code to `phone`.
pub fn register_phone(
    store: &Store,
    rules: &SmsRules,
    token: &AccountToken,
    phone: &str,
) -> Result<RegistrationAnswer, LedgerError> {
    if !rules.sending {
        return Ok(RegistrationAnswer::ClosedFeature);
    }
    let Some(account) = registering_account(store, rules, token)? else {
        return Ok(RegistrationAnswer::NoSmsAccount);
    };
    let Ok(number) = Number::parse(phone) else {
        return Ok(RegistrationAnswer::InvalidPhoneNumber);
    };
    let Some((country, _)) = rules.price_of(&number) else {
        return Ok(RegistrationAnswer::InvalidPhoneNumber);
    };
    let now = store.now();
    let mut registration = store.sms_registration(account.id)?.unwrap_or_default();
    let window_open = registration
        .codes_window_start
        .is_some_and(|start| now.micros() - start.micros() < HOUR_MICROS);
    if !window_open {
        registration.codes_window_start = Some(now);
        registration.codes_sent = 0;
    }
    if registration.codes_sent >= CODES_PER_HOUR {
        return Ok(RegistrationAnswer::VerificationSmsDelivery);
    }
    let code = random_code();
    let text = rules.verification_text.replace("{code}", &code);
    let counted = segments(&text);
    registration.phone = Some(number.as_str().to_owned());
    registration.code_hash = Some(code_hash(account.id, &code));
    registration.code_expires_at = Some(now.plus_micros(CODE_LIFETIME_MICROS));
    registration.failed_attempts = 0;
    registration.codes_sent += 1;
    let message = NewSms {
        kind: SmsKind::Verification,
        uuid: random_uuid(),
        number: number.as_str().to_owned(),
        content: text,
        encoding: counted.encoding,
        segments: counted.count,
        country: country.to_owned(),
        price: Credits::ZERO,
        sender: None,
        dbuuid: None,
        webhook_url: None,
    };
    store.sms_save_registration(account.id, &registration, Some(&message))?;
    Ok(RegistrationAnswer::Success)
}

/// `/api/sms/2/account/verify`: checks the code sent last.
pub fn verify_code(
    store: &Store,
    rules: &SmsRules,
    token: &AccountToken,
    code: &str,
) -> Result<RegistrationAnswer, LedgerError> {
    let Some(account) = registering_account(store, rules, token)? else {
        return Ok(RegistrationAnswer::NoSmsAccount);
    };
    let Some(mut registration) = store.sms_registration(account.id)? else {
        return Ok(RegistrationAnswer::NoSmsAccount);
    };
    let Some(expected) = registration.code_hash.clone() else {
        return Ok(RegistrationAnswer::InvalidCode);
    };
    if registration.failed_attempts >= ATTEMPTS_PER_CODE {
        return Ok(RegistrationAnswer::TooManyAttempts);
    }
    let now = store.now();
    let fresh = registration.code_expires_at.is_some_and(|t| now < t);
    let given = code_hash(account.id, code.trim());
    if !(fresh && constant_time_eq(&given, &expected)) {
        registration.failed_attempts += 1;
        store.sms_save_registration(account.id, &registration, None)?;
        return Ok(RegistrationAnswer::InvalidCode);
    }
    registration.verified_at = Some(now);
    registration.code_hash = None;
    registration.code_expires_at = None;
    registration.failed_attempts = 0;
    store.sms_save_registration(account.id, &registration, None)?;
    Ok(RegistrationAnswer::Success)
}

/// Whether `name` is a sender name carriers take: 3 to 11 letters, digits, spaces or
/// dashes, beginning and ending with a letter or digit, at least one letter (an all-digit
/// sender would pass for a phone number).
pub fn valid_sender_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=11).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b' ' || *b == b'-')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.iter().any(u8::is_ascii_alphabetic)
}

/// `/api/sms/1/account/update_sender`: sets the sender name once.
pub fn set_sender(
    store: &Store,
    rules: &SmsRules,
    token: &AccountToken,
    name: &str,
) -> Result<RegistrationAnswer, LedgerError> {
    let Some(account) = registering_account(store, rules, token)? else {
        return Ok(RegistrationAnswer::NoSmsAccount);
    };
    let Some(mut registration) = store
        .sms_registration(account.id)?
        .filter(|r| r.verified_at.is_some())
    else {
        return Ok(RegistrationAnswer::UnregisteredAccount);
    };
    let name = name.trim();
    if !valid_sender_name(name) {
        return Ok(RegistrationAnswer::FormatError);
    }
    match registration.sender_name.as_deref() {
        Some(existing) if existing == name => return Ok(RegistrationAnswer::Success),
        Some(_) => return Ok(RegistrationAnswer::ExistingSender),
        None => {}
    }
    registration.sender_name = Some(name.to_owned());
    store.sms_save_registration(account.id, &registration, None)?;
    Ok(RegistrationAnswer::Success)
}

/// What `get-accounts-information` adds for an SMS account: Odoo 18/19 read its
/// registered state and sender name from there, not from the SMS routes.
pub fn registration_state(
    store: &Store,
    rules: &SmsRules,
    account: &Account,
) -> Result<(&'static str, Option<String>), LedgerError> {
    let registration = store.sms_registration(account.id)?;
    let verified = registration
        .as_ref()
        .is_some_and(|r| r.verified_at.is_some());
    let state = if rules.require_registration && !verified {
        "unregistered"
    } else {
        account.state.as_str()
    };
    Ok((
        state,
        registration.and_then(|r: SmsRegistration| r.sender_name),
    ))
}

fn random_code() -> String {
    let mut bytes = [0u8; 4];
    // A failing system random source leaves zeros: the code is then still 6 digits, and
    // the failure is logged (it never happens on a sane system).
    if let Err(e) = getrandom::fill(&mut bytes) {
        tracing::error!(error = %e, "system random source failed");
    }
    format!("{:06}", u32::from_le_bytes(bytes) % 1_000_000)
}

fn random_uuid() -> String {
    let mut bytes = [0u8; 16];
    if let Err(e) = getrandom::fill(&mut bytes) {
        tracing::error!(error = %e, "system random source failed");
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sender_names() {
        for ok in ["ACME", "Shop 24", "My-Shop", "abc", "ABCDEFGHIJK"] {
            assert!(valid_sender_name(ok), "{ok}");
        }
        for bad in [
            "ab",
            "ABCDEFGHIJKL",
            " abc",
            "abc ",
            "12345",
            "ab_c",
            "café",
        ] {
            assert!(!valid_sender_name(bad), "{bad}");
        }
    }

    #[test]
    fn the_longest_country_code_prices() {
        let settings = SmsSettings {
            gateway: None,
            prices: [("*", "1"), ("3", "0.7"), ("32", "0.5"), ("1", "2")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
            ..SmsSettings::default()
        };
        let rules = SmsRules::from_settings(&settings, 4320).unwrap();
        let price = |n: &str| {
            let number = Number::parse(n).unwrap();
            rules
                .price_of(&number)
                .map(|(c, p)| (c.to_owned(), p.units()))
        };
        assert_eq!(price("+32470123456"), Some(("32".into(), 5000)));
        assert_eq!(price("+33612345678"), Some(("3".into(), 7000)));
        assert_eq!(price("+15555550100"), Some(("1".into(), 20000)));
        assert_eq!(price("+447700900123"), Some(("*".into(), 10000)));
        let none = SmsRules::from_settings(&SmsSettings::default(), 4320).unwrap();
        assert_eq!(none.price_of(&Number::parse("+32470123456").unwrap()), None);
    }

    #[test]
    fn receipts_only_move_messages_forward() {
        use crate::sms::status::Failure;
        assert_eq!(
            after_receipt(SmsStatus::Submitted, Delivery::Delivered),
            Some(SmsStatus::Delivered)
        );
        assert_eq!(
            after_receipt(SmsStatus::Submitted, Delivery::Failed(Failure::Expired)),
            Some(SmsStatus::Failed)
        );
        assert_eq!(
            after_receipt(SmsStatus::Delivered, Delivery::Delivered),
            None
        );
        assert_eq!(
            after_receipt(SmsStatus::Delivered, Delivery::Failed(Failure::Rejected)),
            None
        );
        assert_eq!(after_receipt(SmsStatus::Submitted, Delivery::Sent), None);
        assert_eq!(after_receipt(SmsStatus::Queued, Delivery::Delivered), None);
    }
}
