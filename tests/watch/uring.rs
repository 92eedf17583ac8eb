//! The ops of `ops` and `attrs` through io_uring: by any thread of the submitter (an io-wq
//! worker or the submitter itself), and without "ret" on the tracepoint backend.

use super::*;

use libc::c_long;

/// One io_uring operation, waited for; its result (>= 0 or -errno).
fn uring(ring: &mut io_uring::IoUring, e: io_uring::squeue::Entry) -> Result<i32, String> {
    unsafe { ring.submission().push(&e) }.map_err(|e| format!("io_uring push: {e}"))?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let cqe = ring.completion().next().ok_or("io_uring: no completion")?;
    Ok(cqe.result())
}

#[test]
fn io_uring_ops_are_reported() {
    needs_root!();
    use io_uring::{opcode, types::Fd};
    let d = TestDir::new("uring");
    make_dir(d.t("exists"));
    let backend = expected_backend();
    let (evs, by) = d.root_run(&[], || {
        let mut ring = io_uring::IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
        let at = Fd(libc::AT_FDCWD);
        let ok = |what: &str, r: i32| {
            if r < 0 {
                Err(format!("io_uring {what}: errno {}", -r))
            } else {
                Ok(r)
            }
        };
        let (dir, f, g) = (cp(d.t("u_dir")), cp(d.t("u_file")), cp(d.t("u_moved")));
        ok(
            "mkdirat",
            uring(
                &mut ring,
                opcode::MkDirAt::new(at, dir.as_ptr()).mode(0o750).build(),
            )?,
        )?;
        let fd = ok(
            "openat",
            uring(
                &mut ring,
                opcode::OpenAt::new(at, f.as_ptr())
                    .flags(libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC)
                    .mode(0o640)
                    .build(),
            )?,
        )?;
        close(fd as c_long);
        ok(
            "renameat",
            uring(
                &mut ring,
                opcode::RenameAt::new(at, f.as_ptr(), at, g.as_ptr()).build(),
            )?,
        )?;
        ok(
            "unlinkat",
            uring(&mut ring, opcode::UnlinkAt::new(at, g.as_ptr()).build())?,
        )?;
        ok(
            "unlinkat AT_REMOVEDIR",
            uring(
                &mut ring,
                opcode::UnlinkAt::new(at, dir.as_ptr())
                    .flags(libc::AT_REMOVEDIR)
                    .build(),
            )?,
        )?;
        // Outside the tree: nothing.
        let out = cp(d.o("u_out"));
        ok(
            "mkdirat outside",
            uring(
                &mut ring,
                opcode::MkDirAt::new(at, out.as_ptr()).mode(0o755).build(),
            )?,
        )?;
        // A failed op is not reported where the backend knows the outcome (the tracepoint
        // backend sees only the submission).
        if backend != "tracepoint" {
            let ex = cp(d.t("exists"));
            let r = uring(
                &mut ring,
                opcode::MkDirAt::new(at, ex.as_ptr()).mode(0o755).build(),
            )?;
            if r != -libc::EEXIST {
                return Err(format!("mkdirat of an existing dir gave {r}, want -EEXIST"));
            }
        }
        Ok(())
    });
    let e = |op: &str, rel: &str| by.op(op, rel).io_uring();
    d.expect(
        &evs,
        &[
            e("mkdir", "u_dir").mode(0o750),
            e("create", "u_file").mode(0o640),
            e("rename", "u_file").new_path(d.t("u_moved")),
            e("unlink", "u_moved"),
            e("rmdir", "u_dir"),
        ],
    );
}
