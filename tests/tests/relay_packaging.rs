//! What an operator installs: the sample `contrib/hush.toml` passes `--check-config`, a broken
//! config fails it with the setting named, and the hardened systemd unit in `contrib/systemd`
//! is accepted by `systemd-analyze verify` (when the tool is on the machine) without a warning.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hush_tests::bin_path;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn check_config(config: &Path) -> Output {
    Command::new(bin_path("hush-server"))
        .args(["--check-config", "--config"])
        .arg(config)
        .env_remove("HUSH_DATA")
        .env_remove("HUSH_CONFIG")
        .output()
        .unwrap()
}

#[test]
fn the_sample_config_passes_the_check_and_broken_ones_name_the_setting() {
    let out = check_config(&repo().join("contrib/hush.toml"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));

    let dir = tempfile::tempdir().unwrap();
    for (text, named) in [
        ("max_ttl = \"soon\"\n", "max-ttl"),
        ("no_such_setting = 1\n", "no_such_setting"),
        ("tls_cert = \"/etc/hush/cert.pem\"\n", "tls-key"),
        ("store = \"jetstream\"\n", "nats"),
        ("nats = \"nats://127.0.0.1:4222\"\n", "nats"),
        ("blob_store = \"jetstream\"\n", "blob-store"),
        (
            "store = \"jetstream\"\nnats = \"nats://127.0.0.1:4222\"\nblob_store = \"s3\"\n",
            "blob-store",
        ),
    ] {
        let file = dir.path().join("hush.toml");
        std::fs::write(&file, text).unwrap();
        let out = check_config(&file);
        assert!(!out.status.success(), "{text} passed the check");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(named), "{text}: {err}");
    }
    // Blobs on JetStream go with the JetStream store.
    let file = dir.path().join("hush.toml");
    let text =
        "store = \"jetstream\"\nnats = \"nats://127.0.0.1:4222\"\nblob_store = \"jetstream\"\n";
    std::fs::write(&file, text).unwrap();
    let out = check_config(&file);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `systemd-analyze verify` on a copy of `unit` whose ExecStart names a program that exists;
/// returns its warnings about the unit (it exits 0 even when it has some).
fn verify(unit: &str, dir: &Path) -> Option<String> {
    let file = dir.join("hush-server.service");
    let text = unit.replace(
        "/usr/local/bin/hush-server",
        &bin_path("hush-server").display().to_string(),
    );
    std::fs::write(&file, text).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&file)
        .output()
        .ok()?;
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() || !err.is_empty(),
        "verify failed silently"
    );
    Some(
        err.lines()
            .filter(|l| l.contains("hush-server.service"))
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    let unit = std::fs::read_to_string(repo().join("contrib/systemd/hush-server.service")).unwrap();
    for setting in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "StateDirectory=hush-server",
        "NoNewPrivileges=yes",
        "LimitCORE=0",
        "MemoryDenyWriteExecute=yes",
        "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX",
    ] {
        assert!(unit.lines().any(|l| l == setting), "missing {setting}");
    }
    let dir = tempfile::tempdir().unwrap();
    // The check sees a broken unit: without this, a verify that says nothing proves nothing.
    let broken = unit.replace("ProtectSystem=strict", "ProtectSystem=bogus");
    let Some(warnings) = verify(&broken, dir.path()) else {
        eprintln!("systemd-analyze is not installed; only the settings were checked");
        return;
    };
    assert!(
        warnings.contains("ProtectSystem") || warnings.contains("protect system"),
        "{warnings}"
    );
    let warnings = verify(&unit, dir.path()).unwrap();
    assert!(warnings.is_empty(), "{warnings}");
}
