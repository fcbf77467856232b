//! The accept loop every server here shares: bind `127.0.0.1:0` on the caller's tokio runtime,
//! serve each connection on a task of its own, and abort them all when the owning handle drops,
//! so a test that forgets a server leaks nothing past its runtime.

use std::future::Future;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::task::{JoinHandle, JoinSet};

/// How long the loop rests after a failed accept (say, out of file descriptors) before trying
/// again, so a full descriptor table does not turn the loop into a busy spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// A listening server's address and accept task; dropping it aborts the task and, with it,
/// every connection task the loop spawned.
#[derive(Debug)]
pub(crate) struct Serving {
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Serving {
    /// The bound loopback address.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Binds a fresh loopback port and serves every accepted connection with `handler`.
///
/// Fails (rather than panics) when called outside a tokio runtime.
pub(crate) fn spawn<F, Fut>(server: &'static str, handler: F) -> io::Result<Serving>
where
    F: Fn(TcpStream, SocketAddr) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = Handle::try_current().map_err(|_| {
        io::Error::other(format!(
            "{server}: no tokio runtime on this thread; start the server from inside one \
             (for example in a #[tokio::test])"
        ))
    })?;
    let std_listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let listener = {
        let _entered = runtime.enter();
        TcpListener::from_std(std_listener)?
    };
    let task = runtime.spawn(accept_loop(server, listener, handler));
    Ok(Serving { addr, task })
}

async fn accept_loop<F, Fut>(server: &'static str, listener: TcpListener, handler: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Owned by this task: when the task is aborted the set drops and aborts every connection.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if let Err(error) = stream.set_nodelay(true) {
                        tracing::debug!(server, %peer, %error, "could not set TCP_NODELAY");
                    }
                    connections.spawn(handler(stream, peer));
                }
                Err(error) => {
                    tracing::warn!(server, %error, "accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            Some(finished) = connections.join_next(), if !connections.is_empty() => {
                if let Err(error) = finished
                    && error.is_panic()
                {
                    tracing::error!(server, %error, "a connection task panicked");
                }
            }
        }
    }
}
