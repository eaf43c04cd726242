//! API tokens: the tokens file (JSON, token hash -> tenant and role), creating, listing and
//! revoking entries, and looking up a presented bearer token.
//!
//! Only blake3 hashes of tokens are stored. A presented token is hashed and compared with
//! `blake3::Hash`'s constant-time equality, so neither the file nor response timing reveals
//! a token. A token is shown once, when created.
//!
//! A token may carry an expiry (`token create --expires`). It is checked against the clock on
//! every request, not when the file is loaded, so a token stops working at its time without a
//! reload; an expired token is refused with its own reason, and `token list` marks it.

use std::collections::HashMap;
use std::path::Path;
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

/// What a token may do. A role belongs to one tier (team edge or cloud) and includes the
/// roles of its tier listed before it; it grants nothing on the other tier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Team edge: query units, read patterns and stats.
    Read,
    /// Team edge: also send deltas and name patterns.
    Write,
    /// Team edge: everything (reserved for operations).
    Admin,
    /// Cloud tier: ask how common fingerprints are across the organisation.
    CloudRead,
    /// Cloud tier: also push a team edge's statistics (what a team edge's cloud token needs).
    CloudPush,
}

/// Which server a token is for. A team edge refuses cloud tokens and the cloud refuses team
/// tokens, even when both are listed in one tokens file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    Team,
    Cloud,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
            Role::Admin => "admin",
            Role::CloudRead => "cloud-read",
            Role::CloudPush => "cloud-push",
        }
    }

    pub fn tier(self) -> Tier {
        match self {
            Role::Read | Role::Write | Role::Admin => Tier::Team,
            Role::CloudRead | Role::CloudPush => Tier::Cloud,
        }
    }

    /// Whether a token with this role may do what `needed` allows.
    pub fn grants(self, needed: Role) -> bool {
        self.tier() == needed.tier() && self >= needed
    }
}

/// One line of the tokens file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenEntry {
    /// Short public id (first 8 hex characters of the hash) used to list and revoke.
    pub id: String,
    /// blake3 of the token, hex.
    pub hash: String,
    pub tenant: String,
    pub role: Role,
    pub created_unix: u64,
    /// Unix second from which the token is refused; absent: it never expires. Optional in the
    /// file, so files written before expiry existed load unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_unix: Option<u64>,
}

impl TokenEntry {
    /// Whether the token is refused at `now_unix` because its time has passed.
    pub fn expired_at(&self, now_unix: u64) -> bool {
        self.expires_unix.is_some_and(|expires| now_unix >= expires)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokensFile {
    pub tokens: Vec<TokenEntry>,
}

/// Who is calling, once the token checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant: String,
    pub role: Role,
    pub token_id: String,
    /// The token's hash, the key of its rate limit.
    pub token_hash: [u8; 32],
}

/// Why a presented token was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such token in the table: never issued, revoked, or mistyped.
    Unknown,
    /// The token exists but its expiry has passed.
    Expired { token_id: String, expires_unix: u64 },
}

/// The tokens in force, indexed by hash.
#[derive(Debug, Default)]
pub struct TokenTable {
    by_hash: HashMap<[u8; 32], TokenEntry>,
}

/// Prefix of team edge tokens; cloud tokens start with [`CLOUD_TOKEN_PREFIX`] so that a
/// person can tell them apart (the server decides by the role stored with the hash).
const TOKEN_PREFIX: &str = "pe1_";
const CLOUD_TOKEN_PREFIX: &str = "pc1_";

pub fn hash_token(token: &str) -> blake3::Hash {
    blake3::hash(token.as_bytes())
}

impl TokensFile {
    /// Reads the file for the token commands, which create it: a missing file is an empty
    /// table.
    pub fn load(path: &Path) -> anyhow::Result<TokensFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("parse tokens file {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TokensFile::default()),
            Err(error) => Err(error).with_context(|| format!("read tokens file {}", path.display())),
        }
    }

    /// Reads the file a server serves from, which must exist: a server started on a mistyped
    /// path, or one whose file vanished before a reload, would otherwise refuse every request
    /// while looking healthy. A malformed file's error gives the line and column.
    pub fn load_existing(path: &Path) -> anyhow::Result<TokensFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("parse tokens file {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => bail!(
                "tokens file {} does not exist; create it with `periodic-edge token create --tokens {} --tenant NAME --role ROLE` \
                 (or write {{\"tokens\": []}} there to start with none)",
                path.display(),
                path.display()
            ),
            Err(error) => Err(error).with_context(|| format!("read tokens file {}", path.display())),
        }
    }

    /// Writes atomically (temporary file, then rename), readable by the owner only.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        let temporary = path.with_extension("tmp");
        std::fs::write(&temporary, text).with_context(|| format!("write {}", temporary.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o600))?;
        }
        std::fs::rename(&temporary, path).with_context(|| format!("replace {}", path.display()))?;
        Ok(())
    }

    /// Adds a new random token, refused from `expires_unix` on when given, and returns it (the
    /// only time it exists in clear).
    pub fn create(&mut self, tenant: &str, role: Role, expires_unix: Option<u64>) -> anyhow::Result<String> {
        if tenant.is_empty() || tenant.len() > 128 || !tenant.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            bail!("tenant names use 1-128 characters among letters, digits, '-', '_' and '.'");
        }
        let mut secret = [0u8; 32];
        getrandom::fill(&mut secret).map_err(|error| anyhow::anyhow!("no randomness from the OS: {error}"))?;
        let prefix = match role.tier() {
            Tier::Team => TOKEN_PREFIX,
            Tier::Cloud => CLOUD_TOKEN_PREFIX,
        };
        let token = format!("{prefix}{}", secret.iter().map(|byte| format!("{byte:02x}")).collect::<String>());
        let hash = hash_token(&token).to_hex().to_string();
        let created_unix = crate::clock::now_unix();
        self.tokens.push(TokenEntry { id: hash[..8].to_string(), hash, tenant: tenant.to_string(), role, created_unix, expires_unix });
        Ok(token)
    }

    /// Removes the token with this id; returns whether one was removed.
    pub fn revoke(&mut self, id: &str) -> bool {
        let before = self.tokens.len();
        self.tokens.retain(|entry| entry.id != id);
        before != self.tokens.len()
    }
}

impl TokenTable {
    pub fn from_file(file: &TokensFile) -> anyhow::Result<TokenTable> {
        let mut by_hash = HashMap::new();
        for entry in &file.tokens {
            let hash = blake3::Hash::from_hex(&entry.hash).with_context(|| format!("token {} has a malformed hash", entry.id))?;
            by_hash.insert(*hash.as_bytes(), entry.clone());
        }
        Ok(TokenTable { by_hash })
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// The public ids of the tokens in force, sorted.
    pub fn ids(&self) -> std::collections::BTreeSet<String> {
        self.by_hash.values().map(|entry| entry.id.clone()).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The caller a presented token stands for at `now_unix`, or why it is refused.
    pub fn authenticate(&self, presented: &str, now_unix: u64) -> Result<Caller, Refusal> {
        let presented_hash = hash_token(presented);
        let entry = self.by_hash.get(presented_hash.as_bytes()).ok_or(Refusal::Unknown)?;
        // The map lookup found a candidate; confirm with a constant-time comparison.
        let stored = blake3::Hash::from_hex(&entry.hash).map_err(|_| Refusal::Unknown)?;
        if stored != presented_hash {
            return Err(Refusal::Unknown);
        }
        if let Some(expires_unix) = entry.expires_unix
            && entry.expired_at(now_unix)
        {
            return Err(Refusal::Expired { token_id: entry.id.clone(), expires_unix });
        }
        Ok(Caller { tenant: entry.tenant.clone(), role: entry.role, token_id: entry.id.clone(), token_hash: *presented_hash.as_bytes() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_tokens_authenticate_and_revoked_ones_do_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.json");
        let mut file = TokensFile::load(&path).expect("missing file is empty");
        let token = file.create("team-a", Role::Write, None).expect("create");
        let other = file.create("team-b", Role::Read, None).expect("create");
        assert!(token.starts_with(TOKEN_PREFIX));
        file.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert!(!text.contains(&token), "the clear token must never be stored");

        let table = TokenTable::from_file(&TokensFile::load(&path).expect("load")).expect("table");
        let now = crate::clock::now_unix();
        let caller = table.authenticate(&token, now).expect("known token");
        assert_eq!((caller.tenant.as_str(), caller.role), ("team-a", Role::Write));
        assert_eq!(table.authenticate(&other, now).map(|c| c.role), Ok(Role::Read));
        assert_eq!(table.authenticate("pe1_00", now), Err(Refusal::Unknown));
        assert_eq!(table.authenticate("", now), Err(Refusal::Unknown));

        let mut file = TokensFile::load(&path).expect("load");
        assert!(file.revoke(&caller.token_id));
        assert!(!file.revoke(&caller.token_id));
        let table = TokenTable::from_file(&file).expect("table");
        assert_eq!(table.authenticate(&token, now), Err(Refusal::Unknown));
        assert_eq!(table.len(), 1);
    }

    #[test]
    fn an_expiring_token_works_until_its_time_and_is_then_refused_as_expired() {
        let mut file = TokensFile::default();
        let expiring = file.create("team-a", Role::Read, Some(1_000)).expect("create");
        let lasting = file.create("team-a", Role::Read, None).expect("create");
        let text = serde_json::to_string(&file).expect("serialize");
        assert_eq!(text.matches("expires_unix").count(), 1, "only the expiring entry carries the field: {text}");
        let table = TokenTable::from_file(&serde_json::from_str(&text).expect("parse")).expect("table");
        assert!(table.authenticate(&expiring, 999).is_ok());
        let id = file.tokens[0].id.clone();
        assert_eq!(table.authenticate(&expiring, 1_000), Err(Refusal::Expired { token_id: id, expires_unix: 1_000 }));
        assert!(table.authenticate(&lasting, u64::MAX).is_ok());
        // A file written before expiry existed has no such field and still loads.
        let old = r#"{"tokens":[{"id":"0123abcd","hash":"00","tenant":"t","role":"read","created_unix":1}]}"#;
        assert_eq!(serde_json::from_str::<TokensFile>(old).expect("old file").tokens[0].expires_unix, None);
    }

    #[test]
    fn roles_grant_only_within_their_tier() {
        assert!(Role::Admin.grants(Role::Write));
        assert!(Role::Write.grants(Role::Read));
        assert!(!Role::Read.grants(Role::Write));
        assert!(Role::CloudPush.grants(Role::CloudRead));
        assert!(!Role::CloudRead.grants(Role::CloudPush));
        for team in [Role::Read, Role::Write, Role::Admin] {
            for cloud in [Role::CloudRead, Role::CloudPush] {
                assert!(!team.grants(cloud) && !cloud.grants(team), "{team:?} / {cloud:?}");
            }
        }
        let mut file = TokensFile::default();
        assert!(file.create("edge-1", Role::CloudPush, None).expect("create").starts_with(CLOUD_TOKEN_PREFIX));
        let text = serde_json::to_string(&file).expect("serialize");
        assert!(text.contains("\"cloud-push\""), "{text}");
    }

    #[test]
    fn bad_tenant_names_are_refused() {
        let mut file = TokensFile::default();
        assert!(file.create("", Role::Read, None).is_err());
        assert!(file.create("has space", Role::Read, None).is_err());
        assert!(file.create("ok-name_1.x", Role::Read, None).is_ok());
    }
}
