//! Reading the store passphrase: from the terminal without echo, or from `HUSH_PASSPHRASE` when
//! stdin is not a terminal (scripts, tests).
//!
//! What it does not do: derive keys (the client library runs Argon2id) or keep the passphrase
//! once the store is open. The text is zeroized when dropped.

use std::io::{self, IsTerminal};

use anyhow::{bail, Context, Result};
use zeroize::Zeroizing;

/// The environment variable read when stdin is not a terminal.
pub(crate) const ENV: &str = "HUSH_PASSPHRASE";

/// Reads the passphrase; `confirm` asks twice on a terminal (for a new store).
pub(crate) fn read(confirm: bool) -> Result<Zeroizing<String>> {
    if io::stdin().is_terminal() {
        read_from_terminal(confirm)
    } else {
        from_env(std::env::var(ENV).ok())
    }
}

fn read_from_terminal(confirm: bool) -> Result<Zeroizing<String>> {
    let first = Zeroizing::new(
        rpassword::prompt_password("hush passphrase: ")
            .context("cannot read the passphrase from the terminal")?,
    );
    check(&first)?;
    if confirm {
        let again = Zeroizing::new(
            rpassword::prompt_password("repeat the passphrase: ")
                .context("cannot read the passphrase from the terminal")?,
        );
        if *again != *first {
            bail!("the two passphrases differ; nothing was created, run the command again");
        }
    }
    Ok(first)
}

fn from_env(value: Option<String>) -> Result<Zeroizing<String>> {
    let Some(value) = value.map(Zeroizing::new) else {
        bail!(
            "this store needs its passphrase, and stdin is not a terminal: set {ENV} or run the command on a terminal"
        );
    };
    check(&value)?;
    Ok(value)
}

fn check(passphrase: &str) -> Result<()> {
    if passphrase.is_empty() {
        bail!("the passphrase is empty; choose one, or run `hush init` without --passphrase to use a key file");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_environment_is_used_and_must_be_set_and_non_empty() {
        assert_eq!(
            from_env(Some("correct horse".into())).unwrap().as_str(),
            "correct horse"
        );
        assert!(from_env(None).unwrap_err().to_string().contains(ENV));
        assert!(from_env(Some(String::new()))
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
