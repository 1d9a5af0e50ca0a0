//! The service unit the binary prints is one systemd accepts, and as locked down as we say.

use std::process::Command;

#[test]
fn printed_unit_passes_systemd_analyze() {
    let dir = std::env::temp_dir().join(format!("videomeet-unit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_videomeet"))
        .args(["--print-systemd-unit", "--tls-listen", "0.0.0.0:443"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(&format!(
        "ExecStart={} --tls-listen 0.0.0.0:443\n",
        env!("CARGO_BIN_EXE_videomeet")
    )));
    assert!(text.contains("CapabilityBoundingSet=CAP_NET_BIND_SERVICE\n"));
    let unit = dir.join("videomeet.service");
    std::fs::write(&unit, &text).unwrap();

    let analyze = |args: &[&str]| {
        Command::new("systemd-analyze")
            .args(args)
            .arg(&unit)
            .output()
            .unwrap_or_else(|e| panic!("systemd-analyze (Debian package systemd) is needed: {e}"))
    };
    let verify = analyze(&["verify"]);
    let complaints = String::from_utf8_lossy(&verify.stderr);
    assert!(
        verify.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify: {complaints}"
    );
    // systemd's own score of the sandbox, 0 (locked) to 10 (open); ours printed 1.8.
    let security = analyze(&["security", "--offline=true"]);
    let report = String::from_utf8_lossy(&security.stdout);
    let score: f32 = report
        .split("Overall exposure level for videomeet.service: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure score in: {report}"));
    assert!(score <= 2.0, "exposure {score} > 2.0: {report}");
    let _ = std::fs::remove_dir_all(&dir);
}
