//! Errors of the HTTP API, mapped once to RFC 7807 problem JSON.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::error::AppError;
use crate::ledger::{LedgerError, StorageError};
use crate::payments::webhook::WebhookError;

/// Every way an admin API request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("a valid admin token is required (Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("{0}")]
    BadRequest(String),
    /// Well-formed, but breaks a rule (a name, a scope, a list).
    #[error("invalid input: {0}")]
    Invalid(String),
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("{0}")]
    NotFound(String),
    /// Not possible in the resource's current state (e.g. confirming a cancelled order).
    #[error("{0}")]
    Conflict(String),
    /// The path exists, the method does not; carries the `Allow` list.
    #[error("this resource answers {0} only")]
    MethodNotAllowed(&'static str),
    #[error("internal error")]
    Internal(String),
    /// A payment webhook request refused before its event was looked at.
    #[error(transparent)]
    Webhook(#[from] crate::payments::webhook::WebhookError),
}

/// RFC 7807 body.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:iap-sidecar:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Credits needed (insufficient credit only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub needed: Option<String>,
    /// Credits available (insufficient credit only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available: Option<String>,
}

impl ApiError {
    fn code(&self) -> &'static str {
        match self {
            ApiError::Ledger(e) => e.code(),
            ApiError::Unauthorized => "unauthorized",
            ApiError::BadRequest(_) => "bad_request",
            ApiError::Invalid(_) => "invalid_input",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Internal(_) => "internal",
            ApiError::Webhook(e) => e.code(),
        }
    }

    fn title(&self) -> &'static str {
        // The webhook's answers have always carried the status line's own words.
        if let ApiError::Webhook(_) = self {
            return self.status_code().canonical_reason().unwrap_or("Error");
        }
        match self.status_code() {
            StatusCode::BAD_REQUEST => "Bad request",
            StatusCode::UNAUTHORIZED => "Unauthorized",
            StatusCode::PAYMENT_REQUIRED => "Insufficient credit",
            StatusCode::FORBIDDEN => "Forbidden",
            StatusCode::NOT_FOUND => "Not found",
            StatusCode::CONFLICT => "Conflict",
            StatusCode::METHOD_NOT_ALLOWED => "Method not allowed",
            StatusCode::PAYLOAD_TOO_LARGE => "Payload too large",
            StatusCode::UNPROCESSABLE_ENTITY => "Invalid request",
            StatusCode::SERVICE_UNAVAILABLE => "Service unavailable",
            _ => "Internal error",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::Ledger(e) => match e {
                LedgerError::InvalidAmount(_)
                | LedgerError::Invalid(_)
                | LedgerError::InvalidExpiry(_)
                | LedgerError::IdempotencyMismatch => StatusCode::UNPROCESSABLE_ENTITY,
                LedgerError::InsufficientCredit { .. } => StatusCode::PAYMENT_REQUIRED,
                LedgerError::UnknownService(_)
                | LedgerError::UnknownAccount
                | LedgerError::UnknownHold => StatusCode::NOT_FOUND,
                LedgerError::HoldClosed { .. } | LedgerError::HoldExpired => StatusCode::CONFLICT,
                LedgerError::WrongService | LedgerError::Disabled => StatusCode::FORBIDDEN,
                LedgerError::Storage(StorageError::Unavailable(_)) => {
                    StatusCode::SERVICE_UNAVAILABLE
                }
                LedgerError::Storage(_) => StatusCode::INTERNAL_SERVER_ERROR,
            },
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Webhook(e) => match e {
                WebhookError::NotConfigured => StatusCode::SERVICE_UNAVAILABLE,
                WebhookError::Verify(_) => StatusCode::UNAUTHORIZED,
                WebhookError::BadEvent(_) => StatusCode::BAD_REQUEST,
            },
        }
    }

    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        // Storage details stay in the log; the client gets a generic line.
        let detail = match self {
            ApiError::Ledger(LedgerError::Storage(e @ StorageError::Unavailable(_))) => {
                tracing::warn!(error = %e.cause(), "database unavailable");
                "the database is unavailable; retry later".to_owned()
            }
            ApiError::Ledger(LedgerError::Storage(e)) => {
                tracing::error!(error = %e.cause(), "request failed");
                "the server could not complete the request; see its log".to_owned()
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "request failed");
                "the server could not complete the request; see its log".to_owned()
            }
            ApiError::Webhook(e) => {
                tracing::warn!(code = e.code(), error = %e, "payment webhook refused");
                e.to_string()
            }
            other => other.to_string(),
        };
        let (needed, available) = match self {
            ApiError::Ledger(LedgerError::InsufficientCredit { needed, available }) => {
                (Some(needed.to_string()), Some(available.to_string()))
            }
            _ => (None, None),
        };
        let problem = Problem {
            kind: format!("urn:iap-sidecar:problem:{}", self.code()),
            title: self.title().to_owned(),
            status: status.as_u16(),
            detail,
            needed,
            available,
        };
        let mut response = HttpResponse::build(status)
            .content_type("application/problem+json")
            .json(problem);
        if let ApiError::MethodNotAllowed(allow) = self {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"iap-sidecar admin\""),
            );
        }
        response
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Ledger(e) => ApiError::Ledger(e),
            AppError::Storage(e) => ApiError::Ledger(LedgerError::Storage(e)),
            AppError::Invalid(m) => ApiError::Invalid(m),
            AppError::NotFound(m) => ApiError::NotFound(m),
            e @ AppError::Conflict(_) => ApiError::Conflict(e.to_string()),
        }
    }
}

impl From<crate::payments::PaymentError> for ApiError {
    fn from(e: crate::payments::PaymentError) -> Self {
        use crate::payments::PaymentError as P;
        match e {
            P::NotFound(m) => ApiError::NotFound(m),
            P::Conflict(m) => ApiError::Conflict(m),
            P::Invalid(m) => ApiError::Invalid(m),
            P::Ledger(e) => ApiError::Ledger(e),
        }
    }
}

impl From<actix_web::error::BlockingError> for ApiError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        ApiError::Internal(e.to_string())
    }
}

/// Turns actix's JSON body errors into problems (size, syntax, types).
pub fn json_error(err: actix_web::error::JsonPayloadError, limit: usize) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as E;
    let api = match &err {
        E::OverflowKnownLength { .. } | E::Overflow { .. } => ApiError::PayloadTooLarge(limit),
        E::ContentType => {
            ApiError::BadRequest("the body must be JSON (Content-Type: application/json)".into())
        }
        E::Deserialize(e) => ApiError::BadRequest(format!("invalid JSON body: {e}")),
        other => ApiError::BadRequest(format!("invalid body: {other}")),
    };
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

/// Turns query-string errors into problems.
pub fn query_error(err: actix_web::error::QueryPayloadError) -> actix_web::Error {
    let api = ApiError::BadRequest(format!("invalid query string: {err}"));
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}

/// Turns path-segment errors into problems.
pub fn path_error(err: actix_web::error::PathError) -> actix_web::Error {
    let api = ApiError::NotFound(format!("invalid path: {err}"));
    actix_web::error::InternalError::from_response(err, api.error_response()).into()
}
