//! The `cpm-node` binary; everything lives in [`cpm_node::cli`].

fn main() -> std::process::ExitCode {
    cpm_node::cli::main()
}
