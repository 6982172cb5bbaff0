use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = iap_sidecar::cli::Cli::parse();
    match iap_sidecar::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
