//! Package signatures: minisign (Ed25519) signatures of `reactor-plugin.json`. Signing uses the
//! `minisign` crate, verifying `minisign-verify`; no cryptography is written here.
//!
//! The trusted keys are minisign public key files (`*.pub`, as `minisign -G` writes them) in a
//! trusted-keys directory.

use std::path::{Path, PathBuf};

use minisign_verify::{Error as VerifyError, PublicKey, Signature};

/// What a package's signature says, once checked against the trusted keys.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// It carries no signature.
    Unsigned,
    /// Signed, and verified with this trusted key file.
    Trusted(PathBuf),
    /// Signed with a key that is not among the trusted ones (its id, as minisign shows it), so
    /// the signature could not be checked.
    UnknownKey(String),
}

/// Checks `signature` (the text of a `.minisig` file, if any) of `data` against every `*.pub`
/// key in `trusted_keys`. `Err` is a bad signature: unreadable, or made with a trusted key's id
/// but not verifying with it, so the data or the signature was changed.
pub fn verify(data: &[u8], signature: Option<&str>, trusted_keys: &Path) -> Result<Verdict, String> {
    let Some(text) = signature else {
        return Ok(Verdict::Unsigned);
    };
    let signature = Signature::decode(text).map_err(|e| format!("its signature is not a minisign signature ({e})"))?;
    for (file, key) in trusted(trusted_keys) {
        match key.verify(data, &signature, false) {
            Ok(()) => return Ok(Verdict::Trusted(file)),
            Err(VerifyError::UnexpectedKeyId) => continue,
            Err(e) => {
                return Err(format!(
                    "its signature does not verify with the trusted key {} ({e}): reactor-plugin.json or its signature was changed after signing; get the package again from its vendor",
                    file.display()
                ))
            }
        }
    }
    Ok(Verdict::UnknownKey(key_id(text)))
}

/// The trusted keys, by file; a file that is not a minisign public key is skipped with a warning,
/// and so is every key when anyone but its owner may add or change keys (as ssh does with
/// `authorized_keys`).
fn trusted(dir: &Path) -> Vec<(PathBuf, PublicKey)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        log::debug!("no trusted keys: cannot read {}", dir.display());
        return Vec::new();
    };
    if writable_by_others(dir) {
        log::warn!(
            "the trusted keys in {} are ignored: the directory is writable by group or others, so anyone could add a key (chmod go-w it)",
            dir.display()
        );
        return Vec::new();
    }
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "pub"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter(|file| {
            let writable = writable_by_others(file);
            if writable {
                log::warn!(
                    "trusted key {} is ignored: it is writable by group or others (chmod go-w it)",
                    file.display()
                );
            }
            !writable
        })
        .filter_map(|file| match PublicKey::from_file(&file) {
            Ok(key) => Some((file, key)),
            Err(e) => {
                log::warn!("trusted key {} is not a minisign public key ({e}); it is ignored", file.display());
                None
            }
        })
        .collect()
}

fn writable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o022 != 0)
}

/// The id of the key a signature was made with, as minisign prints it (16 hex digits).
fn key_id(signature: &str) -> String {
    minisign::SignatureBox::from_string(signature)
        .ok()
        .and_then(|sig| <[u8; 8]>::try_from(sig.keynum()).ok())
        .map_or_else(|| "?".to_owned(), |id| format!("{:016X}", u64::from_le_bytes(id)))
}

/// Signs `data` with the minisign secret key in `key_file`, returning the `.minisig` text. An
/// encrypted key's password comes from `REACTOR_SIGN_PASSWORD`, else it is asked on the terminal.
pub fn sign(data: &[u8], key_file: &Path, trusted_comment: &str) -> Result<String, String> {
    let text = std::fs::read_to_string(key_file)
        .map_err(|e| format!("cannot read {}: {e}; give the secret key file minisign -G wrote", key_file.display()))?;
    let not_a_key = |e: minisign::PError| {
        format!(
            "{} is not a usable minisign secret key ({e}); give the secret key file minisign -G wrote, with its \
             password in REACTOR_SIGN_PASSWORD if it has one",
            key_file.display()
        )
    };
    let key_box = minisign::SecretKeyBox::from_string(&text).map_err(not_a_key)?;
    let key = match key_box.clone().into_unencrypted_secret_key() {
        Ok(key) => key,
        Err(unencrypted) => match key_box.into_secret_key(std::env::var("REACTOR_SIGN_PASSWORD").ok()) {
            Ok(key) => key,
            // Not an encrypted key either: the first error says what is wrong with it.
            Err(e) if e.to_string().contains("not encrypted") => return Err(not_a_key(unencrypted)),
            Err(e) => return Err(not_a_key(e)),
        },
    };
    let signature =
        minisign::sign(None, &key, std::io::Cursor::new(data), Some(trusted_comment), None).map_err(|e| {
            format!("cannot sign with {}: {e}; check the key, or make a new one with minisign -G", key_file.display())
        })?;
    Ok(signature.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key_pair(dir: &Path, name: &str) -> PathBuf {
        let pair = minisign::KeyPair::generate_unencrypted_keypair().expect("key pair");
        let secret = dir.join(format!("{name}.key"));
        std::fs::write(&secret, pair.sk.to_box(None).expect("box").into_string()).expect("write key");
        std::fs::create_dir_all(dir.join("trusted")).expect("mkdir");
        std::fs::write(dir.join("trusted").join(format!("{name}.pub")), pair.pk.to_box().expect("box").into_string())
            .expect("write key");
        // Keys others may change are not trusted: whatever the umask, these are the owner's alone.
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.join("trusted"), std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let public = dir.join("trusted").join(format!("{name}.pub"));
        std::fs::set_permissions(public, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        secret
    }

    #[test]
    fn a_signature_verifies_with_its_trusted_key_and_fails_on_changed_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = key_pair(dir.path(), "vendor");
        let trusted = dir.path().join("trusted");
        let sig = sign(b"manifest", &secret, "package:x 1.0").expect("signed");

        assert_eq!(verify(b"manifest", Some(&sig), &trusted), Ok(Verdict::Trusted(trusted.join("vendor.pub"))));
        let bad = verify(b"manifest!", Some(&sig), &trusted).expect_err("changed data");
        assert!(bad.contains("does not verify with the trusted key"), "{bad}");
        assert_eq!(verify(b"manifest", None, &trusted), Ok(Verdict::Unsigned));
        assert!(verify(b"manifest", Some("garbage"), &trusted).is_err());
    }

    #[test]
    fn keys_that_others_may_change_are_not_trusted() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = key_pair(dir.path(), "vendor");
        let trusted = dir.path().join("trusted");
        let sig = sign(b"manifest", &secret, "c").expect("signed");
        let chmod = |p: &Path, mode| std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).expect("chmod");

        chmod(&trusted.join("vendor.pub"), 0o666);
        assert!(matches!(verify(b"manifest", Some(&sig), &trusted), Ok(Verdict::UnknownKey(_))));
        chmod(&trusted.join("vendor.pub"), 0o644);
        chmod(&trusted, 0o777);
        assert!(matches!(verify(b"manifest", Some(&sig), &trusted), Ok(Verdict::UnknownKey(_))));
        chmod(&trusted, 0o755);
        assert!(matches!(verify(b"manifest", Some(&sig), &trusted), Ok(Verdict::Trusted(_))));
    }

    #[test]
    fn a_signature_by_an_unknown_key_names_the_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let secret = key_pair(dir.path(), "vendor");
        let sig = sign(b"manifest", &secret, "c").expect("signed");
        let empty = dir.path().join("none");
        let Ok(Verdict::UnknownKey(id)) = verify(b"manifest", Some(&sig), &empty) else { panic!("unknown key") };
        assert_eq!(id.len(), 16, "{id}");
    }

    #[test]
    fn a_file_that_is_no_key_cannot_sign() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("k");
        std::fs::write(&file, "untrusted comment: x\nnot base64\n").expect("write");
        let e = sign(b"m", &file, "c").expect_err("no key");
        assert!(e.contains("is not a usable minisign secret key"), "{e}");
    }
}
