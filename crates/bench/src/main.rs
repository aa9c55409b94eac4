//! `hush-bench`: load generator and benchmark driver for the hush relay.

fn main() -> std::process::ExitCode {
    eprintln!("hush-bench: not implemented yet");
    std::process::ExitCode::from(2)
}
