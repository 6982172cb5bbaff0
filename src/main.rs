use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = iap_sidecar::cli::Cli::parse();
    match iap_sidecar::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        // The reader went away (`… | head`): nothing more to say, and nobody to say it to.
        Err(iap_sidecar::cli::CliError::Io(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
