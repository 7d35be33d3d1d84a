/* SPDX-License-Identifier: MIT */
/*
 * The fd broker: how a process reaches a peer's queue memfds, MR segment
 * memfds and event pipes when /proc/<pid>/fd/<fd> is closed to it (the
 * kernel only lets the same uid, or root, open another process's fds
 * there).
 *
 * Every open context runs one broker thread that sleeps in accept() on
 *   <run>/dev/<device>.ctx/<slot>.sock
 * The directory (made by uibctl add) and the socket carry the device's
 * group and mode, so only those who may open the device can connect; the
 * broker also checks SO_PEERCRED.  A peer sends (fd, inode, kind) and gets
 * the fd back by SCM_RIGHTS, but only an fd this process exports: a memfd
 * named "uib-..." (queues, MR segments), or a pipe registered with
 * uib_fdpass_export_pipe() (event pipes), of which it gets a write end.
 *
 * Error convention: 0 / an fd, or -errno.
 */
#ifndef UIB_FDPASS_H
#define UIB_FDPASS_H

#include <stdint.h>

/* Starts the broker of context slot ctx_slot of device dev; 'owner' keys
 * it for uib_broker_stop().  state_fd is the device's state file, whose
 * group and mode the socket takes.  A broker that cannot start is not
 * fatal: the context works, but peers of other users cannot reach it. */
int uib_broker_start(const void *owner, const char *run_dir, const char *dev,
		     int ctx_slot, int state_fd);
/* Stops the thread and removes the socket (if it is still ours). */
void uib_broker_stop(const void *owner);

/* Exports an event pipe: peers asking for the pipe with fd's inode get a
 * write end of it.  fd must stay open until uib_fdpass_unexport_pipe(). */
int uib_fdpass_export_pipe(int fd);
void uib_fdpass_unexport_pipe(int fd);

/*
 * Opens fd 'fd' (inode 'ino') of process 'pid', which holds context slot
 * ctx_slot of device dev: O_RDWR for a memfd, O_WRONLY (| O_NONBLOCK) for
 * a write end of a pipe.  First /proc/<pid>/fd/<fd> (same user or root),
 * then, if that is refused, the peer's broker.  The returned fd is checked
 * to have inode ino and the right type.  -EACCES: permission denied (with
 * a uib_dbg line); -ESRCH/-ENOENT: the peer or its fd is gone.
 */
int uib_peer_fd_open(const char *run_dir, const char *dev, int ctx_slot,
		     int32_t pid, int32_t fd, uint64_t ino, int flags);
/* The same when only the pid is known: finds the peer's contexts in the
 * device states of the run directories this process has brokers in. */
int uib_peer_fd_open_pid(int32_t pid, int32_t fd, uint64_t ino, int flags);

/* <run>/dev/<dev>.ctx/<slot>.sock; -ENAMETOOLONG if it does not fit. */
int uib_broker_path(const char *run_dir, const char *dev, int ctx_slot,
		    char *buf, size_t len);

#endif /* UIB_FDPASS_H */
