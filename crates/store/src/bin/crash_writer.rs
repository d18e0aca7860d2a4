//! Writes batches to a store forever, printing the number of each one after it commits, until it
//! is killed. The crash test kills it with SIGKILL and checks what survived.

#![allow(clippy::print_stderr, reason = "a test helper process reports its errors on stderr")]

use std::io::Write;

use enigma_store::Store;
use enigma_types::{ContractAddress, TaskId};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: enigma-store-crash-writer <database path>");
        std::process::exit(2);
    };
    let store = match Store::open(&path) {
        Ok(store) => store,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let contract = ContractAddress([7; 32]);
    let mut stdout = std::io::stdout();
    for i in 0u64.. {
        let mut id = [0u8; 32];
        id[..8].copy_from_slice(&i.to_be_bytes());
        let payload = vec![(i % 251) as u8; 4096];
        let written = store.batch().and_then(|mut b| {
            b.put_delta(&contract, i, &payload)?;
            b.put_result(&TaskId(id), &payload)?;
            b.put_pending_receipt(&contract, &TaskId(id), &i.to_be_bytes())?;
            b.commit()
        });
        if let Err(e) = written {
            eprintln!("{e}");
            std::process::exit(1);
        }
        if writeln!(stdout, "{i}").and_then(|()| stdout.flush()).is_err() {
            std::process::exit(0);
        }
    }
}
