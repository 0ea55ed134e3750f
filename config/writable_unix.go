//go:build unix

package config

import "syscall"

// canWrite reports whether this process may create files in the existing
// directory dir: access(2), which also says EROFS for a read-only mount.
func canWrite(dir string) error {
	const wOK = 2
	return syscall.Access(dir, wOK)
}
