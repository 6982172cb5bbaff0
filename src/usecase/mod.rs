//! Use cases: what a request does, once, whichever face (protocol, portal, admin API,
//! CLI) it came through. Faces read their own input and map the answer to their own
//! shape; the rules about who may do what live here, not in the faces nor in `store`.

pub mod account;
pub mod charge;
pub mod contact;
pub mod databases;
pub mod purchase;
pub mod service_keys;
pub mod sms;
