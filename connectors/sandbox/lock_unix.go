//go:build unix

package sandbox

import (
	"os"
	"syscall"
)

// lockExclusive takes an exclusive flock(2) on f without waiting; it is
// released when f is closed (or the process ends).
func lockExclusive(f *os.File) error {
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
}
