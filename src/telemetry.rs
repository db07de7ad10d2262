//! Traces: one trace per payment, from the merchant's create through the provider calls, the
//! provider's callbacks and the merchant's notifications.
//!
//! A payment's trace id is derived from its `payment_id` (the MD5 of it, 16 bytes, hex), and so
//! is the id of its root span (the create): a callback hours later, on another instance or
//! after a restart, joins the same trace without anything stored. Log lines written inside a
//! payment's span carry `trace_id`, and the admin payment view shows it.
//!
//! Export is OpenTelemetry OTLP over HTTP, off by default: built with `--features otel`, it
//! turns on when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is
//! set, with `OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` (default) or `http/json`; batches
//! leave every `OTEL_BSP_SCHEDULE_DELAY` ms (default 1000). Without the feature the spans below
//! are only the log lines' `trace_id`.

use std::future::Future;

/// A payment's trace id: 32 hex digits.
pub fn trace_id(payment_id: &str) -> String {
    hex::encode(trace_id_bytes(payment_id))
}

fn trace_id_bytes(payment_id: &str) -> [u8; 16] {
    use md5::Digest;
    md5::Md5::digest(payment_id.as_bytes()).into()
}

/// One span: a log span carrying the trace id, and with `otel` the exported span.
pub struct Span {
    log: tracing::Span,
    #[cfg(feature = "otel")]
    otel: Option<opentelemetry::Context>,
}

impl Span {
    /// The root span of a payment: its create.
    pub fn payment_root(name: &'static str, payment_id: &str) -> Span {
        Span::of(name, payment_id, true)
    }

    /// A span of a payment after its create (a callback, a notification, a query): a child of
    /// the payment's root span.
    pub fn of_payment(name: &'static str, payment_id: &str) -> Span {
        Span::of(name, payment_id, false)
    }

    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    fn of(name: &'static str, payment_id: &str, root: bool) -> Span {
        Span {
            log: tracing::info_span!("payment", trace_id = %trace_id(payment_id)),
            #[cfg(feature = "otel")]
            otel: otel::payment_span(name, payment_id, root),
        }
        .attr("payment_id", payment_id)
    }

    /// A span inside whatever span is current (a provider call); none outside any.
    #[cfg_attr(not(feature = "otel"), allow(unused_variables))]
    pub fn child(name: &'static str) -> Span {
        Span {
            log: tracing::Span::none(),
            #[cfg(feature = "otel")]
            otel: otel::child(name),
        }
    }

    /// Adds an attribute to the exported span.
    pub fn attr(self, _key: &'static str, _value: impl Into<String>) -> Span {
        #[cfg(feature = "otel")]
        if let Some(cx) = &self.otel {
            use opentelemetry::trace::TraceContextExt;
            cx.span().set_attribute(opentelemetry::KeyValue::new(_key, _value.into()));
        }
        self
    }

    /// Marks the span failed, saying why.
    pub fn failed(&self, _why: &str) {
        #[cfg(feature = "otel")]
        if let Some(cx) = &self.otel {
            use opentelemetry::trace::TraceContextExt;
            cx.span().set_status(opentelemetry::trace::Status::error(_why.to_string()));
        }
    }

    /// Runs `work` inside the span: log lines carry its trace id, spans started in it are its
    /// children.
    pub async fn run<F: Future>(&self, work: F) -> F::Output {
        use tracing::Instrument;
        let work = work.instrument(self.log.clone());
        #[cfg(feature = "otel")]
        if let Some(cx) = &self.otel {
            use opentelemetry::context::FutureExt;
            return work.with_context(cx.clone()).await;
        }
        work.await
    }
}

#[cfg(feature = "otel")]
impl Drop for Span {
    fn drop(&mut self) {
        if let Some(cx) = &self.otel {
            use opentelemetry::trace::TraceContextExt;
            cx.span().end();
        }
    }
}

/// Starts trace export when the environment asks for it; call inside the runtime.
pub fn init() {
    #[cfg(feature = "otel")]
    otel::init();
}

/// Sends the spans still buffered (at shutdown).
pub async fn flush() {
    #[cfg(feature = "otel")]
    otel::flush().await;
}

#[cfg(feature = "otel")]
mod otel {
    use opentelemetry::trace::{
        SpanContext, SpanId, SpanKind, TraceContextExt, TraceFlags, TraceId, TraceState, Tracer, TracerProvider,
    };
    use opentelemetry::Context;
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
    use opentelemetry_sdk::trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider};
    use std::cell::Cell;
    use std::sync::OnceLock;

    static PROVIDER: OnceLock<(SdkTracerProvider, SdkTracer)> = OnceLock::new();

    thread_local! {
        // The ids the next span started on this thread takes (a payment's root span).
        static PINNED: Cell<Option<(TraceId, SpanId)>> = const { Cell::new(None) };
    }

    /// Random ids, except for a payment's root span, whose ids come from its payment id (the
    /// SDK's span builder takes no ids of its own).
    #[derive(Debug, Default)]
    struct PaymentIds(RandomIdGenerator);

    impl IdGenerator for PaymentIds {
        fn new_trace_id(&self) -> TraceId {
            PINNED.with(|p| p.get()).map(|(t, _)| t).unwrap_or_else(|| self.0.new_trace_id())
        }
        fn new_span_id(&self) -> SpanId {
            PINNED.with(|p| p.get()).map(|(_, s)| s).unwrap_or_else(|| self.0.new_span_id())
        }
    }

    pub fn init() {
        let set = |name: &str| std::env::var(name).is_ok_and(|v| !v.is_empty());
        if !(set("OTEL_EXPORTER_OTLP_ENDPOINT") || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
            || std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.eq_ignore_ascii_case("true"))
        {
            return;
        }
        let protocol = match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            Ok("http/json") => Protocol::HttpJson,
            _ => Protocol::HttpBinary,
        };
        let exporter = match SpanExporter::builder().with_http().with_protocol(protocol).build() {
            Ok(e) => e,
            Err(e) => {
                tracing::error!(error = %e, "trace export is not started");
                return;
            }
        };
        let processor = BatchSpanProcessor::builder(exporter, opentelemetry_sdk::runtime::Tokio).build();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(processor)
            .with_id_generator(PaymentIds::default())
            .with_resource(opentelemetry_sdk::Resource::builder().with_service_name("payglot").build())
            .build();
        let tracer = provider.tracer("payglot");
        if PROVIDER.set((provider, tracer)).is_ok() {
            tracing::info!("traces are exported over OTLP/HTTP");
        }
    }

    pub async fn flush() {
        if let Some((provider, _)) = PROVIDER.get() {
            let provider = provider.clone();
            // The SDK waits on its batch task by blocking: not on a runtime thread.
            let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        }
    }

    fn tracer() -> Option<&'static SdkTracer> {
        PROVIDER.get().map(|(_, t)| t)
    }

    /// A payment's trace id and the id of its root span (the create): the first 8 bytes of
    /// SHA-1 of the payment id.
    fn ids(payment_id: &str) -> (TraceId, SpanId) {
        use sha1::Digest;
        let digest = sha1::Sha1::digest(payment_id.as_bytes());
        let mut root = [0u8; 8];
        root.copy_from_slice(&digest[..8]);
        (TraceId::from_bytes(super::trace_id_bytes(payment_id)), SpanId::from_bytes(root))
    }

    /// A payment's root span (with the ids derived from the payment id), or a child of it.
    pub fn payment_span(name: &'static str, payment_id: &str, root: bool) -> Option<Context> {
        let tracer = tracer()?;
        let (trace, root_span) = ids(payment_id);
        let parent = if root {
            PINNED.with(|p| p.set(Some((trace, root_span))));
            Context::new()
        } else {
            let parent = SpanContext::new(trace, root_span, TraceFlags::SAMPLED, true, TraceState::default());
            Context::new().with_remote_span_context(parent)
        };
        let span = tracer.span_builder(name).with_kind(SpanKind::Server).start_with_context(tracer, &parent);
        PINNED.with(|p| p.set(None));
        Some(Context::new().with_span(span))
    }

    pub fn child(name: &'static str) -> Option<Context> {
        let tracer = tracer()?;
        let current = Context::current();
        if !current.span().span_context().is_valid() {
            return None;
        }
        let span = tracer.span_builder(name).with_kind(SpanKind::Client).start_with_context(tracer, &current);
        Some(current.with_span(span))
    }
}
