//! What an established connection was granted on, kept while it runs so that a reload
//! under `force` can ask the new configuration whether it would still grant it (3proxy
//! re-authorizes every session when the configuration changes, and closes those that no
//! longer pass).
//!
//! The password is not kept: a `strong` user counts as still authenticated when its
//! entry in the new `users` table is the same as in the table it was verified against.

use crate::acl::{AclRequest, CivilTime, Operation};
use crate::service::ServicePolicy;
use crate::users::Users;
use std::net::IpAddr;
use std::sync::Arc;
use triproxy_wire::{DomainName, LogCode};

/// The facts a tunnel was granted on.
#[derive(Debug, Clone)]
pub struct Standing {
    /// The client's address.
    pub client: IpAddr,
    /// The user name presented, if any.
    pub user: Option<Box<str>>,
    /// Whether `strong` verified the user's password.
    pub verified: bool,
    /// The host name requested, if the request named one.
    pub target_host: Option<Box<DomainName>>,
    /// The destination address the ACL saw: the requested IP, or for a requested name the
    /// address connected to (unless through a parent, which is not the destination).
    pub target_ip: Option<IpAddr>,
    /// The requested port.
    pub port: Option<u16>,
    /// What the request does (CONNECT, BIND, ...).
    pub operation: Operation,
    /// The password table the user was verified against.
    pub users: Arc<Users>,
}

impl ServicePolicy {
    /// Whether this policy (a reloaded configuration's) still grants the tunnel that
    /// `standing` describes, at local time `time`: `Ok`, or the code it would be refused
    /// with. Only the auth chain and the ACL are asked, as 3proxy does; limits and quotas
    /// were taken when the tunnel started.
    pub fn recheck(&self, standing: &Standing, time: CivilTime) -> Result<(), LogCode> {
        let user = standing.user.as_deref();
        let still_valid =
            standing.verified && user.is_some_and(|u| self.users.same_entry(&standing.users, u));
        let req = AclRequest {
            user: None,
            client: standing.client,
            target_host: standing.target_host.as_deref(),
            target_ip: standing.target_ip,
            port: standing.port,
            operation: standing.operation,
            time,
        };
        self.auth
            .recheck(&self.users, user, still_valid, &self.acl, &req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{Ace, Action};
    use crate::auth::AuthChain;

    fn policy(users: &[&str], auth: &[&str], acl: &[&[&str]]) -> ServicePolicy {
        let mut table = Users::new();
        for u in users {
            table.add_spec(u).unwrap();
        }
        let mut p = ServicePolicy::new(1080);
        p.users = Arc::new(table);
        p.auth = AuthChain::parse(auth).unwrap();
        p.acl = acl
            .iter()
            .map(|fields| Ace::parse(Action::Allow, fields).unwrap())
            .collect::<Vec<_>>()
            .into();
        p
    }

    fn standing(user: Option<&str>, verified: bool, users: &ServicePolicy) -> Standing {
        Standing {
            client: "10.0.0.9".parse().unwrap(),
            user: user.map(Box::from),
            verified,
            target_host: None,
            target_ip: Some("192.0.2.1".parse().unwrap()),
            port: Some(443),
            operation: Operation::Connect,
            users: Arc::clone(&users.users),
        }
    }

    const T: CivilTime = CivilTime {
        weekday: 3,
        seconds_of_day: 3600,
    };

    #[test]
    fn strong_users_stay_while_their_entry_and_the_acl_stay() {
        let old = policy(&["alice:CL:a", "bob:CL:b"], &["strong"], &[&["alice,bob"]]);
        let alice = standing(Some("alice"), true, &old);
        assert_eq!(old.recheck(&alice, T), Ok(()));
        // Removed user: 5; changed password: 6; ACL no longer naming alice: 3.
        let removed = policy(&["bob:CL:b"], &["strong"], &[&["alice,bob"]]);
        assert_eq!(removed.recheck(&alice, T), Err(LogCode::USER_NOT_FOUND));
        let changed = policy(&["alice:CL:x"], &["strong"], &[&["alice"]]);
        assert_eq!(changed.recheck(&alice, T), Err(LogCode::BAD_CL_PASSWORD));
        let acl = policy(&["alice:CL:a", "bob:CL:b"], &["strong"], &[&["bob"]]);
        assert_eq!(acl.recheck(&alice, T), Err(LogCode::ACL_NO_MATCH));
        // A name that never passed `strong` (granted by iponly) cannot pass it now.
        let unverified = standing(Some("alice"), false, &old);
        assert_eq!(old.recheck(&unverified, T), Err(LogCode::BAD_CL_PASSWORD));
    }

    #[test]
    fn iponly_and_none_follow_the_new_acl() {
        let old = policy(&[], &["iponly"], &[]);
        let anyone = standing(None, false, &old);
        assert_eq!(old.recheck(&anyone, T), Ok(()));
        let other_net = policy(&[], &["iponly"], &[&["*", "192.168.0.0/16"]]);
        assert_eq!(other_net.recheck(&anyone, T), Err(LogCode::ACL_NO_MATCH));
        let none = policy(&[], &["none"], &[&["*", "192.168.0.0/16"]]);
        assert_eq!(none.recheck(&anyone, T), Ok(()), "auth none skips the ACL");
    }
}
