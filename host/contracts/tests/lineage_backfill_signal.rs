//! The trace_id backfill is observable: a tracing event under
//! `lower_gateway::trace_id::backfill` with the upstream metadata.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write;
use std::sync::{Arc, Mutex};

use ep_contracts::Lineage;
use ep_contracts::lineage::ROUTE_LINEAGE_KEYS;
use serde_json::json;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture(f: impl FnOnce()) -> String {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::TRACE)
        .finish();
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
}

fn lineage_without_trace_id() -> serde_json::Value {
    json!({
        "tenant_id": "tenant-1", "request_id": "req-9", "decision_id": "dec-1",
        "boundary_session_id": "bs-1", "attempt_ref": "attempt://1",
        "route_id": "route-1", "idempotency_key": "idem-1"
    })
}

#[test]
fn backfill_emits_the_trace_id_backfill_event_with_its_metadata() {
    let output = capture(|| {
        let lineage = Lineage::normalize(&lineage_without_trace_id(), &ROUTE_LINEAGE_KEYS).unwrap();
        assert_eq!(lineage.get("trace_id"), Some("req-9"));
    });
    assert!(
        output.contains("lower_gateway::trace_id::backfill"),
        "{output}"
    );
    for field in [
        "count=1",
        "consumer=\"execution_plane_contracts\"",
        "source=\"request_id\"",
        "trace_id=req-9",
        "tenant_id=\"tenant-1\"",
        "decision_id=\"dec-1\"",
        "boundary_session_id=\"bs-1\"",
        "route_id=\"route-1\"",
    ] {
        assert!(output.contains(field), "missing {field} in {output}");
    }
}

#[test]
fn no_event_when_trace_id_is_present() {
    let mut attrs = lineage_without_trace_id();
    attrs["trace_id"] = json!("trace-1");
    let output = capture(|| {
        Lineage::normalize(&attrs, &ROUTE_LINEAGE_KEYS).unwrap();
    });
    assert!(!output.contains("backfill"), "{output}");
}
