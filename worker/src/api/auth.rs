//! Bearer tokens → callers with roles. Tokens are configured as SHA-256 hashes only
//! (`name:role:sha256hex`), so neither the configuration nor a memory dump holds a usable token;
//! a presented token is hashed and looked up. Tokens are random, long secrets (see
//! `pcn-worker hash-token`), so an unsalted fast hash is enough: there is nothing to brute-force.

use std::collections::HashMap;

use sha2::{Digest as _, Sha256};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// What a caller may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads everything (phone numbers masked).
    Viewer,
    /// Also starts, pauses, resumes and cancels months; retries and cancels notifications.
    Operator,
    /// Also imports customers and changes opt-outs.
    Admin,
}

impl Role {
    /// Parses `viewer`, `operator` or `admin`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "viewer" => Some(Self::Viewer),
            "operator" => Some(Self::Operator),
            "admin" => Some(Self::Admin),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Operator => "operator",
            Self::Admin => "admin",
        }
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's name (who holds it), e.g. `alice` or `ops-cron`.
    pub name: String,
    /// Its role.
    pub role: Role,
}

impl Caller {
    /// The audit log's actor: `api:<name>`.
    pub fn actor(&self) -> String {
        format!("api:{}", self.name)
    }

    /// PERMISSION_DENIED unless the caller's role is at least `needed`.
    pub fn require(&self, needed: Role, method: &str) -> Result<(), Status> {
        if self.role >= needed {
            Ok(())
        } else {
            Err(Status::permission_denied(format!(
                "{method} needs the {} role; this token has {}",
                needed.as_str(),
                self.role.as_str()
            )))
        }
    }
}

/// The configured tokens, by hash.
#[derive(Debug, Clone, Default)]
pub struct TokenTable {
    by_hash: HashMap<[u8; 32], Caller>,
}

/// SHA-256 of a token, hex: what the configuration holds.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

impl TokenTable {
    /// Parses entries `name:role:sha256hex`, separated by commas or newlines; blank lines and
    /// lines starting with `#` are ignored. Names are `[A-Za-z0-9._-]{1,64}` and unique.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut by_hash = HashMap::new();
        let mut names = std::collections::HashSet::new();
        for (i, entry) in spec
            .split([',', '\n'])
            .map(str::trim)
            .enumerate()
            .filter(|(_, e)| !e.is_empty() && !e.starts_with('#'))
        {
            let n = i + 1;
            let mut parts = entry.splitn(3, ':');
            let (Some(name), Some(role), Some(hash)) = (parts.next(), parts.next(), parts.next())
            else {
                return Err(format!("api token entry {n}: expected name:role:sha256hex"));
            };
            let name_ok = (1..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !name_ok {
                return Err(format!(
                    "api token entry {n}: name must be 1-64 of [A-Za-z0-9._-]"
                ));
            }
            let role = Role::parse(role).ok_or_else(|| {
                format!("api token entry {n} ({name}): role must be viewer, operator or admin")
            })?;
            let digest: [u8; 32] = hex::decode(hash)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    format!("api token entry {n} ({name}): expected a SHA-256 hash (64 hex digits), not a token")
                })?;
            if !names.insert(name.to_owned()) {
                return Err(format!("api token entry {n}: name {name} appears twice"));
            }
            if by_hash
                .insert(
                    digest,
                    Caller {
                        name: name.to_owned(),
                        role,
                    },
                )
                .is_some()
            {
                return Err(format!(
                    "api token entry {n} ({name}): the same token is configured twice"
                ));
            }
        }
        Ok(Self { by_hash })
    }

    /// Number of configured tokens.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// True when no token is configured (every call is then UNAUTHENTICATED).
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The caller of a request: UNAUTHENTICATED without `authorization: Bearer <token>` or with
    /// an unknown token. The message never echoes the token.
    pub fn authenticate(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let header = metadata
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("missing authorization: Bearer <token>"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| Status::unauthenticated("authorization must be Bearer <token>"))?;
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        self.by_hash
            .get(&digest)
            .cloned()
            .ok_or_else(|| Status::unauthenticated("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> TokenTable {
        TokenTable::parse(&format!(
            "# comment\nalice:admin:{}, bob:viewer:{}\n",
            hash_token("secret-a"),
            hash_token("secret-b")
        ))
        .unwrap()
    }

    fn metadata(value: &str) -> MetadataMap {
        let mut m = MetadataMap::new();
        m.insert("authorization", value.parse().unwrap());
        m
    }

    #[test]
    fn tokens_are_found_by_hash_and_roles_are_ordered() {
        let t = table();
        assert_eq!(t.len(), 2);
        let alice = t.authenticate(&metadata("Bearer secret-a")).unwrap();
        assert_eq!(alice.role, Role::Admin);
        assert_eq!(alice.actor(), "api:alice");
        let bob = t.authenticate(&metadata("Bearer secret-b")).unwrap();
        assert!(bob.require(Role::Viewer, "GetMonth").is_ok());
        let denied = bob.require(Role::Operator, "StartMonth").unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(alice.require(Role::Operator, "StartMonth").is_ok());
    }

    #[test]
    fn missing_malformed_and_unknown_tokens_are_unauthenticated() {
        let t = table();
        for m in [
            MetadataMap::new(),
            metadata("Basic abc"),
            metadata("Bearer "),
            metadata("Bearer secret-c"),
        ] {
            let err = t.authenticate(&m).unwrap_err();
            assert_eq!(err.code(), tonic::Code::Unauthenticated);
            assert!(!err.message().contains("secret"));
        }
    }

    #[test]
    fn bad_configuration_is_refused_with_the_entry_named() {
        assert!(
            TokenTable::parse("alice:admin")
                .unwrap_err()
                .contains("entry 1")
        );
        assert!(
            TokenTable::parse("alice:root:00")
                .unwrap_err()
                .contains("role")
        );
        // A plain token instead of its hash is refused.
        assert!(
            TokenTable::parse("alice:admin:secret-a")
                .unwrap_err()
                .contains("SHA-256")
        );
        let h = hash_token("x");
        assert!(
            TokenTable::parse(&format!("a:admin:{h},b:viewer:{h}"))
                .unwrap_err()
                .contains("twice")
        );
        assert!(TokenTable::parse("").unwrap().is_empty());
    }
}
