// SPDX-License-Identifier: GPL-2.0
/* ownwatch kernel side. Every hook runs the same filter, cheapest first:
 *   1. the caller's fsuid is allowed in every watched tree -> return (the normal workload)
 *   2. the op is not wanted -> return
 *   3. tree membership by (dev, ino) ancestry, then one ring buffer record.
 * Programs are declared optional (SEC("?...")); user space enables the family it picked, by
 * program name (lib/prog_names.h). lib/ holds what the hooks share, hooks/ the programs. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "ownwatch.h"

char LICENSE[] SEC("license") = "GPL";

/* Set by user space between open and load. */
const volatile __u32 op_mask = 0xffffffff;
const volatile __u32 self_tgid = 0;
const volatile __u32 backend_id = OW_BACKEND_TRACEPOINT;
/* Where the hooked functions keep their arguments (lsm, fentry, kprobe); the defaults are
 * 6.3 to 6.14's, user space sets this kernel's from its BTF. */
const volatile struct ow_fn_args fn_args = {
	/* mkdir mknod create symlink link unlink rmdir notify setx remx setacl remacl rename */
	.done_key = { 2, 2, 2, 2, 0, 2, 2, 1, 1, 1, 1, 1, 0 },
	.done_nargs = { 4, 5, 5, 4, 5, 4, 3, 4, 6, 3, 4, 3, 1 },
	.xattr_dentry = { 1, 1, 1, 1 },
	.xattr_name = { 2, 2, 2, 2 },
};

_Static_assert(sizeof(struct ow_event) == 104, "ow_event layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_walkend) == 16, "ow_walkend layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_walkrel) == 16, "ow_walkrel layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_walkkeep) == 12, "ow_walkkeep layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_rootref) == 8, "ow_rootref layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_rootkeep) == 12, "ow_rootkeep layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_walkref) == 12, "ow_walkref layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_walkup) == 12, "ow_walkup layout changed: update src/kernel/abi.rs");
_Static_assert(sizeof(struct ow_outcome) == 24, "ow_outcome layout changed: update src/kernel/abi.rs");

/* Put the record types into BTF so the skeleton generates them for Rust. */
struct ow_event _ow_event = {};
struct ow_walkend _ow_walkend = {};
struct ow_parent _ow_parent = {};
struct ow_walkrel _ow_walkrel = {};
struct ow_walkkeep _ow_walkkeep = {};
struct ow_walkref _ow_walkref = {};
struct ow_walkup _ow_walkup = {};
struct ow_rootref _ow_rootref = {};
struct ow_rootkeep _ow_rootkeep = {};
struct ow_outcome _ow_outcome = {};
enum ow_op _ow_op = 0;
enum ow_flags _ow_flags = 0;
enum ow_slot _ow_slot = 0;
enum ow_item _ow_item = 0;
enum ow_backend _ow_backend = 0;
enum ow_done _ow_done = 0;
enum ow_xhook _ow_xhook = 0;
enum ow_reader _ow_reader = 0;

#include "lib/prog_names.h"
#include "lib/pin.h"
#include "lib/consts.h"
#include "lib/maps.h"
#include "lib/filter.h"
#include "lib/record.h"
#include "lib/walk.h"
#include "lib/identity.h"
#include "lib/submit.h"
#include "hooks/syscalls.h"
#include "hooks/coredump.h"
#include "hooks/ctime.h"
#include "hooks/syscall_exit.h"
#include "hooks/uring.h"
#include "hooks/vfs.h"
