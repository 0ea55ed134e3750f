//go:build linux

package sandbox

import "testing"

// The holder of a journal's lock is read from /proc/locks: the PID of
// the one process holding a write flock on its inode, not a waiter's
// nor a POSIX lock's, and none when two processes hold one on that
// inode number (two file systems).
func TestHolderIsReadFromProcLocks(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 11 00:1f:77 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF
2: -> FLOCK  ADVISORY  WRITE 5151 fd:01:77 0 EOF
3: FLOCK  ADVISORY  READ 6161 fd:01:78 0 EOF
4: FLOCK  ADVISORY  WRITE 7171 fd:01:778 0 EOF
`
	if got := holderIn([]byte(locks), 77); got != 4242 {
		t.Errorf("holder of inode 77: %d, want 4242", got)
	}
	if got := holderIn([]byte(locks), 78); got != 0 {
		t.Errorf("holder of inode 78 (a read lock only): %d, want 0", got)
	}
	if got := holderIn([]byte(locks+"5: FLOCK  ADVISORY  WRITE 8181 08:02:77 0 EOF\n"), 77); got != 0 {
		t.Errorf("holder of inode 77 on two file systems: %d, want 0 (not known)", got)
	}
}
