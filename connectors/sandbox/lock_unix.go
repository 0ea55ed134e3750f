//go:build unix

package sandbox

import (
	"errors"
	"os"
	"syscall"
	"time"
)

// lockWait is how long lockExclusive waits for another holder: a process
// killed a moment ago (kill -9, a supervisor's fast restart) holds its
// locks until the kernel has torn it down, which a journey measured at
// over a second; a process that is running holds it for good.
var lockWait = 3 * time.Second

// lockExclusive takes an exclusive flock(2) on f, waiting up to lockWait
// for another holder to let go; it is released when f is closed (or the
// process ends).
func lockExclusive(f *os.File) error {
	deadline := time.Now().Add(lockWait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil || !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}
