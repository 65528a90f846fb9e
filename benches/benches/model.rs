//! The model's speed: simulated seconds per wall second for a 24-hour,
//! 7-channel SPICE session with server pings (goal: the day in < 10 ms).
//! Baselines in the same run: the bare event queue pushing and popping as
//! many events as the run takes steps (the floor of any discrete-event
//! loop), and a memcpy of the verdict's JSON bytes.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tether::model::clock::EventQueue;
use tether::model::registry::run_timeline;
use tether::timeline::Micros;
use tether::timeline::synthetic::Timeline;

const DAY: &str = "horizon = \"24h\"\n";
const DAY_TYPING: &str = "horizon = \"24h\"\n[[event]]\nkind = \"user_active\"\nfrom = \"0s\"\nto = \"24h\"\nevery = \"5s\"\n";

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("model");
    g.sample_size(20);
    for (name, text, profile) in [
        ("idle_day_spice_gtk", DAY, "spice-gtk"),
        ("idle_day_ryll_landed", DAY, "spice-ryll@phase02"),
        ("typing_day_ryll_landed", DAY_TYPING, "spice-ryll@phase02"),
    ] {
        let t = Timeline::parse(text, name).unwrap();
        let v = run_timeline(&t, name, profile, &[]).unwrap();
        assert_eq!(v.outcome.as_str(), "survived");
        let steps = v.steps;
        eprintln!("{name}: {steps} steps");
        // Throughput in simulated seconds.
        g.throughput(Throughput::Elements(86_400));
        g.bench_function(BenchmarkId::new("sim_seconds", name), |b| {
            b.iter(|| black_box(run_timeline(black_box(&t), name, profile, &[]).unwrap()))
        });
        g.bench_function(BenchmarkId::new("event_queue_floor", name), |b| {
            b.iter(|| {
                let mut q = EventQueue::new();
                let mut sum = 0u64;
                for i in 0..steps {
                    q.push(Micros(i * 7919 % 1_000_003), i);
                    if i % 2 == 1 {
                        sum = sum.wrapping_add(q.pop().map_or(0, |(_, e)| e));
                    }
                }
                while let Some((_, e)) = q.pop() {
                    sum = sum.wrapping_add(e);
                }
                black_box(sum)
            })
        });
        let json = v.to_json().into_bytes();
        g.bench_function(BenchmarkId::new("memcpy_verdict_json", name), |b| {
            let mut dst = vec![0u8; json.len()];
            b.iter(|| {
                dst.copy_from_slice(black_box(&json));
                black_box(&dst);
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
