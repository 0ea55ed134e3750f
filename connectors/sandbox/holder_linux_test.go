//go:build linux

package sandbox

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// The holder of a journal's lock is read from /proc/locks: the PID of
// the one process holding a write flock on its device and inode, not a
// waiter's nor a POSIX lock's nor another device's; where no line names
// the device (overlayfs, btrfs), the one holder of the inode number on
// any device, and none when two processes hold one on that number (two
// file systems).
func TestHolderIsReadFromProcLocks(t *testing.T) {
	const locks = `1: POSIX  ADVISORY  WRITE 11 fd:01:77 0 EOF
2: FLOCK  ADVISORY  WRITE 4242 fd:01:77 0 EOF
2: -> FLOCK  ADVISORY  WRITE 5151 fd:01:77 0 EOF
3: FLOCK  ADVISORY  READ 6161 fd:01:78 0 EOF
4: FLOCK  ADVISORY  WRITE 7171 fd:01:778 0 EOF
5: FLOCK  ADVISORY  WRITE 9191 103:02:7 0 EOF
`
	other := locks + "6: FLOCK  ADVISORY  WRITE 8181 08:02:77 0 EOF\n"
	for _, c := range []struct {
		name, locks, dev string
		ino              uint64
		want             int
	}{
		{"the holder on its device", locks, "fd:01", 77, 4242},
		{"a read lock only", locks, "fd:01", 78, 0},
		{"the inode on another device too", other, "fd:01", 77, 4242},
		{"the other device's", other, "08:02", 77, 8181},
		{"a device written with three digits", locks, "103:02", 7, 9191},
		{"no line with the device: the inode's one holder", locks, "00:2e", 77, 4242},
		{"no line with the device, two holders of the inode", other, "00:2e", 77, 0},
		{"no lock on the inode", locks, "fd:01", 79, 0},
	} {
		if got := holderIn([]byte(c.locks), c.dev, c.ino); got != c.want {
			t.Errorf("%s: holder of %s:%d is %d, want %d", c.name, c.dev, c.ino, got, c.want)
		}
	}
}

// A device number splits into major and minor as /proc/locks writes
// them, the 12 bits of major and 20 of minor that Linux gives included
// (makedev(3): minor's low byte, major's 12 bits, minor's upper bits).
func TestDeviceNumberSplitsAsProcLocksWritesIt(t *testing.T) {
	for _, c := range []struct {
		dev  uint64
		want string
	}{
		{0xfd01, "fd:01"},
		{0xfe00, "fe:00"},
		{0x0803, "08:03"},
		{0x12345_103_67, "103:1234567"},
	} {
		if got := procLocksDevice(c.dev); got != c.want {
			t.Errorf("device %#x: %s, want %s", c.dev, got, c.want)
		}
	}
	// And this machine's /proc/locks lists a file's lock under the
	// device stat(2) gives, where the file system does (not overlayfs).
	f, err := os.Create(filepath.Join(t.TempDir(), "lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
		t.Skip("no flock here:", err)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(f.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	locks, err := os.ReadFile("/proc/locks")
	if err != nil {
		t.Skip("no /proc/locks:", err)
	}
	var fields []string
	for line := range strings.Lines(string(locks)) {
		if l := strings.Fields(line); len(l) > 5 && l[4] == strconv.Itoa(os.Getpid()) && strings.HasSuffix(l[5], ":"+strconv.FormatUint(st.Ino, 10)) {
			fields = l
		}
	}
	if fields == nil {
		t.Skip("this process's lock is not in /proc/locks (another PID namespace?)")
	}
	if want := procLocksDevice(uint64(st.Dev)) + ":" + strconv.FormatUint(st.Ino, 10); fields[5] != want {
		// overlayfs and btrfs: the lock is listed under another device.
		var fs syscall.Statfs_t
		if err := syscall.Fstatfs(int(f.Fd()), &fs); err == nil && (fs.Type == 0x794c7630 || fs.Type == 0x9123683e) {
			t.Skipf("/proc/locks names %s, stat(2) %s: a file system that lists another device", fields[5], want)
		}
		t.Errorf("/proc/locks names %s, want %s (from stat(2))", fields[5], want)
	}
	if got := holderIn(locks, procLocksDevice(uint64(st.Dev)), st.Ino); got != os.Getpid() {
		t.Errorf("holder of this process's lock: %d, want %d", got, os.Getpid())
	}
}

// The holder's command is its program's base name and subcommand, not
// its arguments, which may hold secrets (a token given as a flag).
func TestHolderCommandLeavesItsArgumentsOut(t *testing.T) {
	for _, c := range []struct{ cmdline, want string }{
		{"/usr/local/bin/dealsync\x00dev\x00--data-dir\x00/srv/d\x00", "dealsync dev"},
		{"./dealsync\x00sandbox\x00--journal\x00j.jsonl\x00--api-key\x00s3cr3t\x00", "dealsync sandbox"},
		{"dealsync\x00--config\x00secret-config.yaml\x00dev\x00", "dealsync"},
		{"/usr/bin/python3\x00/home/me/Tok3n_xyz.py\x00", "python3"},
		{"/usr/bin/flock\x00", "flock"},
		{"/usr/bin/prog\x00pass=word\x00", "prog"},
		{"", ""},
	} {
		if got := commandName([]byte(c.cmdline)); got != c.want {
			t.Errorf("command of %q: %q, want %q", c.cmdline, got, c.want)
		}
	}
}
