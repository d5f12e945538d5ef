//! API keys from the command line: `caravan keys create`, and the
//! development keys `caravan up` creates on first start.

use std::{
    collections::HashMap,
    fs,
    io::Write as _,
    path::{Path, PathBuf},
};

use anyhow::Context as _;
use caravan_platform::{
    auth::{
        Kind, Principal,
        keys::{self, KeyEntry, KeyStore},
    },
    config::ServiceKind,
};

/// Appends the entry of a new key to `keys_file` (created if missing) and
/// returns the key, to be shown once.
pub fn create(principal: Principal, keys_file: Option<&Path>) -> anyhow::Result<(String, KeyEntry)> {
    let key = keys::generate();
    let entry = KeyEntry::for_key(&key, principal);
    if let Some(path) = keys_file {
        if path.exists() {
            let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            keys::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        }
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("opening {}", path.display()))?;
        writeln!(file, "{}", entry.to_line())?;
    }
    Ok((key, entry))
}

/// The development keys of `caravan up`.
#[derive(Debug)]
pub struct DevKeys {
    /// The hashes the servers accept (`<data>/keys.txt`).
    pub store: KeyStore,
    /// Where they are.
    pub keys_file: PathBuf,
    /// Each service's own key, for its calls to the others.
    pub service_keys: HashMap<ServiceKind, String>,
    /// Where the plain keys are (mode 0600, development only).
    pub plain_file: PathBuf,
    /// Whether they were created by this start (and so printed).
    pub created: bool,
}

/// Names of the development keys in `dev-keys.txt`.
const OPERATOR: &str = "operator";
const PARTNERS: [(&str, &str); 2] = [("partner:hema", "hema"), ("partner:douyin", "douyin")];

/// Loads the development keys under `data_dir`, creating them on first start.
pub fn dev_keys(data_dir: &Path) -> anyhow::Result<DevKeys> {
    fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let keys_file = data_dir.join("keys.txt");
    let plain_file = data_dir.join("dev-keys.txt");
    let mut created = false;
    if !(keys_file.exists() && plain_file.exists()) {
        write_dev_keys(&keys_file, &plain_file)?;
        created = true;
    }
    let store = KeyStore::load(&keys_file).map_err(anyhow::Error::msg)?;
    let plain = read_plain(&plain_file)?;
    let mut service_keys = HashMap::new();
    for kind in ServiceKind::ALL {
        let key = plain.get(&format!("service:{kind}")).with_context(|| {
            format!("{} has no key for service {kind}; delete it to start over", plain_file.display())
        })?;
        service_keys.insert(kind, key.clone());
    }
    Ok(DevKeys { store, keys_file, service_keys, plain_file, created })
}

fn write_dev_keys(keys_file: &Path, plain_file: &Path) -> anyhow::Result<()> {
    let mut principals: Vec<(String, Principal)> = vec![(OPERATOR.to_owned(), Principal::operator("ops-dev"))];
    for (name, partner) in PARTNERS {
        principals.push((name.to_owned(), Principal::partner(&format!("{partner}-dev"), partner)));
    }
    for kind in ServiceKind::ALL {
        principals.push((format!("service:{kind}"), Principal::service(&format!("svc-{kind}"))));
    }
    let mut hashes = String::from("# caravan up development keys: SHA-256 hashes, kind, principal id, partner\n");
    let mut plain =
        String::from("# DEVELOPMENT ONLY: the plain keys of keys.txt. Never use these outside your machine.\n");
    for (name, principal) in principals {
        let key = keys::generate();
        hashes.push_str(&KeyEntry::for_key(&key, principal).to_line());
        hashes.push('\n');
        plain.push_str(&format!("{name} {key}\n"));
    }
    write_private(plain_file, &plain)?;
    fs::write(keys_file, hashes).with_context(|| format!("writing {}", keys_file.display()))?;
    Ok(())
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.create(true).write(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

fn read_plain(path: &Path) -> anyhow::Result<HashMap<String, String>> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| l.split_once(' ').map(|(name, key)| (name.to_owned(), key.trim().to_owned())))
        .collect())
}

/// The lines of the plain development keys a person uses (no service keys).
pub fn printable_dev_keys(path: &Path) -> anyhow::Result<String> {
    let plain = read_plain(path)?;
    let mut out = String::new();
    for name in std::iter::once(OPERATOR).chain(PARTNERS.iter().map(|(n, _)| *n)) {
        if let Some(key) = plain.get(name) {
            out.push_str(&format!("  {name:<16} {key}\n"));
        }
    }
    Ok(out)
}

/// Parses `--kind` with `--partner`.
pub fn principal(kind: Kind, id: Option<String>, partner: Option<String>) -> anyhow::Result<Principal> {
    match (kind, partner) {
        (Kind::Partner, Some(partner)) => {
            let id = id.unwrap_or_else(|| format!("{partner}-{}", &uuid_suffix()));
            Ok(Principal::partner(&id, &partner))
        }
        (Kind::Partner, None) => anyhow::bail!("--kind partner needs --partner <partner id>, e.g. --partner hema"),
        (_, Some(_)) => anyhow::bail!("--partner is only for --kind partner"),
        (kind, None) => {
            let id = id.unwrap_or_else(|| format!("{kind}-{}", &uuid_suffix()));
            Ok(Principal { id, kind, partner: None })
        }
    }
}

fn uuid_suffix() -> String {
    keys::generate()[keys::KEY_PREFIX.len()..][..8].to_owned()
}
