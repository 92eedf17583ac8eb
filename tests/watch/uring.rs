//! The ops of `ops` and `attrs` through io_uring: by any thread of the submitter (an io-wq
//! worker or the submitter itself), and without "ret" on the tracepoint backend.

use super::*;

use std::ffi::CString;

use libc::c_long;

/// One io_uring operation, waited for; its result (>= 0 or -errno).
fn uring(ring: &mut io_uring::IoUring, e: io_uring::squeue::Entry) -> Result<i32, String> {
    unsafe { ring.submission().push(&e) }.map_err(|e| format!("io_uring push: {e}"))?;
    ring.submit_and_wait(1)
        .map_err(|e| format!("io_uring_enter: {e}"))?;
    let cqe = ring.completion().next().ok_or("io_uring: no completion")?;
    Ok(cqe.result())
}

/// Which io_uring opcodes this kernel has (5.10: openat only; renameat and unlinkat 5.11,
/// mkdirat 5.15, setxattr and fsetxattr 5.19, ftruncate 6.9).
fn supported() -> io_uring::Probe {
    let ring = io_uring::IoUring::new(2).expect("io_uring_setup");
    let mut probe = io_uring::Probe::new();
    ring.submitter()
        .register_probe(&mut probe)
        .expect("IORING_REGISTER_PROBE");
    probe
}

#[test]
fn io_uring_ops_are_reported() {
    needs_root!();
    use io_uring::{opcode, types::Fd};
    let d = TestDir::shared("uring");
    make_dir(d.t("exists"));
    let backend = expected_backend();
    let has = supported();
    let (mkdir, rename, unlink) = (
        has.is_supported(opcode::MkDirAt::CODE),
        has.is_supported(opcode::RenameAt::CODE),
        has.is_supported(opcode::UnlinkAt::CODE),
    );
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
        if mkdir {
            ok(
                "mkdirat",
                uring(
                    &mut ring,
                    opcode::MkDirAt::new(at, dir.as_ptr()).mode(0o750).build(),
                )?,
            )?;
        }
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
        if rename && unlink {
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
        }
        if mkdir && unlink {
            ok(
                "unlinkat AT_REMOVEDIR",
                uring(
                    &mut ring,
                    opcode::UnlinkAt::new(at, dir.as_ptr())
                        .flags(libc::AT_REMOVEDIR)
                        .build(),
                )?,
            )?;
        }
        // Outside the tree: nothing.
        let out = cp(d.o("u_out"));
        let o = cp(d.o("u_out_file"));
        let fd = ok(
            "openat outside",
            uring(
                &mut ring,
                opcode::OpenAt::new(at, o.as_ptr())
                    .flags(libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC)
                    .mode(0o640)
                    .build(),
            )?,
        )?;
        close(fd as c_long);
        if mkdir {
            ok(
                "mkdirat outside",
                uring(
                    &mut ring,
                    opcode::MkDirAt::new(at, out.as_ptr()).mode(0o755).build(),
                )?,
            )?;
        }
        // A failed op is not reported where the backend knows the outcome (the tracepoint
        // backend sees only the submission).
        if backend != "tracepoint" && mkdir {
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
    // The tracepoint backend sees io_uring where its submission tracepoint passes the request
    // with readable paths (probe's feature io_uring_tracepoint); elsewhere it cannot, and
    // says so in probe: then nothing comes, and nothing wrong.
    if backend == "tracepoint"
        && probe()["kernel"]["features"]["io_uring_tracepoint"]["present"] != true
    {
        return d.expect(&evs, &[]);
    }
    let e = |op: &str, rel: &str| by.op(op, rel).io_uring();
    let mut want = vec![e("create", "u_file").mode(0o640)];
    if mkdir {
        want.insert(0, e("mkdir", "u_dir").mode(0o750));
    }
    if rename && unlink {
        want.push(e("rename", "u_file").new_path(d.t("u_moved")));
        want.push(e("unlink", "u_moved"));
    }
    if mkdir && unlink {
        want.push(e("rmdir", "u_dir"));
    }
    d.expect(&evs, &want);
}

/// ftruncate (6.9+), setxattr and fsetxattr (5.19+) through io_uring, in the tree and outside
/// it. A registered file (IOSQE_FIXED_FILE) is an index into the ring's own table, which the
/// tracepoint backend does not read: its ftruncate is seen by the other backends only.
#[test]
fn io_uring_truncate_and_xattrs_are_reported() {
    needs_root!();
    use io_uring::{opcode, types};
    let d = TestDir::shared("uring-attrs");
    make_file(d.t("x"), b"data");
    std::os::unix::fs::symlink("x", d.t("xsl")).unwrap();
    make_file(d.o("o"), b"data");
    let backend = expected_backend();
    let has = supported();
    let (ftrunc, setx, fsetx) = (
        has.is_supported(opcode::Ftruncate::CODE),
        has.is_supported(opcode::SetXattr::CODE),
        has.is_supported(opcode::FSetXattr::CODE),
    );
    let (evs, by) = d.root_run(&[], || {
        let mut ring = io_uring::IoUring::new(8).map_err(|e| format!("io_uring_setup: {e}"))?;
        let ok = |what: &str, r: Result<i32, String>| match r? {
            r if r < 0 => Err(format!("io_uring {what}: errno {}", -r)),
            r => Ok(r),
        };
        let (x, xsl, o) = (cp(d.t("x")), cp(d.t("xsl")), cp(d.o("o")));
        let wr = libc::O_WRONLY | libc::O_CLOEXEC;
        let fd = sc!(libc::SYS_openat, libc::AT_FDCWD, x.clone(), wr)? as i32;
        let ofd = sc!(libc::SYS_openat, libc::AT_FDCWD, o.clone(), wr)? as i32;
        let (v, name) = (b"value", cs("trusted.ur"));
        let (vp, vl) = (v.as_ptr().cast(), v.len() as u32);
        if ftrunc {
            let t = |ring: &mut _, f, n| uring(ring, opcode::Ftruncate::new(f, n).build());
            ok("ftruncate", t(&mut ring, types::Fd(fd), 3))?;
            ok("ftruncate outside", t(&mut ring, types::Fd(ofd), 3))?;
            ring.submitter()
                .register_files(&[fd])
                .map_err(|e| format!("IORING_REGISTER_FILES: {e}"))?;
            let f = uring(
                &mut ring,
                opcode::Ftruncate::new(types::Fixed(0), 2).build(),
            );
            ok("ftruncate of a registered file", f)?;
        }
        if setx {
            let s = |ring: &mut _, p: &CString| {
                uring(
                    ring,
                    opcode::SetXattr::new(name.as_ptr(), vp, p.as_ptr(), vl).build(),
                )
            };
            ok("setxattr", s(&mut ring, &xsl))?; // follows the link
            ok("setxattr outside", s(&mut ring, &o))?;
        }
        if fsetx {
            let s = |ring: &mut _, f| {
                uring(
                    ring,
                    opcode::FSetXattr::new(f, name.as_ptr(), vp, vl).build(),
                )
            };
            ok("fsetxattr", s(&mut ring, types::Fd(fd)))?;
            ok("fsetxattr outside", s(&mut ring, types::Fd(ofd)))?;
        }
        close(fd as c_long);
        close(ofd as c_long);
        Ok(())
    });
    if backend == "tracepoint"
        && probe()["kernel"]["features"]["io_uring_tracepoint"]["present"] != true
    {
        return d.expect(&evs, &[by.op("write", "x")]);
    }
    let e = |op: &str| by.op(op, "x").io_uring();
    let mut want = vec![by.op("write", "x")];
    if ftrunc {
        want.push(e("truncate"));
        if backend != "tracepoint" {
            want.push(e("truncate"));
        }
    }
    if setx {
        want.push(e("setxattr").xattr("trusted.ur"));
    }
    if fsetx {
        want.push(e("setxattr").xattr("trusted.ur"));
    }
    d.expect(&evs, &want);
}
