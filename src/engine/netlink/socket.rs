//! The real transport: a `NETLINK_GENERIC` socket driven by netlink-proto, which numbers
//! requests and routes multipart replies, ACKs and errors back to the right request.

use std::io;

use futures::StreamExt;
use netlink_packet_core::NetlinkMessage;
use netlink_proto::ConnectionHandle;
use netlink_proto::sys::SocketAddr;
use netlink_proto::sys::protocols::NETLINK_GENERIC;

use super::Transport;
use super::wire::GenlPayload;
use crate::engine::BoxFuture;

/// A generic-netlink socket. Dropping it stops its background task.
pub struct SocketTransport {
    handle: ConnectionHandle<GenlPayload>,
    task: tokio::task::JoinHandle<()>,
}

impl SocketTransport {
    /// Opens the socket and spawns its connection task; needs a tokio runtime.
    pub fn open() -> io::Result<Self> {
        let (mut connection, handle, _unsolicited) =
            netlink_proto::new_connection(NETLINK_GENERIC)?;
        // netlink-proto swallows the kernel's ACK (for changes) and DONE (ending a dump)
        // unless told to pass them on; the engine waits for both, so without these every
        // operation looked unanswered against a real kernel. The in-memory kernel cannot
        // show this: the VM tests (tests/ipvs_vm.rs) do.
        connection.set_forward_ack(true);
        connection.set_forward_done(true);
        let task = tokio::spawn(connection);
        Ok(SocketTransport { handle, task })
    }
}

impl Drop for SocketTransport {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Transport for SocketTransport {
    fn request(
        &mut self,
        message: NetlinkMessage<GenlPayload>,
    ) -> BoxFuture<'_, io::Result<Vec<NetlinkMessage<GenlPayload>>>> {
        Box::pin(async move {
            let stream = self
                .handle
                .request(message, SocketAddr::new(0, 0))
                .map_err(|e| io::Error::new(io::ErrorKind::BrokenPipe, e.to_string()))?;
            // netlink-proto ends the stream after the ACK, error or DONE message.
            Ok(stream.collect().await)
        })
    }

    /// A new socket and connection task; the old task is stopped.
    fn reopen(&mut self) -> io::Result<()> {
        *self = SocketTransport::open()?;
        Ok(())
    }
}
