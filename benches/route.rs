//! Cost of routing one request: resolve the model group, let the router choose one of its 4
//! deployments, count it in flight and report its outcome (what every request pays). The
//! issue's target: at most 2 us per request with `simple-shuffle`.
//! Run: `cargo bench --bench route`.
// Bench code: a failure should stop the bench loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[cfg(all(feature = "mimalloc", not(feature = "jemalloc")))]
#[global_allocator]
static GLOBAL: tianji::util::alloc::Mimalloc = tianji::util::alloc::Mimalloc;

#[cfg(feature = "jemalloc")]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tianji::providers::Catalog;
use tianji::router::ModelTable;
use tianji::router::balancer::{Ask, Balancer, InFlight};
use tianji::router::policy::Policy;
use tianji::router::strategy::Strategy;

fn table() -> ModelTable {
    let mut yaml = String::from("model_list:\n");
    for i in 0..4 {
        yaml.push_str(&format!(
            "  - model_name: m\n    tianji_params: {{model: openai/gpt-4o-mini, api_base: \"http://10.0.0.{i}:8000/v1\", api_key: sk-{i}, rpm: {}}}\n",
            100 * (i + 1)
        ));
    }
    let l = tianji::Loaded::from_yaml(&yaml).unwrap();
    ModelTable::build(&l.config, Arc::new(Catalog::builtin().unwrap()), l.env).unwrap()
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let table = table();
    for strategy in [
        Strategy::SimpleShuffle,
        Strategy::LeastBusy,
        Strategy::LatencyBased,
        Strategy::UsageBased,
    ] {
        let policy = Policy {
            routing_strategy: strategy,
            ..Policy::default()
        };
        let router = Balancer::new(policy.clone(), None);
        let name = serde_json::to_value(strategy).unwrap();
        c.bench_function(
            &format!("route 4 deployments, {}", name.as_str().unwrap()),
            |b| {
                b.iter(|| {
                    let resolved = table.resolve(black_box("m")).unwrap();
                    let dep = router
                        .choose(&policy, "m", &resolved.group, &[], Ask::default())
                        .unwrap();
                    let flight = InFlight::new(&dep.stats);
                    router.report(
                        &policy,
                        &dep,
                        resolved.group.len(),
                        None,
                        Duration::from_micros(900),
                    );
                    flight.used(250);
                    black_box(&dep);
                })
            },
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
