//! A request-response codec of raw, size-bounded bytes: one request or response per stream,
//! read up to a limit. Decoding (postcard, version check) happens in the service, where a
//! malformed message can be counted against its sender.

use std::io;

use futures::prelude::*;
use libp2p::StreamProtocol;

/// Raw bytes, bounded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BytesCodec {
    pub(crate) max_request: u64,
    pub(crate) max_response: u64,
}

/// Reads one message: the stream's bytes up to its end, at most `max`. A stream that ends with
/// no byte carries no message: its sender dropped the exchange (a timeout, a restart, a cut
/// link; a partition healing showed both sides doing it). That is a failed exchange, never a
/// malformed message to count against the peer — no well-formed message is empty.
async fn read_bounded<T: AsyncRead + Unpin + Send>(io: &mut T, max: u64) -> io::Result<Vec<u8>> {
    let mut out = Vec::new();
    io.take(max + 1).read_to_end(&mut out).await?;
    if out.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "the stream ended before a message",
        ));
    }
    if out.len() as u64 > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message exceeds {max} bytes"),
        ));
    }
    Ok(out)
}

impl libp2p::request_response::Codec for BytesCodec {
    type Protocol = StreamProtocol;
    type Request = Vec<u8>;
    type Response = Vec<u8>;

    async fn read_request<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io, self.max_request).await
    }

    async fn read_response<T>(&mut self, _: &Self::Protocol, io: &mut T) -> io::Result<Vec<u8>>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_bounded(io, self.max_response).await
    }

    async fn write_request<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        req: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &Self::Protocol,
        io: &mut T,
        res: Vec<u8>,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_that_ends_empty_is_a_failed_exchange_not_a_malformed_message() {
        use libp2p::request_response::Codec as _;
        let mut codec = BytesCodec { max_request: 16, max_response: 16 };
        let protocol = StreamProtocol::new("/test");
        futures::executor::block_on(async {
            let mut empty = futures::io::Cursor::new(Vec::<u8>::new());
            let e = codec.read_response(&protocol, &mut empty).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
            let mut two = futures::io::Cursor::new(vec![1u8, 2]);
            assert_eq!(codec.read_response(&protocol, &mut two).await.unwrap(), vec![1, 2]);
            let mut big = futures::io::Cursor::new(vec![0u8; 17]);
            let e = codec.read_response(&protocol, &mut big).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::InvalidData);
            let mut empty = futures::io::Cursor::new(Vec::<u8>::new());
            let e = codec.read_request(&protocol, &mut empty).await.unwrap_err();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        });
    }
}
