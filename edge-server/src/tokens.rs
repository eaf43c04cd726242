//! API tokens: the tokens file (JSON, token hash -> tenant and role), creating, listing and
//! revoking entries, and looking up a presented bearer token.
//!
//! Only blake3 hashes of tokens are stored. A presented token is hashed and compared with
//! `blake3::Hash`'s constant-time equality, so neither the file nor response timing reveals
//! a token. A token is shown once, when created.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// Reads the file; a missing file is an empty table.
    pub fn load(path: &Path) -> anyhow::Result<TokensFile> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text).with_context(|| format!("parse tokens file {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(TokensFile::default()),
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

    /// Adds a new random token and returns it (the only time it exists in clear).
    pub fn create(&mut self, tenant: &str, role: Role) -> anyhow::Result<String> {
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
        let created_unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        self.tokens.push(TokenEntry { id: hash[..8].to_string(), hash, tenant: tenant.to_string(), role, created_unix });
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

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The caller a presented token stands for, if any.
    pub fn authenticate(&self, presented: &str) -> Option<Caller> {
        let presented_hash = hash_token(presented);
        let entry = self.by_hash.get(presented_hash.as_bytes())?;
        // The map lookup found a candidate; confirm with a constant-time comparison.
        let stored = blake3::Hash::from_hex(&entry.hash).ok()?;
        if stored != presented_hash {
            return None;
        }
        Some(Caller { tenant: entry.tenant.clone(), role: entry.role, token_id: entry.id.clone(), token_hash: *presented_hash.as_bytes() })
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
        let token = file.create("team-a", Role::Write).expect("create");
        let other = file.create("team-b", Role::Read).expect("create");
        assert!(token.starts_with(TOKEN_PREFIX));
        file.save(&path).expect("save");
        let text = std::fs::read_to_string(&path).expect("read back");
        assert!(!text.contains(&token), "the clear token must never be stored");

        let table = TokenTable::from_file(&TokensFile::load(&path).expect("load")).expect("table");
        let caller = table.authenticate(&token).expect("known token");
        assert_eq!((caller.tenant.as_str(), caller.role), ("team-a", Role::Write));
        assert_eq!(table.authenticate(&other).map(|c| c.role), Some(Role::Read));
        assert!(table.authenticate("pe1_00").is_none());
        assert!(table.authenticate("").is_none());

        let mut file = TokensFile::load(&path).expect("load");
        assert!(file.revoke(&caller.token_id));
        assert!(!file.revoke(&caller.token_id));
        let table = TokenTable::from_file(&file).expect("table");
        assert!(table.authenticate(&token).is_none());
        assert_eq!(table.len(), 1);
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
        assert!(file.create("edge-1", Role::CloudPush).expect("create").starts_with(CLOUD_TOKEN_PREFIX));
        let text = serde_json::to_string(&file).expect("serialize");
        assert!(text.contains("\"cloud-push\""), "{text}");
    }

    #[test]
    fn bad_tenant_names_are_refused() {
        let mut file = TokensFile::default();
        assert!(file.create("", Role::Read).is_err());
        assert!(file.create("has space", Role::Read).is_err());
        assert!(file.create("ok-name_1.x", Role::Read).is_ok());
    }
}
