//! Prints how long building a sandbox and running /bin/true in it take (a quick check while
//! optimising; the benchmark of record is `cargo bench -p nanobox --bench spawn`).
fn main() {
    let t = std::time::Instant::now();
    let sb = nanobox::Sandbox::builder().build().unwrap();
    let build = t.elapsed();
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    let t = std::time::Instant::now();
    for _ in 0..n {
        assert!(sb.run("/bin/true", &[] as &[&str]).unwrap().success());
    }
    eprintln!(
        "build {:?}, run /bin/true {:?} on average over {n}",
        build,
        t.elapsed() / n
    );
}
