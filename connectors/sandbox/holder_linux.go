//go:build linux

package sandbox

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockHolder is the process that holds the flock(2) on f, as the kernel
// lists it in /proc/locks, and its command (commandName of /proc/PID/cmdline):
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
	pid = holderIn(locks, procLocksDevice(uint64(st.Dev)), st.Ino)
	if pid <= 0 {
		return 0, ""
	}
	if b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		command = commandName(b)
	}
	return pid, command
}

// commandName is what a process's command line (/proc/PID/cmdline, its
// arguments each ended by a NUL) says of it without its arguments, which
// may hold secrets: the program's base name and, when the first argument
// is a plain word (a subcommand: lower-case letters, digits and dashes),
// that word: "dealsync dev", "dealsync" for "dealsync --config c.yaml dev".
func commandName(cmdline []byte) string {
	args := strings.Split(strings.TrimRight(string(cmdline), "\x00"), "\x00")
	if args[0] == "" {
		return ""
	}
	name := filepath.Base(args[0])
	if len(args) > 1 && isSubcommand(args[1]) {
		name += " " + args[1]
	}
	return name
}

// isSubcommand is whether arg reads as a subcommand's name.
func isSubcommand(arg string) bool {
	if arg == "" || len(arg) > 32 || arg[0] < 'a' || arg[0] > 'z' {
		return false
	}
	for _, r := range arg {
		if (r < 'a' || r > 'z') && (r < '0' || r > '9') && r != '-' {
			return false
		}
	}
	return true
}

// procLocksDevice is device number dev as /proc/locks writes it:
// major:minor, each in hex of two digits at least ("fd:01").
func procLocksDevice(dev uint64) string {
	return fmt.Sprintf("%02x:%02x", devMajor(dev), devMinor(dev))
}

// devMajor and devMinor split a device number as glibc's major(3) and
// minor(3) do (golang.org/x/sys/unix's Major and Minor, which dealsync
// does not import).
func devMajor(dev uint64) uint32 {
	return uint32((dev&0x00000000000fff00)>>8 | (dev&0xfffff00000000000)>>32)
}

func devMinor(dev uint64) uint32 {
	return uint32(dev&0x00000000000000ff | (dev&0x00000ffffff00000)>>12)
}

// holderIn is the PID that holds an exclusive flock on inode ino of device
// dev (procLocksDevice) in the text of /proc/locks ("1: FLOCK  ADVISORY
// WRITE 4242 fd:01:1311 0 EOF"; a waiter's line has "->" before FLOCK): 0 when none does, or when more than one process does.
// Where no line names the device (overlayfs and btrfs list another device
// than stat(2) gives), a holder of the inode number on any device is
// taken, unless two processes hold one (one inode number on two file
// systems).
func holderIn(locks []byte, dev string, ino uint64) int {
	inode := strconv.FormatUint(ino, 10)
	onDev, onAny := 0, 0
	devSeen, devMany, anyMany := false, false, false
	sc := bufio.NewScanner(bytes.NewReader(locks))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" || f[3] != "WRITE" {
			continue
		}
		i := strings.LastIndexByte(f[5], ':')
		if i < 0 || f[5][i+1:] != inode {
			continue
		}
		pid, err := strconv.Atoi(f[4])
		if err != nil || pid <= 0 {
			continue
		}
		if onAny != 0 && onAny != pid {
			anyMany = true
		}
		onAny = pid
		if f[5][:i] == dev {
			if devSeen && onDev != pid {
				devMany = true
			}
			devSeen, onDev = true, pid
		}
	}
	switch {
	case devSeen && !devMany:
		return onDev
	case devSeen, anyMany:
		return 0
	}
	return onAny
}
