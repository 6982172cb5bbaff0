//! The customer portal.
