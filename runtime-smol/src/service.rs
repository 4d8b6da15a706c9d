//! The smol runtime's threads and its listening services.

use crate::io::{serve_connection, serve_datagrams};
use async_executor::Executor;
use async_io::Async;
use futures_lite::future;
use smol::lock::Semaphore;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use triproxy_policy::service::{DatagramService, ServicePolicy};
use triproxy_runtime_std::{net, Hooks};

/// A multi-threaded executor: `threads` OS threads run every task of every service.
#[derive(Debug, Clone)]
pub struct Runtime {
    executor: Arc<Executor<'static>>,
}

impl Runtime {
    /// Starts `threads` executor threads (at least one). They run until the process ends.
    pub fn start(threads: usize) -> io::Result<Runtime> {
        let executor = Arc::new(Executor::new());
        for i in 0..threads.max(1) {
            let ex = Arc::clone(&executor);
            thread::Builder::new()
                .name(format!("smol-{i}"))
                .spawn(move || async_io::block_on(ex.run(future::pending::<()>())))?;
        }
        Ok(Runtime { executor })
    }
}

/// Starts a datagram service (`udppm`, `dnspr`) on `socket` on `runtime`: one task runs
/// its one loop, at most `max_clients` clients at once. Returns the bound address.
pub fn spawn_datagram_service(
    runtime: &Runtime,
    socket: UdpSocket,
    policy: Arc<ServicePolicy>,
    service: DatagramService,
    hooks: Hooks,
    max_clients: usize,
) -> io::Result<SocketAddr> {
    let local = socket.local_addr()?;
    let socket = Async::new(socket)?;
    let task = serve_datagrams(socket, local, policy, service, max_clients, hooks);
    runtime.executor.spawn(task).detach();
    Ok(local)
}

/// Starts serving `listener` on `runtime`, at most `maxconn` clients at once (further
/// clients wait in the listen backlog, as with 3proxy). Returns the listening address.
pub fn spawn_service(
    runtime: &Runtime,
    listener: TcpListener,
    policy: Arc<ServicePolicy>,
    hooks: Hooks,
    maxconn: usize,
) -> io::Result<SocketAddr> {
    let local = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let executor = Arc::clone(&runtime.executor);
    let slots = Arc::new(Semaphore::new(maxconn.max(1)));
    runtime
        .executor
        .spawn(async move {
            loop {
                let permit = slots.acquire_arc().await;
                let accepted = listener
                    .read_with(net::accept_nonblocking)
                    .await
                    .and_then(|(s, peer)| Ok((Async::new_nonblocking(s)?, peer)));
                match accepted {
                    Ok((stream, peer)) => {
                        let policy = Arc::clone(&policy);
                        let hooks = hooks.clone();
                        if let Some(task) =
                            serve_connection(stream, peer, local, policy, hooks, permit)
                        {
                            executor.spawn(task).detach();
                        }
                    }
                    Err(_) => {
                        drop(permit);
                        // EMFILE and friends: back off instead of spinning.
                        async_io::Timer::after(Duration::from_millis(10)).await;
                    }
                }
            }
        })
        .detach();
    Ok(local)
}
