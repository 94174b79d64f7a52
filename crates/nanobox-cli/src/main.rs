//! The `nanobox` command (see the library part, `nanobox_cli`, for what it does).

fn main() -> std::process::ExitCode {
    std::process::ExitCode::from(nanobox_cli::main_from(std::env::args_os()))
}
