//! Users, roles, API tokens and browser sessions, and turning a presented credential into the
//! [`Principal`] every access check works from.
//!
//! - Passwords are stored as argon2id PHC strings (RFC 9106 defaults of the `argon2` crate).
//! - API tokens (`cnx_<id>_<secret>`) are 32 random bytes shown once; only SHA-256 of the secret is
//!   stored and the comparison is constant-time. A token can expire and be revoked; a disabled
//!   user's tokens stop working at once.
//! - Sessions are random cookies stored as SHA-256, each with its own CSRF token.
//!
//! Roles: `admin` and `analyst` belong to the nexus operator's organisation, `member` to a member
//! organisation. What each may do is decided by the callers; who sees which intelligence is decided
//! by the TLP rule in [`crate::intel`], from the principal's organisation and user.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::org::{valid_name, OrgKind};
use crate::secret::{ct_eq, hex, random_bytes, sha256, sha256_hex};
use crate::{exists_or, now_us, Error, Result, Store, Viewer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Runs the nexus: organisations, users, tokens, collections, feeds.
    Admin,
    /// Works the data: SQL over the lake, publishing intelligence, every member's alerts.
    Analyst,
    /// A member organisation's user: its own alerts, prefixes and watches, and the intelligence TLP
    /// lets its organisation see.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Member => "member",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = Error;
    fn from_str(s: &str) -> Result<Role> {
        match s {
            "admin" => Ok(Role::Admin),
            "analyst" => Ok(Role::Analyst),
            "member" => Ok(Role::Member),
            _ => Err(Error::Invalid(format!("role {s:?}: expected admin, analyst or member"))),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    pub id: String,
    pub name: String,
    pub org_id: String,
    pub org: String,
    pub role: Role,
    pub created: i64,
    pub disabled: bool,
    pub has_password: bool,
}

/// Who is asking: an authenticated, enabled user with its organisation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user_id: String,
    pub user: String,
    pub org_id: String,
    pub org: String,
    pub org_kind: OrgKind,
    pub role: Role,
}

impl Principal {
    /// A user of the nexus operator (admin or analyst).
    pub fn is_operator(&self) -> bool {
        self.org_kind == OrgKind::Operator && matches!(self.role, Role::Admin | Role::Analyst)
    }

    pub fn is_admin(&self) -> bool {
        self.org_kind == OrgKind::Operator && self.role == Role::Admin
    }

    pub fn viewer(&self) -> Viewer {
        Viewer { org_id: Some(self.org_id.clone()), user_id: Some(self.user_id.clone()), operator: self.is_operator() }
    }
}

/// The outcome of authenticating a request, as the HTTP layer hands it to handlers.
#[derive(Debug, Clone)]
pub enum Caller {
    /// No credentials presented.
    Anonymous,
    User(Principal),
    /// Credentials presented and refused (unknown, wrong, expired, revoked or disabled): the
    /// request gets 401, never anonymous access.
    Refused,
}

impl Caller {
    pub fn principal(&self) -> Option<&Principal> {
        match self {
            Caller::User(p) => Some(p),
            _ => None,
        }
    }

    pub fn viewer(&self) -> Viewer {
        self.principal().map(Principal::viewer).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Token {
    pub id: String,
    pub user_id: String,
    pub user: String,
    pub name: String,
    pub created: i64,
    pub expires: Option<i64>,
    pub revoked: Option<i64>,
    pub last_used: Option<i64>,
}

/// A token just created: `secret` is the only copy of the credential and is shown once.
#[derive(Debug, Clone)]
pub struct NewToken {
    pub token: Token,
    pub secret: String,
}

/// A browser session: its principal and the CSRF token its pages must send back.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
    pub csrf: String,
    pub expires: i64,
}

const TOKEN_PREFIX: &str = "cnx_";
/// Token rows record their last use at most this often, so reads do not each become a write.
const LAST_USED_GRANULARITY_US: i64 = 60_000_000;
/// Successful password checks remembered (keyed by a hash that includes the stored hash, so a
/// password change or a disabled user is never served from it).
const PASSWORD_CACHE_MAX: usize = 4096;

/// Passwords verified recently: argon2 is deliberately slow, and HTTP Basic sends the password on
/// every request.
#[derive(Debug, Default)]
pub(crate) struct PasswordCache(Mutex<HashSet<[u8; 32]>>);

impl PasswordCache {
    fn key(user_id: &str, phc: &str, password: &str) -> [u8; 32] {
        let mut m = Vec::with_capacity(user_id.len() + phc.len() + password.len() + 2);
        for part in [user_id, phc, password] {
            m.extend_from_slice(part.as_bytes());
            m.push(0);
        }
        sha256(&m)
    }

    fn contains(&self, k: &[u8; 32]) -> bool {
        self.0.lock().map(|s| s.contains(k)).unwrap_or(false)
    }

    fn insert(&self, k: [u8; 32]) {
        if let Ok(mut s) = self.0.lock() {
            if s.len() >= PASSWORD_CACHE_MAX {
                s.clear();
            }
            s.insert(k);
        }
    }
}

fn hash_password(password: &str) -> Result<String> {
    if password.len() < 8 {
        return Err(Error::Invalid("password: at least 8 characters".into()));
    }
    let salt =
        SaltString::encode_b64(&random_bytes::<16>()?).map_err(|e| Error::Invalid(format!("password salt: {e}")))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| Error::Invalid(format!("hashing password: {e}")))
}

fn verify_password(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(h) => Argon2::default().verify_password(password.as_bytes(), &h).is_ok(),
        Err(_) => false,
    }
}

/// A random password for a new user, when the operator gives none.
pub fn generate_password() -> Result<String> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes::<18>()?))
}

const USER_COLS: &str =
    "u.id, u.name, u.org_id, o.name AS org_name, o.kind AS org_kind, u.role, u.created, u.disabled, \
                         u.password_hash";

fn user_of(r: &AnyRow) -> Result<User> {
    Ok(User {
        id: r.try_get("id")?,
        name: r.try_get("name")?,
        org_id: r.try_get("org_id")?,
        org: r.try_get("org_name")?,
        role: r.try_get::<String, _>("role")?.parse()?,
        created: r.try_get("created")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        has_password: r.try_get::<Option<String>, _>("password_hash")?.is_some(),
    })
}

fn principal_of(r: &AnyRow) -> Result<Principal> {
    let kind: String = r.try_get("org_kind")?;
    Ok(Principal {
        user_id: r.try_get("id")?,
        user: r.try_get("name")?,
        org_id: r.try_get("org_id")?,
        org: r.try_get("org_name")?,
        org_kind: if kind == "operator" { OrgKind::Operator } else { OrgKind::Member },
        role: r.try_get::<String, _>("role")?.parse()?,
    })
}

const TOKEN_COLS: &str = "t.id, t.user_id, u.name AS user_name, t.name, t.created, t.expires, t.revoked, t.last_used";

fn token_of(r: &AnyRow) -> Result<Token> {
    Ok(Token {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        user: r.try_get("user_name")?,
        name: r.try_get("name")?,
        created: r.try_get("created")?,
        expires: r.try_get("expires")?,
        revoked: r.try_get("revoked")?,
        last_used: r.try_get("last_used")?,
    })
}

impl Store {
    /// Add a user to an organisation. Admins and analysts belong to the operator's organisation,
    /// members to a member organisation. Without a password the user can only use API tokens.
    pub async fn add_user(&self, name: &str, org: &str, role: Role, password: Option<&str>) -> Result<User> {
        if !valid_name(name) {
            return Err(Error::Invalid(format!("user name {name:?}: use 1-64 characters from A-Z a-z 0-9 - _ .")));
        }
        let o = self.org(org).await?;
        match (o.kind, role) {
            (OrgKind::Operator, Role::Admin | Role::Analyst) | (OrgKind::Member, Role::Member) => {}
            (OrgKind::Operator, Role::Member) => {
                return Err(Error::Invalid(format!(
                    "{} is the operator's organisation: its users are admins or analysts",
                    o.name
                )))
            }
            (OrgKind::Member, _) => {
                return Err(Error::Invalid(format!(
                    "{} is a member organisation: its users have the member role (admins and analysts \
                     belong to the operator's organisation)",
                    o.name
                )))
            }
        }
        let hash = password.map(hash_password).transpose()?;
        let id = crate::new_id();
        sqlx::query(
            "INSERT INTO users (id, org_id, name, role, password_hash, created, disabled) VALUES ($1, $2, $3, $4, $5, $6, 0)",
        )
        .bind(&id)
        .bind(&o.id)
        .bind(name)
        .bind(role.as_str())
        .bind(hash)
        .bind(now_us())
        .execute(&self.pool)
        .await
        .map_err(|e| exists_or(e, "user", name))?;
        self.user(&id).await
    }

    /// A user by name or id.
    pub async fn user(&self, name_or_id: &str) -> Result<User> {
        let row = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.name = $1 OR u.id = $1"
        ))
        .bind(name_or_id)
        .fetch_optional(&self.pool)
        .await?;
        match row {
            Some(r) => user_of(&r),
            None => Err(Error::NotFound { what: "user", name: name_or_id.to_string() }),
        }
    }

    /// Users of one organisation, or of all.
    pub async fn users(&self, org: Option<&str>) -> Result<Vec<User>> {
        let org_id = match org {
            Some(o) => Some(self.org(o).await?.id),
            None => None,
        };
        let rows = sqlx::query(&format!(
            "SELECT {USER_COLS} FROM users u JOIN orgs o ON o.id = u.org_id
             WHERE $1 IS NULL OR u.org_id = $1 ORDER BY o.name, u.name"
        ))
        .bind(org_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(user_of).collect()
    }

    pub async fn set_password(&self, user: &str, password: &str) -> Result<()> {
        let u = self.user(user).await?;
        let hash = hash_password(password)?;
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = $2")
            .bind(hash)
            .bind(&u.id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Disable (or enable) a user: a disabled user's password, tokens and sessions stop working.
    pub async fn set_user_disabled(&self, user: &str, disabled: bool) -> Result<User> {
        let u = self.user(user).await?;
        sqlx::query("UPDATE users SET disabled = $1 WHERE id = $2")
            .bind(i64::from(disabled))
            .bind(&u.id)
            .execute(&self.pool)
            .await?;
        if disabled {
            sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&u.id).execute(&self.pool).await?;
        }
        self.user(&u.id).await
    }

    pub async fn remove_user(&self, user: &str) -> Result<()> {
        let u = self.user(user).await?;
        sqlx::query("DELETE FROM users WHERE id = $1").bind(&u.id).execute(&self.pool).await?;
        Ok(())
    }

    /// Create an API token for `user`, valid until `expires` (µs) if given. The secret is returned
    /// once and never stored.
    pub async fn create_token(&self, user: &str, name: &str, expires: Option<i64>) -> Result<NewToken> {
        let u = self.user(user).await?;
        if name.is_empty() || name.len() > 128 {
            return Err(Error::Invalid("token name: 1-128 characters".into()));
        }
        let now = now_us();
        if expires.is_some_and(|e| e <= now) {
            return Err(Error::Invalid("token expiry is in the past".into()));
        }
        let id = hex(&random_bytes::<8>()?);
        let secret = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        sqlx::query(
            "INSERT INTO tokens (id, user_id, name, secret_hash, created, expires) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&id)
        .bind(&u.id)
        .bind(name)
        .bind(sha256_hex(secret.as_bytes()))
        .bind(now)
        .bind(expires)
        .execute(&self.pool)
        .await?;
        let token = Token {
            id: id.clone(),
            user_id: u.id,
            user: u.name,
            name: name.to_string(),
            created: now,
            expires,
            revoked: None,
            last_used: None,
        };
        Ok(NewToken { token, secret: format!("{TOKEN_PREFIX}{id}_{secret}") })
    }

    /// Tokens of one user, or of all (never their secrets).
    pub async fn tokens(&self, user: Option<&str>) -> Result<Vec<Token>> {
        let user_id = match user {
            Some(u) => Some(self.user(u).await?.id),
            None => None,
        };
        let rows = sqlx::query(&format!(
            "SELECT {TOKEN_COLS} FROM tokens t JOIN users u ON u.id = t.user_id
             WHERE $1 IS NULL OR t.user_id = $1 ORDER BY u.name, t.created"
        ))
        .bind(user_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(token_of).collect()
    }

    /// Revoke a token; with `user`, only one of that user's (a member cannot revoke, or learn of,
    /// another user's token).
    pub async fn revoke_token(&self, id: &str, user: Option<&str>) -> Result<()> {
        let user_id = match user {
            Some(u) => Some(self.user(u).await?.id),
            None => None,
        };
        let done = sqlx::query(
            "UPDATE tokens SET revoked = $1 WHERE id = $2 AND revoked IS NULL AND ($3 IS NULL OR user_id = $3)",
        )
        .bind(now_us())
        .bind(id)
        .bind(user_id)
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 {
            return Err(Error::NotFound { what: "active token", name: id.to_string() });
        }
        Ok(())
    }

    /// The principal an API token stands for, or `None` when it is malformed, unknown, wrong,
    /// expired, revoked, or its user is disabled.
    pub async fn authenticate_token(&self, presented: &str) -> Result<Option<Principal>> {
        let Some((id, secret)) = presented.strip_prefix(TOKEN_PREFIX).and_then(|r| r.split_once('_')) else {
            return Ok(None);
        };
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Ok(None);
        }
        let row = sqlx::query(&format!(
            "SELECT t.secret_hash, t.expires, t.revoked, t.last_used, {USER_COLS}
             FROM tokens t JOIN users u ON u.id = t.user_id JOIN orgs o ON o.id = u.org_id WHERE t.id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        let presented_hash = sha256_hex(secret.as_bytes());
        let Some(r) = row else {
            // Same work as a known id, so timing does not tell which ids exist.
            let _ = ct_eq(presented_hash.as_bytes(), presented_hash.as_bytes());
            return Ok(None);
        };
        let stored: String = r.try_get("secret_hash")?;
        if !ct_eq(stored.as_bytes(), presented_hash.as_bytes()) {
            return Ok(None);
        }
        let now = now_us();
        let expires: Option<i64> = r.try_get("expires")?;
        let revoked: Option<i64> = r.try_get("revoked")?;
        if revoked.is_some() || expires.is_some_and(|e| e <= now) || r.try_get::<i64, _>("disabled")? != 0 {
            return Ok(None);
        }
        let last_used: Option<i64> = r.try_get("last_used")?;
        if last_used.is_none_or(|t| now - t > LAST_USED_GRANULARITY_US) {
            sqlx::query("UPDATE tokens SET last_used = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        principal_of(&r).map(Some)
    }

    /// The principal for a user name and password (HTTP Basic, the login form), or `None`.
    pub async fn authenticate_password(&self, user: &str, password: &str) -> Result<Option<Principal>> {
        let row =
            sqlx::query(&format!("SELECT {USER_COLS} FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.name = $1"))
                .bind(user)
                .fetch_optional(&self.pool)
                .await?;
        let Some(r) = row else { return Ok(None) };
        let phc: Option<String> = r.try_get("password_hash")?;
        let Some(phc) = phc else { return Ok(None) };
        if r.try_get::<i64, _>("disabled")? != 0 {
            return Ok(None);
        }
        let id: String = r.try_get("id")?;
        let key = PasswordCache::key(&id, &phc, password);
        if !self.passwords.contains(&key) {
            let (phc2, pw) = (phc.clone(), password.to_string());
            let ok = tokio::task::spawn_blocking(move || verify_password(&phc2, &pw))
                .await
                .map_err(|e| Error::Invalid(format!("password check: {e}")))?;
            if !ok {
                return Ok(None);
            }
            self.passwords.insert(key);
        }
        principal_of(&r).map(Some)
    }

    /// Open a browser session for `user_id` lasting `ttl_us`: the cookie value (shown to the
    /// browser only) and the session with its CSRF token.
    pub async fn create_session(&self, principal: &Principal, ttl_us: i64) -> Result<(String, Session)> {
        let cookie = URL_SAFE_NO_PAD.encode(random_bytes::<32>()?);
        let csrf = URL_SAFE_NO_PAD.encode(random_bytes::<24>()?);
        let now = now_us();
        sqlx::query("INSERT INTO sessions (id_hash, user_id, csrf, created, expires) VALUES ($1, $2, $3, $4, $5)")
            .bind(sha256_hex(cookie.as_bytes()))
            .bind(&principal.user_id)
            .bind(&csrf)
            .bind(now)
            .bind(now + ttl_us)
            .execute(&self.pool)
            .await?;
        Ok((cookie, Session { principal: principal.clone(), csrf, expires: now + ttl_us }))
    }

    /// The session a cookie stands for, unless it expired or its user was disabled.
    pub async fn authenticate_session(&self, cookie: &str) -> Result<Option<Session>> {
        let row = sqlx::query(&format!(
            "SELECT s.csrf, s.expires, {USER_COLS}
             FROM sessions s JOIN users u ON u.id = s.user_id JOIN orgs o ON o.id = u.org_id WHERE s.id_hash = $1"
        ))
        .bind(sha256_hex(cookie.as_bytes()))
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let expires: i64 = r.try_get("expires")?;
        if expires <= now_us() || r.try_get::<i64, _>("disabled")? != 0 {
            return Ok(None);
        }
        Ok(Some(Session { principal: principal_of(&r)?, csrf: r.try_get("csrf")?, expires }))
    }

    pub async fn end_session(&self, cookie: &str) -> Result<()> {
        sqlx::query("DELETE FROM sessions WHERE id_hash = $1 OR expires <= $2")
            .bind(sha256_hex(cookie.as_bytes()))
            .bind(now_us())
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
