//! `ldirectord`: the drop-in binary. Everything lives in the library; this only picks the
//! entry point and hands it the arguments and the standard streams: a cluster entry point
//! ([`ldirectord::cluster::dispatch`]: `--ocf ACTION`, `realserver ...`), else the drop-in
//! command line ([`ldirectord::cli::run`]).
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // Unlocked handles: the daemon's threads log to these streams too, and a lock held here
    // for the whole run would block every thread but this one.
    let (out, err) = (&mut std::io::stdout(), &mut std::io::stderr());
    let code = match ldirectord::cluster::dispatch(&args, out, err) {
        Some(code) => code,
        None => ldirectord::cli::run(&args, out, err),
    };
    std::process::exit(code);
}
