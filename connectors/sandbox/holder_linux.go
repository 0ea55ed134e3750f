//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder is the process that holds the flock(2) on f, as the kernel
// lists it in /proc/locks, and its command line (from /proc/PID/cmdline):
// 0 and "" when it cannot be told (no /proc, another PID namespace, a
// lock let go meanwhile).
func lockHolder(f *os.File) (pid int, command string) {
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		return 0, ""
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		return 0, ""
	}
	pid = holderIn(locks, st.Ino)
	if pid <= 0 {
		return 0, ""
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		command = strings.TrimSpace(string(bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
	}
	return pid, command
}

// holderIn is the PID that holds an exclusive flock on inode ino in the
// text of /proc/locks ("1: FLOCK  ADVISORY  WRITE 4242 fd:01:1311 0 EOF";
// a waiter's line has "->" after the number): 0 when none does, or when
// more than one process does (one inode number on two file systems).
func holderIn(locks []byte, ino uint64) int {
	found := 0
	sc := bufio.NewScanner(bytes.NewReader(locks))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 1 && f[1] == "->" {
			continue
		}
		if len(f) < 6 || f[1] != "FLOCK" || f[3] != "WRITE" {
			continue
		}
		dev := strings.Split(f[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			continue
		}
		if found != 0 && found != pid {
			return 0
		}
		found = pid
	}
	return found
}
