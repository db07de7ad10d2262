//! A demo merchant endpoint for first runs: `POST /merchant/notify` takes a payglot
//! notification and answers 200; `GET /merchant/events` lists the ones received, newest last,
//! each with its headers and its body exactly as received (the body as a string: the bytes the
//! signature covers), so a newcomer can check the signature by hand.
//! `/merchant/{dialect}/notify` plays a school integrated through a front door: it takes that
//! dialect's callback (any method) and answers the dialect's ack. It does not check signatures
//! (it has no keys); real merchants must.

use crate::http::{HttpIn, Reply};
use std::sync::Mutex;

#[derive(Default)]
pub struct DemoMerchant {
    received: Mutex<Vec<serde_json::Value>>,
}

impl DemoMerchant {
    pub fn handle(&self, path: &str, request: &HttpIn) -> Reply {
        let mut received = self.received.lock().unwrap_or_else(|p| p.into_inner());
        match (request.method.as_str(), path) {
            ("POST", "/notify") => {
                let headers: Vec<(String, String)> = request
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str().to_string(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                    .collect();
                received.push(serde_json::json!({
                    "received_at": crate::model::rfc3339(crate::model::now_unix()),
                    "method": request.method,
                    "path": "/merchant/notify",
                    "headers": headers,
                    "body": String::from_utf8_lossy(&request.body),
                }));
                // Keep the last 1000 only: this is a demo, not a store.
                if received.len() > 1000 {
                    received.remove(0);
                }
                Reply { status: 200, content_type: "text/plain; charset=utf-8", body: "ok".into() }
            }
            (method, path) if path.ends_with("/notify") => {
                let dialect = path.trim_start_matches('/').trim_end_matches("/notify");
                // Each document's ack: what a school integrated with that provider answers.
                let Some(spec) = crate::dialects::spec(dialect) else {
                    return Reply {
                        status: 404,
                        content_type: "text/plain; charset=utf-8",
                        body: "no such dialect".into(),
                    };
                };
                let ack = spec.side.ack_body();
                received.push(serde_json::json!({
                    "dialect": dialect,
                    "method": method,
                    "query": request.query,
                    "body": String::from_utf8_lossy(&request.body),
                }));
                if received.len() > 1000 {
                    received.remove(0);
                }
                Reply { status: 200, content_type: "text/plain; charset=utf-8", body: ack.into() }
            }
            ("GET", "/events") => Reply::json(200, &serde_json::Value::Array(received.clone())),
            _ => Reply {
                status: 404,
                content_type: "text/plain; charset=utf-8",
                body: "no such demo merchant endpoint".into(),
            },
        }
    }
}
