//! The smol runtime's threads and its listening services.

use crate::io::{serve_connection, serve_datagrams};
use async_executor::{Executor, Task};
use async_io::Async;
use futures_lite::future;
use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use triproxy_policy::service::DatagramService;
use triproxy_runtime_std::{net, ServiceSlot};

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

/// A running service on the smol runtime.
#[derive(Debug)]
pub struct ServiceHandle {
    /// The bound address (with the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    /// The accept loop (or datagram loop); dropping it cancels the loop and closes the
    /// socket.
    task: Task<()>,
    slot: Arc<ServiceSlot>,
}

impl ServiceHandle {
    /// Stops the service: its loop is cancelled and its socket closed before this returns
    /// (so the address can be bound again at once, as a reload that restarts a datagram
    /// service does). Established connections are tasks of their own and go on to their
    /// end; a datagram service's open mappings end without their records.
    pub fn stop(self) {
        self.slot.mark_stopped();
        // Dropping the task would only schedule the cancellation; waiting for it is what
        // guarantees the loop's future, and with it the socket, is gone.
        future::block_on(self.task.cancel());
    }
}

/// Starts a datagram service (`udppm`, `dnspr`) on `socket` on `runtime`: one task runs
/// its one loop, with the slot's settings at its start.
pub fn spawn_datagram_service(
    runtime: &Runtime,
    socket: UdpSocket,
    slot: Arc<ServiceSlot>,
    service: DatagramService,
) -> io::Result<ServiceHandle> {
    let local = socket.local_addr()?;
    let socket = Async::new(socket)?;
    let task = runtime
        .executor
        .spawn(serve_datagrams(socket, local, service, Arc::clone(&slot)));
    Ok(ServiceHandle {
        local_addr: local,
        task,
        slot,
    })
}

/// Starts serving `listener` on `runtime`, with the slot's settings as of each accepted
/// client: at most `maxconn` clients at once (further clients wait in the listen backlog,
/// as with 3proxy).
///
/// `maxconn` is counted by the accept loop itself rather than by a semaphore so that a
/// reload can change it: the loop waits for a finished connection only while the
/// current `maxconn` clients are being served.
pub fn spawn_service(
    runtime: &Runtime,
    listener: TcpListener,
    slot: Arc<ServiceSlot>,
) -> io::Result<ServiceHandle> {
    let local = listener.local_addr()?;
    let listener = Async::new(listener)?;
    let executor = Arc::clone(&runtime.executor);
    let slots = Arc::new(Slots::default());
    let accept_slot = Arc::clone(&slot);
    let task = runtime.executor.spawn(async move {
        loop {
            let settings = accept_slot.load();
            let permit = slots.acquire(settings.maxconn).await;
            let accepted = listener
                .read_with(net::accept_nonblocking)
                .await
                .and_then(|(s, peer)| Ok((Async::new_nonblocking(s)?, peer)));
            match accepted {
                Ok((stream, peer)) => {
                    // The settings as of the accept (a reload may have come while waiting).
                    let settings = accept_slot.load();
                    let policy = Arc::clone(&settings.policy);
                    let hooks = settings.hooks.clone();
                    if let Some(task) =
                        serve_connection(stream, peer, local, policy, hooks, permit, &accept_slot)
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
    });
    Ok(ServiceHandle {
        local_addr: local,
        task,
        slot,
    })
}

/// Connections being served by one service, with a wake-up when one ends.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    busy: std::sync::atomic::AtomicUsize,
    freed: event_listener::Event,
}

/// One connection's place among its service's `maxconn`; freed when dropped.
#[derive(Debug)]
pub(crate) struct Permit(Arc<Slots>);

impl Drop for Permit {
    fn drop(&mut self) {
        self.0
            .busy
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        self.0.freed.notify(1);
    }
}

impl Slots {
    /// Takes a place once fewer than `max` are taken.
    async fn acquire(self: &Arc<Self>, max: usize) -> Permit {
        use std::sync::atomic::Ordering;
        loop {
            let taken = self
                .busy
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < max.max(1)).then_some(n + 1)
                })
                .is_ok();
            if taken {
                return Permit(Arc::clone(self));
            }
            let listener = self.freed.listen();
            // Look again: a connection may have ended between the two steps.
            if self.busy.load(Ordering::Acquire) < max.max(1) {
                continue;
            }
            listener.await;
        }
    }
}
