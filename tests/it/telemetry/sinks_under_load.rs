//! A dead sink (connection refused) and a slow sink (one batch a second, a queue of 16) while
//! 300 requests run 30 at a time: every request answers as it would without them, every event
//! the dead sink could not take is counted as a failure, and the slow sink's events are either
//! delivered or counted as dropped, in the sink's stats and in Prometheus.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};

use super::callbacks::{chat, gateway, receiver, upstream};
use super::metrics::scrape;
use crate::common::db::TestDb;
use crate::common::mock_upstream::Reply;
use crate::common::{MASTER_KEY, eventually};

const REQUESTS: usize = 300;
const WAIT: Duration = Duration::from_secs(30);

#[tokio::test]
async fn dead_and_slow_sinks_during_load_change_no_answer_and_are_counted() {
    let db = TestDb::create().await;
    let up = upstream().await;
    let slow = receiver(|| {
        Reply::Delay(
            Duration::from_secs(1),
            Box::new(Reply::status(202, json!({}))),
        )
    })
    .await;
    // a port nothing listens on
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let gw = gateway(
        &db,
        &up,
        "  callbacks: [prometheus, generic_api, datadog]\n  callback_queue_size: 16",
        &format!(
            "  GENERIC_LOGGER_ENDPOINT: \"http://127.0.0.1:{dead_port}/log\"\n  DD_API_KEY: dd\n  DD_BASE_URL: \"http://{}\"",
            slow.addr
        ),
    )
    .await;
    let reference = chat(&gw, MASTER_KEY, "load").await;
    assert_eq!(reference.status, 200, "{}", reference.text());
    let expected = reference.json()["choices"].clone();

    let answers: Vec<(u16, Value)> = futures_util::stream::iter(0..REQUESTS)
        .map(|_| {
            let gw = &gw;
            async move {
                let r = chat(gw, MASTER_KEY, "load").await;
                (r.status.as_u16(), r.json()["choices"].clone())
            }
        })
        .buffer_unordered(30)
        .collect()
        .await;
    for (status, choices) in &answers {
        assert_eq!(*status, 200);
        assert_eq!(choices, &expected);
    }
    let total = REQUESTS as u64 + 1;

    // every event of both sinks accounted for: delivered, failed or dropped
    let state = gw.gw.state();
    let accounted = || {
        let (sent, dropped, failed) = state.callbacks.load().totals();
        sent + dropped + failed == 2 * total
    };
    assert!(
        eventually(WAIT, accounted).await,
        "{:?}",
        state.callbacks.load().totals()
    );
    let s = scrape(&gw).await;
    let of = |family: &str, name: &str| s.sum(family, &[("callback_name", name)]) as u64;
    let failures = "tianji_callback_logging_failures_metric_total";
    let drops = "tianji_callback_events_dropped_metric_total";
    // the dead sink: every event failed (or was dropped), each counted once
    assert_eq!(of(failures, "generic_api"), total);
    // the slow sink: what it did not receive was dropped, and only that counts as a failure
    let received = slow
        .requests()
        .iter()
        .map(|r| r.json().as_array().map_or(0, Vec::len) as u64)
        .sum::<u64>();
    let dropped = of(drops, "datadog");
    assert!(dropped > 0, "a queue of 16 at 30 requests at a time drops");
    assert_eq!(
        received + dropped,
        total,
        "received {received}, dropped {dropped}"
    );
    assert_eq!(of(failures, "datadog"), dropped);
}
