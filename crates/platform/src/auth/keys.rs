//! API keys: 256-bit random secrets, of which the server keeps only SHA-256
//! hashes (a fast hash: every call is checked, and a random 256-bit secret
//! needs no slow password hash), in a keys file reloaded while running.
//!
//! Keys file: one key per line, `#` comments, fields separated by spaces:
//!
//! ```text
//! # sha256 of the key                                               kind      principal id   [partner]
//! 5d41402abc4b2a76b9719d911017c592ae6d7b2ef5f7a1d3c9a0e2f4b8c6d1e3 partner   hema-shop      hema
//! 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 operator  ops-alice
//! 2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae service   svc-orders
//! ```

use std::{
    fmt,
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
    time::{Duration, SystemTime},
};

use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::{Kind, Principal};

/// Every key starts with this, so a leaked one is recognisable in a scan.
pub const KEY_PREFIX: &str = "cvn_";

/// A new random key, in the clear: show it once, store only its hash.
pub fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// SHA-256 of a key.
pub fn hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// One line of a keys file.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyEntry {
    /// SHA-256 of the key.
    pub hash: [u8; 32],
    /// Who the key is.
    pub principal: Principal,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry").field("principal", &self.principal).finish_non_exhaustive()
    }
}

impl KeyEntry {
    /// The entry of a key in the clear.
    pub fn for_key(key: &str, principal: Principal) -> Self {
        KeyEntry { hash: hash(key), principal }
    }

    /// Its line in a keys file.
    pub fn to_line(&self) -> String {
        let Principal { id, kind, partner } = &self.principal;
        match partner {
            Some(partner) => format!("{} {} {id} {partner}", hex::encode(self.hash), kind.as_str()),
            None => format!("{} {} {id}", hex::encode(self.hash), kind.as_str()),
        }
    }
}

/// Parses a keys file; errors name the line.
pub fn parse(text: &str) -> Result<Vec<KeyEntry>, String> {
    let mut entries = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let at = |what: &str| format!("line {}: {what}", number + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (hash_hex, kind, id, partner) = match fields.as_slice() {
            [hash, kind, id] => (*hash, *kind, *id, None),
            [hash, kind, id, partner] => (*hash, *kind, *id, Some(*partner)),
            _ => return Err(at("expected `<sha256 hex> <kind> <id> [partner]`")),
        };
        let bytes = hex::decode(hash_hex).map_err(|_| at("the hash is not hex"))?;
        let hash: [u8; 32] = bytes.try_into().map_err(|_| at("the hash is not 64 hex digits (SHA-256)"))?;
        let kind: Kind = kind.parse().map_err(|e: String| at(&e))?;
        let principal = match (kind, partner) {
            (Kind::Partner, Some(partner)) => Principal::partner(id, partner),
            (Kind::Partner, None) => return Err(at("a partner key names its partner")),
            (_, Some(_)) => return Err(at("only partner keys name a partner")),
            (kind, None) => Principal { id: id.to_owned(), kind, partner: None },
        };
        entries.push(KeyEntry { hash, principal });
    }
    Ok(entries)
}

/// The keys a server accepts; swapped whole on reload.
#[derive(Debug, Clone, Default)]
pub struct KeyStore {
    entries: Arc<RwLock<Arc<Vec<KeyEntry>>>>,
    /// Counts replacements, so open streams re-check their key.
    replaced: Arc<watch::Sender<u64>>,
}

impl KeyStore {
    /// A store holding `entries`.
    pub fn new(entries: Vec<KeyEntry>) -> Self {
        KeyStore { entries: Arc::new(RwLock::new(Arc::new(entries))), replaced: Arc::default() }
    }

    /// Resolves once `key` is no longer accepted (revoked by a reload);
    /// never, while it is.
    pub fn revoked(&self, key: &str) -> impl Future<Output = ()> + Send + 'static {
        let (store, key, mut replaced) = (self.clone(), key.to_owned(), self.replaced.subscribe());
        async move {
            while replaced.changed().await.is_ok() {
                if store.authenticate(&key).is_none() {
                    return;
                }
            }
            std::future::pending().await
        }
    }

    /// Reads a keys file.
    pub fn load(path: &Path) -> Result<Self, String> {
        Ok(KeyStore::new(read(path)?))
    }

    /// Replaces the keys.
    pub fn replace(&self, entries: Vec<KeyEntry>) {
        *self.entries.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(entries);
        self.replaced.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// How many keys it holds.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether it holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn snapshot(&self) -> Arc<Vec<KeyEntry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Who `key` is. Every stored hash is compared in constant time, and all
    /// of them always are, so timing tells nothing about which one matched.
    pub fn authenticate(&self, key: &str) -> Option<Principal> {
        let presented = hash(key);
        let entries = self.snapshot();
        let mut found: Option<&KeyEntry> = None;
        for entry in entries.iter() {
            if bool::from(entry.hash.ct_eq(&presented)) {
                found = Some(entry);
            }
        }
        found.map(|entry| entry.principal.clone())
    }

    /// Re-reads `path` every `interval` while it changes, until `shutdown`.
    /// A file that does not parse is reported and the previous keys kept.
    pub fn watch(&self, path: PathBuf, interval: Duration, shutdown: CancellationToken) {
        let store = self.clone();
        on_change(vec![path.clone()], interval, shutdown, move || match read(&path) {
            Ok(entries) => {
                tracing::info!(path = %path.display(), keys = entries.len(), "keys file reloaded");
                store.replace(entries);
                crate::metrics::metrics().keys_reloads.with_label_values(&["reloaded"]).inc();
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "keys file not reloaded; keeping the previous keys");
                crate::metrics::metrics().keys_reloads.with_label_values(&["refused"]).inc();
            }
        });
    }
}

fn modified(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Calls `changed` whenever one of `paths` has changed (its modification
/// time or length), looking every `interval` until `shutdown`: how every
/// file of secrets (keys, a service key, TLS certificates) is re-read while
/// serving.
pub(crate) fn on_change(
    paths: Vec<PathBuf>,
    interval: Duration,
    shutdown: CancellationToken,
    mut changed: impl FnMut() + Send + 'static,
) {
    tokio::spawn(async move {
        let stamps = || paths.iter().map(|p| modified(p)).collect::<Vec<_>>();
        let mut seen = stamps();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(interval) => {}
            }
            let now = stamps();
            if now != seen {
                seen = now;
                changed();
            }
        }
    });
}

fn read(path: &Path) -> Result<Vec<KeyEntry>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read keys file {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("keys file {}: {e}", path.display()))
}

/// A service's own key, sent as `authorization: Bearer <key>` on its calls
/// to other services. From a file, it is re-read when the file changes
/// ([`ServiceKey::watch`]), so a rotated key is sent within the reload
/// interval, without a restart. Never printed.
#[derive(Clone)]
pub struct ServiceKey {
    header: Arc<RwLock<http::HeaderValue>>,
    file: Option<PathBuf>,
}

impl fmt::Debug for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceKey").field("file", &self.file).finish_non_exhaustive()
    }
}

impl ServiceKey {
    /// A fixed key.
    pub fn new(key: &str) -> Result<Self, String> {
        Ok(ServiceKey { header: Arc::new(RwLock::new(bearer_header(key)?)), file: None })
    }

    /// The key in `path` (surrounding whitespace ignored), re-read by [`Self::watch`].
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let key = read_service_key(path)?;
        Ok(ServiceKey { header: Arc::new(RwLock::new(bearer_header(&key)?)), file: Some(path.to_owned()) })
    }

    /// The `authorization` value to send now.
    pub fn header(&self) -> http::HeaderValue {
        self.header.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the key's file every `interval` while it changes, until
    /// `shutdown`. A file that cannot be read, or holds no key, is reported
    /// and the previous key kept. Does nothing for a fixed key.
    pub fn watch(&self, interval: Duration, shutdown: CancellationToken) {
        let Some(path) = self.file.clone() else { return };
        let header = self.header.clone();
        on_change(vec![path.clone()], interval, shutdown, move || {
            match read_service_key(&path).and_then(|key| bearer_header(&key)) {
                Ok(value) => {
                    *header.write().unwrap_or_else(|e| e.into_inner()) = value;
                    tracing::info!(path = %path.display(), "service key reloaded");
                }
                Err(e) => {
                    tracing::error!(path = %path.display(), error = %e, "service key not reloaded; keeping the previous one")
                }
            }
        });
    }
}

fn read_service_key(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(format!("{} holds no key", path.display()));
    }
    Ok(key.to_owned())
}

/// `Bearer <key>`, marked sensitive so no log or debug output shows it.
fn bearer_header(key: &str) -> Result<http::HeaderValue, String> {
    let mut value = http::HeaderValue::from_str(&format!("Bearer {key}"))
        .map_err(|_| "a service key must be printable ASCII without spaces".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_256_bits_and_authenticate_by_hash() {
        let key = generate();
        assert!(key.starts_with(KEY_PREFIX));
        assert_eq!(key.len(), KEY_PREFIX.len() + 64);
        assert_ne!(generate(), key);
        let store = KeyStore::new(vec![KeyEntry::for_key(&key, Principal::partner("hema-shop", "hema"))]);
        assert_eq!(store.authenticate(&key).unwrap().partner.as_deref(), Some("hema"));
        assert_eq!(store.authenticate(&generate()), None);
        assert_eq!(store.authenticate(""), None);
    }

    #[test]
    fn keys_files_round_trip_and_errors_name_the_line() {
        let entries = vec![
            KeyEntry::for_key("a", Principal::partner("hema-shop", "hema")),
            KeyEntry::for_key("b", Principal { id: "ops".into(), kind: Kind::Operator, partner: None }),
            KeyEntry::for_key("c", Principal { id: "svc-orders".into(), kind: Kind::Service, partner: None }),
        ];
        let text = format!("# keys\n\n{}\n", entries.iter().map(KeyEntry::to_line).collect::<Vec<_>>().join("\n"));
        assert_eq!(parse(&text).unwrap(), entries);
        for (bad, line) in [
            ("zz operator x", "line 1"),
            ("\nabcd operator x", "line 2"),
            (&format!("{} partner x", hex::encode([0u8; 32])), "line 1: a partner key names its partner"),
            (&format!("{} king x", hex::encode([0u8; 32])), "line 1"),
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.starts_with(line), "{err}");
        }
    }

    #[test]
    fn debug_never_shows_a_hash() {
        let entry = KeyEntry::for_key("secret", Principal::partner("p", "hema"));
        assert!(!format!("{entry:?}").contains(&hex::encode(entry.hash)));
    }
}
