fn main() -> std::process::ExitCode {
    cynex::cli::main()
}
