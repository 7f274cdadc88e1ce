//! Parse one ldirectord.cf and print a summary: `cargo run -p ldirectord-parsers --example
//! parse_file -- FILE [REPEAT]`. Used to profile the parser (e.g. under callgrind).
fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: parse_file FILE [REPEAT]");
    let repeat: usize = args
        .next()
        .map(|n| n.parse().expect("REPEAT is a number"))
        .unwrap_or(1);
    let text = std::fs::read_to_string(&path).expect("readable file");
    let opts = ldirectord_parsers::config::ParseOptions {
        check_files: false,
        ..Default::default()
    };
    for _ in 0..repeat {
        match ldirectord_parsers::config::parse_with(&text, std::path::Path::new(&path), &opts) {
            Ok(p) => println!(
                "{} virtuals, {} warnings",
                p.config.virtuals.len(),
                p.warnings.len()
            ),
            Err(e) => println!("{}", e.error),
        }
    }
}
