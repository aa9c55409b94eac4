//! The `hush` command-line client.

fn main() -> std::process::ExitCode {
    eprintln!("hush: the command-line client is not implemented yet");
    std::process::ExitCode::from(2)
}
