//! The file server for host tests: fuse-backend-rs's `Server` with its `PassthroughFs` on a
//! directory, called in-process through a test `FuseTransport` (the request is handed to
//! `Server::handle_message` as a FUSE buffer; the reply is written to one end of a
//! `SOCK_SEQPACKET` socket pair and read from the other).
#![allow(dead_code)]

use fuse_backend_rs::api::server::Server;
use fuse_backend_rs::passthrough::{Config, PassthroughFs};
use fuse_backend_rs::transport::{FuseBuf, FuseDevWriter, Reader, Writer};
use guest_fs::Errno;
use guest_fs::fuse::{FuseClient, FuseTransport};
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// The in-process transport.
pub struct InProcess {
    server: Server<PassthroughFs>,
    tx: libc::c_int,
    rx: libc::c_int,
    lock: Mutex<()>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        // SAFETY: both fds were opened by `socketpair` in `serve` and are closed only here.
        unsafe {
            libc::close(self.tx);
            libc::close(self.rx);
        }
    }
}

impl FuseTransport for InProcess {
    fn call(&self, request: &[&[u8]], reply: &mut [&mut [u8]]) -> guest_fs::Result<usize> {
        let _g = self.lock.lock().unwrap();
        let mut req = request.concat();
        let reader =
            Reader::<()>::from_fuse_buffer(FuseBuf::new(&mut req)).map_err(|_| Errno::EIO)?;
        let mut wbuf = vec![0u8; (1 << 20) + 4096];
        let writer = FuseDevWriter::<()>::new(self.tx, &mut wbuf).map_err(|_| Errno::EIO)?;
        self.server
            .handle_message(reader, Writer::FuseDev(writer), None, None)
            .map_err(|_| Errno::EIO)?;
        // Collect what the server wrote (one or more messages; none for FORGET).
        let mut out = Vec::new();
        let mut buf = vec![0u8; (1 << 20) + 4096];
        loop {
            // SAFETY: `buf` is writable for its length; `rx` is our open socket.
            let n = unsafe {
                libc::recv(
                    self.rx,
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if n <= 0 {
                break;
            }
            out.extend_from_slice(&buf[..n as usize]);
        }
        let mut copied = 0;
        for r in reply.iter_mut() {
            let take = r.len().min(out.len() - copied);
            r[..take].copy_from_slice(&out[copied..copied + take]);
            copied += take;
        }
        Ok(copied)
    }
}

/// A fresh per-test directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("pvm-fuse-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// A FUSE session with a passthrough server on `dir`.
pub fn serve(dir: &Path) -> FuseClient {
    let cfg = Config {
        root_dir: dir.to_str().unwrap().to_string(),
        // As the file server F configures it (file-server/src/process.rs): host inode numbers
        // come in the attributes, node ids are the server's own.
        xattr: true,
        do_import: true,
        ..Default::default()
    };
    let fs = PassthroughFs::<()>::new(cfg).unwrap();
    fs.import().unwrap();
    let mut fds = [0; 2];
    // SAFETY: `fds` has room for the two descriptors socketpair writes.
    let rc = unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_SEQPACKET | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    };
    assert_eq!(rc, 0);
    let t = InProcess {
        server: Server::new(fs),
        tx: fds[0],
        rx: fds[1],
        lock: Mutex::new(()),
    };
    FuseClient::init(Arc::new(t)).unwrap()
}

