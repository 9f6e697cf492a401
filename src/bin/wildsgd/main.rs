//! The `wildsgd` command-line program. See `wildsgd --help` and SPEC.md.
//!
//! Exit codes: 0 success, 2 bad usage or bad input (the message names the file, line
//! and token), 1 any other failure.

mod args;
mod cmd;
mod plot;
mod progress;
mod words;

use std::io::{self, IsTerminal};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use args::{Cli, Command};

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let cli = match parsed {
        Ok((cli, m)) => {
            args::record_given(&m);
            cli
        }
        Err(e) if e.use_stderr() => {
            // One line, as every other error: clap's first (`error: ...`).
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad usage"));
            return ExitCode::from(2);
        }
        Err(e) => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
    };
    // SIGINT, SIGTERM, SIGHUP: remove the temporary files of outputs not yet committed
    // (the outputs themselves are untouched), then exit as interrupted.
    let _ = ctrlc::set_handler(|| {
        wildsgd::atomic::remove_pending();
        eprintln!("\ninterrupted: no output was written");
        std::process::exit(130);
    });
    wildsgd::memory::set_budget(cli.max_memory);
    let result = match cli.command {
        Command::Info(a) => cmd::info::run(&a),
        Command::Gen(g) => cmd::generate::run(g),
        Command::Train(a) => cmd::train::run(&a),
        Command::Predict(a) => cmd::predict::predict(&a),
        Command::Eval(a) => cmd::predict::eval(&a),
        Command::Recommend(a) => cmd::predict::recommend(&a),
        Command::Compare(a) => cmd::compare::run(&a),
        Command::Bench(a) => cmd::bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (e.g. `wildsgd info x | head`) is not a failure.
            if e.chain().any(|c| {
                c.downcast_ref::<io::Error>()
                    .is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            let lib = e.chain().find_map(|c| c.downcast_ref::<wildsgd::Error>());
            let bad_input = lib.is_some_and(wildsgd::Error::is_bad_input);
            let text = format!("{e:#}");
            // A library setting's name becomes its flag; a data file's text is not touched.
            let text = match lib {
                Some(wildsgd::Error::Parse(_)) | None => text,
                Some(_) => words::in_flags(&text),
            };
            let prefix = if io::stderr().is_terminal() {
                "\x1b[1;31merror\x1b[0m"
            } else {
                "error"
            };
            eprintln!("{prefix}: {text}");
            ExitCode::from(if bad_input { 2 } else { 1 })
        }
    }
}
