//! RFC 5734 §4 data units: a 4-byte big-endian total length (header
//! included) followed by the XML instance.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The peer closed the connection between frames.
    #[error("connection closed")]
    Closed,
    #[error("frame length {0} is out of range (5..={1} bytes)")]
    Length(u64, usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Read one frame of at most `max` bytes (header included). The length is
/// checked before anything is allocated: a 4 GiB header costs nothing.
pub async fn read_frame<R: AsyncRead + Unpin>(
    r: &mut R,
    max: usize,
) -> Result<Vec<u8>, FrameError> {
    let mut hdr = [0u8; 4];
    match r.read_exact(&mut hdr).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(FrameError::Closed),
        Err(e) => return Err(e.into()),
    }
    let total = u32::from_be_bytes(hdr) as u64;
    if total < 5 || total > max as u64 {
        return Err(FrameError::Length(total, max));
    }
    let mut body = vec![0u8; total as usize - 4];
    r.read_exact(&mut body).await?;
    Ok(body)
}

/// Write one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, body: &[u8]) -> std::io::Result<()> {
    let total = u32::try_from(body.len() + 4)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(body);
    w.write_all(&buf).await?;
    w.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn run<T>(f: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn huge_length_is_refused_before_allocation() {
        let mut input: &[u8] = &[0xff, 0xff, 0xff, 0xff, b'<'];
        assert!(matches!(
            run(read_frame(&mut input, 65_536)),
            Err(FrameError::Length(4_294_967_295, _))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        /// Any byte string: a frame, a clean error, never a panic; a written
        /// frame reads back as itself.
        #[test]
        fn reader_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300),
                               body in proptest::collection::vec(any::<u8>(), 1..200)) {
            let mut input: &[u8] = &bytes;
            let _ = run(read_frame(&mut input, 256));
            let mut out = Vec::new();
            run(write_frame(&mut out, &body)).unwrap();
            let mut back: &[u8] = &out;
            prop_assert_eq!(run(read_frame(&mut back, 1024)).unwrap(), body);
        }
    }
}
