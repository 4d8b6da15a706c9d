//! `triproxy-load`: the benchmark tool behind BENCHMARKS.md. See
//! `triproxy_conformance::load` for what it measures and how.

fn main() -> std::process::ExitCode {
    triproxy_conformance::load::cli::main()
}
