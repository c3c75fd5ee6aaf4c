//! Users, roles, tokens and sessions on both engines: what is stored, and every way a credential
//! is refused.

use cynex_store::{OrgKind, Role};

use crate::stores;

#[tokio::test]
async fn users_roles_tokens_and_sessions_on_both_engines() {
    for t in stores().await {
        let s = &t.store;
        s.add_org_of_kind("nexus", OrgKind::Operator).await.unwrap();
        s.add_org("acme").await.unwrap();
        // Roles follow the organisation's kind.
        assert!(s.add_user("eve", "acme", Role::Admin, None).await.is_err(), "{}", t.name);
        assert!(s.add_user("bob", "nexus", Role::Member, None).await.is_err(), "{}", t.name);
        assert!(s.add_user("short", "acme", Role::Member, Some("1234567")).await.is_err(), "short password");
        let admin = s.add_user("root", "nexus", Role::Admin, Some("correct horse battery")).await.unwrap();
        let alice = s.add_user("alice", "acme", Role::Member, Some("alice-password-1")).await.unwrap();
        assert!(alice.has_password && !alice.disabled);
        assert!(s.add_user("alice", "acme", Role::Member, None).await.is_err(), "duplicate name");

        // Passwords: the right one, nothing else; stored as argon2id, never in the clear.
        let p = s.authenticate_password("alice", "alice-password-1").await.unwrap().unwrap();
        assert_eq!((p.org.as_str(), p.role, p.is_operator()), ("acme", Role::Member, false), "{}", t.name);
        assert!(s.authenticate_password("alice", "alice-password-2").await.unwrap().is_none());
        assert!(s.authenticate_password("nobody", "alice-password-1").await.unwrap().is_none());
        // The cache of verified passwords serves the same answer.
        assert!(s.authenticate_password("alice", "alice-password-1").await.unwrap().is_some());
        let r = s.authenticate_password("root", "correct horse battery").await.unwrap().unwrap();
        assert!(r.is_operator() && r.is_admin());

        // Tokens: shown once, usable, then refused when wrong, revoked or expired.
        let tok = s.create_token("alice", "taxii", None).await.unwrap();
        assert!(tok.secret.starts_with("cnx_"));
        assert_eq!(s.authenticate_token(&tok.secret).await.unwrap().unwrap().user, "alice");
        let mut wrong = tok.secret.clone();
        let last = wrong.pop().unwrap();
        wrong.push(if last == 'A' { 'B' } else { 'A' });
        assert!(s.authenticate_token(&wrong).await.unwrap().is_none(), "one character off");
        assert!(s.authenticate_token("cnx_0000000000000000_abc").await.unwrap().is_none(), "unknown id");
        assert!(s.authenticate_token("not-a-token").await.unwrap().is_none());
        assert!(s.authenticate_token("").await.unwrap().is_none());
        // Only a hash of the secret is listed or stored.
        let listed = s.tokens(Some("alice")).await.unwrap();
        assert_eq!(listed.len(), 1);
        assert!(!format!("{listed:?}").contains(tok.secret.rsplit('_').next().unwrap()));
        // A member cannot revoke another user's token; an admin can.
        assert!(s.revoke_token(&tok.token.id, Some("root")).await.is_err());
        s.revoke_token(&tok.token.id, None).await.unwrap();
        assert!(s.authenticate_token(&tok.secret).await.unwrap().is_none(), "revoked");
        assert!(s.revoke_token(&tok.token.id, None).await.is_err(), "revoked twice");
        let soon = s.create_token("alice", "short-lived", Some(cynex_model::time::now_us() + 1_500_000)).await.unwrap();
        assert!(s.authenticate_token(&soon.secret).await.unwrap().is_some());
        tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
        assert!(s.authenticate_token(&soon.secret).await.unwrap().is_none(), "expired");
        assert!(s.create_token("alice", "past", Some(1)).await.is_err());

        // Sessions carry a CSRF token; disabling the user ends everything at once.
        let tok2 = s.create_token("alice", "again", None).await.unwrap();
        let (cookie, sess) = s.create_session(&p, 3_600_000_000).await.unwrap();
        let back = s.authenticate_session(&cookie).await.unwrap().unwrap();
        assert_eq!(back.csrf, sess.csrf);
        assert!(s.authenticate_session("forged-cookie").await.unwrap().is_none());
        s.set_user_disabled("alice", true).await.unwrap();
        assert!(s.authenticate_password("alice", "alice-password-1").await.unwrap().is_none(), "disabled: password");
        assert!(s.authenticate_token(&tok2.secret).await.unwrap().is_none(), "disabled: token");
        assert!(s.authenticate_session(&cookie).await.unwrap().is_none(), "disabled: session");
        s.set_user_disabled("alice", false).await.unwrap();
        // A new password replaces the old one (and the cache does not keep the old one alive).
        s.set_password("alice", "a-new-password").await.unwrap();
        assert!(s.authenticate_password("alice", "alice-password-1").await.unwrap().is_none());
        assert!(s.authenticate_password("alice", "a-new-password").await.unwrap().is_some());
        let (c2, _) = s.create_session(&p, 1).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        assert!(s.authenticate_session(&c2).await.unwrap().is_none(), "expired session");
        assert_eq!(s.users(Some("acme")).await.unwrap().len(), 1);
        assert_eq!(admin.org, "nexus");
        t.finish().await;
    }
}
