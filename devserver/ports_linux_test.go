package devserver

import (
	"context"
	"net"
	"strconv"
	"syscall"
	"testing"
)

// A held port is kept from others (here: a bind without SO_REUSEADDR,
// as the kernel keeps it from a bind to port 0 and from an outgoing
// connection's local end), but not from the server's own bind, and is
// free again once let go.
func TestHeldPortIsKeptFromOthersButNotFromTheServer(t *testing.T) {
	ports, releases, err := holdFreePorts("127.0.0.1", 1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	noReuse := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if cerr := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 0)
		}); cerr != nil {
			return cerr
		}
		return err
	}}
	if l, err := noReuse.Listen(context.Background(), "tcp", addr); err == nil {
		l.Close()
		t.Errorf("another program bound the held port %d", ports[0])
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("the server cannot bind the held port %d: %v", ports[0], err)
	}
	l.Close()
	releases[0]()
	releases[0]() // harmless
	l, err = noReuse.Listen(context.Background(), "tcp", addr)
	if err != nil {
		t.Fatalf("the port %d let go is not free: %v", ports[0], err)
	}
	l.Close()
}
