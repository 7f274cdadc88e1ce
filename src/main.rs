//! `ldirectord`: the drop-in binary. Everything lives in the library; this only hands the
//! arguments and the standard streams to [`ldirectord::cli::run`].
#![forbid(unsafe_code)]

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let code = ldirectord::cli::run(
        &args,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    std::process::exit(code);
}
