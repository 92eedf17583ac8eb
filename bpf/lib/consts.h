/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel constants (no <linux/...> headers here), and the room the record gives each part. */
#ifndef OW_LIB_CONSTS_H
#define OW_LIB_CONSTS_H

#define S_IFMT 00170000
#define S_IFREG 0100000
#define O_WRONLY 01
#define O_RDWR 02
#define O_CREAT 0100
#define O_TRUNC 01000
#define O_TMPFILE_DIR 020000000
#define AT_FDCWD -100
#define AT_SYMLINK_NOFOLLOW 0x100
#define AT_REMOVEDIR 0x200
#define AT_SYMLINK_FOLLOW 0x400
#define AT_EMPTY_PATH 0x1000
#define RENAME_EXCHANGE 2
#define EEXIST 17
#define AF_UNIX 1
#define FMODE_WRITE 0x2
#define FMODE_CREATED 0x100000
#define NAME_MAX_READ 256
#define PATH_MAX 4096
#define DATA_MASK (OW_DATA_MAX - 1)
#define WALK_MAX_STEPS 8192
#define WALK_CHUNK 64 /* steps per call of ow_walk_chunk */
#define WALK_CHUNKS 8 /* chunks per call of ow_walk_chunks */
#define IDENTITY_RESERVE 12288 /* argv, exe, cgroup, parents: added last, room kept for them */
#define WALK_ROOM (OW_DATA_MAX - IDENTITY_RESERVE)
/* Changed directories first (OW_SLOT_SEEN: they decide tree and path), leaving room for two
 * path strings and the walks of the directories they are relative to. */
#define SEEN_ROOM (WALK_ROOM - 2 * (PATH_MAX + 1024))
/* Then each string with the directory it is relative to: one gets all the room, the first of
 * two (rename, link) leaves room for the second. */
#define LIMIT_ONE WALK_ROOM
#define LIMIT_FIRST (WALK_ROOM - PATH_MAX - 1024)
#define LIMIT_SECOND WALK_ROOM
#define ARGV_CHUNK 256
#define ARGV_MAX 8192
#define EXE_ROOM 2048
#define MAX_PARENTS 16
#define CGROUP_DEPTH 32
#define PROC_SUPER_MAGIC 0x9fa0 /* (linux/magic.h, which vmlinux.h does not carry) */

#endif
