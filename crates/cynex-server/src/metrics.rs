//! The service's counters, one set per component, exposed at `/metrics` in the Prometheus text
//! format (version 0.0.4). Components count what they received, wrote, quarantined, dropped
//! and sent, so a scrape shows where data goes and where it stops.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    pub http_requests: Counter,
    pub http_errors_4xx: Counter,
    pub http_errors_5xx: Counter,
    pub auth_refused: Counter,
    pub taxii_objects_received: Counter,
    pub taxii_objects_written: Counter,
    pub taxii_objects_refused: Counter,
    pub ingest_records_received: Counter,
    pub ingest_records_written: Counter,
    pub ingest_records_quarantined: Counter,
    pub ingest_requests_refused: Counter,
    pub watch_files_ingested: Counter,
    pub bus_messages: Counter,
    pub bus_duplicates: Counter,
    pub bus_bad_messages: Counter,
    pub bus_events_written: Counter,
    pub bus_quarantined: Counter,
    pub analysis_runs: Counter,
    pub analysis_packets: Counter,
    pub analysis_findings: Counter,
    pub intel_objects_published: Counter,
    pub alerts_raised: Counter,
    pub alerts_delivered: Counter,
    pub alerts_delivery_failed: Counter,
    pub feed_objects_received: Counter,
    pub job_errors: Counter,
    pub live_events_dropped: Counter,
}

impl Metrics {
    /// The Prometheus exposition of every counter.
    pub fn render(&self) -> String {
        let rows: [(&str, &str, &str, &Counter); 27] = [
            ("cynex_http_requests_total", "HTTP requests served", "", &self.http_requests),
            ("cynex_http_responses_total", "HTTP error responses by class", "class=\"4xx\"", &self.http_errors_4xx),
            ("cynex_http_responses_total", "", "class=\"5xx\"", &self.http_errors_5xx),
            ("cynex_auth_refused_total", "Requests whose credentials were refused", "", &self.auth_refused),
            (
                "cynex_taxii_objects_total",
                "STIX objects through TAXII POST",
                "outcome=\"received\"",
                &self.taxii_objects_received,
            ),
            ("cynex_taxii_objects_total", "", "outcome=\"written\"", &self.taxii_objects_written),
            ("cynex_taxii_objects_total", "", "outcome=\"refused\"", &self.taxii_objects_refused),
            (
                "cynex_ingest_records_total",
                "Sensor records pushed over HTTP",
                "outcome=\"received\"",
                &self.ingest_records_received,
            ),
            ("cynex_ingest_records_total", "", "outcome=\"written\"", &self.ingest_records_written),
            ("cynex_ingest_records_total", "", "outcome=\"quarantined\"", &self.ingest_records_quarantined),
            (
                "cynex_ingest_requests_refused_total",
                "Ingest requests refused (auth, size, format)",
                "",
                &self.ingest_requests_refused,
            ),
            (
                "cynex_watch_files_ingested_total",
                "Files ingested from the watch folder",
                "",
                &self.watch_files_ingested,
            ),
            ("cynex_bus_messages_total", "Sensor-bus messages consumed", "outcome=\"received\"", &self.bus_messages),
            ("cynex_bus_messages_total", "", "outcome=\"duplicate\"", &self.bus_duplicates),
            ("cynex_bus_messages_total", "", "outcome=\"not_a_chunk\"", &self.bus_bad_messages),
            ("cynex_bus_records_total", "Sensor-bus records", "outcome=\"written\"", &self.bus_events_written),
            ("cynex_bus_records_total", "", "outcome=\"quarantined\"", &self.bus_quarantined),
            ("cynex_analysis_runs_total", "Incremental analysis runs", "", &self.analysis_runs),
            ("cynex_analysis_packets_total", "Packets analysed", "", &self.analysis_packets),
            ("cynex_analysis_findings_total", "Findings written", "", &self.analysis_findings),
            (
                "cynex_intel_objects_published_total",
                "STIX objects (versions) published from findings",
                "",
                &self.intel_objects_published,
            ),
            ("cynex_alerts_total", "Member alerts", "outcome=\"raised\"", &self.alerts_raised),
            ("cynex_alerts_total", "", "outcome=\"delivered\"", &self.alerts_delivered),
            ("cynex_alerts_total", "", "outcome=\"delivery_failed\"", &self.alerts_delivery_failed),
            ("cynex_feed_objects_total", "Objects received from external feeds", "", &self.feed_objects_received),
            ("cynex_job_errors_total", "Background job runs that failed", "", &self.job_errors),
            (
                "cynex_live_events_dropped_total",
                "Live-view events dropped for slow subscribers",
                "",
                &self.live_events_dropped,
            ),
        ];
        let mut out = String::new();
        let mut last = "";
        for (name, help, labels, c) in rows {
            if name != last {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} counter");
                last = name;
            }
            if labels.is_empty() {
                let _ = writeln!(out, "{name} {}", c.get());
            } else {
                let _ = writeln!(out, "{name}{{{labels}}} {}", c.get());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.http_requests.add(3);
        m.ingest_records_quarantined.inc();
        let t = m.render();
        assert!(t.contains("# TYPE cynex_http_requests_total counter\ncynex_http_requests_total 3\n"), "{t}");
        assert!(t.contains("cynex_ingest_records_total{outcome=\"quarantined\"} 1\n"), "{t}");
        assert_eq!(t.matches("# TYPE cynex_ingest_records_total").count(), 1, "one TYPE line per metric");
    }
}
