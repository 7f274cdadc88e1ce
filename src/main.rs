//! `ldirectord`: the drop-in binary. Everything lives in the library; this only hands the
//! arguments and the standard streams to [`ldirectord::cli::run`].
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Unlocked handles: the daemon's threads log to these streams too, and a lock held here
    // for the whole run would block every thread but this one.
    let code = ldirectord::cli::run(&args, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
