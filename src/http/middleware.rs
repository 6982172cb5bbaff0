//! Request id, access log and request metrics for every route.

use std::time::Instant;

use actix_web::Error;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use tracing::Instrument;

use crate::ledger::token::random_hex;
use crate::telemetry::METRICS;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A caller's request id is kept when it is short and plain, so logs line up across hops.
fn request_id(req: &ServiceRequest) -> String {
    req.headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .map(str::to_owned)
        .unwrap_or_else(|| random_hex(8))
}

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let id = request_id(&req);
    let method = req.method().to_string();
    // The route pattern, not the path: ids and tokens must not become label values.
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let span = tracing::info_span!("request", request_id = %id, %method, %route);
    let started = Instant::now();
    let mut res = next.call(req).instrument(span.clone()).await?;
    let elapsed = started.elapsed();
    let status = res.status();
    METRICS
        .http_requests
        .with_label_values(&[&method, &route, status.as_str()])
        .inc();
    METRICS
        .http_duration
        .with_label_values(&[&method, &route])
        .observe(elapsed.as_secs_f64());
    if let Ok(value) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(REQUEST_ID, value);
    }
    span.in_scope(|| {
        tracing::info!(
            status = status.as_u16(),
            micros = elapsed.as_micros() as u64,
            "answered"
        )
    });
    Ok(res)
}
