//! Prints how long building a sandbox and running /bin/true in it take (a quick check while
//! optimising; the benchmark of record is `cargo bench -p nanobox-sandbox --bench spawn`).
//!
//! `timing [N] [MEMORY_BYTES]`: N runs (default 20), with a memory limit when MEMORY_BYTES is
//! given (which makes every run create, fill and remove a cgroup; for a caller without a cgroup
//! of its own, `build()` also gets a scope from systemd's user manager).
fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().and_then(|a| a.parse().ok()).unwrap_or(20);
    let memory: Option<u64> = args.next().and_then(|a| a.parse().ok());
    let t = std::time::Instant::now();
    let mut b = nanobox::Sandbox::builder();
    if let Some(m) = memory {
        b = b.memory_limit(m);
    }
    let sb = b.build().unwrap();
    let build = t.elapsed();
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(sb.run("/bin/true", &[] as &[&str]).unwrap().success());
    }
    eprintln!(
        "build {:?}, run /bin/true {:?} on average over {n}{}",
        build,
        t.elapsed() / n,
        memory
            .map(|m| format!(" (memory_limit {m})"))
            .unwrap_or_default()
    );
}
