//! In-process cost of a sandboxed run against a plain `std::process::Command`.
//!
//! `cargo bench -p nanobox --bench spawn` — results and the command are recorded in
//! docs/BENCHMARKS.md.

use criterion::{criterion_group, criterion_main, Criterion};
use nanobox::Sandbox;
use std::time::Duration;

fn spawn(c: &mut Criterion) {
    let mut g = c.benchmark_group("run /bin/true");
    g.measurement_time(Duration::from_secs(10));
    g.bench_function("std::process::Command::output", |b| {
        b.iter(|| {
            let out = std::process::Command::new("/bin/true").output().unwrap();
            assert!(out.status.success());
        })
    });
    let sandbox = Sandbox::builder().build().unwrap();
    g.bench_function("nanobox Sandbox::run", |b| {
        b.iter(|| {
            let r = sandbox.run("/bin/true", &[] as &[&str]).unwrap();
            assert!(r.success());
        })
    });
    let with_mount = Sandbox::builder()
        .mount(
            std::env::temp_dir(),
            "/data",
            nanobox::Permission::ReadWrite,
        )
        .build()
        .unwrap();
    g.bench_function("nanobox Sandbox::run + rw mount", |b| {
        b.iter(|| {
            let r = with_mount.run("/bin/true", &[] as &[&str]).unwrap();
            assert!(r.success());
        })
    });
    g.finish();
}

criterion_group!(benches, spawn);
criterion_main!(benches);
