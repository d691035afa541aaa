//! `bookinfo-ceiling`: see the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match bookinfo_ceiling::run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bookinfo-ceiling: {err}");
            ExitCode::from(2)
        }
    }
}
