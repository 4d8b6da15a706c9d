//! A smol executor on a fixed number of threads, owned by one measurement: everything it
//! runs (clients, targets, their connections) is dropped, and every socket closed, when
//! the runner is shut down.
//!
//! Tasks that spawn further tasks hold a [`Weak`] reference (from [`Runner::weak`]), so the
//! executor is never kept alive by its own tasks. It is not a general-purpose runtime.

use smol::{Executor, Task};
use std::future::Future;
use std::io;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};

/// Most executor threads.
pub const MAX_THREADS: usize = 64;

/// See the [module documentation](self).
#[derive(Debug)]
pub struct Runner {
    ex: Arc<Executor<'static>>,
    stop: Option<smol::channel::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Runner {
    /// Starts `threads` (1..=[`MAX_THREADS`]) executor threads.
    pub fn new(threads: usize) -> io::Result<Runner> {
        let ex = Arc::new(Executor::new());
        let (stop, stopped) = smol::channel::bounded::<()>(1);
        let mut runner = Runner {
            ex,
            stop: Some(stop),
            threads: Vec::new(),
        };
        for i in 0..threads.clamp(1, MAX_THREADS) {
            let ex = Arc::clone(&runner.ex);
            let stopped = stopped.clone();
            let handle = thread::Builder::new()
                .name(format!("load-exec-{i}"))
                .spawn(move || {
                    // Ends when the sender is dropped (recv fails).
                    let _ = smol::block_on(ex.run(stopped.recv()));
                })?;
            runner.threads.push(handle);
        }
        Ok(runner)
    }

    /// Runs `fut` on the executor threads.
    pub fn spawn<T: Send + 'static>(
        &self,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Task<T> {
        self.ex.spawn(fut)
    }

    /// A handle for tasks that spawn tasks.
    pub fn weak(&self) -> Weak<Executor<'static>> {
        Arc::downgrade(&self.ex)
    }

    /// Waits on this thread for `fut` (usually a [`Task`] from [`Runner::spawn`]).
    pub fn wait<T>(&self, fut: impl Future<Output = T>) -> T {
        smol::block_on(fut)
    }
}

impl Drop for Runner {
    /// Stops the threads, then drops the executor with every task still on it.
    fn drop(&mut self) {
        self.stop = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};

    struct SetOnDrop(Arc<AtomicBool>);
    impl Drop for SetOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn runs_tasks_and_drops_leftovers() {
        let dropped = Arc::new(AtomicBool::new(false));
        {
            let runner = Runner::new(2).unwrap();
            assert_eq!(runner.wait(runner.spawn(async { 40 + 2 })), 42);
            let weak = runner.weak();
            let inner = runner.wait(runner.spawn(async move {
                let ex = weak.upgrade().unwrap();
                ex.spawn(async { 7 }).await
            }));
            assert_eq!(inner, 7);
            let guard = SetOnDrop(Arc::clone(&dropped));
            runner
                .spawn(async move {
                    let _guard = guard;
                    std::future::pending::<()>().await;
                })
                .detach();
        }
        assert!(dropped.load(Ordering::SeqCst));
    }
}
