//! `weir passwd`: mosquitto_passwd's job, writing the same file format (see
//! `weir_door::security::passwd`).

use crate::cli::PasswdArgs;
use anyhow::{bail, Context};
use std::io::Write;
use std::path::Path;
use weir_door::security::passwd::{hash_line, PasswordFile};

/// Adds, replaces or deletes `args.user` in `args.file`, keeping every other line as it was.
pub fn run(args: PasswdArgs) -> anyhow::Result<()> {
    if args.user.is_empty() || args.user.contains(':') {
        bail!("a user name must be non-empty and contain no `:`");
    }
    let existing = if args.create {
        String::new()
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("cannot read {} (-c creates it)", args.file.display()))?
    };
    // Whatever is there must be a password file already: never rewrite something else.
    PasswordFile::parse(&existing, &args.file)?;
    let mut kept: Vec<&str> = Vec::new();
    let mut found = false;
    for line in existing.lines() {
        if line
            .split_once(':')
            .is_some_and(|(user, _)| user == args.user)
            && !line.starts_with('#')
        {
            found = true;
        } else {
            kept.push(line);
        }
    }
    let new_line;
    if args.delete {
        if !found {
            bail!("user {} is not in {}", args.user, args.file.display());
        }
    } else {
        let password = password(&args)?;
        new_line = hash_line(&args.user, &password);
        kept.push(&new_line);
    }
    write_private(&args.file, &(kept.join("\n") + "\n"))
}

fn password(args: &PasswdArgs) -> anyhow::Result<String> {
    match (args.batch, &args.password) {
        (true, Some(password)) => Ok(password.clone()),
        (true, None) => bail!("-b takes the password as the third argument"),
        (false, Some(_)) => bail!("a password on the command line needs -b"),
        (false, None) => {
            let first =
                rpassword::prompt_password("Password: ").context("cannot read a password")?;
            let again = rpassword::prompt_password("Reenter password: ")
                .context("cannot read a password")?;
            if first != again {
                bail!("the passwords do not match");
            }
            Ok(first)
        }
    }
}

/// Writes `text` to `path` through a temporary file beside it, readable by its owner only.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("passwd")
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&temporary)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
        .with_context(|| format!("cannot replace {}", path.display()))?;
    Ok(())
}
