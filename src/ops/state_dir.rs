//! The state directory: the TLS certificate and the room store live here, readable by the
//! server's user only (the key and password hashes are in it), each file written whole.

use std::path::{Path, PathBuf};

/// Creates `dir` (and its parents) if needed and makes it 0700. `None`, with a warning, when
/// that fails: the server still runs, it only forgets its certificate and rooms on restart.
pub fn open(dir: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let made = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)));
    match made {
        Ok(()) => Some(dir.to_path_buf()),
        Err(e) => {
            log::warn!(
                "cannot use the state directory {} ({e}): the certificate and rooms will not survive a restart (set --state-dir)",
                dir.display()
            );
            None
        }
    }
}

/// Writes a file only its owner can read, atomically: a temp file, fsync, rename.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(parent) = path.parent() {
        // The rename itself is durable only once the directory is synced.
        if let Ok(dir) = std::fs::File::open(parent) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn made_private_even_if_it_existed_open() {
        let dir = std::env::temp_dir().join(format!("videomeet-state-{}", std::process::id()));
        let nested = dir.join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        std::fs::set_permissions(&nested, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(open(&nested).as_deref(), Some(nested.as_path()));
        let mode = std::fs::metadata(&nested).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unusable_is_none_not_a_crash() {
        assert_eq!(open(Path::new("/proc/videomeet-cannot-be-here")), None);
    }
}
