//! Runs a SOCKS5 UDP association: the [`Association`] machine decides about every
//! datagram, the runtime's [`Io`] receives and sends them.
//!
//! One loop waits on the control connection, the relay socket and the outgoing sockets
//! (one per address family, opened on first use, bound to `external` if set), then drains
//! each ready socket (at most [`BATCH`] datagrams per socket per round, so one flooded
//! socket cannot starve the others or the control connection).

use super::{resolve, Io};
use crate::relay::{RelayEnd, RelayReport};
use crate::udp::{Association, AssociationPlan, Dropped, Outbound, MAX_DATAGRAM, MAX_UDP_HEADER};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Datagrams read from one socket before the others get their turn.
pub(crate) const BATCH: usize = 64;

/// Relays the association of `plan` (its client-facing socket is `relay`) until it ends:
/// its totals and ending.
pub(super) async fn run<R: Io>(
    io: &R,
    control: &R::Stream,
    relay: &R::Datagram,
    plan: AssociationPlan,
) -> RelayReport {
    let mut assoc = Association::new(io.now(), plan);
    // [IPv4, IPv6] outgoing sockets.
    let mut outgoing: [Option<R::Datagram>; 2] = [None, None];
    let mut buf = vec![0u8; MAX_UDP_HEADER + MAX_DATAGRAM];
    let mut wrapped = Vec::with_capacity(MAX_UDP_HEADER + MAX_DATAGRAM);
    let mut scratch = [0u8; 512];
    loop {
        let now = io.now();
        assoc.handle_timeout(now);
        if let Some(report) = assoc.report() {
            return report;
        }
        let mut sockets: Vec<&R::Datagram> = vec![relay];
        let mut families = Vec::with_capacity(2);
        for (i, s) in outgoing.iter().enumerate() {
            if let Some(s) = s {
                sockets.push(s);
                families.push(i);
            }
        }
        let waited = io
            .wait_readable(Some(control), &sockets, Some(assoc.poll_timeout()))
            .await;
        let (control_ready, ready) = match waited {
            Ok(r) => r,
            Err(_) => {
                return RelayReport {
                    bytes_in: 0,
                    bytes_out: 0,
                    end: RelayEnd::SystemError,
                }
            }
        };
        if control_ready {
            // Nothing is expected on the control connection: its end (or failure) ends
            // the association; stray bytes are read and ignored.
            match io.try_read(control, &mut scratch) {
                Ok(0) => assoc.handle_control_closed(),
                Ok(_) => {}
                Err(e) if is_transient(&e) => {}
                Err(_) => assoc.handle_control_closed(),
            }
        }
        drop(sockets);
        for index in ready {
            if index == 0 {
                from_client(io, relay, &mut outgoing, &mut assoc, &mut buf).await;
            } else if let Some(&family) = families.get(index - 1) {
                if let Some(socket) = outgoing.get(family).and_then(Option::as_ref) {
                    from_remote(io, relay, socket, &mut assoc, &mut buf, &mut wrapped).await;
                }
            }
        }
    }
}

/// Drains the relay socket: each datagram the machine lets through goes out.
async fn from_client<R: Io>(
    io: &R,
    relay: &R::Datagram,
    outgoing: &mut [Option<R::Datagram>; 2],
    assoc: &mut Association,
    buf: &mut [u8],
) {
    for _ in 0..BATCH {
        let (n, from) = match io.try_recv_from(relay, buf) {
            Ok(got) => got,
            Err(_) => return,
        };
        let datagram = buf.get(..n).unwrap_or_default();
        let (to, payload) = match assoc.from_client(io.now(), from, datagram) {
            Outbound::Send { to, payload } => (to, payload),
            Outbound::Resolve {
                host,
                port,
                payload,
            } => {
                let policy = std::sync::Arc::clone(assoc.policy());
                let found = resolve::resolve(io, &policy, (*host).clone(), port).await;
                let addrs = found.unwrap_or_default();
                match assoc.resolved(io.now(), &host, &addrs, payload.len()) {
                    Ok(to) => (to, payload),
                    Err(dropped) => {
                        notice(io, assoc, &dropped);
                        continue;
                    }
                }
            }
            Outbound::Drop(dropped) => {
                notice(io, assoc, &dropped);
                continue;
            }
        };
        let family = usize::from(to.is_ipv6());
        if outgoing[family].is_none() {
            outgoing[family] = open_outgoing(io, assoc, to.is_ipv6());
        }
        if let Some(socket) = outgoing[family].as_ref() {
            // A send that fails drops the datagram, as the network may.
            let _ = io.send_to(socket, payload, to).await;
        }
    }
}

/// Drains an outgoing socket: each answer the machine lets through goes to the client.
async fn from_remote<R: Io>(
    io: &R,
    relay: &R::Datagram,
    socket: &R::Datagram,
    assoc: &mut Association,
    buf: &mut [u8],
    wrapped: &mut Vec<u8>,
) {
    for _ in 0..BATCH {
        let (n, from) = match io.try_recv_from(socket, buf) {
            Ok(got) => got,
            Err(_) => return,
        };
        let payload = buf.get(..n).unwrap_or_default();
        match assoc.from_remote(io.now(), from, payload, wrapped) {
            Ok(client) => {
                let _ = io.send_to(relay, wrapped, client).await;
            }
            Err(dropped) => notice(io, assoc, &dropped),
        }
    }
}

/// The outgoing socket of one family: on `external` if set, else on any address.
fn open_outgoing<R: Io>(io: &R, assoc: &Association, v6: bool) -> Option<R::Datagram> {
    let source = assoc.policy().external;
    let ip = if v6 {
        IpAddr::V6(source.v6.unwrap_or(Ipv6Addr::UNSPECIFIED))
    } else {
        IpAddr::V4(source.v4.unwrap_or(Ipv4Addr::UNSPECIFIED))
    };
    io.udp_bind(SocketAddr::new(ip, 0)).ok().map(|(s, _)| s)
}

/// Logs a stranger's datagram when the machine says a notice is due.
fn notice<R: Io>(io: &R, assoc: &Association, dropped: &Dropped) {
    if let Some(record) = assoc.stranger_record(io.now(), dropped) {
        io.log(&record);
    }
}

fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
    )
}
