//! `cargo xtask bench --fake` end to end at a tiny N: the binary re-executes itself per N and
//! prints the table and the verdicts.

#[test]
fn bench_fake_prints_its_table_and_verdicts() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["bench", "--fake", "--fake-links", "20,40", "--fake-budget", "120"])
        .output()
        .expect("xtask runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in
        ["| 20 | 1 | 1 | 2 |", "| 40 |", "planner per pass: N = 20: 1.00x, N = 40: ", "steady pass CPU", "peak RSS"]
    {
        assert!(stdout.contains(expected), "{expected:?} missing from:\n{stdout}");
    }
}
