//! The README's example: run python3 in a sandbox with a read-only input directory.
use nanobox::{Permission, Sandbox};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let input = std::env::temp_dir();
    let sandbox = Sandbox::builder()
        .mount(&input, "/input", Permission::ReadOnly)
        .wall_time_limit(Duration::from_secs(30))
        .no_network()
        .build()?;
    let result = sandbox.run("python3", &["-c", "print('hello')"])?;
    println!("{}", result.stdout.trim_end()); // hello
    eprintln!("{result}");
    Ok(())
}
